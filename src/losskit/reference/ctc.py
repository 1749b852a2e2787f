"""CTC by hand, in NumPy float64: the forward algorithm over the extended label sequence
``(blank, y_1, blank, y_2, ..., y_S, blank)``, one sample at a time, in log space.

Example:
    >>> import numpy as np
    >>> from losskit import reference as R
    >>> p = np.array([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]])
    >>> round(float(R.ctc_loss(np.log(p), [1], 2, 1, reduction="sum")), 4)
    0.6733
"""

from __future__ import annotations

import numpy as np

from ._reduce import reduce
from ._steps import as_array, step

__all__ = ["ctc_loss"]


def _logaddexp(*terms):
    out = terms[0]
    for t in terms[1:]:
        out = np.logaddexp(out, t)
    return out


def _nll(lp, labels, frames, blank, n):
    """``-log p(labels)`` of one sample's log-probabilities ``lp (T, C)`` over ``frames``,
    recording the extended labels and the forward variables (as probabilities)."""
    ext = [blank]
    for label in labels:
        ext += [int(label), blank]
    ext = np.array(ext)
    step(
        f"extended labels, sample {n}",
        "blank, y_1, blank, y_2, ..., y_S, blank (an alignment walks these states)",
        ext,
    )
    if frames == 0:
        return 0.0 if len(labels) == 0 else np.inf
    alpha = np.full(len(ext), -np.inf)
    alpha[0] = lp[0, ext[0]]
    if len(ext) > 1:
        alpha[1] = lp[0, ext[1]]
    # a label may follow the label two back (skipping a blank) unless it repeats it
    skip = np.zeros(len(ext), dtype=bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    lattice = [alpha]
    for t in range(1, frames):
        prev1 = np.full_like(alpha, -np.inf)
        prev1[1:] = alpha[:-1]
        prev2 = np.full_like(alpha, -np.inf)
        prev2[2:] = alpha[:-2]
        prev2 = np.where(skip, prev2, -np.inf)
        alpha = _logaddexp(alpha, prev1, prev2) + lp[t, ext]
        lattice.append(alpha)
    step(
        f"forward variables, sample {n}",
        "alpha_t(s) = (alpha_{t-1}(s) + alpha_{t-1}(s-1) [+ alpha_{t-1}(s-2) past a blank "
        "between two different labels]) p_t(state s); one row per frame",
        np.exp(np.array(lattice)),
    )
    tail = alpha[-1] if len(ext) == 1 else np.logaddexp(alpha[-1], alpha[-2])
    return -tail


def ctc_loss(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    *,
    blank=0,
    reduction="mean",
    zero_infinity=False,
    normalizer=None,
):
    lp = step("log-probabilities", "log p, frames x batch x classes", as_array(log_probs))
    y = as_array(targets, np.int64)
    il = np.atleast_1d(as_array(input_lengths, np.int64))
    tl = np.atleast_1d(as_array(target_lengths, np.int64))
    unbatched = lp.ndim == 2
    if unbatched:
        lp, y = lp[:, None, :], y[None, :]
    offsets = np.concatenate([[0], np.cumsum(tl)])
    losses = []
    for n in range(lp.shape[1]):
        labels = y[n, : tl[n]] if y.ndim == 2 else y[offsets[n] : offsets[n + 1]]
        losses.append(_nll(lp[:, n, :], labels, int(il[n]), blank, n))
    with np.errstate(invalid="ignore"):
        nll = step(
            "negative log-likelihood",
            "-log(alpha_T(last label) + alpha_T(final blank)): -log of the sum over the "
            "alignments of prod_t p(t, state of the alignment at t)",
            np.array(losses, dtype=np.float64),
        )
    if zero_infinity:
        nll = step(
            "infinite losses zeroed",
            "0 where impossible (zero_infinity)",
            np.where(np.isinf(nll), 0.0, nll),
        )
    if unbatched:
        nll = nll.reshape(())
    if reduction == "none":
        return nll
    if reduction == "sum":
        return reduce(nll, "sum", what="NLL")
    per_label = step(
        "per target label",
        "NLL / max(target length, 1)",
        nll / np.maximum(tl, 1).reshape(nll.shape),
    )
    return reduce(per_label, "mean", normalizer=normalizer, what="NLL per label")
