"""Registry row of the CTC loss."""

from __future__ import annotations

import math

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds.torch_nn import CTC, CTC_LOGPROBS
from .._spec import Example, LossSpec


def torch_ctc_loss(
    log_probs, targets, input_lengths, target_lengths, *, normalizer=None, **options
):
    """``torch.nn.functional.ctc_loss`` on the same call (``None`` with a normalizer)."""
    if normalizer is not None:
        return None
    return TF.ctc_loss(log_probs, targets, input_lengths, target_lengths, **options)


_P2 = [[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]]
# 3 frames of 2 samples over (blank, a, b): targets "ab" and "b"
_P3 = [
    [[0.2, 0.7, 0.1], [0.5, 0.1, 0.4]],
    [[0.6, 0.1, 0.3], [0.3, 0.2, 0.5]],
    [[0.3, 0.1, 0.6], [0.8, 0.1, 0.1]],
]

ROWS = (
    LossSpec(
        name="ctc_loss",
        family="sequence",
        functional=F.ctc_loss,
        module_name="CTCLoss",
        positional=("blank", "reduction", "zero_infinity"),  # torch's order
        reference=R.ctc_loss,
        summary="-log of the probability of the target summed over its alignments "
        '(forward algorithm, torch\'s kernel); `"mean"` per target label',
        when_to_use="speech and handwriting recognition: unsegmented sequences, no alignment",
        examples=(
            Example(
                'losskit\'s docstring: 2 frames over (blank, a, b), target "a" (alignments '
                "a-, -a, aa)",
                [[math.log(v) for v in row] for row in _P2],
                [1],
                options={"reduction": "sum"},
                extra=(2, 1),
            ),
            Example(
                '3 frames of 2 samples over (blank, a, b): targets "ab" and "b" (padded), '
                "the second with 2 frames",
                [[[math.log(v) for v in p] for p in frame] for frame in _P3],
                [[1, 2], [2, 0]],
                extra=([3, 2], [2, 1]),
            ),
        ),
        input_kind=CTC_LOGPROBS,
        target_kind=CTC,
        variants=({"zero_infinity": True},),  # blank= moves the labels: tests/test_ctc.py
        torch_builtin=torch_ctc_loss,
        paper="https://doi.org/10.1145/1143844.1143891",
    ),
)
