"""Inputs of the right kinds for any registry row: one generator shared by the tests, the
benchmarks and the plots, so that none of them invents its own."""

from __future__ import annotations

import math

import torch

__all__ = ["sample_inputs", "sample_weight", "none_shape", "num_classes"]

# Classes of the linear layer in ``"linear"`` samples (the shape given is the hidden
# states' ``(*, D)``): odd, and larger than the feature sizes the tests use.
LINEAR_CLASSES = 11


def class_dim(shape):
    return 0 if len(shape) == 1 else 1


def num_classes(spec, shape):
    """The number of classes of a sample of ``shape`` (one class weight each)."""
    if spec.target_kind == "linear":
        return LINEAR_CLASSES
    return shape[class_dim(shape)]


def index_shape(shape):
    return () if len(shape) == 1 else (shape[0], *shape[2:])


def none_shape(spec, shape):
    """The expected shape of ``reduction="none"`` for an input of ``shape``."""
    return {
        "input": tuple(shape),
        "sample": tuple(shape[:1]),
        "index": index_shape(shape),
        "rows": tuple(shape[:-1]),
    }[spec.none_shape]


def input_shape(spec, shape):
    """Detection inputs are (B, A, K): pad lower-rank shapes."""
    if spec.target_kind == "anchors":
        return (*shape, 2, 3)[:3] if len(shape) < 3 else tuple(shape[:3])
    return tuple(shape)


def sample_inputs(spec, shape=(5, 7), dtype=torch.float64, *, seed=0, extreme=False, device="cpu"):
    """``(input, target, *extra)`` for a registry row, with values of the row's kinds.

    ``extreme``: logits of +-1e4, probabilities exactly 0 and 1, residuals of +-1e4.
    For ``"linear"`` rows ``shape`` is the hidden states' ``(*, D)``; the extra input is
    a ``(LINEAR_CLASSES, D)`` weight in ``dtype`` scaled by ``1 / sqrt(D)``, so that
    extreme hidden states of +-1e4 give logits of that order.
    """
    shape = input_shape(spec, shape)
    g = torch.Generator().manual_seed(seed)

    def rand(*s):
        return torch.rand(s or shape, generator=g, dtype=torch.float64)

    def coin():
        return rand() > 0.5

    if spec.input_kind == "probs":
        x = coin().double() if extreme else rand() * 0.96 + 0.02
    elif spec.input_kind == "logprobs":
        scores = torch.where(coin(), 1e4, -1e4) if extreme else 3 * torch.randn(shape, generator=g)
        x = torch.log_softmax(scores.double(), dim=class_dim(shape))
    else:
        scale = 3.0 if spec.input_kind == "logits" else 2.0
        noise = torch.randn(shape, generator=g, dtype=torch.float64) * scale
        x = torch.where(coin(), 1e4, -1e4).double() if extreme else noise

    extra = ()
    if spec.target_kind == "unit":
        y = coin().double()
        if not extreme:  # a few soft targets
            y = torch.where(rand() > 0.7, rand(), y)
    elif spec.target_kind == "index":
        n_classes = shape[class_dim(shape)]
        y = torch.randint(0, n_classes, index_shape(shape), generator=g)
    elif spec.target_kind == "rows":
        y = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dim=-1)
        if extreme:
            y = torch.nn.functional.one_hot(y.argmax(-1), shape[-1]).double()
    elif spec.target_kind == "anchors":
        b, a, k = shape
        y = torch.nn.functional.one_hot(torch.randint(0, k, (b, a), generator=g), k).double()
        state = torch.randint(-1, 2, (b, a), generator=g)
        if state.numel():
            state.view(-1)[0] = 1  # at least one object anchor
        extra = (state,)
    elif spec.target_kind == "linear":
        v, d = LINEAR_CLASSES, shape[-1]
        y = torch.randint(0, v, shape[:-1], generator=g)
        w = torch.randn(v, d, generator=g, dtype=torch.float64) / math.sqrt(max(d, 1))
        extra = (w.to(dtype),)
    else:
        y = torch.randn(shape, generator=g, dtype=torch.float64)
    if y.is_floating_point():
        y = y.to(dtype)
    return tuple(t.to(device) for t in (x.to(dtype), y, *extra))


def sample_weight(spec, shape, dtype=torch.float64, seed=1):
    """A weight of the row's kind: per element (the input's shape) or per class."""
    shape = input_shape(spec, shape)
    g = torch.Generator().manual_seed(seed)
    if spec.weight_kind == "class":
        shape = (num_classes(spec, shape),)
    return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)
