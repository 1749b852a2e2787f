"""The forms of ``linear_cross_entropy`` that hold the logits: probability targets and
K-dimensional layers (torch 2.13's ``linear_weight (V, *out_features, D)``).

A probability target is itself ``(N, V)``, as large as the logits, and a K-dimensional
layer gives every output position a weight slice of its own, so these forms compute the
logits ``x W^T + b`` (softcapped if asked) and take losskit's
:func:`~losskit.functional.cross_entropy` of them: its semantics, errors under the name
``linear_cross_entropy``, and autograd's gradients (twice differentiable). torch's own
reference path (``options=None``) holds them too.
"""

from __future__ import annotations

import math

import torch

from .. import _checks as C
from .multiclass import cross_entropy_as

NAME = "linear_cross_entropy"


def holds_logits(linear_weight, target) -> bool:
    """Whether the call takes this path: a K-dimensional layer or a floating target."""
    k_dim = isinstance(linear_weight, torch.Tensor) and linear_weight.dim() > 2
    probs = isinstance(target, torch.Tensor) and target.is_floating_point()
    return k_dim or probs


def _check(input, linear_weight, target, linear_bias):
    for arg, t in (("input", input), ("linear_weight", linear_weight), ("target", target)):
        C.check_tensor(NAME, arg, t)
    C.check_floating(NAME, "input", input)
    C.check_floating(NAME, "linear_weight", linear_weight)
    if linear_bias is not None:
        C.check_tensor(NAME, "linear_bias", linear_bias)
    for arg, t in (("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if t is not None and t.dtype != input.dtype:
            C.fail(
                NAME,
                f"{arg} must have the input's dtype ({C.dtype_name(input.dtype)}), got "
                f"{C.describe(t)}.",
                f"cast it with {arg}.to(input.dtype).",
                cls=C.LossTypeError,
            )
    if input.dim() == 0:
        C.fail(NAME, "input must be (N, D) or (*, D), got a 0-dim tensor.")
    if linear_weight.dim() < 2:
        C.fail(
            NAME,
            f"linear_weight must be (V, D), or (V, *out_features, D) for a K-dimensional "
            f"loss, got shape {tuple(linear_weight.shape)}.",
        )
    v, *out_features, d_w = linear_weight.shape
    d = input.shape[-1]
    if d_w != d:
        C.fail(
            NAME,
            f"linear_weight of shape {tuple(linear_weight.shape)} takes {d_w} features, but "
            f"input of shape {tuple(input.shape)} has {d} (its last dimension).",
        )
    if v == 0:
        C.fail(NAME, "linear_weight has 0 rows (classes); at least one is needed.")
    if linear_bias is not None and tuple(linear_bias.shape) != (v, *out_features):
        C.fail(
            NAME,
            f"linear_bias must be {(v, *out_features)} (classes, *out_features), got "
            f"{tuple(linear_bias.shape)}.",
        )
    return v, tuple(out_features), d


def linear_cross_entropy_logits(
    input,
    linear_weight,
    target,
    *,
    linear_bias,
    weight,
    ignore_index,
    label_smoothing,
    z_loss,
    softcap,
    reduction,
    normalizer,
    chunk_size,
    backend,
):
    """``cross_entropy(x W^T + b, target)`` for probability targets or a K-dimensional
    layer; arguments as :func:`losskit.functional.linear_cross_entropy`."""
    C.check_reduction(NAME, reduction)
    v, out_features, d = _check(input, linear_weight, target, linear_bias)
    if chunk_size is not None:
        C.fail(
            NAME,
            f"chunk_size={chunk_size!r} applies to class-index targets of a (V, D) layer.",
            "probability targets and K-dimensional layers hold the logits (there are no "
            "chunks to size): drop chunk_size.",
        )
    probs = target.is_floating_point()
    if probs and ignore_index not in (None, -100):
        C.refuse_ignore_index_on_probabilities(
            NAME, ignore_index, "drop ignore_index (give ignored rows a target of zeros instead)."
        )
    ii = -100 if ignore_index is None else ignore_index
    lead = input.shape[:-1]
    if out_features:
        if input.dim() != 2:
            C.fail(
                NAME,
                f"a K-dimensional layer (linear_weight {tuple(linear_weight.shape)}) needs "
                f"input (N, D), got shape {tuple(input.shape)}.",
                "flatten the leading dimensions into N (input.reshape(-1, D)).",
            )
        want = (input.shape[0], v, *out_features) if probs else (input.shape[0], *out_features)
    else:
        want = (*lead, v) if probs else tuple(lead)
    if probs and not out_features and tuple(target.shape) == tuple(lead):
        C.fail(
            NAME,
            f"target must hold integer class indices, got {C.describe(target)} (the shape "
            "of class indices, one per row).",
            f"cast class indices with target.long(); probability targets are {(*lead, v)}.",
            cls=C.LossTypeError,
        )
    if tuple(target.shape) != want:
        what = "probabilities" if probs else "class indices"
        hint = None
        if not probs and tuple(target.shape) == (*lead, v, *out_features)[: target.dim()]:
            hint = "probability targets must be floating: cast with target.float()."
        layer = " (a K-dimensional layer: V, *out_features, D)" if out_features else ""
        C.fail(
            NAME,
            f"target ({what}) must have shape {want} for input {tuple(input.shape)} and "
            f"linear_weight {tuple(linear_weight.shape)}{layer}, got {tuple(target.shape)}.",
            hint,
        )
    x = input.reshape(-1, d) if input.dim() > 1 else input.reshape(1, d)
    logits = x @ linear_weight.reshape(-1, d).T
    if linear_bias is not None:
        logits = logits + linear_bias.reshape(-1)
    logits = logits.reshape(x.shape[0], v, *out_features)
    if softcap is not None:
        cap = C.check_number(NAME, "softcap", softcap, low=0.0, low_open=True, finite=False)
        if not math.isinf(cap):
            logits = cap * torch.tanh(logits / cap)
    y = target
    if probs and not out_features:  # (*, V): one row of classes per token
        y = target.reshape(-1, v) if input.dim() > 1 else target.reshape(1, v)
    elif not out_features:
        y = target.reshape(-1)
    out = cross_entropy_as(
        NAME,
        logits,
        y,
        weight=weight,
        ignore_index=ii,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        target_type="probs" if probs else "index",
        reduction=reduction,
        normalizer=normalizer,
        backend=backend,
    )
    if reduction != "none":
        return out
    if out_features:
        return out
    return out.reshape(lead)
