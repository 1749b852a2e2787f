"""Closed-form gradients for the torch path: one autograd node instead of autograd's tape.

A loss whose tape costs more than its math (log-cosh, pseudo-Huber, the focal losses)
computes its value without a tape and its gradient by a hand-written formula, through
:func:`fused`. The plain autograd path stays the definition:

* a second derivative (``create_graph=True``) runs the plain path's graph again inside the
  backward and differentiates it, so double backward gives exactly the plain path's
  second derivatives (and its stability guarantees);
* under ``torch.compile`` and inside ``torch.func`` transforms (``vmap``, ``grad``,
  ``jacrev``) the plain path runs instead (:func:`eager`), where those systems trace,
  batch and differentiate its ops.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import _checks as C
from .._reduction import finish_sum, reduce
from ._rowstats import batched_grad

eager = C.eager  # where the hand-written gradients may run


class _Fused(torch.autograd.Function):
    """``rule.forward(*inputs) -> (output, state)``; ``rule.backward(state, grad,
    needs) -> grads`` (one per input, ``None`` where not needed); ``plain(*inputs)`` is
    the autograd definition, used for double backward.

    Applied only in plain eager autograd (:func:`fused` runs ``plain`` under
    ``torch.compile`` and ``torch.func``), so it needs no ``setup_context``: its
    ``state`` (any structure of tensors) stays on ``ctx``, where the forward made it.
    A rule whose backward turns its state into the gradient in place says so
    (``CONSUMES_STATE = True``); the state is then made again for a second backward
    through a retained graph."""

    EAGER_ONLY = True  # never applied inside a torch.func transform (see fused)

    @staticmethod
    def forward(ctx, rule, plain, *inputs):
        out, state = rule.forward(*inputs)
        ctx.rule, ctx.plain, ctx.state = rule, plain, state
        ctx.save_for_backward(*inputs)
        return out

    @staticmethod
    def backward(ctx, grad):
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        # create_graph=True, or autograd's batched backward (a vectorized jacobian or
        # hessian, whose batch of gradients the rules' in-place steps cannot take): the
        # plain path, differentiated by autograd (a graph of its own only when asked)
        create_graph = torch.is_grad_enabled()
        if create_graph or batched_grad(grad):
            wrt = [t for t, n in zip(inputs, needs, strict=True) if n]
            with torch.enable_grad():
                out = ctx.plain(*inputs)
                got = iter(torch.autograd.grad(out, wrt, grad, create_graph=create_graph))
            return (None, None, *(next(got) if n else None for n in needs))
        state = ctx.state
        if getattr(ctx.rule, "CONSUMES_STATE", False):
            # the rule writes its gradient into its state: a retained graph's second
            # backward computes the state again
            ctx.state = None
            if state is None:
                state = ctx.rule.forward(*inputs)[1]
        return (None, None, *ctx.rule.backward(state, grad, needs))


#: Logits up to which cross entropy and the L1 loss run torch's kernel (their plain path
#: is that kernel): below it the closed form's Python (an autograd Function, a few more
#: calls) costs more than the tape it saves. Measured on CPU, torch 2.13, one thread,
#: forward + backward: the L1 loss 124 against 106 us at 4096 elements, 177 against 160
#: at 65536, 331 against 389 at 262144; cross entropy 1.07x torch at 128 x 1000, 0.88x at
#: 256 x 1000. Where a kernel is slower per element the bound is lower (binary cross
#: entropy: ``binary._KERNEL_UP_TO``).
SMALL = 1 << 17

#: False: every closed form at every size (the tests of the closed forms set it).
KERNELS_FOR_SMALL = True


def small(t: torch.Tensor, up_to: int = SMALL) -> bool:
    """``t`` has at most ``up_to`` elements, and small inputs take the kernels
    (:data:`KERNELS_FOR_SMALL`)."""
    return KERNELS_FOR_SMALL and t.numel() <= up_to


def fused(
    rule, plain: Callable[..., torch.Tensor], *inputs: torch.Tensor, kernel_up_to: int = 0
) -> torch.Tensor:
    """``plain(*inputs)``'s value with ``rule``'s closed-form gradient (see the module
    docstring); ``plain`` itself outside plain eager autograd, and, where ``plain`` is
    one torch kernel as exact as the rule, for inputs of at most ``kernel_up_to``
    elements (:func:`small`)."""
    if not eager() or (kernel_up_to and small(inputs[0], kernel_up_to)):
        return plain(*inputs)
    if not any(t.requires_grad for t in inputs) or not torch.is_grad_enabled():
        with torch.no_grad():
            return rule.forward(*inputs)[0]
    return _Fused.apply(rule, plain, *inputs)


class Summed:
    """A per-element ``rule`` (``forward(*inputs) -> (loss, state)``, ``backward(state,
    grad, needs)`` with ``grad`` broadcastable to the loss) made into the rule of its sum
    over every element, divided by ``divisor`` (the element count for a plain mean, 1
    for a sum). The per-element loss lives only until it is summed (a rule's
    ``sum_forward(*inputs) -> (total, state)``, where it has one, sums without it), and the
    backward gets the scalar ``grad / divisor``: no expanded gradient, no tape for the
    reduction."""

    def __init__(self, rule, divisor: int = 1):
        # a float: dividing by a Python int first makes it an int64 tensor, then copies it
        # to the loss's dtype (the same value, 1 us more for each division)
        self.rule, self.divisor = rule, float(divisor)
        self.CONSUMES_STATE = getattr(rule, "CONSUMES_STATE", False)

    def forward(self, *inputs):
        if hasattr(self.rule, "sum_forward"):  # the rule's own sum: no per-element buffer
            total, state = self.rule.sum_forward(*inputs)
        else:
            loss, state = self.rule.forward(*inputs)
            total = loss.sum()
            del loss
        return (total / self.divisor if self.divisor != 1 else total), state

    def backward(self, state, grad, needs):
        return self.rule.backward(state, grad / self.divisor if self.divisor != 1 else grad, needs)


class Kernels:
    """A plain mean or sum from torch's kernels: ``value(x, y, reduction, **hyper)`` and
    the gradient ``backward(g, x, y, reduction, **hyper)`` of its backward kernel
    (:mod:`._aten`: for the Huber losses into an empty buffer, where torch's own autograd
    formula fills one with zeros first). torch's values and gradients; the target's
    gradient, where one is asked (a loss of ``x - y``), is minus the input's."""

    def __init__(self, value, backward, reduction, hyper):
        self.value, self.grad, self.reduction, self.hyper = value, backward, reduction, hyper

    def forward(self, x, y):
        return self.value(x, y, self.reduction, **self.hyper), (x, y)

    def backward(self, state, grad, needs):
        gx = self.grad(grad, *state, self.reduction, **self.hyper)
        return (gx if needs[0] else None), (gx.neg() if needs[1] else None)


class _Total:
    """A rule whose forward gives the summed loss, as :class:`Summed` takes it."""

    def __init__(self, rule):
        self.rule = rule
        self.CONSUMES_STATE = getattr(rule, "CONSUMES_STATE", False)

    def sum_forward(self, *inputs):
        return self.rule.forward(*inputs)

    def backward(self, state, grad, needs):
        return self.rule.backward(state, grad, needs)


def fused_total(
    rule,
    plain: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    count: int,
    reduction: str,
    normalizer=None,
    kernel_up_to: int = 0,
) -> torch.Tensor:
    """``finish_sum(fused(rule, plain, *inputs), count, reduction, normalizer)`` for a
    ``rule`` (and its ``plain`` path) whose forward gives the summed loss, a ``"mean"``
    or ``"sum"`` over ``count`` elements counted on the host. A plain mean (no
    normalizer, ``count > 0``) is divided inside the node (:class:`Summed`): autograd's
    graph has no division node (on CPU, one thread, the sum of a 16 x 256 tensor and its
    backward: 44 us with the division by an int after it, 30 without)."""
    if normalizer is None and count > 0 and reduction == "mean":

        def mean_plain(*args):
            return plain(*args) / count

        node = Summed(_Total(rule), count)
        return fused(node, mean_plain, *inputs, kernel_up_to=kernel_up_to)
    total = fused(rule, plain, *inputs, kernel_up_to=kernel_up_to)
    return finish_sum(total, count, reduction, normalizer)


def summed_divisor(x: torch.Tensor, weight, reduction: str, normalizer) -> int | None:
    """The divisor of a plain mean (the element count of ``x``) or sum (1), which a
    closed-form rule computes whole (:class:`Summed`); ``None`` where
    :func:`losskit._reduction.reduce` decides (a weight, a normalizer, an empty input,
    ``"none"``)."""
    if weight is not None or normalizer is not None or reduction == "none" or x.numel() == 0:
        return None
    return x.numel() if reduction == "mean" else 1


def fused_reduce(rule, per_element, *inputs, reduction, weight=None, normalizer=None):
    """``reduce(per_element(*inputs), reduction, ...)`` with the per-element ``rule``'s
    closed-form gradient: a plain mean or sum as one :class:`Summed` rule (no expanded
    gradient, no tape for the reduction), anything else (a weight, a normalizer,
    ``"none"``) the rule's per-element loss, then :func:`losskit._reduction.reduce`."""
    divisor = summed_divisor(inputs[0], weight, reduction, normalizer)
    if divisor is not None:

        def plain(*args):
            return reduce(per_element(*args), reduction)

        return fused(Summed(rule, divisor), plain, *inputs)
    loss = fused(rule, per_element, *inputs)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)
