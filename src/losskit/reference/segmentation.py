"""Segmentation overlap losses by hand, in NumPy float64: probabilities, the one-hot target,
the per-class sums of each image (or of the batch), the scores, the loss of each
(image, class) and the mean. Maps are kept as ``(N, C, pixels)``."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = [
    "dice_loss",
    "jaccard_loss",
    "iou_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
]


def _integer(t) -> bool:
    if hasattr(t, "is_floating_point"):
        return not t.is_floating_point()
    return not np.issubdtype(np.asarray(t).dtype, np.floating)


def _maps(input, target, mode, from_logits, ignore_index):
    """``(p, g)`` as ``(N, C, pixels)``, ignored pixels 0 in both, with their steps."""
    x = as_array(input)
    n = x.shape[0]
    c = 1 if mode == "binary" else x.shape[1]
    pixels = int(np.prod(x.shape[1:] if mode == "binary" else x.shape[2:]))
    x = x.reshape(n, c, pixels)
    index = mode == "multiclass" and _integer(target)
    if index:
        t = as_array(target, np.int64).reshape(n, pixels)
        counted = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
        counted = counted[:, None, :]
    else:
        t = as_array(target).reshape(n, c, pixels)
        counted = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    if not from_logits:
        p = step("probabilities", "given (from_logits=False)", x)
    else:
        step("logits", "x per (image, class, pixel)", x)
        x = np.where(counted, x, 0.0)  # an ignored pixel's logits are never used
        if mode == "multiclass":
            e = np.exp(x - x.max(axis=1, keepdims=True)) if x.size else x
            p = e / e.sum(1, keepdims=True)
            p = step("probabilities", "p = softmax(x) over the classes", p)
        else:
            p = step("probabilities", "p = sigmoid(x) = 1 / (1 + exp(-x))", 1 / (1 + np.exp(-x)))
    if index:
        g = (t[:, None, :] == np.arange(c)[None, :, None]).astype(np.float64)
        g = step("one-hot target", "g[n, c, pixel] = 1 where target[n, pixel] == c", g)
    else:
        g = step("target", "g, a mask or probability per (image, class, pixel)", t)
    if ignore_index is not None:
        counted = step(
            "counted pixels", f"1 where target != ignore_index={ignore_index}", counted
        ).astype(bool)
        p = step("ignored pixels dropped", "p where counted, else 0", np.where(counted, p, 0.0))
        g = np.where(counted, g, 0.0)
    return p, g


def _sum(name, formula, a, per_image):
    where = "over the pixels of each image" if per_image else "over the batch's pixels"
    return step(name, f"{formula}, {where}", a.sum(axis=-1) if per_image else a.sum(axis=(0, 2)))


def _overlap(input, target, mode, from_logits, ignore_index, per_image, squared=False):
    """The sums ``I = sum p g``, ``P = sum p``, ``G = sum g`` (``sum p^2``, ``sum g^2``
    with ``squared``) of each (image, class), or of each class over the batch."""
    p, g = _maps(input, target, mode, from_logits, ignore_index)
    i = _sum("intersection I", "sum of p * g", p * g, per_image)
    if squared:
        pp = _sum("predicted P", "sum of p^2", p * p, per_image)
        gg = _sum("target G", "sum of g^2", g * g, per_image)
    else:
        pp = _sum("predicted P", "sum of p", p, per_image)
        gg = _sum("target G", "sum of g", g, per_image)
    return i, pp, gg


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def _loss(score, log_loss):
    if log_loss:
        floor = np.finfo(np.float64).eps
        return step(
            "loss of each (image, class)",
            "-log(max(score, eps))",
            -np.log(np.maximum(score, floor)),
        )
    return step("loss of each (image, class)", "1 - score", 1.0 - score)


def _finish(loss, weight, include_background, reduction, normalizer):
    w = None if weight is None else as_array(weight)
    if not include_background:
        loss = step("background dropped", "the classes 1..C-1", loss[..., 1:])
        w = None if w is None else w[1:]
    return reduce(loss, reduction, weight=w, normalizer=normalizer)


def dice_loss(
    input,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    per_image=True,
    squared=False,
    smooth=0.0,
    log_loss=False,
    weight=None,
    ignore_index=None,
    include_background=True,
    group=None,
    reduction="mean",
    normalizer=None,
):
    i, pp, gg = _overlap(input, target, mode, from_logits, ignore_index, per_image, squared)
    s = float(smooth)
    score = step(
        "Dice score",
        f"(2 I + {s:g}) / (P + G + {s:g}); 1 where all are 0",
        _ratio(2 * i + s, pp + gg + s),
    )
    return _finish(_loss(score, log_loss), weight, include_background, reduction, normalizer)


def jaccard_loss(
    input,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    per_image=True,
    squared=False,
    smooth=0.0,
    log_loss=False,
    weight=None,
    ignore_index=None,
    include_background=True,
    group=None,
    reduction="mean",
    normalizer=None,
):
    i, pp, gg = _overlap(input, target, mode, from_logits, ignore_index, per_image, squared)
    s = float(smooth)
    score = step(
        "Jaccard score (IoU)",
        f"(I + {s:g}) / (P + G - I + {s:g}); 1 where all are 0",
        _ratio(i + s, pp + gg - i + s),
    )
    return _finish(_loss(score, log_loss), weight, include_background, reduction, normalizer)


def _tversky(input, target, mode, from_logits, ignore_index, per_image, alpha, beta, smooth):
    p, g = _maps(input, target, mode, from_logits, ignore_index)
    i = _sum("true positives I", "sum of p * g", p * g, per_image)
    fp = _sum("false positives FP", "sum of p * (1 - g)", p * (1 - g), per_image)
    fn = _sum("false negatives FN", "sum of (1 - p) * g", (1 - p) * g, per_image)
    a, b, s = float(alpha), float(beta), float(smooth)
    return step(
        "Tversky index",
        f"(I + {s:g}) / (I + {a:g} FP + {b:g} FN + {s:g}); 1 where all are 0",
        _ratio(i + s, i + a * fp + b * fn + s),
    )


def tversky_loss(
    input,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    per_image=True,
    alpha=0.5,
    beta=0.5,
    smooth=0.0,
    log_loss=False,
    weight=None,
    ignore_index=None,
    include_background=True,
    group=None,
    reduction="mean",
    normalizer=None,
):
    score = _tversky(input, target, mode, from_logits, ignore_index, per_image, alpha, beta, smooth)
    return _finish(_loss(score, log_loss), weight, include_background, reduction, normalizer)


def focal_tversky_loss(
    input,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    per_image=True,
    alpha=0.5,
    beta=0.5,
    gamma=0.75,
    smooth=0.0,
    weight=None,
    ignore_index=None,
    include_background=True,
    group=None,
    reduction="mean",
    normalizer=None,
):
    score = _tversky(input, target, mode, from_logits, ignore_index, per_image, alpha, beta, smooth)
    base = np.maximum(1.0 - score, 0.0)
    loss = step("loss of each (image, class)", f"(1 - T)^{float(gamma):g}", base ** float(gamma))
    return _finish(loss, weight, include_background, reduction, normalizer)


def generalized_dice_loss(
    input,
    target,
    *,
    mode="multiclass",
    from_logits=True,
    per_image=True,
    weight_type="square",
    smooth=0.0,
    ignore_index=None,
    include_background=True,
    group=None,
    reduction="mean",
    normalizer=None,
):
    i, pp, gg = _overlap(input, target, mode, from_logits, ignore_index, per_image)
    if not include_background:
        i, pp, gg = (
            step(f"{k}, background dropped", "classes 1..C-1", v[..., 1:])
            for k, v in (("I", i), ("P", pp), ("G", gg))
        )
    if weight_type == "uniform":
        w = np.ones_like(gg)
    else:
        power = 2 if weight_type == "square" else 1
        with np.errstate(divide="ignore", over="ignore"):
            w = 1.0 / gg**power
    absent = ~np.isfinite(w)
    w = np.where(absent, 0.0, w)
    top = w.max(axis=-1, keepdims=True) if w.shape[-1] else w
    formula = {"square": "1 / G^2", "simple": "1 / G", "uniform": "1"}[weight_type]
    w = step(
        "class weights w",
        f"{formula}; an absent class (G = 0) takes the largest weight of the others",
        np.where(absent, np.broadcast_to(top, w.shape), w),
    )
    s = float(smooth)
    num = step("weighted intersection", f"2 sum_c w I + {s:g}", 2 * (w * i).sum(-1) + s)
    den = step("weighted volume", f"sum_c w (P + G) + {s:g}", (w * (pp + gg)).sum(-1) + s)
    score = step(
        "generalized Dice score", "numerator / denominator; 1 where both are 0", _ratio(num, den)
    )
    loss = step("loss of each image" if per_image else "loss", "1 - score", 1.0 - score)
    return reduce(loss, reduction, normalizer=normalizer)


iou_loss = jaccard_loss
