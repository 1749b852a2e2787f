"""Reduction: the only place that knows none/mean/sum, weighted means, masks, the
``normalizer`` and the empty-mean rule.

* ``"none"``: the per-element loss times its weight; masked (not counted) elements are 0.
* ``"sum"``: ``sum(w * l)`` over the counted elements.
* ``"mean"``: ``sum(w * l) / sum(w)`` over the counted elements (``w = 1`` without a
  weight), or ``sum(w * l) / normalizer`` when a normalizer is given.
* Empty mean (nothing counted, or every counted weight is 0): ``0.0``, still connected
  to the graph, so the gradient is exactly zero. torch returns NaN there.

The denominator is computed on the device and never read back to the host.
"""

from __future__ import annotations

import torch

__all__ = ["reduce", "reduce_builtin", "reduce_sums", "upcast", "compute_dtype"]

_HALF = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 are computed (and returned) in float32; other dtypes as they are."""
    return torch.float32 if dtype in _HALF else dtype


def upcast(x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Cast to the compute dtype (a no-op, not a copy, when it already is).

    ``Tensor.to`` is differentiable, so a float16 input gets a float16 gradient back.
    """
    return x.to(dtype or compute_dtype(x.dtype))


def _safe_divide(num: torch.Tensor, den: torch.Tensor | float) -> torch.Tensor:
    """num / den, and num (which is then 0) where den == 0: never NaN, zero gradient."""
    if not isinstance(den, torch.Tensor):
        return num / den if den != 0 else num * 0.0
    den = den.to(num.dtype)
    return num / torch.where(den == 0, torch.ones_like(den), den)


def reduce(
    loss: torch.Tensor,
    reduction: str,
    *,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    normalizer: float | torch.Tensor | None = None,
    dim: int | tuple[int, ...] | None = None,
    weight_applied: bool = False,
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
        weight_applied: ``loss`` already holds ``w * l`` (e.g. torch's class-weighted
            cross entropy with label smoothing, which is not ``w`` times one number);
            ``weight`` then only gives the mean's denominator ``sum(w)``.
    """
    zero = torch.zeros((), dtype=loss.dtype, device=loss.device)
    if mask is not None:
        loss = torch.where(mask, loss, zero)
    if weight is not None:
        weight = weight.to(loss.dtype)
    if weight_applied:
        if reduction != "mean" or normalizer is not None or weight is None:
            return reduce(loss, reduction, mask=mask, normalizer=normalizer, dim=dim)
        den = weight if mask is None else torch.where(mask, weight, zero)
        dims = tuple(range(loss.dim())) if dim is None else dim
        return _safe_divide(loss.sum(dim=dims), den.sum(dim=dims))
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
        return _safe_divide(total(loss * weight if weight is not None else loss), normalizer)
    if weight is None:
        if mask is None:
            count = 1
            for d in dims:
                count *= loss.shape[d]
            return _safe_divide(total(loss), count)
        return _safe_divide(total(loss), total(mask))
    # Weighted mean: sum(l * w / sum(w)). Normalising the weights first keeps the gradient
    # (w / sum(w)) finite even when sum(w) is tiny; dividing afterwards would not.
    w = torch.broadcast_to(weight, loss.shape)
    if mask is not None:
        w = torch.where(mask, w, zero)
    den = w.sum(dim=dims, keepdim=True) if dims else w
    return total(loss * _safe_divide(w, den))


def reduce_builtin(
    builtin,
    reduction: str,
    *,
    weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    normalizer: float | torch.Tensor | None = None,
    numel: int,
) -> torch.Tensor:
    """Reduce a loss that torch computes itself: ``builtin(reduction)`` returns torch's value.

    Plain means and sums (no weight, mask or normalizer, non-empty) go to torch's fused
    kernel, forward and backward; everything else takes torch's per-element loss through
    :func:`reduce`, so the weighted-mean and empty-mean rules stay in one place.
    """
    if weight is None and mask is None and normalizer is None and numel > 0:
        return builtin(reduction)
    return reduce(builtin("none"), reduction, weight=weight, mask=mask, normalizer=normalizer)


def reduce_sums(
    total: torch.Tensor,
    den: torch.Tensor,
    reduction: str,
    normalizer: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Finish a reduction from sums a kernel computed: ``total = sum(w * l)`` and
    ``den = sum(w)`` over the counted elements (for ``"none"``, ``total`` is returned)."""
    if reduction != "mean":
        return total
    return _safe_divide(total, normalizer if normalizer is not None else den)
