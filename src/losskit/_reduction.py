"""Reduction: the only place that knows none/mean/sum, weighted means, masks, the
``normalizer`` and the empty-mean rule. Two entry points:

* :func:`reduce` reduces a per-element loss ``l`` with an optional per-element weight
  ``w`` and mask of counted elements:

  - ``"none"``: ``w * l``; masked (not counted) elements are 0;
  - ``"sum"``: ``sum(w * l)`` over the counted elements;
  - ``"mean"``: ``sum(w * l) / sum(w)`` over the counted elements (``w = 1`` without a
    weight), or ``sum(w * l) / normalizer`` when a normalizer is given.

* :func:`finish_sum` finishes a loss that is already summed (by torch's fused kernels, a
  chunked sweep or a Triton kernel, class weights applied) from its counted weight
  ``sum(w)``: ``"sum"`` is the total, ``"mean"`` the total over the counted weight (or
  over the normalizer).

Empty mean (nothing counted, or every counted weight is 0): ``0.0``, still connected to the
graph, so the gradient is exactly zero. torch returns NaN there. A mean without a value is
not an empty mean: weights that sum to 0 while some are not 0 (negative weights are
allowed, as in torch, but must not cancel), or a tensor ``normalizer`` of 0 while elements
are counted, are a LossInputError under value checks (the only host reads here, through
:func:`losskit._checks.check_mean_denominator`), and ``+-inf`` or NaN with them off, never
the sum. Otherwise denominators are computed on the device and never read back.
"""

from __future__ import annotations

import torch

from . import _checks as C

__all__ = ["reduce", "reduce_builtin", "finish_sum", "mean_weight", "compute_dtype", "in_dtype"]

_HALF = (torch.float16, torch.bfloat16)


#: Dtypes computed as they are (half precision is computed in float32): an input of one
#: of them needs no cast.
UNCAST = (torch.float32, torch.float64)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are computed (and returned) in float32; other dtypes as they are."""
    return torch.float32 if dtype in _HALF else dtype


def in_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)``, without the dispatcher call (about 2 us) when ``t`` already has it."""
    return t if t.dtype == dtype else t.to(dtype)


def _safe_divide(num: torch.Tensor, den: torch.Tensor | float) -> torch.Tensor:
    """num / den, and 0 where both are 0 (the empty mean: nothing counted, or every
    counted weight 0), with a zero gradient; never NaN there. A num that is not 0 over a
    den of 0 (weights that cancel, a normalizer of 0 with value checks off) stays
    ``+-inf``: a mean without a value is never returned as a number."""
    if not isinstance(den, torch.Tensor):
        return num / den if den != 0 else num * 0.0  # a count of 0: nothing was summed
    den = den.to(num.dtype)
    return num / torch.where((den == 0) & (num == 0), torch.ones_like(den), den)


def _normalised(w: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``w / sum(w)`` over ``dims``, exact where ``sum(w)`` would overflow or underflow.

    The weights are first scaled by their largest magnitude, so that their sum is at most
    the element count (no overflow for weights of 1e38) and at least one term is 1 (no
    underflow for subnormal weights); the ratio is unchanged. Normalising the weights
    before the product keeps the gradient ``w / sum(w)`` finite even when ``sum(w)`` is
    tiny; dividing ``sum(w l)`` afterwards would not.
    """
    if not dims:
        return _safe_divide(w, w)
    if w.numel() == 0:  # the empty mean
        return w
    scale = w.detach().abs().amax(dim=dims, keepdim=True)
    empty = scale == 0  # every counted weight 0 (or nothing counted): the empty mean
    w = w / torch.where(empty, torch.ones_like(scale), scale)
    den = w.sum(dim=dims, keepdim=True)
    # weights that cancel (sum 0, not all 0): an error under value checks, else +-inf
    C.check_mean_denominator(den, ~empty)
    return w / torch.where(empty, torch.ones_like(den), den)


def mean_weight(
    weight: torch.Tensor | None, reduction: str, normalizer: object, homogeneous: bool = True
) -> torch.Tensor | None:
    """A class weight ready for a loss that is summed first and divided by its counted
    weight: with ``"mean"`` (and no normalizer) only the ratio ``sum(w l) / sum(w)``
    matters, so the weights are scaled by their largest magnitude, which keeps both sums
    finite for weights of 1e38 and exact for subnormal ones. Otherwise, or when the loss
    has a term the weight does not scale (``homogeneous=False``: the z-loss), unchanged."""
    if weight is None or reduction != "mean" or normalizer is not None or weight.numel() == 0:
        return weight
    if not homogeneous:
        return weight
    return _safe_divide(weight, weight.detach().abs().amax())


def reduce(
    loss: torch.Tensor,
    reduction: str,
    *,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    normalizer: float | torch.Tensor | None = None,
    dim: int | tuple[int, ...] | None = None,
) -> torch.Tensor:
    """Reduce a per-element loss.

    Args:
        loss: per-element loss, in the compute dtype.
        reduction: ``"none"``, ``"mean"`` or ``"sum"`` (already validated).
        weight: per-element weight, broadcastable to ``loss`` (already validated).
        mask: bool tensor of ``loss``'s shape; ``False`` elements are not counted
            (their loss, which may be garbage, never reaches the result or the gradient).
        normalizer: with ``"mean"``, divide by this instead of ``sum(w)``.
        dim: reduce only these dimensions (``"mean"`` and ``"sum"``); default all.
    """
    if mask is not None:
        loss = torch.where(mask, loss, torch.zeros((), dtype=loss.dtype, device=loss.device))
    if weight is not None:
        weight = weight.to(loss.dtype)
    if reduction == "none":
        return loss * weight if weight is not None else loss

    dims = dim if dim is not None else tuple(range(loss.dim()))
    if isinstance(dims, int):
        dims = (dims,)

    def total(t: torch.Tensor) -> torch.Tensor:
        return t.sum(dim=dims) if dims else t

    if reduction == "sum":
        return total(loss * weight if weight is not None else loss)
    if normalizer is not None:
        num = total(loss * weight if weight is not None else loss)
        if isinstance(normalizer, torch.Tensor):  # 0 only where nothing is counted
            counted = (num != 0) | mask.any() if mask is not None else num != 0
            C.check_mean_denominator(normalizer, counted, normalizer)
        return _safe_divide(num, normalizer)
    if weight is None:
        if mask is None:
            count = 1
            for d in dims:
                count *= loss.shape[d]
            return _safe_divide(total(loss), count)
        return _safe_divide(total(loss), total(mask))
    w = torch.broadcast_to(weight, loss.shape)
    if mask is not None:
        w = torch.where(mask, w, torch.zeros((), dtype=w.dtype, device=w.device))
    return total(loss * _normalised(w, dims))


def finish_sum(
    total: torch.Tensor,
    count: torch.Tensor | float,
    reduction: str,
    normalizer: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Finish a summed loss: ``total = sum(w * l)`` and ``count = sum(w)`` over the
    counted elements (their number without a weight). ``"mean"`` returns
    ``total / count``, or ``total / normalizer`` when one is given, and 0 when the
    denominator is 0 (the empty mean); ``"sum"`` (and ``"none"``, whose ``total`` is the
    unreduced loss) returns ``total``."""
    if reduction != "mean":
        return total
    if normalizer is not None:
        if isinstance(normalizer, torch.Tensor):  # 0 only where nothing is counted
            counted = (total != 0) | (count != 0) if isinstance(count, torch.Tensor) else count != 0
            C.check_mean_denominator(normalizer, counted, normalizer)
        return _safe_divide(total, normalizer)
    if isinstance(count, torch.Tensor):
        count = count.to(device=total.device)
        if count.is_floating_point():  # a summed weight, which may cancel (a count cannot)
            C.check_mean_denominator(count, total != 0)
    return _safe_divide(total, count)


def reduce_builtin(
    builtin,
    reduction: str,
    *,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    normalizer: float | torch.Tensor | None = None,
    numel: int,
) -> torch.Tensor:
    """Reduce a per-element loss that torch computes itself: ``builtin(reduction)``
    returns torch's value.

    Plain means and sums (no weight, mask or normalizer, non-empty) go to torch's fused
    kernel, forward and backward; everything else takes torch's per-element loss through
    :func:`reduce`, so the weighted-mean and empty-mean rules stay in one place.
    """
    if weight is None and mask is None and normalizer is None and numel > 0:
        return builtin(reduction)
    return reduce(builtin("none"), reduction, weight=weight, mask=mask, normalizer=normalizer)
