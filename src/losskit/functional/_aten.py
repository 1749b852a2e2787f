"""torch's loss kernels, called without ``torch.nn.functional``'s Python wrappers.

``torch.nn.functional.mse_loss`` and its kin broadcast the pair, warn on a shape mismatch
and map the reduction's name to an enum before they call the kernel: tens of
microseconds a call on a cold cache (a benchmark step, a training step), all of it work a
losskit loss has done already (its inputs are validated, of one shape and dtype). These
call the same kernels through the same bindings (``torch._C._nn``, which dispatch tensor
subclasses' ``__torch_function__`` themselves), so values, gradients and autograd nodes
are torch's. The bindings are torch's private API, stable since torch 1.x (every torch
losskit supports has them); ``tests/test_regression.py`` and ``tests/test_multiclass.py``
compare each with ``torch.nn.functional``'s function.
"""

from __future__ import annotations

import math

import torch

#: torch's reduction enum (``torch.nn._reduction.get_enum``).
REDUCTION = {"none": 0, "mean": 1, "sum": 2}

_nn = torch._C._nn


def mse_loss(x: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    return _nn.mse_loss(x, y, REDUCTION[reduction])


def l1_loss(x: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    return _nn.l1_loss(x, y, REDUCTION[reduction])


def huber_loss(x: torch.Tensor, y: torch.Tensor, reduction: str, delta: float) -> torch.Tensor:
    return _nn.huber_loss(x, y, REDUCTION[reduction], delta)


def smooth_l1_loss(x: torch.Tensor, y: torch.Tensor, reduction: str, beta: float) -> torch.Tensor:
    if beta == 0:  # as torch's wrapper: the L1 loss (the kernel's gradient at r = 0 is not)
        return _nn.l1_loss(x, y, REDUCTION[reduction])
    return _nn.smooth_l1_loss(x, y, REDUCTION[reduction], beta)


#: torch's backward kernels of the two losses above. torch's autograd formulas for them
#: fill their output with zeros (``zeros_like``) before the kernel writes every element of
#: it; these ``out`` forms take an empty buffer instead: one pass over the gradient fewer
#: (47 us of a 4096 x 256 float32 step on this project's CPU, one thread).
_huber_backward = torch.ops.aten.huber_loss_backward.out
_smooth_l1_backward = torch.ops.aten.smooth_l1_loss_backward.grad_input


def _empty(x: torch.Tensor) -> torch.Tensor:
    """The gradient's buffer, contiguous as torch's (its kernel then rounds as torch's)."""
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def huber_loss_backward(g, x, y, reduction: str, delta: float) -> torch.Tensor:
    """The gradient of :func:`huber_loss` with respect to ``x`` (``g`` the upstream
    gradient), torch's, in a fresh buffer."""
    return _huber_backward(g, x, y, REDUCTION[reduction], delta, grad_input=_empty(x))


def smooth_l1_loss_backward(g, x, y, reduction: str, beta: float) -> torch.Tensor:
    """The gradient of :func:`smooth_l1_loss` (``beta > 0``) with respect to ``x``,
    torch's, in a fresh buffer."""
    return _smooth_l1_backward(g, x, y, REDUCTION[reduction], beta, grad_input=_empty(x))


def multi_margin_loss(x, y, reduction: str, p: int, margin: float) -> torch.Tensor:
    """torch's ``multi_margin_loss`` of scores ``(N, C)`` and class indices ``(N, 1)``,
    without a class weight."""
    return _nn.multi_margin_loss(x, y.reshape(-1), p, margin, None, REDUCTION[reduction])


def multi_margin_loss_backward(g, x, y, reduction: str, p: int, margin: float):
    """The gradient of :func:`multi_margin_loss` with respect to ``x``, torch's."""
    return _multi_margin_backward(g, x, y.reshape(-1), p, margin, None, REDUCTION[reduction])


_multi_margin_backward = torch.ops.aten.multi_margin_loss_backward.default


def nll_loss_cpu(x: torch.Tensor, t: torch.Tensor, ignore_index: int, reduction: str):
    """torch's ``nll_loss`` of ``(N, C, *)`` log-probabilities on CPU, with losskit's
    value check done by the kernel: on CPU it tests every counted target against the
    classes before it returns. ``None`` where the checked path must run instead, for its
    message (a target out of range) or its value (every target ignored: losskit's empty
    mean is 0, torch's NaN; a NaN mean is recomputed there, whatever its cause)."""
    try:
        out = _nn.nll_loss_nd(x, t, None, REDUCTION[reduction], ignore_index)
    except IndexError:
        return None
    if reduction == "mean" and math.isnan(out.item()):
        return None
    return out


def cross_entropy(x: torch.Tensor, t: torch.Tensor, ignore_index: int, reduction: str):
    """torch's ``cross_entropy`` of logits and class indices, without label smoothing."""
    return _nn.cross_entropy_loss(x, t, None, REDUCTION[reduction], ignore_index, 0.0)
