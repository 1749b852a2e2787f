"""Cross entropy from row statistics, and the rules of the autograd Functions built on it.

Three paths never hold a row's logits at once: the chunked torch sweep of
``linear_cross_entropy`` (:mod:`losskit.functional._chunked`), the merge of the fused
kernel's per-tile partials (:mod:`losskit.kernels.linear`), and
``losskit.distributed.vocab_parallel_cross_entropy`` (each rank holds a slice of the
classes). Each reduces the logits ``z`` of a row to a few numbers against a reference
``r`` of its own choosing (usually the row maximum, so that every term below is small
and nothing cancels), :class:`RowStats`, and :class:`RowCrossEntropy` turns them into the
loss of the row and the coefficients of its gradient.

The math of one row, target ``y``, class weights ``w`` (``W = sum_c w_c``; ``w = 1``
without class weights), label smoothing ``e``, z-loss coefficient ``k``, ``V`` classes
and ``p = softmax(z)``::

    loss    = (1 - e) w_y (lse - z_y) + e / V (W lse - sum_c w_c z_c) + k lse^2
    dl/dz_c = p_c ((1 - e) w_y + e W / V + 2 k lse) - (1 - e) w_y [c = y] - e w_c / V

with ``lse - z_y = (lse - r) - (z_y - r)`` and
``W lse - sum_c w_c z_c = W (lse - r) - sum_c w_c (z_c - r)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from .. import _checks as C

__all__ = [
    "Coefficients",
    "RowCrossEntropy",
    "RowStats",
    "check_first_order",
    "target_weight",
    "vmap_by_loop",
]


@dataclass
class RowStats:
    """What a path knows of each row's logits ``z``, against a per-row reference ``r``.

    ``lse_minus_ref`` is ``log sum_c exp(z_c) - r``, ``target_minus_ref`` is ``z_y - r``,
    and ``smooth_minus_ref`` (needed only with label smoothing) is
    ``sum_c w_c (z_c - r)`` (``sum_c (z_c - r)`` without class weights).
    """

    ref: torch.Tensor
    lse_minus_ref: torch.Tensor
    target_minus_ref: torch.Tensor
    smooth_minus_ref: torch.Tensor | None = None

    @classmethod
    def from_sum_exp(cls, ref, sum_exp, target_minus_ref, smooth_minus_ref=None, max_minus_ref=0.0):
        """From ``sum_exp = sum_c exp(z_c - m)``, taken against a running maximum ``m`` that
        is ``max_minus_ref`` above the reference (0: the reference is ``m``)."""
        return cls(ref, sum_exp.log() + max_minus_ref, target_minus_ref, smooth_minus_ref)

    @property
    def lse(self) -> torch.Tensor:
        return self.ref + self.lse_minus_ref


@dataclass
class Coefficients:
    """Per row: ``g dl/dz_c = p * p_c - target * [c = y] - spread * w_c`` (``spread`` is
    ``None`` without label smoothing), for an upstream gradient ``g`` per row."""

    p: torch.Tensor
    target: torch.Tensor
    spread: torch.Tensor | None


@dataclass(frozen=True)
class RowCrossEntropy:
    """The options of one call: ``V`` classes, label smoothing ``e``, z-loss ``k`` and
    ``W = sum_c w_c`` (``None``: no class weights, ``W = V``)."""

    num_classes: int
    label_smoothing: float = 0.0
    z_loss: float = 0.0
    weight_sum: float | torch.Tensor | None = None

    @property
    def _weight_sum(self):
        return float(self.num_classes) if self.weight_sum is None else self.weight_sum

    def loss(self, stats: RowStats, w_y, counted) -> torch.Tensor:
        """The loss of each row; 0 (whatever the statistics hold) where ``counted`` is False.

        ``w_y``: the class weight of each row's target (``None``: no class weights)."""
        ls = self.label_smoothing
        loss = stats.lse_minus_ref - stats.target_minus_ref  # lse - z_y
        if w_y is not None:
            loss = w_y * loss
        if ls:
            smooth = self._weight_sum * stats.lse_minus_ref - stats.smooth_minus_ref
            loss = (1.0 - ls) * loss + (ls / self.num_classes) * smooth
        if self.z_loss:
            loss = loss + self.z_loss * stats.lse.square()
        return torch.where(counted, loss, 0.0)

    def coefficients(self, lse, w_y, g) -> Coefficients:
        """The gradient's coefficients for the upstream gradient ``g`` of each row (0 where
        the row is not counted)."""
        ls = self.label_smoothing
        target = (1.0 - ls) * (g if w_y is None else g * w_y)
        p = target
        if ls:
            p = p + (ls / self.num_classes) * self._weight_sum * g
        if self.z_loss:
            p = p + (2.0 * self.z_loss) * lse * g
        return Coefficients(p, target, g * (ls / self.num_classes) if ls else None)


def target_weight(weight, target, counted):
    """The class weight of each row's target, 0 where the row is not counted (``None``
    without class weights). ``target`` may hold anything where it is not counted."""
    if weight is None:
        return None
    return torch.where(counted, weight[torch.where(counted, target, 0)], 0.0)


# --------------------------------------------------------------------------- autograd rules
# These Functions compute their gradients by hand: their backward is not itself
# differentiable, so a second derivative through them would silently be zero (a gradient
# penalty would vanish). They refuse it instead.
def _outer_transform_differentiates() -> bool | None:
    """Inside a torch.func transform: whether a transform outside the one that runs this
    backward differentiates its result (None outside every transform)."""
    try:
        from torch._C._functorch import TransformType, get_interpreter_stack
    except ImportError:  # a torch without functorch: only plain autograd
        return None
    stack = get_interpreter_stack()
    if not stack:
        return None
    differentiating = (TransformType.Grad, TransformType.Jvp)
    outer = stack[:-1] if stack[-1].key() == TransformType.Grad else stack
    return any(level.key() in differentiating for level in outer)


def batched_grad(grad: torch.Tensor) -> bool:
    """In a hand-written backward: whether ``grad`` is a batch of upstream gradients of
    autograd's vectorized backward (``torch.autograd.grad(..., is_grads_batched=True)``,
    which ``jacobian`` and ``hessian`` with ``vectorize=True`` use). Such a tensor has no
    storage, and is not a ``torch.func`` wrapper (those have no storage either; their
    transforms run a Function's own vmap rule). In-place steps on an unbatched buffer
    cannot take such a batch."""
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return not torch._C._has_storage(grad) and not (wrapped is not None and wrapped(grad))


def check_first_order(loss: str, hint: str) -> None:
    """In a hand-written backward: raise when its result is to be differentiated again
    (``torch.autograd.grad(..., create_graph=True)``, ``backward(create_graph=True)``, or
    a torch.func transform nested around the one that runs it, e.g. ``grad(grad(f))``).

    Autograd runs a backward with grad mode on exactly when ``create_graph=True``;
    ``torch.func.grad`` always does, so a single transform is allowed."""
    if not torch.is_grad_enabled():
        return
    outer = _outer_transform_differentiates()
    if outer is False:
        return
    C.fail(
        loss,
        "second derivatives are not supported on this path (create_graph=True, or nested "
        "torch.func transforms): its gradient is computed by hand and is not itself "
        "differentiable.",
        hint,
    )


def vmap_by_loop(apply, info, in_dims, *args):
    """A vmap rule: ``apply`` once per element of the batch, outputs stacked along dim 0.

    For a Function whose forward writes into buffers of its own (a sweep over chunks, a
    kernel launch) and so cannot be vmapped op by op. Arguments that are not tensors, or
    not batched, are passed whole; ``None`` outputs stay ``None``."""
    outs = []
    for i in range(info.batch_size):
        outs.append(
            apply(
                *(
                    a.select(d, i) if isinstance(a, torch.Tensor) and d is not None else a
                    for a, d in zip(args, in_dims, strict=True)
                )
            )
        )
    if not isinstance(outs[0], tuple):
        return torch.stack(outs), 0
    stacked = tuple(None if col[0] is None else torch.stack(col) for col in zip(*outs, strict=True))
    return stacked, tuple(None if t is None else 0 for t in stacked)


class Function(torch.autograd.Function):
    """``torch.autograd.Function`` for losskit's Functions with a ``setup_context``: the
    signature of the subclass's ``forward`` computed once, at class creation. torch's
    ``Function.apply`` binds the call's arguments to ``inspect.signature(forward)`` on
    every call of such a Function, about 25 us (45 against 20 us a call, torch 2.13, one
    thread); ``inspect`` reads a function's ``__signature__`` first."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if forward is not None:
            fn = forward.__func__ if isinstance(forward, staticmethod) else forward
            fn.__signature__ = inspect.signature(fn)
