"""Generic checks run over every registered loss (DESIGN.md, "Tests")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit
from conftest import (
    SPEC_IDS,
    SPECS,
    WEIGHTED_SPECS,
    assert_close,
    make_inputs,
    make_weight,
    none_shape,
    options_for,
    spec_variants,
)

REDUCTIONS = ("none", "mean", "sum")
SHAPES = [(5, 7), (2, 3, 4), (6,)]


def _weighted_params():
    return [pytest.param(False, id="unweighted"), pytest.param(True, id="weighted")]


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", _weighted_params())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_functional_matches_reference_float64(spec, variant, reduction, weighted, shape):
    if weighted and spec.weight_kind is None:
        pytest.skip(f"{spec.name} takes no weight")
    options, args = options_for(spec, variant, make_inputs(spec, shape))
    if weighted:
        options["weight"] = make_weight(spec, shape)
    got = spec.functional(*args, reduction=reduction, **options)
    want = spec.reference(*args, reduction=reduction, **options)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_normalizer_divides_the_summed_loss(spec):
    args = make_inputs(spec)
    options = {"weight": make_weight(spec, args[0].shape)} if spec.weight_kind else {}
    got = spec.functional(*args, normalizer=3.5, **options)
    want = spec.reference(*args, normalizer=3.5, **options)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    assert_close(spec.functional(*args, normalizer=torch.tensor(3.5), **options), got)
    if spec.none_shape != "sample":  # RMSE's root is taken after the division
        total = spec.functional(*args, reduction="sum", **options)
        assert_close(got, total / 3.5)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_examples_match_reference_and_article(spec):
    for example in spec.examples:
        tensors = example.tensors(torch.float64)
        got = float(spec.functional(*tensors, **example.call_options(torch.float64)))
        want = float(
            spec.reference(example.input, example.target, *example.extra, **example.options)
        )
        assert got == pytest.approx(want, rel=1e-12)
        if example.article_value is not None:
            assert round(got, 4) == pytest.approx(example.article_value, abs=1e-4)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_module_equals_functional(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=torch.float32))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    module = spec.module(**options)
    assert isinstance(module, torch.nn.Module)
    want = spec.functional(*args, **options)
    assert torch.equal(module(*args), want)
    assert torch.equal(losskit.get(spec.name, **options)(*args), want)
    if "weight" in options:  # tensor hyperparameters are buffers: they follow .to()
        assert "weight" in dict(module.named_buffers())
        assert module.to(torch.float64).weight.dtype == torch.float64
    for alias in spec.aliases:
        assert type(losskit.get(alias)) is spec.module


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_output_shape_per_reduction(spec, shape):
    args = make_inputs(spec, shape, torch.float32)
    none = spec.functional(*args, reduction="none")
    assert none.shape == none_shape(spec, args[0].shape)
    assert spec.functional(*args, reduction="mean").shape == ()
    assert spec.functional(*args, reduction="sum").shape == ()


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("bad", ["avg", "elementwise_mean", None, "MEAN"])
def test_invalid_reduction_raises(spec, bad):
    args = make_inputs(spec, dtype=torch.float32)
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'") as info:
        spec.functional(*args, reduction=bad)
    assert str(info.value).startswith(f"{spec.name}:")
    assert isinstance(info.value, losskit.LossInputError)
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'"):
        spec.module(reduction=bad)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_gradcheck_float64(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, (3, 4)))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape)
    x, rest = args[0].requires_grad_(True), args[1:]
    assert torch.autograd.gradcheck(lambda t: spec.functional(t, *rest, **options), (x,))
    assert torch.autograd.gradcheck(
        lambda t: spec.functional(t, *rest, reduction="none", **options), (x,)
    )


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_torch_compile_parity(spec):
    torch._dynamo.reset()
    x, *rest = make_inputs(spec, dtype=torch.float32)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    compiled = torch.compile(spec.functional, fullgraph=True)
    got = compiled(x1, *rest)
    want = spec.functional(x2, *rest)
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    got.backward()
    want.backward()
    assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_extreme_inputs_are_finite(spec, variant, dtype):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=dtype, extreme=True))
    x = args[0].requires_grad_(True)
    for reduction in REDUCTIONS:
        out = spec.functional(x, *args[1:], reduction=reduction, **options)
        assert torch.isfinite(out).all(), (reduction, out)
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(grad).all(), reduction


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_close_to_float32(spec, variant, dtype):
    x, y, *extra = make_inputs(spec, dtype=torch.float32)
    x = x.to(dtype).float()  # the same input values in both precisions
    options, (x, y, *extra) = options_for(spec, variant, (x, y, *extra))
    xh = x.to(dtype).requires_grad_(True)
    xf = x.clone().requires_grad_(True)
    got = spec.functional(xh, y.to(dtype) if y.is_floating_point() else y, *extra, **options)
    want = spec.functional(xf, y, *extra, **options)
    assert got.dtype == torch.float32
    assert_close(got, want, dtype)
    got.backward()
    want.backward()
    assert xh.grad.dtype == dtype
    assert_close(xh.grad.float(), xf.grad, dtype)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_inputs_not_modified(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=torch.float32))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    before = [a.clone() for a in args] + [options.get("weight")]
    args[0].requires_grad_(True)
    spec.functional(*args, **options).backward()
    after = [a.detach() for a in args] + [options.get("weight")]
    for a, b in zip(after, before, strict=True):
        assert a is None or torch.equal(a, b)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_empty_batch_mean_is_zero_with_zero_gradient(spec):
    x, *rest = make_inputs(spec, (4, 3))
    empty = [t[:0] for t in (x, *rest)]
    empty[0].requires_grad_(True)
    out = spec.functional(*empty)
    assert out.item() == 0.0
    out.backward()
    assert empty[0].grad is None or empty[0].grad.numel() == 0


@pytest.mark.parametrize("spec", WEIGHTED_SPECS, ids=[s.name for s in WEIGHTED_SPECS])
def test_all_zero_weight_mean_is_zero_with_zero_gradient(spec):
    x, *rest = make_inputs(spec, dtype=torch.float32)
    x.requires_grad_(True)
    out = spec.functional(x, *rest, weight=torch.zeros_like(make_weight(spec, x.shape)))
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
