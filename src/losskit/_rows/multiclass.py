"""Registry rows of the multi-class (softmax) losses."""

from __future__ import annotations

import math

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import INDEX, INDEX_ONLY, LOGITS, LOGPROBS, PROBS, ROWS
from .._spec import Example, LossSpec, torch_adapter
from ._sources import (
    SEED000_NLL_P,
    SEED000_P,
    SEED001_PRED,
    SEED002_PRED,
    SEED002_PRED4,
    T000,
    T001,
    T002,
    T004,
)

ROWS = (
    LossSpec(
        name="cross_entropy",
        family="multiclass",
        functional=F.cross_entropy,
        module_name="CrossEntropyLoss",
        # torch's positional order
        positional=(
            "weight",
            "size_average",
            "ignore_index",
            "reduce",
            "reduction",
            "label_smoothing",
        ),
        reference=R.cross_entropy,
        summary="softmax CE: class `weight`, `ignore_index`, `label_smoothing`, `z_loss`, "
        "index or probability targets, K-dim maps",
        when_to_use="classification, segmentation",
        examples=(
            Example(
                T002 + ": pred = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], label = [0, 1, 0]",
                SEED002_PRED,
                [0, 1, 0],
                printed_value=0.6405,
            ),
            Example(
                T002 + ": the same pred and label",
                SEED002_PRED,
                [0, 1, 0],
                options={"ignore_index": 1},
                printed_value=0.4421,
            ),
            Example(
                T002 + ": the same pred and label",
                SEED002_PRED,
                [0, 1, 0],
                options={"weight": [1.0, 2.0]},
                printed_value=0.7398,
            ),
            Example(
                T002 + ": 4 x 3 pred, label = [2, 1, 0, 1]",
                SEED002_PRED4,
                [2, 1, 0, 1],
                options={"weight": [2.0, 1.0, 2.0], "ignore_index": 2},
                printed_value=1.0401,
            ),
            Example(
                T000 + ": p = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.1, 0.2, 0.3]], "
                "label = [0, 1, 1]",
                SEED000_P,
                [0, 1, 1],
                options={"ignore_index": 0},
                printed_value=1.1019,
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=(
            {"label_smoothing": 0.2},
            {"ignore_index": 1},
            {"z_loss": 1e-2},
            {"ignore_index": 0, "label_smoothing": 0.1},
        ),
        torch_builtin=torch_adapter(
            TF.cross_entropy,
            supports=("weight", "ignore_index", "label_smoothing"),
            defaults={"ignore_index": -100},
        ),
    ),
    LossSpec(
        name="nll_loss",
        family="multiclass",
        functional=F.nll_loss,
        module_name="NLLLoss",
        # torch's positional order
        positional=("weight", "size_average", "ignore_index", "reduce", "reduction"),
        reference=R.nll_loss,
        summary='-w_y log p_y of log-probabilities (also the 2-D "NLLLoss2d" form)',
        when_to_use="after an explicit log_softmax",
        examples=(
            Example(
                T000 + ": log of p = [[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]], "
                "label = [0, 1, 2] (printed there as 1.4429; the value is 1.4229)",
                [[math.log(v) for v in row] for row in SEED000_NLL_P],
                [0, 1, 2],
            ),
        ),
        input_kind=LOGPROBS,
        target_kind=INDEX_ONLY,
        variants=({"ignore_index": 1},),
        torch_builtin=torch_adapter(
            TF.nll_loss, supports=("weight", "ignore_index"), defaults={"ignore_index": -100}
        ),
    ),
    LossSpec(
        name="softmax_focal_loss",
        family="multiclass",
        functional=F.softmax_focal_loss,
        module_name="SoftmaxFocalLoss",
        reference=R.softmax_focal_loss,
        summary="-w_y (1 - p_t)^γ log p_t over a softmax; γ = 0 is `cross_entropy`",
        when_to_use="imbalanced multi-class, segmentation",
        examples=(
            Example(
                T002 + ": pred = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], label = [0, 1, 0]",
                SEED002_PRED,
                [0, 1, 0],
                options={"gamma": 2.0},
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=(
            {"gamma": 0.5},
            {"gamma": 0.0},
            {"gamma": 5.0, "label_smoothing": 0.1},
            {"ignore_index": 1},
        ),
        paper="https://arxiv.org/abs/1708.02002",
    ),
    LossSpec(
        name="symmetric_cross_entropy",
        family="multiclass",
        functional=F.symmetric_cross_entropy,
        module_name="SymmetricCrossEntropyLoss",
        reference=R.symmetric_cross_entropy,
        summary="α CE + β RCE (Wang et al. 2019)",
        when_to_use="noisy labels",
        examples=(
            Example(
                T001 + ": y_pred = [[10, 5, -6], [8, 8, 8]], y_true = [0, 2]",
                SEED001_PRED,
                [0, 2],
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=({"alpha": 0.1, "beta": 1.0}, {"log_zero": -6.0}, {"ignore_index": 1}),
        paper="https://arxiv.org/abs/1908.06112",
    ),
    LossSpec(
        name="reverse_cross_entropy",
        family="multiclass",
        functional=F.reverse_cross_entropy,
        module_name="ReverseCrossEntropyLoss",
        reference=R.reverse_cross_entropy,
        summary="-Σ p_k log q_k with log 0 := `log_zero` (A = -4)",
        when_to_use="the robust half of SCE",
        examples=(
            Example(
                T001 + ": y_pred = [[10, 5, -6], [8, 8, 8]], y_true = [0, 2]",
                SEED001_PRED,
                [0, 2],
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=({"log_zero": -2.0}, {"ignore_index": 1}),
        paper="https://arxiv.org/abs/1908.06112",
    ),
    LossSpec(
        name="categorical_cross_entropy",
        family="multiclass",
        functional=F.categorical_cross_entropy,
        module_name="CategoricalCrossEntropyLoss",
        # keras.losses.categorical_crossentropy's order (axis is dim)
        positional=("from_logits", "label_smoothing", "dim"),
        reference=R.categorical_cross_entropy,
        summary="the Keras form: rows rescaled and clipped, `from_logits`, `dim`",
        when_to_use="porting Keras code",
        examples=(
            Example(
                T004 + ": y_hat = [[0.920, 0.080], [0.020, 0.80]], y_true = [[1, 0], [0, 1]]",
                [[0.920, 0.080], [0.020, 0.80]],
                [[1.0, 0.0], [0.0, 1.0]],
            ),
        ),
        input_kind=PROBS,
        target_kind=ROWS,
        variants=({"from_logits": True}, {"label_smoothing": 0.1}, {"eps": 1e-3}),
    ),
)
