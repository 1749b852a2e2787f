"""Classification metrics: top-k accuracy."""

from __future__ import annotations

import torch

from .. import _checks as C
from .._reduction import reduce
from ._classes import prepare_classes

__all__ = ["in_top_k", "top_k_accuracy"]


def _in_top_k(name, input, target, k, ignore_index):
    k_value = C.check_number(name, "k", k, low=1)
    if k_value != int(k_value):
        C.fail(name, f"k must be a whole number, got {k!r}.")
    k = int(k_value)
    ignore_index = None if ignore_index is None else C.check_ignore_index(name, ignore_index)
    c, mask = prepare_classes(
        name, input, target, ignore_index=ignore_index, target_type="index", allow_probs=False
    )
    if k > c.num_classes:
        C.fail(name, f"k={k} is larger than the number of classes {c.num_classes}.")
    # NaN scores rank last (below -inf) and never count as a hit
    nan = torch.isnan(c.input)
    scores = torch.where(nan, torch.full_like(c.input, float("-inf")), c.input)
    top = scores.topk(k, dim=c.class_dim).indices
    index = torch.where(mask, c.target, 0) if mask is not None else c.target
    hit = (top == index.unsqueeze(c.class_dim)).any(c.class_dim)
    target_nan = nan.gather(c.class_dim, index.unsqueeze(c.class_dim)).squeeze(c.class_dim)
    return hit & ~target_nan, mask


def in_top_k(input, target, k=1):
    """Whether each target is among the ``k`` largest scores of its row (Keras ``in_top_k``).

    Args:
        input: scores ``(N, C)`` or ``(N, C, d1, ..., dk)``.
        target: class indices ``(N, d1, ..., dk)``.
        k: how many of the top classes count, ``1 <= k <= C``.

    Returns:
        A bool tensor of the target's shape. Ties are broken by ``torch.topk``; a NaN
        score ranks last and never counts as a hit.

    Example:
        >>> import torch, losskit.functional as LF
        >>> scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
        >>> LF.in_top_k(scores, torch.tensor([2, 0]), k=2)
        tensor([True, True])
    """
    return _in_top_k("in_top_k", input, target, k, None)[0]


def top_k_accuracy(input, target, k=1, *, ignore_index=-100):
    """Fraction of targets among the ``k`` highest scores, ignoring ``ignore_index``.

    Returns a 0-dim float32 tensor (no host synchronisation; ``float()`` it to log);
    0.0 when every target is ignored.

    Example:
        >>> import torch, losskit.functional as LF
        >>> scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
        >>> LF.top_k_accuracy(scores, torch.tensor([1, 2, -100]), k=1)
        tensor(0.5000)
    """
    hit, mask = _in_top_k("top_k_accuracy", input, target, k, ignore_index)
    hit = hit.float()
    return reduce(hit, "mean", mask=mask)
