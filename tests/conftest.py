"""Shared test helpers: the tolerance table (DESIGN.md) and input generation per registry
row, so every test builds inputs the same way."""

from __future__ import annotations

import os

import pytest
import torch

import losskit

# One tolerance table (DESIGN.md): (rtol, atol).
TOL = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-6, 1e-7),
    torch.bfloat16: (5e-2, 5e-3),
    torch.float16: (5e-2, 5e-3),
}

SPECS = list(losskit.REGISTRY.values())
SPEC_IDS = [s.name for s in SPECS]

os.environ.setdefault("TRITON_INTERPRET", "1")


def assert_close(actual, expected, dtype=None, *, rtol=None, atol=None, msg=""):
    dtype = dtype or expected.dtype
    r, a = TOL[dtype]
    torch.testing.assert_close(
        actual,
        expected,
        rtol=rtol if rtol is not None else r,
        atol=atol if atol is not None else a,
        check_dtype=False,
        msg=lambda m: f"{msg}\n{m}" if msg else m,
    )


def make_inputs(spec, shape=(5, 7), dtype=torch.float64, *, seed=0, extreme=False):
    """(input, target) for a registry row, with values of the row's kinds.

    ``extreme``: logits of +-1e4, probabilities exactly 0 and 1, residuals of +-1e4.
    """
    g = torch.Generator().manual_seed(seed)
    n = 1
    for d in shape:
        n *= d
    if spec.input_kind == "probs":
        x = torch.rand(shape, generator=g, dtype=torch.float64) * 0.96 + 0.02
        if extreme:
            x = (torch.rand(shape, generator=g) > 0.5).double()
    elif spec.input_kind == "logits":
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
        if extreme:
            x = torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, -1e4).double()
    else:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
        if extreme:
            x = torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, -1e4).double()
    if spec.target_kind == "unit":
        y = (torch.rand(shape, generator=g) > 0.5).double()
        if not extreme:  # a few soft targets
            soft = torch.rand(shape, generator=g, dtype=torch.float64)
            y = torch.where(torch.rand(shape, generator=g) > 0.7, soft, y)
    else:
        y = torch.randn(shape, generator=g, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def make_weight(shape, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)


def options_for(spec, variant, x, y):
    """A variant's options, with ignore_index variants marking a few targets as ignored."""
    options = dict(variant)
    if options.get("ignore_index") is not None:
        y = y.clone()
        y.view(-1)[::3] = options["ignore_index"]
    return options, y


def variants(spec):
    return [{}, *spec.variants]


def spec_variants():
    return [
        pytest.param(s, v, id=f"{s.name}-{i}") for s in SPECS for i, v in enumerate(variants(s))
    ]
