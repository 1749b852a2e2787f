"""Argument handling shared by the functional losses (validation lives in ``_checks``)."""

from __future__ import annotations

import torch

from .. import _checks as C
from .._reduction import compute_dtype, in_dtype


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
