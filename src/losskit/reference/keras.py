"""Keras 3's loss forms by hand, in NumPy float64: each sample's loss over its last axis,
then losskit's reduction of the per-sample values (weights per sample)."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = [
    "mean_absolute_percentage_error",
    "mape_loss",
    "mean_squared_logarithmic_error",
    "msle_loss",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity_loss",
    "poisson_loss",
]

KERAS_EPSILON = 1e-7
_WHAT = "per-sample loss"


def _pair(input, target, broadcast=False):
    x = step("prediction", "x", as_array(input))
    y = step("target", "y", as_array(target))
    if broadcast:
        x, y = np.broadcast_arrays(x, y)
    return x, y


def _mean_last(loss, what):
    n = loss.shape[-1]
    total = loss.sum(axis=-1)
    return step(
        "mean over the last axis",
        f"(1/D) sum_j {what}, D = {n}: one value per sample",
        total / n if n else total,
    )


def _reduce(per_sample, reduction, weight, normalizer):
    return reduce(per_sample, reduction, weight=weight, normalizer=normalizer, what=_WHAT)


def mean_absolute_percentage_error(
    input,
    target,
    *,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    x, y = _pair(input, target, broadcast)
    den = step("floored |target|", f"max(|y|, eps) (eps={eps:g})", np.maximum(np.abs(y), eps))
    ratio = step("relative error", "|y - x| / max(|y|, eps)", np.abs(y - x) / den)
    per_sample = step(
        "percentage per sample", "100 * mean over the last axis", 100.0 * _mean_last(ratio, "ratio")
    )
    return _reduce(per_sample, reduction, weight, normalizer)


mape_loss = mean_absolute_percentage_error


def mean_squared_logarithmic_error(
    input,
    target,
    *,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    x, y = _pair(input, target, broadcast)
    lx = step(
        "log of the prediction", f"log(max(x, eps) + 1) (eps={eps:g})", np.log1p(np.maximum(x, eps))
    )
    ly = step("log of the target", "log(max(y, eps) + 1)", np.log1p(np.maximum(y, eps)))
    sq = step("squared log error", "(log x' - log y')^2", (lx - ly) ** 2)
    return _reduce(_mean_last(sq, "squared log error"), reduction, weight, normalizer)


msle_loss = mean_squared_logarithmic_error


def cosine_similarity_loss(
    input,
    target,
    *,
    dim=-1,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    x, y = _pair(input, target, broadcast)
    nx = step("norm of each prediction", f"||x|| along dim {dim}", np.sqrt((x**2).sum(axis=dim)))
    ny = step("norm of each target", f"||y|| along dim {dim}", np.sqrt((y**2).sum(axis=dim)))
    xn = step(
        "prediction normalised",
        f"x / max(||x||, eps) (eps={eps:g})",
        x / np.expand_dims(np.maximum(nx, eps), dim),
    )
    yn = step(
        "target normalised", "y / max(||y||, eps)", y / np.expand_dims(np.maximum(ny, eps), dim)
    )
    per_sample = step(
        "negative cosine similarity",
        f"-sum(x_n * y_n) along dim {dim}: one value per sample",
        -(xn * yn).sum(axis=dim),
    )
    return _reduce(per_sample, reduction, weight, normalizer)


def poisson_loss(
    input,
    target,
    *,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    x, y = _pair(input, target, broadcast)
    log_rate = step("log of the rate", f"log(x + eps) (eps={eps:g})", np.log(x + eps))
    loss = step("Poisson term", "x - y log(x + eps)", x - y * log_rate)
    return _reduce(_mean_last(loss, "Poisson term"), reduction, weight, normalizer)


def _margin(input, target):
    x, y = _pair(input, target)
    if np.all((y == 0) | (y == 1)):
        y = step("labels in {-1, 1}", "2y - 1 (every target is 0 or 1: Keras converts)", 2 * y - 1)
    margin = step("margin", "1 - y x", 1.0 - y * x)
    return step("hinge", "max(1 - y x, 0)", np.maximum(margin, 0.0))


def hinge(input, target, *, weight=None, reduction="mean", normalizer=None):
    h = _margin(input, target)
    return _reduce(_mean_last(h, "hinge"), reduction, weight, normalizer)


def squared_hinge(input, target, *, weight=None, reduction="mean", normalizer=None):
    h = _margin(input, target)
    sq = step("squared hinge", "max(1 - y x, 0)^2", h**2)
    return _reduce(_mean_last(sq, "squared hinge"), reduction, weight, normalizer)


def categorical_hinge(input, target, *, weight=None, reduction="mean", normalizer=None):
    x, y = _pair(input, target)
    pos = step("score of the target", "pos = sum_j y_j x_j", (y * x).sum(axis=-1))
    neg = step("best other score", "neg = max_j (1 - y_j) x_j", ((1.0 - y) * x).max(axis=-1))
    per_sample = step(
        "categorical hinge", "max(neg - pos + 1, 0) per sample", np.maximum(neg - pos + 1.0, 0.0)
    )
    return _reduce(per_sample, reduction, weight, normalizer)
