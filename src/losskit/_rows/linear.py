"""Registry rows of the linear cross entropy losses."""

from __future__ import annotations

import torch.nn.functional as TF

from .. import functional as F
from .. import reference as R
from .._kinds import LINEAR
from .._spec import Example, LossSpec, weight_after_target


def torch_linear_cross_entropy(
    input,
    target,
    linear_weight,
    *,
    reduction="mean",
    linear_bias=None,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    normalizer=None,
    chunk_size=None,
    options=None,
    backend="auto",
):
    """``torch.nn.functional.linear_cross_entropy`` (torch 2.13 and later) on the same
    call; ``None`` on an older torch or with an option torch lacks (``z_loss``,
    ``softcap``, ``normalizer``, ``chunk_size``, ``backend``), and for a class-weighted
    mean of probability targets (torch divides it by N). torch's input is ``(N, D)`` or
    ``(D,)``: leading dimensions are flattened into ``N`` and restored for ``"none"``."""
    if not hasattr(TF, "linear_cross_entropy"):
        return None
    if z_loss or softcap is not None or normalizer is not None or chunk_size is not None:
        return None
    if backend != "auto":
        return None
    probs = target.is_floating_point()
    if probs and weight is not None and reduction == "mean":
        return None
    if probs or linear_weight.dim() > 2:  # torch's shapes as they are
        x, y = input, target
        shape = None
    else:
        x, y = input.reshape(-1, linear_weight.shape[-1]), target.reshape(-1)
        shape = target.shape
    out = TF.linear_cross_entropy(
        x,
        linear_weight,
        y,
        linear_bias=linear_bias,
        weight=weight,
        reduction=reduction,
        ignore_index=None if probs else -100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing,
        options=options,
    )
    if probs and input.dim() > 2 and reduction == "none":
        return out.reshape(input.shape[:-1])
    return out.reshape(shape) if reduction == "none" and shape is not None else out


ROWS = (
    LossSpec(
        name="linear_cross_entropy",
        family="language model",
        functional=weight_after_target(F.linear_cross_entropy),
        module_name="LinearCrossEntropyLoss",
        reference=weight_after_target(R.linear_cross_entropy),
        summary="`cross_entropy(x Wᵀ + b)` without ever holding the (N, V) logits; "
        "`softcap`, `z_loss`, `label_smoothing`",
        when_to_use="LM heads over large vocabularies",
        examples=(
            Example(
                "losskit's docstring: 3 tokens of 2 features, a 3-class linear layer",
                [[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]],
                [0, 1, 2],
                printed_value=1.3383,
                extra=([[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]],),
            ),
            Example(
                "the same tokens and layer, with a bias and label smoothing",
                [[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]],
                [0, 1, 2],
                options={"linear_bias": [0.5, 0.0, -0.5], "label_smoothing": 0.1},
                extra=([[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]],),
            ),
        ),
        target_kind=LINEAR,
        variants=(
            {"label_smoothing": 0.2},
            {"ignore_index": 1},
            {"z_loss": 1e-2, "softcap": 2.0},
            {"chunk_size": (2, 4), "label_smoothing": 0.1, "ignore_index": 0},
        ),
        torch_builtin=torch_linear_cross_entropy,
        paper="https://arxiv.org/abs/2411.09009",
    ),
    # Keras 3's forms that torch lacks: one loss per sample over the last axis, a weight
    # per sample (Keras' sample_weight); inputs of the examples from Keras' docstrings.
)
