"""Multi-class losses by hand, in NumPy float64. The class dimension is moved last so
that each row reads as one sample's scores."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step
from .binary import sigmoid_focal_loss

__all__ = [
    "cross_entropy",
    "nll_loss",
    "softmax_focal_loss",
    "symmetric_cross_entropy",
    "reverse_cross_entropy",
    "categorical_cross_entropy",
    "detection_focal_loss",
    "top_k_accuracy",
    "in_top_k",
]


def _scores(input, name="logits"):
    x = as_array(input)
    cd = 0 if x.ndim == 1 else 1
    return step(name, "x, one row of class scores per sample", np.moveaxis(x, cd, -1)), cd


def _softmax_steps(x):
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    p = step("softmax of each row", "p = exp(x) / sum(exp(x))", e / e.sum(-1, keepdims=True))
    lse = m + np.log(e.sum(-1, keepdims=True))
    logp = step("log-probabilities", "log p = x - logsumexp(x)", x - lse)
    return p, logp, lse[..., 0]


def _is_index(target, x, target_type):
    if target_type != "auto":
        return target_type == "index"
    t = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target)
    return not np.issubdtype(t.dtype, np.floating) or t.shape != x.shape


def _index_target(target, ignore_index):
    t = as_array(target, np.int64)
    counted = t != ignore_index if ignore_index is not None else np.ones(t.shape, bool)
    return np.where(counted, t, 0), counted


def _take(a, t):
    return np.take_along_axis(a, t[..., None], axis=-1)[..., 0]


def _class_weight(weight, c):
    return np.ones(c) if weight is None else as_array(weight)


def _probs_target(target, cd):
    return step("target probabilities", "q", np.moveaxis(as_array(target), cd, -1))


def cross_entropy(
    input,
    target,
    *,
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
    _, logp, lse = _softmax_steps(x)
    w = _class_weight(weight, c)
    ls = label_smoothing
    if _is_index(target, np.moveaxis(x, -1, cd), target_type):
        t, counted = _index_target(target, ignore_index)
        logp_y = step("log-probability of the target class", "log p[y]", _take(logp, t))
        w_y = step("class weight of each sample", "w[y]", w[t])
        per = step("weighted NLL", "-w[y] log p[y]", -w_y * logp_y)
        if ls:
            spread = step("smoothing term", "sum_c w_c (-log p_c)", -(w * logp).sum(-1))
            per = step(
                "smoothed loss",
                f"(1 - ls) NLL + ls / C * smoothing term (ls={ls})",
                (1 - ls) * per + ls / c * spread,
            )
        mask, den = counted, w_y
    else:
        q = _probs_target(target, cd)
        qs = q * (1 - ls) + ls / c if ls else q
        per = step("cross entropy of each row", "-sum_c w_c q_c log p_c", -(w * qs * logp).sum(-1))
        mask, den = None, (w * q).sum(-1) if weight is not None else np.ones(per.shape)
    if z_loss:
        per = step("z-loss added", f"loss + z logsumexp(x)^2 (z={z_loss})", per + z_loss * lse**2)
    return reduce(per, reduction, weight=den, mask=mask, normalizer=normalizer, weight_applied=True)


def nll_loss(input, target, *, weight=None, ignore_index=-100, reduction="mean", normalizer=None):
    logp, _ = _scores(input, "log-probabilities")
    w = _class_weight(weight, logp.shape[-1])
    t, counted = _index_target(target, ignore_index)
    logp_y = step("log-probability of the target class", "log p[y]", _take(logp, t))
    w_y = step("class weight of each sample", "w[y]", w[t])
    per = step("weighted NLL", "-w[y] log p[y]", -w_y * logp_y)
    return reduce(
        per, reduction, weight=w_y, mask=counted, normalizer=normalizer, weight_applied=True
    )


def softmax_focal_loss(
    input,
    target,
    *,
    gamma=2.0,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    target_type="auto",
    reduction="mean",
    normalizer=None,
):
    x, cd = _scores(input)
    c = x.shape[-1]
    p, logp, _ = _softmax_steps(x)
    w = _class_weight(weight, c)
    ls = label_smoothing
    factor = step("focal factor", f"(1 - p)^gamma (gamma={gamma})", (1 - p) ** gamma)
    fce = step("focal cross entropy per class", "-(1 - p)^gamma log p", -factor * logp)
    if _is_index(target, np.moveaxis(x, -1, cd), target_type):
        t, counted = _index_target(target, ignore_index)
        w_y = step("class weight of each sample", "w[y]", w[t])
        per = step("focal loss of the target class", "w[y] * focal[y]", w_y * _take(fce, t))
        if ls:
            per = step(
                "smoothed focal loss",
                f"(1 - ls) loss + ls / C sum_c w_c focal_c (ls={ls})",
                (1 - ls) * per + ls / c * (w * fce).sum(-1),
            )
        mask, den = counted, w_y
    else:
        q = _probs_target(target, cd)
        qs = q * (1 - ls) + ls / c if ls else q
        per = step("focal loss of each row", "sum_c w_c q_c focal_c", (w * qs * fce).sum(-1))
        mask, den = None, (w * q).sum(-1) if weight is not None else np.ones(per.shape)
    return reduce(per, reduction, weight=den, mask=mask, normalizer=normalizer, weight_applied=True)


def _rce_steps(x, cd, target, log_zero, weight, ignore_index, target_type):
    c = x.shape[-1]
    p, logp, _ = _softmax_steps(x)
    w = _class_weight(weight, c)
    if _is_index(target, np.moveaxis(x, -1, cd), target_type):
        t, counted = _index_target(target, ignore_index)
        w_y = step("class weight of each sample", "w[y]", w[t])
        p_y = step("probability of the target class", "p[y]", _take(p, t))
        rce = step(
            "reverse cross entropy",
            f"-A (1 - p[y]) (A = log_zero = {log_zero})",
            -log_zero * (1 - p_y),
        )
        return p, logp, rce * w_y, counted, w_y, t
    q = _probs_target(target, cd)
    with np.errstate(divide="ignore"):
        log_q = step(
            "log of the target", f"log q, with log 0 := {log_zero}", np.maximum(np.log(q), log_zero)
        )
    rce = step("reverse cross entropy", "-sum_k p_k log q_k", -(p * log_q).sum(-1))
    den = (w * q).sum(-1) if weight is not None else np.ones(rce.shape)
    return p, logp, rce * den, None, den, None


def reverse_cross_entropy(
    input,
    target,
    *,
    log_zero=-4.0,
    weight=None,
    ignore_index=-100,
    target_type="auto",
    reduction="mean",
    normalizer=None,
):
    x, cd = _scores(input)
    _, _, per, mask, den, _ = _rce_steps(x, cd, target, log_zero, weight, ignore_index, target_type)
    return reduce(per, reduction, weight=den, mask=mask, normalizer=normalizer, weight_applied=True)


def symmetric_cross_entropy(
    input,
    target,
    *,
    alpha=1.0,
    beta=1.0,
    log_zero=-4.0,
    weight=None,
    ignore_index=-100,
    target_type="auto",
    reduction="mean",
    normalizer=None,
):
    x, cd = _scores(input)
    _, logp, rce, mask, den, t = _rce_steps(
        x, cd, target, log_zero, weight, ignore_index, target_type
    )
    w = _class_weight(weight, x.shape[-1])
    if t is not None:
        ce = step("cross entropy", "-w[y] log p[y]", -w[t] * _take(logp, t))
    else:
        q = _probs_target(target, cd)
        ce = step("cross entropy", "-sum_c w_c q_c log p_c", -(w * q * logp).sum(-1))
    per = step(
        "symmetric cross entropy",
        f"alpha CE + beta RCE (alpha={alpha}, beta={beta})",
        alpha * ce + beta * rce,
    )
    return reduce(per, reduction, weight=den, mask=mask, normalizer=normalizer, weight_applied=True)


def categorical_cross_entropy(
    input,
    target,
    *,
    from_logits=False,
    label_smoothing=0.0,
    dim=-1,
    eps=1e-7,
    reduction="mean",
    normalizer=None,
):
    x = np.moveaxis(as_array(input), dim, -1)
    q = step("target", "q (one-hot or probabilities)", np.moveaxis(as_array(target), dim, -1))
    c = x.shape[-1]
    if from_logits:
        _, logp, _ = _softmax_steps(step("logits", "x", x))
    else:
        p = step(
            "rows rescaled to sum to 1",
            "p = x / sum(x)",
            x / np.maximum(x.sum(-1, keepdims=True), eps),
        )
        p = step("clipped", f"clip(p, eps, 1 - eps) (eps={eps})", np.clip(p, eps, 1 - eps))
        logp = step("log-probabilities", "log p", np.log(p))
    if label_smoothing:
        ls = label_smoothing
        q = step("smoothed target", f"q (1 - ls) + ls / C (ls={ls})", q * (1 - ls) + ls / c)
    per = step("cross entropy of each row", "-sum_c q_c log p_c", -(q * logp).sum(-1))
    return reduce(per, reduction, normalizer=normalizer)


def detection_focal_loss(
    input, target, anchor_state, *, alpha=0.25, gamma=2.0, reduction="mean", normalizer=None
):
    s = step("anchor state", "-1 ignored, 0 background, 1 object", as_array(anchor_state))
    y = step(
        "class targets",
        "one-hot classes for object anchors, 0 for background",
        as_array(target) * (s == 1)[..., None],
    )
    per = sigmoid_focal_loss(input, y, alpha=alpha, gamma=gamma, reduction="none")
    mask = np.broadcast_to((s != -1)[..., None], per.shape)
    if reduction == "mean" and normalizer is None:
        count = ("number of object anchors", "max(1, #(state == 1))")
        objects = max(1.0, float((s == 1).sum()))
        return reduce(per, reduction, mask=mask, normalizer=objects, normalizer_step=count)
    return reduce(per, reduction, mask=mask, normalizer=normalizer)


def in_top_k(input, target, k=1):
    x, _ = _scores(input, "scores")
    t = as_array(target, np.int64)
    top_k = step(
        "top-k classes",
        f"the {k} largest scores of each row",
        np.argsort(-x, axis=-1, kind="stable")[..., :k],
    )
    return (top_k == t[..., None]).any(-1)


def top_k_accuracy(input, target, k=1, *, ignore_index=-100):
    hit = in_top_k(input, target, k)
    counted = as_array(target, np.int64) != ignore_index
    n = counted.sum()
    return step("accuracy", "hits / counted targets", (hit & counted).sum() / n if n else 0.0)
