"""Multi-label and noise-robust losses by hand, in NumPy float64."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = [
    "asymmetric_loss",
    "poly1_cross_entropy",
    "poly1_focal_loss",
    "generalized_cross_entropy",
]


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _sigmoid_steps(input, target, ignore_index):
    x = step("logit", "x", as_array(input))
    y = step("target", "y", as_array(target))
    mask = None
    if ignore_index is not None:
        mask = y != ignore_index
        y = np.where(mask, y, 0.0)
        x = np.where(mask, x, 0.0)
    return x, y, mask


def asymmetric_loss(
    input,
    target,
    *,
    gamma_pos=0.0,
    gamma_neg=4.0,
    clip=0.05,
    weight=None,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
):
    x, y, mask = _sigmoid_steps(input, target, ignore_index)
    p = step("probability", "p = sigmoid(x)", np.exp(_log_sigmoid(x)))
    log_p = step("log p", "log sigmoid(x)", _log_sigmoid(x))
    pos = step(
        "positive term",
        f"(1 - p)^gamma_pos log p (gamma_pos={gamma_pos})",
        np.exp(gamma_pos * _log_sigmoid(-x)) * log_p,
    )
    p_m = step(
        "shifted probability", f"p_m = max(p - clip, 0) (clip={clip})", np.maximum(p - clip, 0)
    )
    # 1 - p_m = min(1 - p + clip, 1), with 1 - p = sigmoid(-x) exact in both tails
    one_minus = np.minimum(np.exp(_log_sigmoid(-x)) + clip, 1.0)
    with np.errstate(divide="ignore"):
        log_1m = _log_sigmoid(-x) if clip == 0 else np.log(one_minus)
    log_1m = step("log(1 - p_m)", "log min(1 - p + clip, 1)", log_1m)
    factor = p_m**gamma_neg if gamma_neg else np.ones_like(p_m)
    neg = step(
        "negative term", f"p_m^gamma_neg log(1 - p_m) (gamma_neg={gamma_neg})", factor * log_1m
    )
    loss = step("asymmetric loss", "-(y pos + (1 - y) neg)", -(y * pos + (1 - y) * neg))
    return reduce(loss, reduction, weight=weight, mask=mask, normalizer=normalizer)


def poly1_focal_loss(
    input,
    target,
    *,
    epsilon=1.0,
    alpha=0.25,
    gamma=2.0,
    weight=None,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
):
    x, y, mask = _sigmoid_steps(input, target, ignore_index)
    p = step("probability", "p = sigmoid(x)", np.exp(_log_sigmoid(x)))
    ce = step(
        "BCE",
        "-(y log p + (1 - y) log(1 - p))",
        -(y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x)),
    )
    # 1 - p_t from the two tails, exact where p is within rounding of 0 or 1
    one_minus_pt = step(
        "1 - p_t", "y (1 - p) + (1 - y) p", y * np.exp(_log_sigmoid(-x)) + (1 - y) * p
    )
    focal = step("focal", f"(1 - p_t)^gamma BCE (gamma={gamma})", one_minus_pt**gamma * ce)
    if alpha is not None and alpha >= 0:
        focal = step(
            "focal with alpha",
            f"(alpha y + (1 - alpha)(1 - y)) focal (alpha={alpha})",
            (alpha * y + (1 - alpha) * (1 - y)) * focal,
        )
    loss = step(
        "poly-1 focal",
        f"focal + epsilon (1 - p_t)^(gamma + 1) (epsilon={epsilon})",
        focal + epsilon * one_minus_pt ** (gamma + 1),
    )
    return reduce(loss, reduction, weight=weight, mask=mask, normalizer=normalizer)


def _scores(input):
    x = as_array(input)
    cd = 0 if x.ndim == 1 else 1
    return step("logits", "x, one row of class scores per sample", np.moveaxis(x, cd, -1)), cd


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return step(
        "log-probabilities",
        "log p = x - logsumexp(x)",
        x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True))),
    )


def _is_index(target, shape, target_type):
    if target_type != "auto":
        return target_type == "index"
    t = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target)
    return not np.issubdtype(t.dtype, np.floating) or t.shape != shape


def poly1_cross_entropy(
    input,
    target,
    *,
    epsilon=1.0,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    target_type="auto",
    reduction="mean",
    normalizer=None,
):
    x, cd = _scores(input)
    c = x.shape[-1]
    logp = _log_softmax(x)
    p = np.exp(logp)
    w = np.ones(c) if weight is None else as_array(weight)
    ls = label_smoothing
    if _is_index(target, np.moveaxis(x, -1, cd).shape, target_type):
        t = as_array(target, np.int64)
        counted = t != ignore_index
        t = np.where(counted, t, 0)
        q = np.eye(c)[t]
        w_i = step("class weight of each sample", "w[y]", w[t])
        mask = counted
    else:
        q = step("target probabilities", "q", np.moveaxis(as_array(target), cd, -1))
        w_i = step("weight of each sample", "sum_c w_c q_c", (w * q).sum(-1))
        mask = None
    if ls:
        q_s = step("smoothed target", f"q (1 - ls) + ls / C (ls={ls})", q * (1 - ls) + ls / c)
    else:
        q_s = q
    ce = step("cross entropy", "-sum_c w_c q_c log p_c", -(w * q_s * logp).sum(-1))
    p_t = step("p_t", "sum_c q_c p_c", (q_s * p).sum(-1))
    per = step(
        "poly-1 cross entropy",
        f"CE + epsilon w (1 - p_t) (epsilon={epsilon})",
        ce + epsilon * w_i * (1 - p_t),
    )
    if z_loss:
        m = x.max(-1)
        lse = m + np.log(np.exp(x - m[..., None]).sum(-1))
        per = step("z-loss added", f"loss + z logsumexp(x)^2 (z={z_loss})", per + z_loss * lse**2)
    return reduce(per, reduction, weight=w_i, mask=mask, normalizer=normalizer, weight_applied=True)


def generalized_cross_entropy(
    input,
    target,
    *,
    q=0.7,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    x, _ = _scores(input)
    logp = _log_softmax(x)
    w = np.ones(x.shape[-1]) if weight is None else as_array(weight)
    t = as_array(target, np.int64)
    counted = t != ignore_index
    t = np.where(counted, t, 0)
    p_y = step(
        "probability of the target class",
        "p[y]",
        np.exp(np.take_along_axis(logp, t[..., None], axis=-1)[..., 0]),
    )
    if q == 0:
        per = step("GCE", "q = 0: the limit, -log p[y]", -np.log(p_y))
    else:
        per = step("GCE", f"(1 - p[y]^q) / q (q={q})", (1 - p_y**q) / q)
    w_y = step("class weight of each sample", "w[y]", w[t])
    per = step("weighted GCE", "w[y] GCE", w_y * per)
    return reduce(
        per, reduction, weight=w_y, mask=counted, normalizer=normalizer, weight_applied=True
    )
