"""Registry rows of the distillation losses (student and teacher logits)."""

from __future__ import annotations

import functools
import inspect

import torch
import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import LOGITS
from .._kinds.distillation import TEACHER
from .._spec import Example, LossSpec


def teacher_after_target(fn):
    """``fn(input, teacher, target=None, **options)`` in the registry's order,
    ``(input, target, teacher, **options)``: input and target first, as for every row,
    the teacher's logits after them as an extra input (``Example.extra``). ``fn`` is kept
    as ``__wrapped__`` (``inspect.unwrap`` gives the public function). Options after the
    inputs and unknown keywords get :func:`losskit._checks.call_forms`'s rules."""
    from .._checks import call_forms

    public = fn if hasattr(fn, "positional_inputs") else call_forms(fn)

    @functools.wraps(fn)
    def call(input, target, teacher=None, *args, **options):
        # teacher=None: a call with the target alone is checked (and refused) by fn
        return public(input, teacher, target, *args, **options)

    params = list(inspect.signature(fn).parameters.values())
    if [p.name for p in params[:3]] != ["input", "teacher", "target"]:
        raise TypeError(f"{fn.__name__} does not take (input, teacher, target)")
    order = [
        params[0],
        params[2].replace(default=inspect.Parameter.empty),
        params[1].replace(default=None),
        *params[3:],
    ]
    call.__signature__ = inspect.signature(fn).replace(parameters=order)
    return call


def torch_distillation(
    input,
    target,
    teacher,
    *,
    temperature=1.0,
    alpha=0.5,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    """The distillation loss from torch's built-ins, as distillation code writes it:
    ``T^2 F.kl_div(log_softmax(x / T), log_softmax(z / T), log_target=True)`` summed over
    the classes, and ``F.cross_entropy`` for the hard label; ``None`` with a normalizer."""
    if normalizer is not None:
        return None
    cd = 0 if input.dim() == 1 else 1
    t = temperature
    kd = (
        t
        * t
        * TF.kl_div(
            TF.log_softmax(input / t, dim=cd),
            TF.log_softmax(teacher / t, dim=cd),
            reduction="none",
            log_target=True,
        ).sum(cd)
    )
    counted = target != ignore_index
    ce = TF.cross_entropy(input, target, ignore_index=ignore_index, reduction="none")
    per = torch.where(counted, (1 - alpha) * ce + alpha * kd, 0.0)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / counted.sum()


# A worked example: two positions, three classes.
_STUDENT = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]
_TEACHER = [[3.0, 1.0, 0.2], [0.0, 3.0, -2.0]]
_SOURCE = "two positions of three classes, student and teacher logits"

ROWS = (
    LossSpec(
        name="distillation_loss",
        family="distillation",
        functional=teacher_after_target(F.distillation_loss),
        module_name="DistillationLoss",
        reference=teacher_after_target(R.distillation_loss),
        summary="Hinton's KD: T² KL(softmax(z/T) ‖ softmax(x/T)), mixed with the hard-label "
        "CE by α; `ignore_index`",
        when_to_use="training a small model on a large one's soft labels",
        examples=(
            Example(
                _SOURCE + ", label = [0, 1], T = 2, alpha = 0.5",
                _STUDENT,
                [0, 1],
                options={"temperature": 2.0, "alpha": 0.5},
                extra=(_TEACHER,),
            ),
        ),
        input_kind=LOGITS,
        target_kind=TEACHER,
        variants=(
            {"temperature": 2.0, "alpha": 1.0},
            {"temperature": 0.5, "alpha": 0.25},
            {"ignore_index": 1, "temperature": 4.0},
        ),
        torch_builtin=torch_distillation,
        paper="https://arxiv.org/abs/1503.02531",
    ),
    LossSpec(
        name="generalized_jsd_loss",
        family="distillation",
        functional=teacher_after_target(F.generalized_jsd_loss),
        module_name="GeneralizedJSDLoss",
        reference=teacher_after_target(R.generalized_jsd_loss),
        summary="GKD's β KL(q ‖ M) + (1 - β) KL(p ‖ M), M = (1 - β) p + β q; β = 0 forward "
        "KL, β = 1 reverse KL (TRL)",
        when_to_use="on-policy distillation of language models (GKD); mode-seeking as β → 1",
        examples=(
            Example(
                _SOURCE + ", label = [0, 1], beta = 0.5",
                _STUDENT,
                [0, 1],
                options={"beta": 0.5},
                extra=(_TEACHER,),
            ),
        ),
        input_kind=LOGITS,
        target_kind=TEACHER,
        variants=(
            {"beta": 0.0},
            {"beta": 1.0},
            {"beta": 0.1, "temperature": 2.0},
            {"ignore_index": 1, "beta": 0.9},
        ),
        paper="https://arxiv.org/abs/2306.13649",
    ),
    LossSpec(
        name="total_variation_loss",
        family="distillation",
        functional=teacher_after_target(F.total_variation_loss),
        module_name="TotalVariationLoss",
        reference=teacher_after_target(R.total_variation_loss),
        summary="½ Σ_c |p_c - q_c| between student and teacher distributions, in [0, 1]",
        when_to_use="distillation with a bounded divergence",
        examples=(
            Example(
                _SOURCE + ", label = [0, 1]",
                _STUDENT,
                [0, 1],
                extra=(_TEACHER,),
            ),
        ),
        input_kind=LOGITS,
        target_kind=TEACHER,
        variants=({"temperature": 2.0}, {"ignore_index": 1}),
        paper="https://arxiv.org/abs/2307.15190",
    ),
)
