"""Registry rows of the Keras 3 forms torch lacks losses."""

from __future__ import annotations

import math

from .. import functional as F
from .. import reference as R
from .._kinds import COUNTS, DIRECTIONS, LOGITS, PER_ROW, RATE, SAMPLE_ROWS, SIGNS
from .._spec import Example, LossSpec

ROWS = (
    LossSpec(
        name="mean_absolute_percentage_error",
        aliases=("mape_loss",),
        family="regression",
        functional=F.mean_absolute_percentage_error,
        module_name="MeanAbsolutePercentageError",
        module_aliases=("MAPELoss",),
        reference=R.mean_absolute_percentage_error,
        summary="Keras' MAPE: 100 mean(|y - x| / max(|y|, ε)) per sample",
        when_to_use="errors relative to the target's size (forecasting, prices); porting Keras",
        examples=(
            Example(
                "Keras 3's MeanAbsolutePercentageError docstring: y_true = [100, 200, 300], "
                "y_pred = [90, 210, 310]",
                [90.0, 210.0, 310.0],
                [100.0, 200.0, 300.0],
            ),
            Example(
                "Keras 3's MeanAbsolutePercentageError metric docstring: y_true = [[0, 1], "
                "[0, 0]], y_pred = [[1, 1], [0, 0]], sample_weight = [1, 0]",
                [[1.0, 1.0], [0.0, 0.0]],
                [[0.0, 1.0], [0.0, 0.0]],
                options={"weight": [1.0, 0.0]},
            ),
        ),
        target_kind=PER_ROW,
        variants=({"eps": 1e-2},),
    ),
    LossSpec(
        name="mean_squared_logarithmic_error",
        aliases=("msle_loss",),
        family="regression",
        functional=F.mean_squared_logarithmic_error,
        module_name="MeanSquaredLogarithmicError",
        module_aliases=("MSLELoss",),
        reference=R.mean_squared_logarithmic_error,
        summary="Keras' MSLE: mean((log(max(x, ε) + 1) - log(max(y, ε) + 1))²) per sample",
        when_to_use="non-negative targets spanning magnitudes (counts, prices); porting Keras",
        examples=(
            Example(
                "Keras 3's MeanSquaredLogarithmicError metric docstring: y_true = [[0, 1], "
                "[0, 0]], y_pred = [[1, 1], [0, 0]]",
                [[1.0, 1.0], [0.0, 0.0]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        target_kind=COUNTS,
        variants=({"eps": 0.5}, {"eps": 0.0}),
    ),
    LossSpec(
        name="hinge",
        family="binary",
        functional=F.hinge,
        module_name="Hinge",
        reference=R.hinge,
        summary="Keras' hinge: mean(max(1 - y x, 0)) per sample, labels -1/1 (0/1 converted)",
        when_to_use="max-margin (SVM-style) binary or multi-label classifiers; porting Keras",
        examples=(
            Example(
                "Keras 3's Hinge metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[0.6, 0.4], [0.4, 0.6]]",
                [[0.6, 0.4], [0.4, 0.6]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=LOGITS,
        target_kind=SIGNS,
    ),
    LossSpec(
        name="squared_hinge",
        family="binary",
        functional=F.squared_hinge,
        module_name="SquaredHinge",
        reference=R.squared_hinge,
        summary="Keras' squared hinge: mean(max(1 - y x, 0)²) per sample",
        when_to_use="a smooth max-margin loss (L2-SVM); porting Keras",
        examples=(
            Example(
                "Keras 3's SquaredHinge metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[0.6, 0.4], [0.4, 0.6]]",
                [[0.6, 0.4], [0.4, 0.6]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=LOGITS,
        target_kind=SIGNS,
    ),
    LossSpec(
        name="categorical_hinge",
        family="multiclass",
        functional=F.categorical_hinge,
        module_name="CategoricalHinge",
        reference=R.categorical_hinge,
        summary="Keras' categorical hinge: max(max_j (1 - y_j) x_j - Σ y_j x_j + 1, 0) per sample",
        when_to_use="multi-class max-margin (Crammer-Singer) on one-hot rows; porting Keras",
        examples=(
            Example(
                "Keras 3's CategoricalHinge metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[0.6, 0.4], [0.4, 0.6]]",
                [[0.6, 0.4], [0.4, 0.6]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=LOGITS,
        target_kind=SAMPLE_ROWS,
        paper="https://jmlr.org/papers/v2/crammer01a.html",
    ),
    LossSpec(
        name="cosine_similarity_loss",
        family="regression",
        functional=F.cosine_similarity_loss,
        module_name="CosineSimilarityLoss",
        reference=R.cosine_similarity_loss,
        summary="Keras' cosine similarity: -Σ x̂ ŷ along `dim`, norms floored at ε; in [-1, 1]",
        when_to_use="matching directions (embeddings), not lengths; porting Keras",
        examples=(
            Example(
                "Keras 3's cosine_similarity docstring: y_true = [[0, 1], [1, 1], [1, 1]], "
                "y_pred = [[1, 0], [1, 1], [-1, -1]]",
                [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]],
                [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
            ),
        ),
        target_kind=DIRECTIONS,
        variants=({"eps": 3.0},),
        minimum=-1.0,
    ),
    LossSpec(
        name="poisson_loss",
        family="regression",
        functional=F.poisson_loss,
        module_name="PoissonLoss",
        reference=R.poisson_loss,
        summary="Keras' Poisson: mean(x - y log(x + ε)) per sample, x a rate >= 0",
        when_to_use="count targets with a rate output (softplus, exp); porting Keras",
        examples=(
            Example(
                "Keras 3's Poisson metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[1, 1], [0, 0]]",
                [[1.0, 1.0], [0.0, 0.0]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=RATE,
        target_kind=COUNTS,
        variants=({"eps": 1e-2},),
        minimum=-math.inf,
    ),
)
