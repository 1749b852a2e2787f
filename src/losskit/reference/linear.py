"""Linear cross entropy by hand, in NumPy float64: the logits in full, then the cross entropy.

Example:
    >>> from losskit import reference as R
    >>> h = [[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]]
    >>> W = [[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]]
    >>> round(float(R.linear_cross_entropy(h, W, [0, 1, 2])), 4)
    1.3383
"""

from __future__ import annotations

import numpy as np

from ._steps import Step, _steps, as_array, step
from .multiclass import cross_entropy

__all__ = ["linear_cross_entropy"]


def linear_cross_entropy(
    input,
    linear_weight,
    target,
    *,
    linear_bias=None,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
    normalizer=None,
    chunk_size=None,
    options=None,
):
    """``cross_entropy(softcap * tanh((x @ W.T + b) / softcap), y)``; ``chunk_size`` and
    ``options`` are accepted for the same signature and ignored (the reference holds every
    logit). Probability targets ``(*, V)`` and K-dimensional layers ``(V, *out_features,
    D)`` (logits ``(N, V, *out_features)``) too."""
    x = step("hidden states", "x, one row of features per token", as_array(input))
    w = step("linear weight", "W (classes x features)", as_array(linear_weight))
    if hasattr(target, "is_floating_point"):
        probs = target.is_floating_point()
    else:
        probs = np.asarray(target).dtype.kind == "f"
    t = as_array(target) if probs else as_array(target, np.int64)
    v, *out_features, d = w.shape
    logits = np.einsum("...d,kd->...k", x, w.reshape(-1, d))  # (*, V * prod(out_features))
    if linear_bias is not None:
        logits = logits + as_array(linear_bias).reshape(-1)
    logits = logits.reshape(*x.shape[:-1], v, *out_features)
    logits = step("logits", "a = x W^T" + (" + b" if linear_bias is not None else ""), logits)
    if softcap is not None:
        logits = step(
            "softcapped logits",
            f"s tanh(a / s) (s={softcap})",
            softcap * np.tanh(logits / softcap),
        )
    recorded = _steps.get()
    first = len(recorded) if recorded is not None else 0
    if out_features:  # (N, V, *out_features): classes on dim 1, as cross_entropy's maps
        scores, y, shape = logits, t, None
    else:  # one row of classes per token
        scores = logits.reshape(-1, v)
        y = t.reshape(-1, v) if probs else t.reshape(-1)
        shape = x.shape[:-1]
    loss = cross_entropy(
        scores,
        y,
        weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        target_type="probs" if probs else "index",
        reduction=reduction,
        normalizer=normalizer,
    )
    if recorded is not None and recorded[first].name == "logits":
        del recorded[first]  # cross_entropy's own "logits" step: the ones recorded above
        # cross_entropy writes its input as x; here x is the hidden states, the logits a
        for i in range(first, len(recorded)):
            s = recorded[i]
            formula = s.formula.replace("(x)", "(a)").replace("= x -", "= a -")
            recorded[i] = Step(s.name, formula, s.value)
    return loss.reshape(shape) if reduction == "none" and shape is not None else loss
