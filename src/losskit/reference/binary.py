"""Binary losses by hand, in NumPy float64."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "sigmoid_focal_loss"]


def _log_sigmoid(x):
    # log(sigmoid(x)) = -log(1 + exp(-x)), written stably for both signs
    return -np.logaddexp(0.0, -x)


def binary_cross_entropy(input, target, *, weight=None, reduction="mean", normalizer=None):
    p = step("probability", "p", as_array(input))
    y = step("target", "y", as_array(target))
    with np.errstate(divide="ignore"):
        log_p = step("log p, clamped at -100", "max(log p, -100)", np.maximum(np.log(p), -100))
        log_q = step(
            "log(1 - p), clamped at -100", "max(log(1 - p), -100)", np.maximum(np.log1p(-p), -100)
        )
    loss = step("BCE", "-(y log p + (1 - y) log(1 - p))", -(y * log_p + (1 - y) * log_q))
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _bce_logits_steps(input, target, pos_weight, label_smoothing, ignore_index):
    x = step("logit", "x", as_array(input))
    y = step("target", "y", as_array(target))
    mask = None
    if ignore_index is not None:
        mask = y != ignore_index
        y = np.where(mask, y, 0.0)
    if label_smoothing:
        ls = label_smoothing
        y = step("smoothed target", f"y (1 - ls) + ls / 2 (ls={ls})", y * (1 - ls) + ls / 2)
    log_p = step("log sigmoid(x)", "log p = -log(1 + exp(-x))", _log_sigmoid(x))
    log_q = step("log(1 - sigmoid(x))", "log(1 - p) = log sigmoid(-x)", _log_sigmoid(-x))
    pw = 1.0 if pos_weight is None else as_array(pos_weight)
    if pos_weight is None:
        ce = step("BCE", "-(y log p + (1 - y) log(1 - p))", -(y * log_p + (1 - y) * log_q))
    else:
        ce = step(
            "BCE with pos_weight",
            "-(pos_weight y log p + (1 - y) log(1 - p))",
            -(pw * y * log_p + (1 - y) * log_q),
        )
    return x, y, ce, mask


def binary_cross_entropy_with_logits(
    input,
    target,
    *,
    weight=None,
    pos_weight=None,
    label_smoothing=0.0,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
):
    _, _, ce, mask = _bce_logits_steps(input, target, pos_weight, label_smoothing, ignore_index)
    return reduce(ce, reduction, weight=weight, mask=mask, normalizer=normalizer)


def sigmoid_focal_loss(
    input,
    target,
    *,
    alpha=0.25,
    gamma=2.0,
    weight=None,
    pos_weight=None,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
):
    x, y, ce, mask = _bce_logits_steps(input, target, pos_weight, 0.0, ignore_index)
    p = step("probability", "p = sigmoid(x)", np.exp(_log_sigmoid(x)))
    p_t = step("p_t", "p y + (1 - p)(1 - y)", p * y + (1 - p) * (1 - y))
    # (1 - p_t) from the two tails, exact where p is within rounding of 0 or 1
    one_minus_pt = y * np.exp(_log_sigmoid(-x)) + (1 - y) * p
    factor = step(
        "focal factor",
        f"(1 - p_t)^gamma (gamma={gamma})",
        one_minus_pt**gamma if gamma else np.ones_like(p_t),
    )
    loss = step("focal", "factor * BCE", factor * ce)
    if alpha is not None and alpha >= 0:
        a_t = step(
            "alpha_t",
            f"alpha y + (1 - alpha)(1 - y) (alpha={alpha})",
            alpha * y + (1 - alpha) * (1 - y),
        )
        loss = step("focal with alpha", "alpha_t * factor * BCE", a_t * loss)
    return reduce(loss, reduction, weight=weight, mask=mask, normalizer=normalizer)
