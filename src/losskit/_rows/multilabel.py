"""Registry rows of the multi-label and noise-robust classification losses (SPEC section
10): the asymmetric and poly-1 focal losses on sigmoid logits (family "binary", targets of
the input's shape), poly-1 cross entropy and the generalized cross entropy on a softmax
(family "multiclass", class indices)."""

from __future__ import annotations

from .. import functional as F
from .. import reference as R
from .._kinds import INDEX, INDEX_ONLY, LOGITS, UNIT
from .._spec import Example, LossSpec
from ._sources import SEED001_PRED, T001

_LABELS = "two samples of three labels"
_LOGITS = [[2.0, -1.0, 0.5], [-3.0, 1.5, -0.2]]
_TARGET = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]

ROWS = (
    LossSpec(
        name="asymmetric_loss",
        family="binary",
        functional=F.asymmetric_loss,
        module_name="AsymmetricLoss",
        reference=R.asymmetric_loss,
        summary="-[y (1 - p)^γ+ log p + (1 - y) p_m^γ- log(1 - p_m)], p_m = max(p - clip, 0) "
        "(Ridnik et al. 2021)",
        when_to_use="multi-label classification with many negatives per image",
        examples=(
            Example(
                _LABELS + ": logits [[2, -1, 0.5], [-3, 1.5, -0.2]], labels [[1, 0, 1], [0, 1, 0]]",
                _LOGITS,
                _TARGET,
                options={"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05},
            ),
        ),
        input_kind=LOGITS,
        target_kind=UNIT,
        variants=(
            {"gamma_pos": 1.0, "clip": 0.0},
            {"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0},
            {"gamma_neg": 1.5, "clip": 0.2},
            {"ignore_index": -1.0},
        ),
        paper="https://arxiv.org/abs/2009.14119",
    ),
    LossSpec(
        name="poly1_focal_loss",
        family="binary",
        functional=F.poly1_focal_loss,
        module_name="Poly1FocalLoss",
        reference=R.poly1_focal_loss,
        summary="sigmoid focal + ε (1 - p_t)^(γ + 1) (Leng et al. 2022); α on the focal term only",
        when_to_use="dense detection and multi-label tasks where focal loss under- or "
        "over-weights easy examples",
        examples=(
            Example(
                _LABELS + ": logits [[2, -1, 0.5], [-3, 1.5, -0.2]], labels [[1, 0, 1], [0, 1, 0]]",
                _LOGITS,
                _TARGET,
                options={"epsilon": 1.0, "alpha": 0.25, "gamma": 2.0},
            ),
        ),
        input_kind=LOGITS,
        target_kind=UNIT,
        variants=(
            {"epsilon": 0.0},
            {"epsilon": -1.0, "alpha": None},
            {"gamma": 0.5, "epsilon": 2.0},
            {"gamma": 0.0, "alpha": None},
            {"ignore_index": -1.0},
        ),
        paper="https://arxiv.org/abs/2204.12511",
    ),
    LossSpec(
        name="poly1_cross_entropy",
        family="multiclass",
        functional=F.poly1_cross_entropy,
        module_name="Poly1CrossEntropyLoss",
        reference=R.poly1_cross_entropy,
        summary="CE + ε (1 - p_t) per sample (Leng et al. 2022); ε = 0 is `cross_entropy`",
        when_to_use="a one-parameter retuning of cross entropy (ε > 0 for large "
        "classification, ε < 0 for imbalanced or detection heads)",
        examples=(
            Example(
                T001 + ": y_pred = [[10, 5, -6], [8, 8, 8]], y_true = [0, 2]",
                SEED001_PRED,
                [0, 2],
                options={"epsilon": 1.0},
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=(
            {"epsilon": 0.0},
            {"epsilon": -1.0},
            {"label_smoothing": 0.1, "epsilon": 2.0},
            {"ignore_index": 1, "z_loss": 1e-2},
        ),
        paper="https://arxiv.org/abs/2204.12511",
    ),
    LossSpec(
        name="generalized_cross_entropy",
        family="multiclass",
        functional=F.generalized_cross_entropy,
        module_name="GeneralizedCrossEntropyLoss",
        reference=R.generalized_cross_entropy,
        summary="(1 - p_y^q) / q (Zhang & Sabuncu 2018): q → 0 is CE, q = 1 is MAE 1 - p_y",
        when_to_use="noisy labels",
        examples=(
            Example(
                T001 + ": y_pred = [[10, 5, -6], [8, 8, 8]], y_true = [0, 2]",
                SEED001_PRED,
                [0, 2],
                options={"q": 0.7},
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX_ONLY,
        variants=({"q": 0.0}, {"q": 1.0}, {"q": 0.3, "ignore_index": 1}),
        paper="https://arxiv.org/abs/1805.07836",
    ),
)
