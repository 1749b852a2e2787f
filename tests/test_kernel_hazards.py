"""The sigmoid kernel's rewritten arithmetic (two exponentials, two logarithms and one
division per element for the focal loss; the pos_weight class from one 64-bit remainder
per program) against the torch path, on the cases the shared kernel tests do not reach:
a pos_weight period of a block or more, a pos_weight broadcast to every element, soft
targets at the extremes of the logits."""

from __future__ import annotations

import warnings

import pytest
import torch

import losskit.functional as LF
from losskit import kernels

pytestmark = pytest.mark.skipif(not kernels.triton_importable(), reason="needs Triton")


def _both(fn, x, y, **options):
    out = []
    for backend in ("torch", "triton"):
        xg = x.detach().clone().requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the interpreter's inf * 0
            loss = fn(xg, y, backend=backend, reduction="none", **options)
        g = torch.randn(loss.shape, generator=torch.Generator().manual_seed(1))
        (loss * g).sum().backward()
        out.append((loss.detach(), xg.grad))
    return out


@pytest.mark.parametrize("fn", [LF.sigmoid_focal_loss, LF.binary_cross_entropy_with_logits])
@pytest.mark.parametrize("classes", [1024, 1500, 3000])
def test_pos_weight_period_of_a_block_or_more(fn, classes):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, classes, generator=g) * 3
    y = (torch.rand(3, classes, generator=g) < 0.3).float()
    pw = torch.rand(classes, generator=g) + 0.5
    (lt, gt), (lk, gk) = _both(fn, x, y, pos_weight=pw)
    torch.testing.assert_close(lk, lt, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gk, gt, rtol=1e-5, atol=1e-6)


def test_pos_weight_broadcast_to_every_element():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 700, generator=g)
    y = (torch.rand(4, 700, generator=g) < 0.5).float()
    pw = torch.rand(4, 1, generator=g) + 0.5  # a general broadcast: one value per element
    (lt, gt), (lk, gk) = _both(LF.sigmoid_focal_loss, x, y, pos_weight=pw)
    torch.testing.assert_close(lk, lt, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gk, gt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_focal_soft_targets_at_extreme_logits(gamma):
    x = torch.tensor([1e4, -1e4, 88.0, -88.0, 30.0, -30.0, 17.0, -17.0, 1e-3, 0.0, -1e-3])
    xs = x.repeat(5)
    ys = torch.tensor([0.0, 1.0, 0.3, 0.99, 0.01]).repeat_interleave(len(x))
    (lt, gt), (lk, gk) = _both(LF.sigmoid_focal_loss, xs, ys, gamma=gamma)
    assert torch.isfinite(lk).all() and torch.isfinite(gk).all()
    torch.testing.assert_close(lk, lt, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gk, gt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", ["sigmoid", "softmax"])
def test_bf16_gradient_is_rounded_once(family):
    # the backward scales the saved bfloat16 gradient by the float32 upstream gradient and
    # rounds once: (g0 x G) in float32, then bfloat16, with g0 the gradient for G = 1
    from losskit.kernels.sigmoid import sigmoid_loss
    from losskit.kernels.softmax import softmax_loss

    g = torch.Generator().manual_seed(4)
    x = (torch.randn(6, 40, generator=g) * 3).to(torch.bfloat16)
    if family == "sigmoid":
        y = (torch.rand(6, 40, generator=g) < 0.3).to(torch.bfloat16)
        opts = dict(weight=None, pos_weight=None, alpha=0.25, gamma=2.0, label_smoothing=0.0,
                    ignore_index=None, focal=True, reduction="none")  # fmt: skip

        def run(xg):
            return sigmoid_loss(xg, y, **opts)[0]
    else:
        y = torch.randint(0, 40, (6,), generator=g)

        def run(xg):
            return softmax_loss(xg, y)[0]

    def grad(upstream):
        xg = x.detach().clone().requires_grad_(True)
        out = run(xg)
        out.backward(upstream(out))
        return xg.grad

    g0 = grad(torch.ones_like)
    big = torch.rand(6, *([40] if family == "sigmoid" else []), generator=g) * 3 + 0.1
    got = grad(lambda out: big.view(out.shape))
    scale = big if family == "sigmoid" else big[:, None]
    want = (g0.float() * scale).to(torch.bfloat16)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    # rounding the upstream gradient first (the old backward) differs
    assert not torch.equal(got, (g0 * scale.to(torch.bfloat16)).to(torch.bfloat16))
