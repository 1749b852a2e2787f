"""Registry rows of the binary (sigmoid) losses."""

from __future__ import annotations

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import LOGITS, PROBS, UNIT
from .._spec import Example, LossSpec, torch_adapter
from ._sources import SEED000_LOGITS, SEED000_TARGET, SEED004_FOCAL_P, T000, T004, logit, sigmoid

ROWS = (
    LossSpec(
        name="binary_cross_entropy",
        family="binary",
        functional=F.binary_cross_entropy,
        module_name="BCELoss",
        # torch's positional order
        positional=("weight", "size_average", "reduce", "reduction"),
        reference=R.binary_cross_entropy,
        summary="BCE on probabilities, log clamped at -100",
        when_to_use="when the model outputs probabilities",
        examples=(
            Example(
                T000 + ": sigmoid([[-1, 1], [1, 2]]) against eye(2)[[0, 1]]",
                [[sigmoid(v) for v in row] for row in SEED000_LOGITS],
                SEED000_TARGET,
                printed_value=1.0167,
            ),
            Example(
                T004 + ": y_hat = [0.920, 0.976, 0.003], y_true = [0, 0, 1]",
                [0.920, 0.976, 0.003],
                [0.0, 0.0, 1.0],
            ),
        ),
        input_kind=PROBS,
        target_kind=UNIT,
        torch_builtin=torch_adapter(
            TF.binary_cross_entropy, supports=("weight",), weight_mean_differs=True
        ),
    ),
    LossSpec(
        name="binary_cross_entropy_with_logits",
        family="binary",
        functional=F.binary_cross_entropy_with_logits,
        module_name="BCEWithLogitsLoss",
        # torch's positional order
        positional=("weight", "size_average", "reduce", "reduction", "pos_weight"),
        reference=R.binary_cross_entropy_with_logits,
        summary="BCE on logits; `pos_weight`, `label_smoothing`, `ignore_index`",
        when_to_use="binary and multi-label classification",
        examples=(
            Example(
                T000 + ": logits [[-1, 1], [1, 2]] against eye(2)[[0, 1]]",
                SEED000_LOGITS,
                SEED000_TARGET,
                printed_value=1.0167,
            ),
        ),
        input_kind=LOGITS,
        target_kind=UNIT,
        variants=({"label_smoothing": 0.1}, {"ignore_index": -1.0}),
        torch_builtin=torch_adapter(
            TF.binary_cross_entropy_with_logits,
            supports=("weight", "pos_weight"),
            weight_mean_differs=True,
        ),
    ),
    LossSpec(
        name="sigmoid_focal_loss",
        family="binary",
        functional=F.sigmoid_focal_loss,
        module_name="SigmoidFocalLoss",
        # torchvision.ops.sigmoid_focal_loss's order
        positional=("alpha", "gamma", "reduction"),
        reference=R.sigmoid_focal_loss,
        summary="-α_t (1 - p_t)^γ log p_t on logits, in log space",
        when_to_use="dense detection, heavy imbalance",
        examples=(
            Example(
                T004 + ": y_pred = [0.95, 0.05, 0.5, 0.5] (as logits), y_true = [1, 0, 1, 0]",
                [logit(p) for p in SEED004_FOCAL_P],
                [1.0, 0.0, 1.0, 0.0],
                options={"alpha": 0.25, "gamma": 2.0},
            ),
        ),
        input_kind=LOGITS,
        target_kind=UNIT,
        variants=(
            {"gamma": 0.0, "alpha": None},
            {"gamma": 0.5, "alpha": 0.75},
            {"gamma": 5.0},
            {"ignore_index": -1.0},
        ),
        paper="https://arxiv.org/abs/1708.02002",
    ),
)
