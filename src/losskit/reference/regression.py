"""Regression losses by hand, in NumPy float64."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = [
    "l1_loss",
    "mae_loss",
    "mse_loss",
    "rmse_loss",
    "smooth_l1_loss",
    "huber_loss",
    "pseudo_huber_loss",
    "log_cosh_loss",
    "quantile_loss",
]


def _residual(input, target, broadcast=False):
    x = step("prediction", "x", as_array(input))
    y = step("target", "y", as_array(target))
    if broadcast:
        x, y = np.broadcast_arrays(x, y)
    return step("residual", "r = x - y", x - y)


def l1_loss(input, target, *, weight=None, reduction="mean", normalizer=None, broadcast=False):
    r = _residual(input, target, broadcast)
    loss = step("absolute error", "|r|", np.abs(r))
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


mae_loss = l1_loss


def mse_loss(input, target, *, weight=None, reduction="mean", normalizer=None, broadcast=False):
    r = _residual(input, target, broadcast)
    loss = step("squared error", "r^2", r**2)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def rmse_loss(input, target, *, weight=None, reduction="mean", normalizer=None, broadcast=False):
    r = _residual(input, target, broadcast)
    sq = step("squared error", "r^2", r**2)
    if reduction == "mean":
        mse = reduce(sq, "mean", weight=weight, normalizer=normalizer, what="r^2")
        return step("root", "sqrt(mean of r^2)", np.sqrt(mse))
    w = np.ones_like(sq) if weight is None else np.broadcast_to(as_array(weight), sq.shape)
    axes = tuple(range(1, sq.ndim))
    num = step(
        "weighted sum per sample",
        "sum over all dims but the first of w * r^2",
        (w * sq).sum(axis=axes),
    )
    den = step("sum of weights per sample", "sum of w per sample", w.sum(axis=axes))
    per_sample = step(
        "RMSE per sample",
        "sqrt(sum / sum of weights)",
        np.sqrt(np.divide(num, den, out=np.zeros_like(num), where=den != 0)),
    )
    if reduction == "none":
        return per_sample
    return step("sum", "sum of the per-sample RMSEs", per_sample.sum())


def smooth_l1_loss(
    input, target, *, beta=1.0, weight=None, reduction="mean", normalizer=None, broadcast=False
):
    r = _residual(input, target, broadcast)
    a = step("absolute error", "|r|", np.abs(r))
    if beta == 0:
        loss = a
    else:
        loss = step(
            "smooth L1",
            f"0.5 r^2 / beta if |r| < beta else |r| - 0.5 beta (beta={beta})",
            np.where(a < beta, 0.5 * r**2 / beta, a - 0.5 * beta),
        )
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def huber_loss(
    input, target, *, delta=1.0, weight=None, reduction="mean", normalizer=None, broadcast=False
):
    r = _residual(input, target, broadcast)
    a = step("absolute error", "|r|", np.abs(r))
    loss = step(
        "Huber",
        f"0.5 r^2 if |r| <= delta else delta (|r| - 0.5 delta) (delta={delta})",
        np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)),
    )
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def pseudo_huber_loss(
    input, target, *, delta=1.0, weight=None, reduction="mean", normalizer=None, broadcast=False
):
    r = _residual(input, target, broadcast)
    root = step("root", f"sqrt(1 + (r / delta)^2) (delta={delta})", np.sqrt(1 + (r / delta) ** 2))
    loss = step("pseudo-Huber", "delta^2 (root - 1)", delta**2 * (root - 1))
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def log_cosh_loss(
    input, target, *, weight=None, reduction="mean", normalizer=None, broadcast=False
):
    r = _residual(input, target, broadcast)
    a = np.abs(r)
    # log(cosh(r)) written so that cosh never overflows: |r| + log(1 + e^(-2|r|)) - log 2
    loss = step(
        "log cosh", "|r| + log(1 + exp(-2|r|)) - log(2)", a + np.log1p(np.exp(-2 * a)) - np.log(2.0)
    )
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def quantile_loss(
    input, target, *, quantile=0.5, weight=None, reduction="mean", normalizer=None, broadcast=False
):
    x = step("prediction", "x", as_array(input))
    y = step("target", "y", as_array(target))
    if broadcast:
        x, y = np.broadcast_arrays(x, y)
    r = step("residual", "r = y - x", y - x)
    q = quantile
    loss = step("pinball", f"max(q r, (q - 1) r) (q={q})", np.maximum(q * r, (q - 1) * r))
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)
