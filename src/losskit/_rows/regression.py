"""Registry rows of the regression losses."""

from __future__ import annotations

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import PER_SAMPLE
from .._spec import Example, LossSpec, torch_adapter
from ._sources import S003, S004, SEED003, SEED004

ROWS = (
    LossSpec(
        name="l1_loss",
        aliases=("mae_loss",),
        family="regression",
        functional=F.l1_loss,
        module_name="L1Loss",
        # torch's positional order
        positional=("size_average", "reduce", "reduction", "weight"),
        module_aliases=("MAELoss",),
        reference=R.l1_loss,
        summary="mean absolute error |x - y|",
        when_to_use="regression robust to outliers (conditional median)",
        examples=(
            Example(S003, **SEED003, printed_value=1.0),
            Example(S004 + " (MAE)", **SEED004),
        ),
        torch_builtin=torch_adapter(TF.l1_loss),
    ),
    LossSpec(
        name="mse_loss",
        family="regression",
        functional=F.mse_loss,
        module_name="MSELoss",
        # torch's positional order
        positional=("size_average", "reduce", "reduction", "weight"),
        reference=R.mse_loss,
        summary="mean squared error (x - y)²",
        when_to_use="default regression loss",
        examples=(Example(S003, **SEED003, printed_value=1.5),),
        torch_builtin=torch_adapter(TF.mse_loss),
    ),
    LossSpec(
        name="rmse_loss",
        family="regression",
        functional=F.rmse_loss,
        module_name="RMSELoss",
        reference=R.rmse_loss,
        summary='sqrt(mean((x - y)²)); `"none"`: one RMSE per sample',
        when_to_use="a loss in the target's units",
        examples=(Example(S004, **SEED004),),
        target_kind=PER_SAMPLE,
    ),
    LossSpec(
        name="smooth_l1_loss",
        family="regression",
        functional=F.smooth_l1_loss,
        module_name="SmoothL1Loss",
        # torch's positional order
        positional=("size_average", "reduce", "reduction", "beta"),
        reference=R.smooth_l1_loss,
        summary="0.5 r²/β below β, |r| - β/2 above",
        when_to_use="box regression",
        examples=(Example(S003, **SEED003, printed_value=0.625),),
        variants=({"beta": 0.5}, {"beta": 0.0}),
        torch_builtin=torch_adapter(TF.smooth_l1_loss, supports=("beta",)),
        paper="https://arxiv.org/abs/1504.08083",
    ),
    LossSpec(
        name="huber_loss",
        family="regression",
        functional=F.huber_loss,
        module_name="HuberLoss",
        # torch's positional order
        positional=("reduction", "delta", "weight"),
        reference=R.huber_loss,
        summary="0.5 r² below δ, δ(|r| - δ/2) above",
        when_to_use="regression with outliers",
        examples=(Example(S004, **SEED004),),
        variants=({"delta": 0.3},),
        torch_builtin=torch_adapter(TF.huber_loss, supports=("delta",)),
    ),
    LossSpec(
        name="pseudo_huber_loss",
        family="regression",
        functional=F.pseudo_huber_loss,
        module_name="PseudoHuberLoss",
        reference=R.pseudo_huber_loss,
        summary="δ²(sqrt(1 + (r/δ)²) - 1)",
        when_to_use="Huber, smooth everywhere",
        examples=(Example(S004, **SEED004),),
        variants=({"delta": 0.2},),
    ),
    LossSpec(
        name="log_cosh_loss",
        family="regression",
        functional=F.log_cosh_loss,
        module_name="LogCoshLoss",
        reference=R.log_cosh_loss,
        summary="log cosh(r), stable for |r| up to 1e4 and beyond",
        when_to_use="Huber-like, no hyperparameter",
        examples=(Example(S004, **SEED004),),
    ),
    LossSpec(
        name="quantile_loss",
        family="regression",
        functional=F.quantile_loss,
        module_name="QuantileLoss",
        reference=R.quantile_loss,
        summary="pinball max(q r, (q - 1) r), r = y - x",
        when_to_use="prediction intervals, forecasting",
        examples=(Example(S004, **SEED004, options={"quantile": 0.9}),),
        variants=({"quantile": 0.1},),
    ),
)
