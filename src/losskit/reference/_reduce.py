"""The reduction, by hand: weighted sum, then divided by the sum of the weights."""

from __future__ import annotations

import numpy as np

from ._steps import as_array, step


def reduce(
    loss,
    reduction,
    *,
    weight=None,
    mask=None,
    normalizer=None,
    what="loss",
    weight_applied=False,
    normalizer_step=("normalizer", "given"),
):
    """Reduce a per-element ``loss`` array the way losskit's functional losses do.

    With ``weight_applied`` the loss already holds ``w * l``; ``weight`` then only gives
    the mean's denominator. ``normalizer_step`` names the normalizer's step, ``(name,
    formula)``: ``("normalizer", "given")`` for the user's, or what a loss divides by
    (the detection focal loss's number of object anchors).
    """
    loss = np.asarray(loss, dtype=np.float64)
    w = np.ones_like(loss) if weight is None else np.broadcast_to(as_array(weight), loss.shape)
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), loss.shape)
        loss = np.where(mask, loss, 0.0)
        if not mask.all():  # only worth a line when something is ignored
            loss = step("ignored elements dropped", f"{what} where counted, else 0", loss)
        w = np.where(mask, w, 0.0)
    if weight is not None and not weight_applied:
        loss = step(f"weighted {what}", f"w * {what}", w * loss)
    if reduction == "none":
        return loss
    if weight is not None:
        total = step("weighted sum", f"sum(w * {what})", loss.sum())
    else:
        total = step("sum", f"sum({what})", loss.sum())
    if reduction == "sum":
        return total
    if normalizer is not None:
        den = step(*normalizer_step, float(as_array(normalizer)))
    elif weight is not None:
        den = step("sum of weights", "sum(w) over counted elements", w.sum())
    else:
        den = step("count", "number of counted elements", w.sum())
    if den == 0:
        return step("mean", "nothing counted: 0 (losskit's empty-mean rule)", 0.0)
    return step(
        "mean",
        "sum / "
        + (
            normalizer_step[0]
            if normalizer is not None
            else "sum(w)"
            if weight is not None
            else "count"
        ),
        total / den,
    )
