"""Registry rows of torch.nn's KL divergence and its Poisson and Gaussian likelihoods."""

from __future__ import annotations

import math
import warnings

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import LOGPROBS, REAL
from .._kinds.torch_nn import COUNT_TARGET, DISTRIBUTION, GAUSSIAN, POISSON_INPUT
from .._spec import Example, LossSpec

_LOGP = [[-0.6931471805599453, -0.6931471805599453], [-0.10536051565782628, -2.3025850929940455]]


def _plain(options, *names):
    """torch has the loss only without losskit's additions (weight, normalizer, broadcast)."""
    extras = {k: v for k, v in options.items() if k not in names}
    return all(v is None or v is False for v in extras.values())


def torch_kl_div(input, target, *, reduction="mean", **options):
    if not _plain(options, "log_target"):
        return None
    with warnings.catch_warnings():  # torch warns that "mean" is not the true KL divergence
        warnings.simplefilter("ignore")
        return TF.kl_div(
            input, target, reduction=reduction, log_target=options.get("log_target", False)
        )


def torch_poisson_nll_loss(input, target, *, reduction="mean", **options):
    if not _plain(options, "log_input", "full", "eps"):
        return None
    kept = {k: options[k] for k in ("log_input", "full", "eps") if k in options}
    return TF.poisson_nll_loss(input, target, reduction=reduction, **kept)


def torch_gaussian_nll_loss(input, target, var, *, reduction="mean", **options):
    if not _plain(options, "full", "eps"):
        return None
    kept = {k: options[k] for k in ("full", "eps") if k in options}
    return TF.gaussian_nll_loss(input, target, var, reduction=reduction, **kept)


ROWS = (
    LossSpec(
        name="kl_div",
        family="distribution",
        functional=F.kl_div,
        module_name="KLDivLoss",
        positional=("size_average", "reduce", "reduction", "log_target"),  # torch's order
        reference=R.kl_div,
        summary="KL(q ‖ p) pointwise, q (log q - x) on log-probabilities x; "
        '`"batchmean"`, `log_target`, 0 log 0 = 0',
        when_to_use="matching a target distribution (distillation, soft labels, VAEs)",
        examples=(
            Example(
                "losskit's docstring: log p of [[0.5, 0.5], [0.9, 0.1]] against q = "
                '[[0.75, 0.25], [1, 0]], reduction="batchmean"',
                _LOGP,
                [[0.75, 0.25], [1.0, 0.0]],
                options={"reduction": "batchmean"},
                printed_value=0.1181,
            ),
        ),
        input_kind=LOGPROBS,
        target_kind=DISTRIBUTION,
        variants=({"log_target": True},),
        torch_builtin=torch_kl_div,
        paper="https://doi.org/10.1214/aoms/1177729694",
        # q log q - q x >= q log q >= -1/e for q in [0, 1] and x <= 0: a pointwise term's
        # least value (a row's sum, KL itself, is >= 0)
        minimum=-math.exp(-1.0),
    ),
    LossSpec(
        name="poisson_nll_loss",
        family="regression",
        functional=F.poisson_nll_loss,
        module_name="PoissonNLLLoss",
        # torch's order
        positional=("log_input", "full", "size_average", "eps", "reduce", "reduction"),
        reference=R.poisson_nll_loss,
        summary="Poisson NLL exp(x) - y x of a log-rate (or x - y log(x + ε) of a rate); "
        "`full` adds Stirling's log y!",
        when_to_use="count targets (events, photons, clicks) with a log-rate output",
        examples=(
            Example(
                "losskit's docstring: log-rates [0, 1, 2], counts [1, 2, 9], full=True",
                [0.0, 1.0, 2.0],
                [1.0, 2.0, 9.0],
                options={"full": True},
            ),
        ),
        input_kind=POISSON_INPUT,
        target_kind=COUNT_TARGET,
        variants=({"log_input": False}, {"full": True}, {"log_input": False, "eps": 0.5}),
        torch_builtin=torch_poisson_nll_loss,
        minimum=-float("inf"),
    ),
    LossSpec(
        name="gaussian_nll_loss",
        family="regression",
        functional=F.gaussian_nll_loss,
        module_name="GaussianNLLLoss",
        positional=("full", "eps", "reduction"),  # F.gaussian_nll_loss's order
        reference=R.gaussian_nll_loss,
        summary="Gaussian NLL (log max(v, ε) + (x - y)² / max(v, ε)) / 2 with predicted "
        "variances `var`",
        when_to_use="regression that also predicts its uncertainty (heteroscedastic)",
        examples=(
            Example(
                "losskit's docstring: means [[0, 1], [2, 0.5]], targets [[0.5, 1], [1, 0]], "
                "one variance per sample [1, 4]",
                [[0.0, 1.0], [2.0, 0.5]],
                [[0.5, 1.0], [1.0, 0.0]],
                extra=([1.0, 4.0],),
            ),
        ),
        input_kind=REAL,
        target_kind=GAUSSIAN,
        variants=({"full": True}, {"eps": 1e-4}),
        torch_builtin=torch_gaussian_nll_loss,
        paper="https://doi.org/10.1109/ICNN.1994.374138",
        minimum=-float("inf"),
    ),
)
