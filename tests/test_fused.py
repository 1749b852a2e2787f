"""Closed-form gradients (``functional/_fused.py``): the fast paths give the plain autograd
path's values, gradients and second derivatives, over residuals and logits from tiny to
huge. (Speed is measured by ``python -m benchmarks --suite cpu``, never here.)"""

from __future__ import annotations

import math

import pytest
import torch

import losskit.functional as LF
from losskit.functional import _fused, regression

DTYPES = [torch.float32, torch.float64]


@pytest.fixture
def plain(monkeypatch):
    """Run a call on the plain autograd path (as under torch.compile or torch.func)."""

    def run(fn, *args, **kw):
        with monkeypatch.context() as m:
            m.setattr(_fused, "eager", lambda: False)
            m.setattr(regression, "eager", lambda: False)
            return fn(*args, **kw)

    return run


def _residuals(dtype, n=600):
    g = torch.Generator().manual_seed(0)
    top = 30 if dtype == torch.float64 else 15
    mag = torch.logspace(-top, top, n, dtype=torch.float64)
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    r = torch.cat([mag * sign, torch.zeros(3, dtype=torch.float64), torch.randn(n, generator=g)])
    return r.to(dtype)


def _close(got, want, dtype):
    tol = {torch.float32: 4e-6, torch.float64: 1e-14}[dtype]
    tiny = torch.finfo(dtype).tiny
    rel = (got - want).abs() / want.abs().clamp_min(tiny)
    assert torch.isfinite(got).all()
    assert ((rel <= tol) | ((got - want).abs() <= tiny)).all(), float(rel.max())


POINTWISE = [
    pytest.param(LF.log_cosh_loss, {}, id="log_cosh"),
    pytest.param(LF.pseudo_huber_loss, {"delta": 1.0}, id="pseudo_huber"),
    pytest.param(LF.pseudo_huber_loss, {"delta": 1e-3}, id="pseudo_huber-small-delta"),
    pytest.param(LF.pseudo_huber_loss, {"delta": 40.0}, id="pseudo_huber-large-delta"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, options", POINTWISE)
def test_pointwise_fast_path_is_the_plain_path(plain, fn, options, dtype):
    r = _residuals(dtype)
    y = torch.randn(r.shape, dtype=dtype) * 0.0
    x1 = r.clone().requires_grad_(True)
    y1 = y.clone().requires_grad_(True)
    x2 = r.clone().requires_grad_(True)
    y2 = y.clone().requires_grad_(True)
    fast = fn(x1, y1, reduction="none", **options)
    slow = plain(fn, x2, y2, reduction="none", **options)
    _close(fast.detach(), slow.detach(), dtype)
    w = torch.rand(r.shape, dtype=dtype)
    gx1, gy1 = torch.autograd.grad((fast * w).sum(), (x1, y1))
    gx2, gy2 = torch.autograd.grad((slow * w).sum(), (x2, y2))
    _close(gx1, gx2, dtype)
    assert torch.equal(gy1, -gx1)
    _close(gy1, gy2, dtype)


@pytest.mark.parametrize("fn, options", POINTWISE)
def test_pointwise_second_derivative_is_the_plain_paths(plain, fn, options):
    r = _residuals(torch.float64, 50)
    y = torch.zeros_like(r)
    x1 = r.clone().requires_grad_(True)
    x2 = r.clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(fn(x1, y, **options), x1, create_graph=True)
    (g2,) = torch.autograd.grad(plain(fn, x2, y, **options), x2, create_graph=True)
    torch.testing.assert_close(g1, g2, rtol=1e-14, atol=0)
    (h1,) = torch.autograd.grad(g1.sum(), x1)
    (h2,) = torch.autograd.grad(g2.sum(), x2)
    assert torch.equal(h1, h2)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 1e20, 1e-20], ids=["unit", "huge", "tiny"])
def test_rmse_fast_path_is_the_scaled_path(plain, dtype, scale):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(64, 9, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = (torch.randn(64, 9, generator=g, dtype=torch.float64) * scale).to(dtype)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast, slow = LF.rmse_loss(x1, y), plain(LF.rmse_loss, x2, y)
    want = math.sqrt(((x.double() - y.double()) ** 2).mean().item())
    assert fast.item() == pytest.approx(want, rel=1e-6)
    _close(fast.detach(), slow.detach(), dtype)
    (g1,), (g2,) = torch.autograd.grad(fast, x1), torch.autograd.grad(slow, x2)
    _close(g1, g2, dtype) if scale == 1.0 else torch.testing.assert_close(g1, g2)


def test_rmse_second_derivative_and_perfect_fit(plain):
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 4, dtype=torch.float64)
    assert torch.autograd.gradgradcheck(lambda t: LF.rmse_loss(t, y), (x,))
    out = LF.rmse_loss(y.clone().requires_grad_(True), y)  # 0: the scaled path, zero gradient
    assert out.item() == 0.0


def test_fused_without_grad_and_retained_graph():
    x = torch.randn(10, 3)
    y = torch.randn(10, 3)
    with torch.no_grad():
        a = LF.log_cosh_loss(x.requires_grad_(True), y)
    assert not a.requires_grad
    out = LF.log_cosh_loss(x, y)
    (g1,) = torch.autograd.grad(out, x, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x)
    assert torch.equal(g1, g2)
    torch.testing.assert_close(g1, torch.tanh(x - y) / x.numel())
