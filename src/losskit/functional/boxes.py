"""Box regression losses: IoU, generalized IoU, distance IoU and complete IoU."""

from __future__ import annotations

import math

import torch

from .. import _checks as C
from .._reduction import reduce

__all__ = [
    "box_iou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
]

_FORMATS = ("xyxy", "cxcywh", "xywh")


def _to_xyxy(b: torch.Tensor, fmt: str) -> torch.Tensor:
    if fmt == "xyxy":
        return b
    a, c, w, h = b.unbind(-1)
    if fmt == "cxcywh":
        return torch.stack((a - w / 2, c - h / 2, a + w / 2, c + h / 2), -1)
    return torch.stack((a, c, a + w, c + h), -1)


def _prologue(name, input, target, box_format, eps, weight, reduction, normalizer):
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    if box_format not in _FORMATS:
        C.fail(name, f"box_format must be one of {_FORMATS}, got {box_format!r}")
    C.check_number(name, "eps", eps, low=0.0)
    if input.shape[-1:] != (4,) or input.shape != target.shape:
        C.fail(
            name,
            f"input and target must have the same shape (..., 4), got "
            f"{tuple(input.shape)} and {tuple(target.shape)}",
        )
    dtype = torch.promote_types(input.dtype, torch.float32)
    x = _to_xyxy(input.to(dtype), box_format)
    y = _to_xyxy(target.to(dtype), box_format)
    if C.checks_enabled():
        for what, b in (("input", x), ("target", y)):
            bad = ~torch.isfinite(b).all(-1) | (b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])
            n = int(bad.sum())
            if n:
                idx = tuple(int(i) for i in bad.nonzero()[0])
                C.fail(
                    name,
                    f"{n} {what} box(es) are invalid (non-finite, x2 < x1 or y2 < y1), "
                    f"e.g. at {idx}: {b[idx].tolist()} (as xyxy)",
                )
    return x, y


def _parts(x, y, eps):
    x1, y1, x2, y2 = x.unbind(-1)
    a1, b1, a2, b2 = y.unbind(-1)
    area_x = (x2 - x1) * (y2 - y1)
    area_y = (a2 - a1) * (b2 - b1)
    iw = (torch.minimum(x2, a2) - torch.maximum(x1, a1)).clamp(min=0)
    ih = (torch.minimum(y2, b2) - torch.maximum(y1, b1)).clamp(min=0)
    inter = iw * ih
    union = area_x + area_y - inter
    iou = inter / (union + eps)
    # a zero-area box against itself: IoU 1 (losskit's choice; see the README)
    same = (x == y).all(-1) & (union == 0)
    iou = torch.where(same, torch.ones_like(iou), iou)
    cw = torch.maximum(x2, a2) - torch.minimum(x1, a1)
    ch = torch.maximum(y2, b2) - torch.minimum(y1, b1)
    return iou, union, cw, ch


def _finish(loss, weight, reduction, normalizer):
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""IoU loss of box pairs, box i against box i.

    .. math::
        \ell = 1 - \frac{I}{U + \epsilon}

    Args:
        input: predicted boxes ``(..., 4)``.
        target: target boxes ``(..., 4)``.
        box_format: ``"xyxy"`` (default), ``"cxcywh"`` or ``"xywh"``.
        eps: added to the union (default ``1e-7``).
        weight: per-box weight broadcastable to ``(...)``.
        reduction: ``"none"``, ``"mean"`` (default) or ``"sum"``.
        normalizer: with ``"mean"``, divide by this instead.

    Shape:
        input, target ``(..., 4)``; ``reduction="none"`` gives ``(...)``.

    Returns:
        The loss tensor.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> b = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
        >>> round(box_iou_loss(a, b).item(), 4)
        0.6667

    References:
        Yu et al., UnitBox: An Advanced Object Detection Network, 2016.
    """
    x, y = _prologue("box_iou_loss", input, target, box_format, eps, weight, reduction, normalizer)
    iou, _, _, _ = _parts(x, y, eps)
    return _finish(1 - iou, weight, reduction, normalizer)


def generalized_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""Generalized IoU loss: the IoU loss plus the enclosing box's empty share.

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{C - U}{C + \epsilon}

    Args, Shape and Returns as :func:`box_iou_loss`; ``C`` is the area of the smallest
    box enclosing both.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
        >>> round(generalized_box_iou_loss(a, b).item(), 4)
        1.3333

    References:
        Rezatofighi et al., Generalized Intersection over Union, CVPR 2019.
    """
    x, y = _prologue(
        "generalized_box_iou_loss", input, target, box_format, eps, weight, reduction, normalizer
    )
    iou, union, cw, ch = _parts(x, y, eps)
    area_c = cw * ch
    loss = 1 - iou + (area_c - union) / (area_c + eps)
    return _finish(loss, weight, reduction, normalizer)


def _diou(x, y, eps):
    iou, _, cw, ch = _parts(x, y, eps)
    diag2 = cw**2 + ch**2 + eps
    dx = (x[..., 0] + x[..., 2] - y[..., 0] - y[..., 2]) / 2
    dy = (x[..., 1] + x[..., 3] - y[..., 1] - y[..., 3]) / 2
    return 1 - iou + (dx**2 + dy**2) / diag2, iou


def distance_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""Distance IoU loss: the IoU loss plus the squared centre distance over the
    enclosing box's squared diagonal.

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{\rho^2}{c^2 + \epsilon}

    Args, Shape and Returns as :func:`box_iou_loss`.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
        >>> round(distance_box_iou_loss(a, b).item(), 4)
        1.4

    References:
        Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    x, y = _prologue(
        "distance_box_iou_loss", input, target, box_format, eps, weight, reduction, normalizer
    )
    loss, _ = _diou(x, y, eps)
    return _finish(loss, weight, reduction, normalizer)


def _angle(b):
    w = b[..., 2] - b[..., 0]
    h = b[..., 3] - b[..., 1]
    zero = (w == 0) & (h == 0)
    # atan2(w, h) = atan(w / h) for h > 0; finite gradient when w = h = 0 too
    return torch.where(zero, torch.zeros_like(w), torch.atan2(w, torch.where(zero, 1.0, h)))


def complete_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""Complete IoU loss: the distance IoU loss plus an aspect-ratio term.

    .. math::
        v = \frac{4}{\pi^2}\left(\operatorname{atan2}(w_t, h_t)
            - \operatorname{atan2}(w_p, h_p)\right)^2,\quad
        \alpha = \frac{v}{1 - \mathrm{IoU} + v + \epsilon}\ (\text{no gradient}),\quad
        \ell = \ell_{DIoU} + \alpha v

    Args, Shape and Returns as :func:`box_iou_loss`.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 2.0]])
        >>> b = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> round(complete_box_iou_loss(a, b).item(), 4)
        0.5345

    References:
        Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    x, y = _prologue(
        "complete_box_iou_loss", input, target, box_format, eps, weight, reduction, normalizer
    )
    diou, iou = _diou(x, y, eps)
    v = (4 / math.pi**2) * (_angle(y) - _angle(x)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _finish(diou + alpha * v, weight, reduction, normalizer)
