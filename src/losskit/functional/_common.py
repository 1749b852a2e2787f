"""Argument handling shared by the functional losses (validation lives in ``_checks``)."""

from __future__ import annotations

import torch

from .. import _checks as C
from .._reduction import UNCAST, compute_dtype, in_dtype


def finite_on_cpu(t: torch.Tensor) -> bool:
    """Whether every element of ``t`` is finite, from one read where a read costs no
    device sync (CPU, eager mode): a sum of finite values is finite unless it overflows,
    so a finite sum proves it (an overflowing one answers ``False``, the safe answer).
    ``False`` elsewhere: the caller then takes its path for non-finite values."""
    return t.device.type == "cpu" and C.eager() and bool(torch.isfinite(t.detach().sum()))


def prepare_pointwise(
    loss: str,
    input: object,
    target: object,
    *,
    weight: object = None,
    reduction: str = "mean",
    normalizer: object = None,
    broadcast: bool = False,
    target_hint: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Validate an input/target pair of one shape (or broadcastable with ``broadcast``)
    and return them, and the weight, in the compute dtype."""
    if (
        weight is None
        and normalizer is None
        and type(input) is torch.Tensor
        and type(target) is torch.Tensor
        and input.dtype in UNCAST
        and target.dtype == input.dtype
        and input.shape == target.shape
        and input.device == target.device
        and reduction in C.REDUCTIONS
    ):
        # the common call, which every check below passes and leaves as it is: tested in
        # a few attribute reads (tens of microseconds less on a cold cache)
        return input, target, None
    C.check_call(loss, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    shape = C.check_same_shape(loss, input, target, broadcast)
    if weight is not None:
        C.check_broadcastable_to(
            loss,
            "weight",
            weight,
            shape,
            "weight is per element: give it the input's shape, or a shape that broadcasts to it.",
        )
    dtype = compute_dtype(input.dtype)
    x = in_dtype(input, dtype)
    y = in_dtype(target, dtype)
    if shape != x.shape or shape != y.shape:
        x, y = torch.broadcast_tensors(x, y)
    w = in_dtype(weight, dtype) if weight is not None else None
    return x, y, w
