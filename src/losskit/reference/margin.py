"""torch.nn's margin and embedding losses by hand, in NumPy float64: the per-pair (or
per-sample) terms, then losskit's reduction."""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = [
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "cosine_embedding_loss",
    "multi_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

COSINE_EPS = 1e-12
PAIRWISE_EPS = 1e-6


def _labels(target):
    return step("labels", "y (1 or -1)", as_array(target))


def margin_ranking_loss(
    input1, input2, target, *, margin=0.0, weight=None, reduction="mean", normalizer=None
):
    x1 = step("first scores", "x1", as_array(input1))
    x2 = step("second scores", "x2", as_array(input2))
    y = _labels(target)
    diff = step("score difference", "x1 - x2", x1 - x2)
    loss = step(
        "ranking hinge", f"max(0, -y (x1 - x2) + margin) (margin={margin:g})",
        np.maximum(-y * diff + margin, 0.0),
    )  # fmt: skip
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def hinge_embedding_loss(
    input, target, *, margin=1.0, weight=None, reduction="mean", normalizer=None
):
    x = step("distances", "x", as_array(input))
    y = _labels(target)
    hinge = step(
        "hinge of dissimilar pairs", f"max(0, margin - x) where y = -1 (margin={margin:g})",
        np.where(y != 1, np.maximum(margin - x, 0.0), 0.0),
    )  # fmt: skip
    pull = step("distance of similar pairs", "x where y = 1", np.where(y != -1, x, 0.0))
    loss = step("hinge embedding loss", "the two terms added", hinge + pull)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _softplus(z):
    """log(1 + e^z), without overflow: max(z, 0) + log1p(e^-|z|)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def soft_margin_loss(input, target, *, weight=None, reduction="mean", normalizer=None):
    x = step("scores", "x", as_array(input))
    y = _labels(target)
    yx = step("signed margin", "y x", y * x)
    loss = step("soft margin", "log(1 + exp(-y x))", _softplus(-yx))
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def cosine_embedding_loss(
    input1, input2, target, *, margin=0.0, weight=None, reduction="mean", normalizer=None
):
    a = step("first vectors", "x1", as_array(input1))
    b = step("second vectors", "x2", as_array(input2))
    y = _labels(target)
    dot = step("dot product", "x1 . x2 per pair", (a * b).sum(axis=-1))
    n1 = step("norm of x1", "sqrt(||x1||^2 + 1e-12)", np.sqrt((a * a).sum(axis=-1) + COSINE_EPS))
    n2 = step("norm of x2", "sqrt(||x2||^2 + 1e-12)", np.sqrt((b * b).sum(axis=-1) + COSINE_EPS))
    cos = step("cosine similarity", "dot / (norm1 norm2)", dot / (n1 * n2))
    loss = step(
        "cosine embedding loss",
        f"1 - cos where y = 1; max(0, cos - margin) where y = -1 (margin={margin:g})",
        np.where(y == 1, 1.0 - cos, 0.0) + np.where(y == -1, np.maximum(cos - margin, 0.0), 0.0),
    )
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _sigmoid_log(z):
    """log sigmoid(z) = -softplus(-z)."""
    return -_softplus(-z)


def multilabel_soft_margin_loss(input, target, *, weight=None, reduction="mean", normalizer=None):
    x = step("logits", "x", as_array(input))
    y = step("labels", "y in [0, 1] per class", as_array(target))
    terms = step(
        "binary cross entropy per class",
        "-(y log sigmoid(x) + (1 - y) log sigmoid(-x))",
        -(y * _sigmoid_log(x) + (1.0 - y) * _sigmoid_log(-x)),
    )
    n_classes = x.shape[-1]
    if weight is not None:
        w = np.broadcast_to(as_array(weight), x.shape)
        terms = step("weighted terms", "w_c * term", w * terms)
    per_sample = step(
        "mean over the classes",
        f"(1/C) sum_c, C = {n_classes}: one value per sample",
        terms.sum(axis=-1) / n_classes if n_classes else terms.sum(axis=-1),
    )
    if weight is None or reduction != "mean" or normalizer is not None:
        return reduce(per_sample, reduction, normalizer=normalizer)
    mass = step("weight of each sample", "(1/C) sum_c w_c", w.sum(axis=-1) / n_classes)
    total = step("sum", "sum over the samples", per_sample.sum())
    den = step("sum of weights", "sum over the samples of (1/C) sum_c w_c", mass.sum())
    if den == 0:
        return step("mean", "nothing counted: 0 (losskit's empty-mean rule)", 0.0)
    return step("mean", "sum / sum(w)", total / den)


def _rows(input):
    x = as_array(input)
    return x.reshape(1, -1) if x.ndim < 2 else x


def multilabel_margin_loss(input, target, *, weight=None, reduction="mean", normalizer=None):
    x = step("scores", "x", _rows(input))
    y = np.asarray(as_array(target), dtype=np.int64).reshape(x.shape)
    n, n_classes = x.shape
    listed = np.cumprod(y >= 0, axis=1).astype(bool)
    step("listed classes", "entries before the first -1", np.where(listed, y, -1))
    is_true = np.zeros((n, n_classes), dtype=bool)
    for i in range(n):
        is_true[i, y[i][listed[i]]] = True
    is_true = step("true class mask", "1 where the class is listed", is_true)
    per_sample = np.zeros(n)
    for i in range(n):
        for j in y[i][listed[i]]:  # every listed class, as often as it is listed
            others = ~is_true[i].astype(bool)
            per_sample[i] += np.maximum(1.0 - (x[i, j] - x[i, others]), 0.0).sum()
    per_sample = step(
        "hinge per sample",
        "(1/C) sum_{j listed} sum_{i not listed} max(0, 1 - (x_j - x_i))",
        per_sample / n_classes,
    )
    if np.ndim(input) < 2:
        per_sample = per_sample.reshape(())
    return reduce(per_sample, reduction, weight=weight, normalizer=normalizer)


def multi_margin_loss(
    input, target, *, p=1, margin=1.0, weight=None, reduction="mean", normalizer=None
):
    x = step("scores", "x", _rows(input))
    y = np.asarray(as_array(target), dtype=np.int64).reshape(-1)
    n, n_classes = x.shape
    true = step("score of the true class", "x_y", x[np.arange(n), y])
    hinge = step(
        "hinge against each class",
        f"max(0, margin - x_y + x_i)^p (margin={margin:g}, p={p})",
        np.maximum(margin - true[:, None] + x, 0.0) ** p,
    )
    others = np.arange(n_classes)[None, :] != y[:, None]
    per_sample = step(
        "hinge per sample", "(1/C) sum over i != y", np.where(others, hinge, 0.0).sum(axis=1)
    )
    per_sample = per_sample / n_classes
    w = None
    if weight is not None:
        w = step("class weight of each sample", "w[y]", as_array(weight)[y])
    if np.ndim(input) < 2:
        per_sample = per_sample.reshape(())
        w = None if w is None else w.reshape(())
    return reduce(per_sample, reduction, weight=w, normalizer=normalizer)


def _distance(u, v, p, eps, what):
    diff = u - v + eps
    d = (np.abs(diff) ** p).sum(axis=-1) ** (1.0 / p)
    return step(f"distance {what}", f"||u - v + eps||_p (p={p:g}, eps={eps:g})", d)


def _triplet(d_pos, d_neg, d_swap, margin, weight, reduction, normalizer):
    if d_swap is not None:
        d_neg = step("harder negative distance", "min(d(a, n), d(p, n))", np.minimum(d_neg, d_swap))
    loss = step(
        "triplet hinge", f"max(0, d(a, p) - d(a, n) + margin) (margin={margin:g})",
        np.maximum(margin + d_pos - d_neg, 0.0),
    )  # fmt: skip
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _triplet_inputs(anchor, positive, negative):
    a = step("anchors", "a", as_array(anchor))
    pos = step("positives", "p", as_array(positive))
    neg = step("negatives", "n", as_array(negative))
    return a, pos, neg


def triplet_margin_loss(
    anchor,
    positive,
    negative,
    *,
    margin=1.0,
    p=2.0,
    eps=1e-6,
    swap=False,
    weight=None,
    reduction="mean",
    normalizer=None,
):
    a, pos, neg = _triplet_inputs(anchor, positive, negative)
    d_pos = _distance(a, pos, p, eps, "anchor-positive")
    d_neg = _distance(a, neg, p, eps, "anchor-negative")
    d_swap = _distance(pos, neg, p, eps, "positive-negative") if swap else None
    return _triplet(d_pos, d_neg, d_swap, margin, weight, reduction, normalizer)


def _user_distance(fn, u, v, what):
    """The user's torch distance function, called on float64 tensors."""
    import torch

    d = fn(torch.as_tensor(u), torch.as_tensor(v))
    return step(f"distance {what}", "distance_function(u, v)", as_array(d))


def triplet_margin_with_distance_loss(
    anchor,
    positive,
    negative,
    *,
    distance_function=None,
    margin=1.0,
    swap=False,
    weight=None,
    reduction="mean",
    normalizer=None,
):
    a, pos, neg = _triplet_inputs(anchor, positive, negative)
    if distance_function is None:

        def dist(u, v, what):
            return _distance(u, v, 2.0, PAIRWISE_EPS, what)
    else:

        def dist(u, v, what):
            return _user_distance(distance_function, u, v, what)

    d_pos = dist(a, pos, "anchor-positive")
    d_neg = dist(a, neg, "anchor-negative")
    d_swap = dist(pos, neg, "positive-negative") if swap else None
    return _triplet(d_pos, d_neg, d_swap, margin, weight, reduction, normalizer)
