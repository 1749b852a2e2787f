"""Registry rows of torch.nn's margin and embedding losses.

The pair losses take torch's ``(input1, input2, target)``; their rows take the registry's
``(input1, target, input2)`` through :func:`second_input_after_target`, which keeps the
public function (``inspect.unwrap``). The triplet losses' ``(anchor, positive,
negative)`` is already ``(input, target, extra)``: the positive is the row's target.
"""

from __future__ import annotations

import functools
import inspect

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import LOGITS, REAL
from .._kinds.margin import (
    COSINE_PAIRS,
    DISTANCES,
    LABEL_LISTS,
    MARGIN_INDEX,
    MULTI_LABELS,
    RANKED,
    SIGN_LABELS,
    SIMILARITY,
    TRIPLETS,
)
from .._spec import Example, LossSpec

__all__ = ["ROWS", "second_input_after_target", "cosine_distance"]

OURS = "losskit's docstring"


def second_input_after_target(fn):
    """``fn(input1, input2, target, **options)`` in the registry's order ``(input1, target,
    input2, **options)``: the second input is an extra input after the target. Keeps
    ``fn`` as ``__wrapped__`` and reports the reordered signature; options after the
    inputs follow :func:`losskit._checks.call_forms` (torch's positional order)."""

    from .._checks import call_forms

    # torch's positional options and the did-you-mean error (losskit.functional's form)
    public = fn if hasattr(fn, "positional_inputs") else call_forms(fn)

    @functools.wraps(fn)
    def call(input1, target, input2, *args, **options):
        return public(input1, input2, target, *args, **options)

    params = list(inspect.signature(fn).parameters.values())
    if [p.name for p in params[:3]] != ["input1", "input2", "target"]:
        raise TypeError(f"{fn.__name__} does not take (input1, input2, target)")
    order = [params[0], params[2], params[1], *params[3:]]
    call.__signature__ = inspect.signature(fn).replace(parameters=order)
    return call


def cosine_distance(u, v):
    """``1 - cos(u, v)`` over the last dimension: a ``distance_function`` for
    :func:`losskit.functional.triplet_margin_with_distance_loss` (torch's docs' example)."""
    return 1.0 - TF.cosine_similarity(u, v, dim=-1)


def _torch(fn, *, second_input=False, weight_mean_differs=False):
    """torch's ``fn`` on a registry call; ``None`` for losskit's ``normalizer``, for a
    weight torch lacks, and for a weighted mean (torch divides it by N)."""
    takes_weight = "weight" in inspect.signature(fn).parameters

    def builtin(input, target, *extra, reduction="mean", normalizer=None, **options):
        if normalizer is not None:
            return None
        if options.get("weight") is not None and not takes_weight:
            return None
        if not takes_weight:
            options.pop("weight", None)
        if weight_mean_differs and options.get("weight") is not None and reduction == "mean":
            return None
        args = (input, extra[0], target) if second_input else (input, target, *extra)
        return fn(*args, reduction=reduction, **options)

    builtin.__name__ = f"torch_{fn.__name__}"
    return builtin


_SCORES = [0.1, 0.2, 0.4, 0.8]

ROWS = (
    LossSpec(
        name="margin_ranking_loss",
        family="embedding",
        functional=second_input_after_target(F.margin_ranking_loss),
        module_name="MarginRankingLoss",
        positional=("margin", "size_average", "reduce", "reduction"),  # torch's order
        reference=second_input_after_target(R.margin_ranking_loss),
        summary="max(0, -y (x1 - x2) + margin): x1 above x2 for y = 1, below for y = -1",
        when_to_use="learning to rank from pairs of scores (which of two is better)",
        examples=(
            Example(
                OURS + ": x1 = [0.5, 2, -1], x2 = [1, 1, 0], y = [1, -1, -1], margin 0.5",
                [0.5, 2.0, -1.0],
                [1.0, -1.0, -1.0],
                options={"margin": 0.5},
                printed_value=0.8333,
                extra=([1.0, 1.0, 0.0],),
            ),
        ),
        input_kind=REAL,
        target_kind=RANKED,
        variants=({"margin": 0.5},),
        torch_builtin=_torch(TF.margin_ranking_loss, second_input=True),
    ),
    LossSpec(
        name="hinge_embedding_loss",
        family="embedding",
        functional=F.hinge_embedding_loss,
        module_name="HingeEmbeddingLoss",
        positional=("margin", "size_average", "reduce", "reduction"),  # torch's order
        reference=R.hinge_embedding_loss,
        summary="distance x for similar pairs (y = 1), max(0, margin - x) for dissimilar (y = -1)",
        when_to_use="learning embeddings from the distances of labelled pairs (siamese nets)",
        examples=(
            Example(
                OURS + ": distances [0.3, 0.3, 2], labels [1, -1, -1]",
                [0.3, 0.3, 2.0],
                [1.0, -1.0, -1.0],
                printed_value=0.3333,
            ),
        ),
        input_kind=DISTANCES,
        target_kind=SIMILARITY,
        variants=({"margin": 2.0},),
        torch_builtin=_torch(TF.hinge_embedding_loss),
    ),
    LossSpec(
        name="soft_margin_loss",
        family="binary",
        functional=F.soft_margin_loss,
        module_name="SoftMarginLoss",
        positional=("size_average", "reduce", "reduction"),  # torch's order
        reference=R.soft_margin_loss,
        summary="log(1 + exp(-y x)), labels 1/-1: the logistic loss, stable at any score",
        when_to_use="binary classification with -1/1 labels (a smooth SVM)",
        examples=(
            Example(
                OURS + ": scores [2, -1], labels [1, 1]",
                [2.0, -1.0],
                [1.0, 1.0],
                printed_value=0.7201,
            ),
        ),
        input_kind=LOGITS,
        target_kind=SIGN_LABELS,
        torch_builtin=_torch(TF.soft_margin_loss),
    ),
    LossSpec(
        name="multilabel_margin_loss",
        family="binary",
        functional=F.multilabel_margin_loss,
        module_name="MultiLabelMarginLoss",
        positional=("size_average", "reduce", "reduction"),  # torch's order
        reference=R.multilabel_margin_loss,
        summary="(1/C) Σ_{j listed} Σ_{i not} max(0, 1 - (x_j - x_i)); targets list classes, "
        "-1-padded",
        when_to_use="multi-label ranking: every true class above every other by a margin",
        examples=(
            Example(
                "torch's MultiLabelMarginLoss docstring: x = [[0.1, 0.2, 0.4, 0.8]], "
                "y = [[3, 0, -1, 1]] (classes 3 and 0)",
                [_SCORES],
                [[3, 0, -1, 1]],
                printed_value=0.85,
            ),
        ),
        input_kind=REAL,
        target_kind=LABEL_LISTS,
        torch_builtin=_torch(TF.multilabel_margin_loss),
    ),
    LossSpec(
        name="multilabel_soft_margin_loss",
        family="binary",
        functional=F.multilabel_soft_margin_loss,
        module_name="MultiLabelSoftMarginLoss",
        positional=("weight", "size_average", "reduce", "reduction"),  # torch's order
        reference=R.multilabel_soft_margin_loss,
        summary="BCE on logits per class, averaged over the classes (one value per sample)",
        when_to_use="multi-label classification with 0/1 labels (torch's per-sample form)",
        examples=(
            Example(
                OURS + ": logits [[2, -1, 0]], labels [[1, 0, 1]]",
                [[2.0, -1.0, 0.0]],
                [[1, 0, 1]],
                printed_value=0.3778,
            ),
            Example(
                OURS + ": the same with a class weight [1, 2, 0.5]",
                [[2.0, -1.0, 0.0]],
                [[1, 0, 1]],
                options={"weight": [1.0, 2.0, 0.5]},
            ),
        ),
        input_kind=LOGITS,
        target_kind=MULTI_LABELS,
        torch_builtin=_torch(TF.multilabel_soft_margin_loss, weight_mean_differs=True),
    ),
    LossSpec(
        name="cosine_embedding_loss",
        family="embedding",
        functional=second_input_after_target(F.cosine_embedding_loss),
        module_name="CosineEmbeddingLoss",
        positional=("margin", "size_average", "reduce", "reduction"),  # torch's order
        reference=second_input_after_target(R.cosine_embedding_loss),
        summary="1 - cos(x1, x2) for similar pairs (y = 1), max(0, cos - margin) for dissimilar",
        when_to_use="learning embeddings whose directions match for similar pairs",
        examples=(
            Example(
                OURS + ": x1 = [[1, 0], [1, 1]], x2 = [[1, 1], [1, 1]], y = [1, -1]",
                [[1.0, 0.0], [1.0, 1.0]],
                [1.0, -1.0],
                printed_value=0.6464,
                extra=([[1.0, 1.0], [1.0, 1.0]],),
            ),
        ),
        input_kind=REAL,
        target_kind=COSINE_PAIRS,
        variants=({"margin": 0.5}, {"margin": -0.5}),
        torch_builtin=_torch(TF.cosine_embedding_loss, second_input=True),
    ),
    LossSpec(
        name="multi_margin_loss",
        family="multiclass",
        functional=F.multi_margin_loss,
        module_name="MultiMarginLoss",
        positional=(
            "p",
            "margin",
            "weight",
            "size_average",
            "reduce",
            "reduction",
        ),  # torch's order
        reference=R.multi_margin_loss,
        summary="(w_y / C) Σ_{i ≠ y} max(0, margin - x_y + x_i)^p, p = 1 or 2",
        when_to_use="multi-class SVM (Weston-Watkins) on raw scores",
        examples=(
            Example(
                "torch's MultiMarginLoss docstring: x = [[0.1, 0.2, 0.4, 0.8]], y = [3]",
                [_SCORES],
                [3],
                printed_value=0.325,
            ),
            Example(
                "the same with p = 2, margin 0.5 and a class weight",
                [_SCORES],
                [3],
                options={"p": 2, "margin": 0.5, "weight": [1.0, 1.0, 1.0, 2.0]},
            ),
        ),
        input_kind=REAL,
        target_kind=MARGIN_INDEX,
        variants=({"p": 2}, {"margin": 0.5}, {"p": 2, "margin": 0.25}),
        torch_builtin=_torch(TF.multi_margin_loss, weight_mean_differs=True),
        paper="https://www.elen.ucl.ac.be/Proceedings/esann/esannpdf/es1999-461.pdf",
    ),
    LossSpec(
        name="triplet_margin_loss",
        family="embedding",
        functional=F.triplet_margin_loss,
        module_name="TripletMarginLoss",
        positional=(
            "margin",
            "p",
            "eps",
            "swap",
            "size_average",
            "reduce",
            "reduction",
        ),  # torch's order
        reference=R.triplet_margin_loss,
        summary="max(0, d(a, p) - d(a, n) + margin), d the p-norm of a - b + eps; `swap`",
        when_to_use="metric learning from (anchor, positive, negative) triplets",
        examples=(
            Example(
                OURS + ": a = [[0, 0]], p = [[1, 0]], n = [[0, 1.5]], eps = 0",
                [[0.0, 0.0]],
                [[1.0, 0.0]],
                options={"eps": 0.0},
                printed_value=0.5,
                extra=([[0.0, 1.5]],),
            ),
        ),
        input_kind=REAL,
        target_kind=TRIPLETS,
        variants=({"swap": True, "margin": 0.5}, {"p": 1.0}, {"p": 3.0, "eps": 0.0}),
        torch_builtin=_torch(TF.triplet_margin_loss),
        paper="https://www.bmva.org/bmvc/2016/papers/paper119/paper119.pdf",
    ),
    LossSpec(
        name="triplet_margin_with_distance_loss",
        family="embedding",
        functional=F.triplet_margin_with_distance_loss,
        module_name="TripletMarginWithDistanceLoss",
        reference=R.triplet_margin_with_distance_loss,
        summary="max(0, d(a, p) - d(a, n) + margin) with `distance_function` d (default Euclidean)",
        when_to_use="metric learning with a distance of your own (cosine, learned)",
        examples=(
            Example(
                OURS + ": a = [[0, 0]], p = [[1, 0]], n = [[0, 1.5]]",
                [[0.0, 0.0]],
                [[1.0, 0.0]],
                extra=([[0.0, 1.5]],),
            ),
        ),
        input_kind=REAL,
        target_kind=TRIPLETS,
        variants=({"swap": True}, {"distance_function": cosine_distance, "margin": 0.5}),
        torch_builtin=_torch(TF.triplet_margin_with_distance_loss),
    ),
)
