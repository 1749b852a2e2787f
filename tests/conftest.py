"""Shared test helpers: the tolerance table (DESIGN.md) and input generation per registry
row, so every test builds its inputs the same way."""

from __future__ import annotations

import os

import pytest
import torch

import losskit

os.environ.setdefault("TRITON_INTERPRET", "1")

# One tolerance table (DESIGN.md): (rtol, atol).
TOL = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-6, 1e-7),
    torch.bfloat16: (5e-2, 5e-3),
    torch.float16: (5e-2, 5e-3),
}

SPECS = list(losskit.REGISTRY.values())
SPEC_IDS = [s.name for s in SPECS]
WEIGHTED_SPECS = [s for s in SPECS if s.weight_kind is not None]


def assert_close(actual, expected, dtype=None, *, rtol=None, atol=None, msg=""):
    dtype = dtype or expected.dtype
    r, a = TOL[dtype]
    torch.testing.assert_close(
        actual,
        expected,
        rtol=rtol if rtol is not None else r,
        atol=atol if atol is not None else a,
        check_dtype=False,
        msg=(lambda m: f"{msg}\n{m}") if msg else None,
    )


def class_dim(shape):
    return 0 if len(shape) == 1 else 1


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


def make_inputs(spec, shape=(5, 7), dtype=torch.float64, *, seed=0, extreme=False):
    """``(input, target, *extra)`` for a registry row, with values of the row's kinds.

    ``extreme``: logits of +-1e4, probabilities exactly 0 and 1, residuals of +-1e4.
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
    else:
        y = torch.randn(shape, generator=g, dtype=torch.float64)
    if y.is_floating_point():
        y = y.to(dtype)
    return (x.to(dtype), y, *extra)


def make_weight(spec, shape, dtype=torch.float64, seed=1):
    """A weight of the row's kind: per element (the input's shape) or per class."""
    shape = input_shape(spec, shape)
    g = torch.Generator().manual_seed(seed)
    if spec.weight_kind == "class":
        shape = (shape[class_dim(shape)],)
    return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)


def options_for(spec, variant, args):
    """A variant's options and inputs; ignore_index variants mark every third target."""
    options = dict(variant)
    args = list(args)
    if options.get("ignore_index") is not None:
        y = args[1].clone()
        y.view(-1)[::3] = options["ignore_index"]
        args[1] = y
    return options, args


def variants(spec):
    return [{}, *spec.variants]


def spec_variants(specs=None):
    return [
        pytest.param(s, v, id=f"{s.name}-{i}")
        for s in specs or SPECS
        for i, v in enumerate(variants(s))
    ]
