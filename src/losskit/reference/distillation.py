"""Distillation losses by hand, in NumPy float64. The class dimension is moved last, so
that each row reads as one position's scores."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = ["distillation_loss", "generalized_jsd_loss", "total_variation_loss"]


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))


def _tempered(input, teacher, temperature):
    """Both distributions at temperature T, each with its steps."""
    x = as_array(input)
    cd = 0 if x.ndim == 1 else 1
    x = step("student logits", "x, one row of class scores per position", np.moveaxis(x, cd, -1))
    z = step("teacher logits", "z", np.moveaxis(as_array(teacher), cd, -1))
    t = temperature
    log_p = step(
        "student log-probabilities", f"log p = log_softmax(x / T) (T={t})", _log_softmax(x / t)
    )
    log_q = step(
        "teacher log-probabilities", f"log q = log_softmax(z / T) (T={t})", _log_softmax(z / t)
    )
    return x, log_p, log_q


def _kl_terms(log_a, log_b):
    """``a (log a - log b)`` per class, 0 where ``a = 0`` (0 log 0 = 0)."""
    a = np.exp(log_a)
    with np.errstate(invalid="ignore"):
        return np.where(a == 0, 0.0, a * (log_a - log_b))


def _mask(target, ignore_index):
    if target is None:
        return None, None
    t = as_array(target, np.int64)
    counted = t != ignore_index
    return np.where(counted, t, 0), counted


def distillation_loss(
    input,
    teacher,
    target=None,
    *,
    temperature=1.0,
    alpha=0.5,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    x, log_p, log_q = _tempered(input, teacher, temperature)
    step("teacher probabilities", "q = exp(log q)", np.exp(log_q))
    terms = step("KL terms", "q (log q - log p), 0 where q = 0", _kl_terms(log_q, log_p))
    t2 = temperature**2
    kd = step("KD", f"T^2 sum_c KL terms (T^2={t2:g})", t2 * terms.sum(-1))
    index, counted = _mask(target, ignore_index)
    per = kd
    if target is not None:
        logp1 = _log_softmax(x)
        ce = step(
            "cross entropy with the target",
            "-log softmax(x)[y], at T = 1",
            -np.take_along_axis(logp1, index[..., None], axis=-1)[..., 0],
        )
        a = alpha
        per = step("mixed", f"(1 - alpha) CE + alpha KD (alpha={a})", (1 - a) * ce + a * kd)
    return reduce(per, reduction, mask=counted, normalizer=normalizer)


def generalized_jsd_loss(
    input,
    teacher,
    target=None,
    *,
    beta=0.5,
    temperature=1.0,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    _, log_p, log_q = _tempered(input, teacher, temperature)
    b = beta
    if b == 0:
        per = step(
            "forward KL", "beta = 0: sum_c q (log q - log p)", _kl_terms(log_q, log_p).sum(-1)
        )
    elif b == 1:
        per = step(
            "reverse KL", "beta = 1: sum_c p (log p - log q)", _kl_terms(log_p, log_q).sum(-1)
        )
    else:
        p, q = np.exp(log_p), np.exp(log_q)
        m = step("mixture", f"M = (1 - beta) p + beta q (beta={b})", (1 - b) * p + b * q)
        with np.errstate(divide="ignore"):
            log_m = np.log(m)
        kl_q = step("KL(q || M)", "sum_c q (log q - log M)", _kl_terms(log_q, log_m).sum(-1))
        kl_p = step("KL(p || M)", "sum_c p (log p - log M)", _kl_terms(log_p, log_m).sum(-1))
        per = step(
            "generalized JSD", "beta KL(q || M) + (1 - beta) KL(p || M)", b * kl_q + (1 - b) * kl_p
        )
    _, counted = _mask(target, ignore_index)
    return reduce(per, reduction, mask=counted, normalizer=normalizer)


def total_variation_loss(
    input,
    teacher,
    target=None,
    *,
    temperature=1.0,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    _, log_p, log_q = _tempered(input, teacher, temperature)
    p = step("student probabilities", "p = exp(log p)", np.exp(log_p))
    q = step("teacher probabilities", "q = exp(log q)", np.exp(log_q))
    per = step("total variation", "1/2 sum_c |p - q|", 0.5 * np.abs(p - q).sum(-1))
    _, counted = _mask(target, ignore_index)
    return reduce(per, reduction, mask=counted, normalizer=normalizer)
