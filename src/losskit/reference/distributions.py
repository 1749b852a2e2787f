"""KL divergence, Poisson and Gaussian likelihoods by hand, in NumPy float64.

Example:
    >>> from losskit import reference as R
    >>> round(float(R.gaussian_nll_loss([0.0, 1.0], [0.5, 1.0], [1.0, 1.0])), 4)
    0.0625
"""

from __future__ import annotations

import math

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = ["kl_div", "poisson_nll_loss", "gaussian_nll_loss"]


def _pair(input, target, broadcast, x_name, y_name):
    x = step(x_name[0], x_name[1], as_array(input))
    y = step(y_name[0], y_name[1], as_array(target))
    if broadcast:
        x, y = np.broadcast_arrays(x, y)
    return x, y


def kl_div(input, target, *, reduction="mean", log_target=False, normalizer=None, broadcast=False):
    x, y = _pair(
        input,
        target,
        broadcast,
        ("log-probabilities", "x = log p"),
        ("target log-probabilities", "log q") if log_target else ("target probabilities", "q"),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_target:
            q = step("target probabilities", "q = exp(log q)", np.exp(y))
            logq = y
        else:
            q = y
            logq = step(
                "log of the target", "log q (0 where q = 0)", np.where(q > 0, np.log(q), 0.0)
            )
        loss = step(
            "pointwise KL",
            "q (log q - x), 0 where q = 0 (0 log 0 = 0)",
            np.where(q > 0, q * (logq - x), 0.0),
        )
    if reduction == "batchmean":
        total = step("sum", "sum(loss)", loss.sum())
        n = x.shape[0] if x.ndim else 1
        return step(
            "batch mean",
            f"sum / batch size (N = {n})" if n else "empty batch: 0",
            total / n if n else 0.0,
        )
    return reduce(loss, reduction, normalizer=normalizer, what="pointwise KL")


def poisson_nll_loss(
    input,
    target,
    *,
    log_input=True,
    full=False,
    eps=1e-8,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    x, y = _pair(
        input,
        target,
        broadcast,
        ("log-rate", "x = log lambda") if log_input else ("rate", "x = lambda"),
        ("count", "y"),
    )
    if log_input:
        rate = step("rate", "lambda = exp(x)", np.exp(x))
        loss = step("Poisson NLL", "exp(x) - y x", rate - y * x)
    else:
        loss = step("Poisson NLL", f"x - y log(x + eps) (eps={eps:g})", x - y * np.log(x + eps))
    if full:
        ys = np.where(y > 1, y, 2.0)
        stirling = step(
            "Stirling's term",
            "y log y - y + log(2 pi y) / 2 where y > 1, else 0",
            np.where(y > 1, ys * np.log(ys) - ys + 0.5 * np.log(2 * math.pi * ys), 0.0),
        )
        loss = step("full Poisson NLL", "NLL + Stirling's term", loss + stirling)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer, what="Poisson NLL")


def gaussian_nll_loss(
    input,
    target,
    var,
    *,
    full=False,
    eps=1e-6,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    x, y = _pair(input, target, broadcast, ("mean", "mu (the prediction)"), ("target", "y"))
    v = as_array(var)
    if v.shape != x.shape and v.shape == x.shape[:-1] and x.ndim:
        v = v[..., None]  # one variance per sample, shared along the last dimension
    v = step("variance", "var", np.broadcast_to(v, x.shape))
    v = step("clamped variance", f"max(var, eps) (eps={eps:g})", np.maximum(v, eps))
    sq = step("squared error", "(mu - y)^2", (x - y) ** 2)
    loss = step("Gaussian NLL", "(log var + (mu - y)^2 / var) / 2", 0.5 * (np.log(v) + sq / v))
    if full:
        loss = step("with the constant", "+ log(2 pi) / 2", loss + 0.5 * math.log(2 * math.pi))
    return reduce(loss, reduction, weight=weight, normalizer=normalizer, what="Gaussian NLL")
