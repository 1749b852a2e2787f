"""Box regression losses by hand, in NumPy float64."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = [
    "box_iou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
]


def _corners(b, fmt, who):
    b = as_array(b)
    if fmt == "cxcywh":
        c = np.stack([b[..., 0] - b[..., 2] / 2, b[..., 1] - b[..., 3] / 2,
                      b[..., 0] + b[..., 2] / 2, b[..., 1] + b[..., 3] / 2], -1)  # fmt: skip
    elif fmt == "xywh":
        c = np.stack([b[..., 0], b[..., 1], b[..., 0] + b[..., 2], b[..., 1] + b[..., 3]], -1)
    else:
        c = b
    return step(f"{who} corners", "(x1, y1, x2, y2)", c)


def _parts(input, target, fmt, eps):
    p = _corners(input, fmt, "predicted")
    t = _corners(target, fmt, "target")
    ap = step(
        "predicted area", "(x2 - x1)(y2 - y1)", (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    )
    at = step(
        "target area", "(x2 - x1)(y2 - y1)", (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    )
    iw = np.clip(np.minimum(p[..., 2], t[..., 2]) - np.maximum(p[..., 0], t[..., 0]), 0, None)
    ih = np.clip(np.minimum(p[..., 3], t[..., 3]) - np.maximum(p[..., 1], t[..., 1]), 0, None)
    inter = step("intersection", "I = max(0, overlap w) * max(0, overlap h)", iw * ih)
    union = step("union", "U = A_p + A_t - I", ap + at - inter)
    same = (p == t).all(-1) & (union == 0)
    iou = step("IoU", "I / (U + eps), 1 for a zero-area box against itself",
               np.where(same, 1.0, inter / (union + eps)))  # fmt: skip
    cw = np.maximum(p[..., 2], t[..., 2]) - np.minimum(p[..., 0], t[..., 0])
    ch = np.maximum(p[..., 3], t[..., 3]) - np.minimum(p[..., 1], t[..., 1])
    cw = step("enclosing box width", "max x2 - min x1", cw)
    ch = step("enclosing box height", "max y2 - min y1", ch)
    return p, t, iou, union, cw, ch


def box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    _, _, iou, _, _, _ = _parts(input, target, box_format, eps)
    loss = step("IoU loss", "1 - IoU", 1 - iou)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def generalized_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    _, _, iou, union, cw, ch = _parts(input, target, box_format, eps)
    c = step("enclosing area", "C = cw * ch", cw * ch)
    pen = step("penalty", "(C - U) / (C + eps)", (c - union) / (c + eps))
    loss = step("GIoU loss", "1 - IoU + penalty", 1 - iou + pen)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _diou(input, target, fmt, eps):
    p, t, iou, _, cw, ch = _parts(input, target, fmt, eps)
    d2 = step("enclosing diagonal squared", "c^2 = cw^2 + ch^2 + eps", cw**2 + ch**2 + eps)
    dx = (p[..., 0] + p[..., 2] - t[..., 0] - t[..., 2]) / 2
    dy = (p[..., 1] + p[..., 3] - t[..., 1] - t[..., 3]) / 2
    rho2 = step("centre distance squared", "rho^2", dx**2 + dy**2)
    pen = step("penalty", "rho^2 / c^2", rho2 / d2)
    return p, t, iou, step("DIoU loss", "1 - IoU + penalty", 1 - iou + pen)


def distance_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    _, _, _, loss = _diou(input, target, box_format, eps)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def complete_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    p, t, iou, diou = _diou(input, target, box_format, eps)
    ap = np.arctan2(p[..., 2] - p[..., 0], p[..., 3] - p[..., 1])
    at = np.arctan2(t[..., 2] - t[..., 0], t[..., 3] - t[..., 1])
    v = step("aspect term", "v = 4/pi^2 (atan2(w_t, h_t) - atan2(w_p, h_p))^2",
             4 / np.pi**2 * (at - ap) ** 2)  # fmt: skip
    alpha = step("alpha", "v / (1 - IoU + v + eps)", v / (1 - iou + v + eps))
    loss = step("CIoU loss", "DIoU loss + alpha v", diou + alpha * v)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)
