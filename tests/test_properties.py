"""Hypothesis properties over the registry: arbitrary shapes and values either give a
number or a named losskit error, never a traceback from inside torch."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import losskit
from conftest import SPEC_IDS, SPECS, make_inputs, make_weight

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes_lists = st.lists(st.integers(0, 4), min_size=0, max_size=3)
shapes = shapes_lists.map(tuple)
finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)
unit = st.floats(0.0, 1.0, width=32)
dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16])
reductions = st.sampled_from(["none", "mean", "sum"])


def _tensor(draw, shape, elements, dtype):
    n = math.prod(shape)
    values = draw(st.lists(elements, min_size=n, max_size=n))
    return torch.tensor(values, dtype=torch.float64).reshape(shape).to(dtype)


@st.composite
def valid_call(draw, spec):
    """A valid call of any shape, dtype and scale; values from ``make_inputs``."""
    # any sizes (0 included); the kind arranges them (classes or features at least 1)
    shape = spec.target_kind.shape_from(draw(shapes_lists), draw(st.integers(1, 5)))
    dtype = draw(dtypes)
    x, y, *extra = make_inputs(spec, shape, seed=draw(st.integers(0, 2**16)))
    if spec.input_kind.scalable:
        # float16 tops out at 65504: keep values where the true gradient is representable
        top = 100.0 if dtype == torch.float16 else 1e4
        x = x * draw(st.sampled_from([1e-3, 1.0, 10.0, top]))
    x = x.to(dtype)
    if y.is_floating_point():
        y = y.to(dtype)
    extra = [e.to(dtype) if e.is_floating_point() else e for e in extra]  # a layer's weight
    options = {"reduction": draw(reductions)}
    if spec.weight_kind and draw(st.booleans()):
        w = make_weight(spec, x.shape, seed=draw(st.integers(0, 100)))
        options["weight"] = (w * draw(st.sampled_from([0.0, 1e-30, 1.0, 10.0]))).to(dtype)
    return (x, y, *extra), options


def _least(spec, x, options):
    """The least value a call may return: 0, or the row's negative ``minimum`` per sample
    (cosine similarity's -1) times the weights, summed for ``"sum"`` (a mean stays above
    it), with a little room for rounding; ``-inf`` bounds nothing."""
    if spec.minimum >= 0 or math.isinf(spec.minimum):
        return spec.minimum
    mass = torch.ones(spec.none_shape(x.shape), dtype=torch.float64)
    if options.get("weight") is not None:
        mass = mass * options["weight"].double()
    if options["reduction"] == "mean":
        return spec.minimum * (1 + 1e-5)
    mass = mass.sum() if options["reduction"] == "sum" else mass
    return spec.minimum * (1 + 1e-5) * mass


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_valid_inputs_give_finite_nonnegative_losses(spec):
    @SETTINGS
    @given(valid_call(spec))
    def check(call):
        (x, *rest), options = call
        x = x.requires_grad_(True)
        out = spec.functional(x, *rest, **options)
        assert torch.isfinite(out).all()
        assert (out >= _least(spec, x, options)).all(), out
        if x.numel():
            (grad,) = torch.autograd.grad(out.sum(), x)
            if x.dtype == torch.float16:
                # torch's BCE gradient at p = 0 or 1 is 1e12 (its eps), beyond float16's
                # range (documented); every element inside the domain must be finite.
                grad = grad[spec.input_kind.interior(x)]
            assert torch.isfinite(grad).all()

    check()


@st.composite
def any_call(draw, spec):
    """Mismatched shapes, any dtype, values outside the valid range, odd options."""
    x_shape = draw(shapes)
    y_shape = draw(st.one_of(st.just(x_shape), shapes))
    anything = st.one_of(st.floats(-1e5, 1e5, width=32), st.just(math.nan))
    x = _tensor(
        draw,
        x_shape,
        anything,
        draw(st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool])),
    )
    y = _tensor(
        draw,
        y_shape,
        anything,
        draw(st.sampled_from([torch.float32, torch.int64, torch.complex64])),
    )
    options = {"reduction": draw(st.sampled_from(["none", "mean", "sum", "avg"]))}
    if draw(st.booleans()):
        options["weight"] = _tensor(draw, draw(shapes), anything, torch.float32)
    if draw(st.booleans()):
        options["normalizer"] = draw(st.one_of(st.floats(-2, 5), st.just(torch.ones(2))))
    for name, value in draw(
        st.dictionaries(
            st.sampled_from(["delta", "beta", "quantile", "gamma", "alpha", "label_smoothing"]),
            st.floats(-2, 3),
            max_size=2,
        )
    ).items():
        options[name] = value
    extra = []
    for e in spec.extra_inputs:  # any shape; integers, or (a layer's weight) any dtype
        choices = [torch.int64] if e.integer else [torch.float32, torch.float64, torch.int64]
        extra.append(_tensor(draw, draw(shapes), anything, draw(st.sampled_from(choices))))
    return (x, y, *extra), options


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_bad_inputs_raise_named_errors_only(spec):
    @SETTINGS
    @given(any_call(spec))
    def check(call):
        args, options = call
        try:
            spec.functional(*args, **options)
        except (losskit.LossInputError, losskit.LossTypeError) as err:
            assert str(err).startswith(f"{spec.name}:"), str(err)
        except TypeError as err:  # an option this loss does not take: Python's own message
            assert "unexpected keyword argument" in str(err), str(err)

    check()
