"""Generic checks run over every registered loss (DESIGN.md, "Tests")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit
from conftest import (
    SPEC_IDS,
    SPECS,
    assert_close,
    make_inputs,
    make_weight,
    options_for,
    spec_variants,
)

REDUCTIONS = ("none", "mean", "sum")
SHAPES = [(5, 7), (2, 3, 4), (6,)]


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_functional_matches_reference_float64(spec, variant, reduction, weighted, shape):
    x, y = make_inputs(spec, shape)
    options, y = options_for(spec, variant, x, y)
    if weighted:
        options["weight"] = make_weight(shape)
    got = spec.functional(x, y, reduction=reduction, **options)
    want = spec.reference(x, y, reduction=reduction, **options)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_normalizer_divides_the_weighted_sum(spec):
    x, y = make_inputs(spec)
    w = make_weight(x.shape)
    got = spec.functional(x, y, weight=w, normalizer=3.5)
    want = spec.reference(x, y, weight=w, normalizer=3.5)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    as_tensor = spec.functional(x, y, weight=w, normalizer=torch.tensor(3.5))
    assert_close(as_tensor, got)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_examples_match_reference_and_article(spec):
    for example in spec.examples:
        x, y = example.tensors(torch.float64)
        got = float(spec.functional(x, y, **example.options))
        want = float(spec.reference(example.input, example.target, **example.options))
        assert got == pytest.approx(want, rel=1e-12)
        if example.article_value is not None:
            assert round(got, 4) == pytest.approx(example.article_value, abs=1e-4)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_module_equals_functional(spec, variant):
    x, y = make_inputs(spec, dtype=torch.float32)
    options, y = options_for(spec, variant, x, y)
    module = spec.module(**options)
    assert isinstance(module, torch.nn.Module)
    assert torch.equal(module(x, y), spec.functional(x, y, **options))
    by_name = losskit.get(spec.name, **options)
    assert torch.equal(by_name(x, y), spec.functional(x, y, **options))
    for alias in spec.aliases:
        assert type(losskit.get(alias)) is spec.module


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_output_shape_per_reduction(spec, shape):
    x, y = make_inputs(spec, shape, torch.float32)
    none = spec.functional(x, y, reduction="none")
    assert none.shape == ((shape[0],) if spec.per_sample else x.shape)
    assert spec.functional(x, y, reduction="mean").shape == ()
    assert spec.functional(x, y, reduction="sum").shape == ()


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("bad", ["avg", "elementwise_mean", None, "MEAN"])
def test_invalid_reduction_raises(spec, bad):
    x, y = make_inputs(spec, dtype=torch.float32)
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'") as info:
        spec.functional(x, y, reduction=bad)
    assert spec.name in str(info.value)
    assert isinstance(info.value, losskit.LossInputError)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_gradcheck_float64(spec, variant):
    x, y = make_inputs(spec, (3, 4))
    options, y = options_for(spec, variant, x, y)
    options["weight"] = make_weight((3, 4))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: spec.functional(t, y, **options), (x,))
    assert torch.autograd.gradcheck(
        lambda t: spec.functional(t, y, reduction="none", **options), (x,)
    )


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_torch_compile_parity(spec):
    torch._dynamo.reset()
    x, y = make_inputs(spec, dtype=torch.float32)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    compiled = torch.compile(spec.functional, fullgraph=True)
    got = compiled(x1, y)
    want = spec.functional(x2, y)
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    got.backward()
    want.backward()
    assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_extreme_inputs_are_finite(spec, variant, dtype):
    x, y = make_inputs(spec, dtype=dtype, extreme=True)
    options, y = options_for(spec, variant, x, y)
    x.requires_grad_(True)
    for reduction in REDUCTIONS:
        out = spec.functional(x, y, reduction=reduction, **options)
        assert torch.isfinite(out).all(), (reduction, out)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(grad).all(), reduction


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_close_to_float32(spec, variant, dtype):
    x, y = make_inputs(spec, dtype=torch.float32)
    x, y = x.to(dtype).float(), y.to(dtype).float()  # same values in both precisions
    options, y = options_for(spec, variant, x, y)
    xh = x.to(dtype).requires_grad_(True)
    xf = x.clone().requires_grad_(True)
    got = spec.functional(xh, y.to(dtype), **options)
    want = spec.functional(xf, y, **options)
    assert got.dtype == torch.float32
    assert_close(got, want, dtype)
    got.backward()
    want.backward()
    assert xh.grad.dtype == dtype
    assert_close(xh.grad.float(), xf.grad, dtype)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_inputs_not_modified(spec, variant):
    x, y = make_inputs(spec, dtype=torch.float32)
    options, y = options_for(spec, variant, x, y)
    w = make_weight(x.shape, torch.float32)
    before = (x.clone(), y.clone(), w.clone())
    x.requires_grad_(True)
    spec.functional(x, y, weight=w, **options).backward()
    for a, b in zip((x.detach(), y, w), before, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_empty_mean_is_zero_with_zero_gradient(spec):
    x = torch.zeros(0, 3, requires_grad=True)
    y = torch.zeros(0, 3)
    out = spec.functional(x, y)
    assert out.item() == 0.0
    out.backward()
    assert x.grad.shape == (0, 3)
    # every weight zero: nothing counted either
    x, y = make_inputs(spec, dtype=torch.float32)
    x.requires_grad_(True)
    out = spec.functional(x, y, weight=torch.zeros(x.shape))
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_registry_row_is_complete(spec):
    assert spec.summary and spec.when_to_use and spec.examples
    assert spec.family in {"regression", "binary", "multiclass", "detection"}
    assert spec.plot_axis in {"residual", "p_t"}
    assert getattr(losskit.functional, spec.name) is spec.functional
    assert getattr(losskit.reference, spec.name) is spec.reference
    assert spec.functional.__doc__ and "Example" in spec.functional.__doc__
    assert losskit.spec(spec.name) is spec
