"""Lovász losses by hand, in NumPy float64, the steps of Berman et al. (2018): errors,
sorted in decreasing order, the ground truth in that order, cumulative intersections and
unions, the Jaccard loss of each prefix, its differences (the Lovász gradient), and the dot
product of the sorted errors with them. Ignored pixels are dropped first."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = ["lovasz_softmax_loss", "lovasz_hinge_loss", "lovasz_softmax", "lovasz_hinge"]


def _lovasz(errors, gt, where):
    """The Lovász extension of the Jaccard loss of one mask ``gt`` at ``errors``, step
    by step; ``where`` names the image and class in the steps."""
    order = np.argsort(-errors, kind="stable")
    e = step(f"{where}: errors sorted", "e_(1) >= e_(2) >= ...", errors[order])
    g = step(f"{where}: target in that order", "g_(k)", gt[order])
    total = g.sum()
    inter = step(f"{where}: intersection", "G - cumsum(g_(k))", total - np.cumsum(g))
    union = step(f"{where}: union", "G + cumsum(1 - g_(k))", total + np.cumsum(1.0 - g))
    jac = step(f"{where}: Jaccard loss of each prefix", "J_k = 1 - I_k / U_k", 1.0 - inter / union)
    grad = step(f"{where}: Lovász gradient", "J_k - J_(k-1), J_0 = 0", np.diff(jac, prepend=0.0))
    return float(step(f"{where}: Lovász loss", "sum_k e_(k) (J_k - J_(k-1))", e @ grad))


def lovasz_softmax_loss(
    input,
    target,
    *,
    classes="present",
    per_image=False,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    normalizer=None,
):
    x = as_array(input)
    y = as_array(target, np.int64)
    n, k = x.shape[:2]
    x = x.reshape(n, k, -1) if x.size else x.reshape(n, k, int(np.prod(x.shape[2:])))
    y = y.reshape(n, -1) if y.size else y.reshape(n, x.shape[2])
    if from_logits:
        x = step("logits", "x", x)
        z = np.exp(x - x.max(axis=1, keepdims=True)) if x.size else x
        p = step(
            "softmax over classes", "p_c = exp(x_c) / sum_j exp(x_j)", z / z.sum(1, keepdims=True)
        )
    else:
        p = step("probabilities", "p", x)
    y = step("target", "class index of each pixel", y)
    # one image's pixels as (pixels, classes) and their labels
    pixels = [(p[i].T, y[i]) for i in range(n)]
    if not per_image:
        pixels = [(np.concatenate([a for a, _ in pixels]), np.concatenate([b for _, b in pixels]))]
    names = [f"image {i}" for i in range(n)] if per_image else ["batch"]
    losses = []
    for where, (probs, labels) in zip(names, pixels, strict=True):
        if ignore_index is not None:
            keep = labels != ignore_index
            probs, labels = probs[keep], labels[keep]
            step(f"{where}: counted pixels", "target != ignore_index", keep.sum())
        chosen = range(k) if isinstance(classes, str) else classes
        per_class = []
        for c in chosen:
            fg = (labels == c).astype(np.float64)
            if classes == "present" and fg.sum() == 0:
                continue  # absent from this target: not averaged (Berman's "present")
            e = step(f"{where}, class {c}: errors", "|g_c - p_c|", np.abs(fg - probs[:, c]))
            per_class.append(_lovasz(e, fg, f"{where}, class {c}"))
        value = float(np.mean(per_class)) if per_class else 0.0
        losses.append(step(f"{where}: loss", "mean over the classes averaged", value))
    loss = np.asarray(losses) if per_image else np.asarray(losses[0])
    return reduce(loss, reduction, normalizer=normalizer)


def lovasz_hinge_loss(
    input, target, *, per_image=True, ignore_index=None, reduction="mean", normalizer=None
):
    x = as_array(input)
    y = as_array(target)
    n = x.shape[0]
    x = step("logits", "x", x.reshape(n, -1) if x.size else x.reshape(n, 0))
    y = step("target", "y in {0, 1}", y.reshape(x.shape))
    rows = [(x[i], y[i]) for i in range(n)]
    if not per_image:
        rows = [(x.reshape(-1), y.reshape(-1))]
    names = [f"image {i}" for i in range(n)] if per_image else ["batch"]
    losses = []
    for where, (logits, labels) in zip(names, rows, strict=True):
        if ignore_index is not None:
            keep = labels != ignore_index
            logits, labels = logits[keep], labels[keep]
            step(f"{where}: counted pixels", "target != ignore_index", keep.sum())
        if labels.size == 0:
            losses.append(step(f"{where}: loss", "no counted pixel: 0", 0.0))
            continue
        signs = step(f"{where}: signs", "s = 2y - 1", 2.0 * labels - 1.0)
        hinge = step(f"{where}: hinge errors", "1 - x s", 1.0 - logits * signs)
        e = step(f"{where}: errors through ReLU", "max(0, 1 - x s)", np.maximum(hinge, 0.0))
        losses.append(_lovasz(e, labels.astype(np.float64), where))
    loss = np.asarray(losses) if per_image else np.asarray(losses[0])
    return reduce(loss, reduction, normalizer=normalizer)


# Berman's names (aliases of the registry rows)
lovasz_softmax = lovasz_softmax_loss
lovasz_hinge = lovasz_hinge_loss
