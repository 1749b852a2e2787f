"""Trust at the edges (issue 11): saturated logits, weighted means whose weights cancel,
kernels on empty maps and out-of-range targets, and paths without a double backward.

Each class of edge runs over every registry row it applies to, selected by what the row
declares (its kinds, its signature), so new losses inherit the test."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

import losskit.functional as LF
from conftest import SPECS, assert_close, options_for, spec_variants
from losskit import kernels
from losskit._kinds import LOGITS

INF = float("inf")
REDUCTIONS = ("none", "mean", "sum")


@pytest.fixture(autouse=True)
def _quiet_interpreter():
    # Triton's interpreter evaluates both sides of tl.where; inf * 0 there is harmless
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _takes(spec, option):
    return option in inspect.signature(inspect.unwrap(spec.functional)).parameters


# --------------------------------------------------------------------------- saturated logits
def _elementwise_logit_rows():
    """Rows of the sigmoid family: logits with a target of the input's shape and one loss
    per element (``reduction="none"`` keeps the input's shape)."""
    rows = []
    for spec in SPECS:
        if spec.input_kind is not LOGITS:
            continue
        x, y = spec.sample((3, 4), extreme=True)[:2]
        if y.shape == x.shape and y.is_floating_point() and spec.none_shape(x.shape) == x.shape:
            rows.append(spec)
    return rows


SIGMOID_ROWS = _elementwise_logit_rows()


def _saturated(spec, variant, dtype, scale):
    """Hard targets, and logits of ``scale`` times the sign that agrees with each target
    (+ for 1, - for 0): ``scale = inf`` saturates them."""
    options, args = options_for(spec, variant, spec.sample((3, 4), dtype, extreme=True))
    y = args[1]
    args[0] = (torch.where(y > 0.5, 1.0, -1.0) * scale).to(dtype).requires_grad_(True)
    return options, args


def test_the_sigmoid_family_is_found():
    names = {s.name for s in SIGMOID_ROWS}
    assert {"binary_cross_entropy_with_logits", "sigmoid_focal_loss"} <= names
    assert "detection_focal_loss" in names and "cross_entropy" not in names


@pytest.mark.parametrize("spec, variant", spec_variants(SIGMOID_ROWS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_saturated_logits_give_their_limit(spec, variant, dtype):
    """Logits of +-inf give the loss's limit: 0 with a zero gradient where the logit agrees
    with its target (x = +inf, y = 1; x = -inf, y = 0), never NaN; +inf where the target is
    not hard (label smoothing), still with a finite gradient."""
    for reduction in REDUCTIONS:
        options, (x, *rest) = _saturated(spec, variant, dtype, INF)
        out = spec.functional(x, *rest, reduction=reduction, **options)
        (grad,) = torch.autograd.grad(out.sum(), x)
        options, (x_big, *_) = _saturated(spec, variant, dtype, 1e4)
        limit = spec.functional(x_big, *rest, reduction=reduction, **options)
        assert not out.isnan().any(), (reduction, out)
        assert torch.isfinite(grad).all(), (reduction, grad)
        want = torch.where(limit.detach() == 0, 0.0, INF).to(out.dtype)
        assert torch.equal(out.detach(), want), (reduction, out, limit)
        if (limit == 0).all():
            assert torch.equal(grad, torch.zeros_like(grad)), reduction


@pytest.mark.parametrize("fn", [LF.binary_cross_entropy_with_logits, LF.sigmoid_focal_loss])
def test_an_infinite_logit_against_its_target_is_an_infinite_loss(fn):
    """x = -inf with y = 1 (or +inf with y = 0, or any soft target) is an infinite loss,
    not NaN and not a large finite number; the other elements keep their gradients."""
    x = torch.tensor([-INF, INF, INF, 1.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.5, 1.0])
    none = fn(x, y, reduction="none")
    assert torch.equal(torch.isinf(none), torch.tensor([True, True, True, False]))
    for reduction in ("mean", "sum"):
        out = fn(x, y, reduction=reduction)
        assert out.item() == INF
        (grad,) = torch.autograd.grad(out, x)
        (want,) = torch.autograd.grad(fn(x[3:], y[3:], reduction="sum"), x)
        assert grad[3] == want[3] * (0.25 if reduction == "mean" else 1.0)
        assert torch.equal(grad[:3], torch.zeros(3))


KERNEL_SIGMOID_ROWS = [s for s in SIGMOID_ROWS if _takes(s, "backend")]


@pytest.mark.skipif(not kernels.triton_importable(), reason="needs Triton")
@pytest.mark.parametrize("spec, variant", spec_variants(KERNEL_SIGMOID_ROWS))
def test_saturated_logits_on_the_kernel_path(spec, variant):
    """The sigmoid kernel gives the torch path's limits at +-inf: values and gradients."""
    x0 = torch.tensor([[INF, -INF, INF, -INF, 2.0], [INF, -INF, 0.5, -3.0, -INF]])
    y0 = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.3, 0.0, 0.0]])
    options, (x0, y0) = options_for(spec, variant, (x0, y0))
    for reduction in REDUCTIONS:
        got, want = [], []
        for backend, into in (("triton", got), ("torch", want)):
            x = x0.clone().requires_grad_(True)
            out = spec.functional(x, y0, backend=backend, reduction=reduction, **options)
            (grad,) = torch.autograd.grad(out.sum(), x)
            into += [out.detach(), grad]
        assert not got[0].isnan().any() and torch.isfinite(got[1]).all()
        assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
        assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)
