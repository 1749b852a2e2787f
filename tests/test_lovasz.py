"""Lovász losses: Berman et al.'s definitions (written here from the paper), the Lovász
gradient, ties, edges, errors, and parity with smp's and kornia's implementations."""

from __future__ import annotations

import importlib.util
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import losskit
from conftest import peer_wheel
from losskit import LossInputError, LossTypeError
from losskit import functional as LF
from losskit import reference as R

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "peers"
SMP_VERSION = "0.6.0"


# ------------------------------------------------------------------ the paper's definitions
# Section 3 of Berman et al.: for a foreground set F and a set M of mispredicted pixels,
# the Jaccard loss is Delta_J(M) = |M| / |F u M|; its Lovász extension at errors m >= 0 is
# the integral over thresholds t of Delta_J({i : m_i >= t}), a sum over the distinct error
# levels. This form needs no sort order, so it holds at ties too.
def jaccard_of_set(mispredicted: set[int], foreground: set[int]) -> float:
    return len(mispredicted) / len(foreground | mispredicted) if mispredicted else 0.0


def lovasz_extension(errors, labels) -> float:
    errors = [float(e) for e in errors]
    foreground = {i for i, y in enumerate(labels) if y == 1}
    levels = sorted({e for e in errors if e > 0}, reverse=True) + [0.0]
    total = 0.0
    for hi, lo in zip(levels, levels[1:], strict=False):
        above = {i for i, e in enumerate(errors) if e >= hi}
        total += (hi - lo) * jaccard_of_set(above, foreground)
    return total


def paper_softmax(probs, labels, *, classes="present", per_image=False, ignore=None):
    """Equation (12) of the paper, per image or over the batch: the mean over classes of
    the Lovász extension at the errors |1[y = c] - p_c|."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    n, k = probs.shape[:2]
    images = [(probs[i].reshape(k, -1), labels[i].reshape(-1)) for i in range(n)]
    if not per_image:
        images = [
            (np.concatenate([p for p, _ in images], 1), np.concatenate([y for _, y in images]))
        ]
    losses = []
    for p, y in images:
        if ignore is not None:
            p, y = p[:, y != ignore], y[y != ignore]
        terms = []
        for c in range(k) if isinstance(classes, str) else classes:
            fg = (y == c).astype(float)
            if classes == "present" and fg.sum() == 0:
                continue
            terms.append(lovasz_extension(np.abs(fg - p[c]), fg))
        losses.append(np.mean(terms) if terms else 0.0)
    return np.asarray(losses) if per_image else np.asarray(losses[0])


def paper_hinge(logits, labels, *, per_image=True, ignore=None):
    """Equation (10): the Lovász extension at the hinge errors max(0, 1 - x (2y - 1))."""
    x, y = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    n = x.shape[0]
    images = [(x[i].reshape(-1), y[i].reshape(-1)) for i in range(n)]
    if not per_image:
        images = [(x.reshape(-1), y.reshape(-1))]
    losses = []
    for xi, yi in images:
        if ignore is not None:
            xi, yi = xi[yi != ignore], yi[yi != ignore]
        losses.append(lovasz_extension(np.maximum(0.0, 1.0 - xi * (2.0 * yi - 1.0)), yi))
    return np.asarray(losses) if per_image else np.asarray(losses[0])


def _softmax(x):
    return torch.softmax(torch.as_tensor(x), 1).numpy()


def _maps(seed, shape=(3, 4, 3, 5), ignore=None, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    n, k, *space = shape
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    y = torch.randint(0, k, (n, *space), generator=g)
    if ignore is not None:
        y.view(n, -1)[:, ::4] = ignore
        y[-1] = ignore  # the last image has no counted pixel
    return x, y


def _masks(seed, shape=(3, 4, 5), ignore=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 2, shape, generator=g)
    if ignore is not None:
        y.view(shape[0], -1)[:, ::3] = ignore
        y[-1] = ignore
    return x, y


# ------------------------------------------------------------------ the definitions
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("classes", ["present", "all", [1, 3]])
@pytest.mark.parametrize("ignore", [None, 255])
def test_softmax_is_the_papers_definition(per_image, classes, ignore):
    x, y = _maps(0, ignore=ignore)
    options = {"per_image": per_image, "classes": classes, "ignore_index": ignore}
    got = LF.lovasz_softmax_loss(x, y, reduction="none", **options)
    want = paper_softmax(
        _softmax(x), y.numpy(), classes=classes, per_image=per_image, ignore=ignore
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    mean = LF.lovasz_softmax_loss(x, y, **options)
    assert float(mean) == pytest.approx(float(np.mean(want)), rel=1e-12, abs=1e-14)
    assert float(LF.lovasz_softmax_loss(x, y, reduction="sum", **options)) == pytest.approx(
        float(np.sum(want)), rel=1e-12, abs=1e-14
    )


@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("ignore", [None, 255])
def test_hinge_is_the_papers_definition(per_image, ignore):
    x, y = _masks(1, ignore=ignore)
    got = LF.lovasz_hinge_loss(x, y, per_image=per_image, ignore_index=ignore, reduction="none")
    want = paper_hinge(x.numpy(), y.numpy(), per_image=per_image, ignore=ignore)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    # float and bool labels are the same labels
    if ignore is None:
        for labels in (y.double(), y.bool()):
            torch.testing.assert_close(
                LF.lovasz_hinge_loss(x, labels, per_image=per_image, reduction="none"), got
            )


def test_the_lovasz_gradient_is_the_jaccard_differences():
    """d loss / d e_(k) = J_k - J_(k-1), with the steps of Algorithm 1 by hand: the
    sorted ground truth (1, 0, 1, 0) gives J = (1/2, 2/3, 1, 1)."""
    x = torch.tensor([[-2.0, 1.5, 0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1, 0, 1, 0]])
    # hinge errors 1 - x s: 3.0, 2.5, 0.5, 0.8 -> order: pixel 0, 1, 3, 2
    loss = LF.lovasz_hinge_loss(x, y)
    # sorted labels 1, 0, 0, 1: J_1 = 1 - 1/2, J_2 = 1 - 1/3, J_3 = 1 - 1/4, J_4 = 1
    jac = np.array([1 / 2, 2 / 3, 3 / 4, 1.0])
    grad_sorted = np.diff(jac, prepend=0.0)
    e_sorted = np.array([3.0, 2.5, 0.8, 0.5])
    assert float(loss) == pytest.approx(float(e_sorted @ grad_sorted), rel=1e-15)
    (gx,) = torch.autograd.grad(loss, x)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    by_pixel = torch.tensor(grad_sorted[[0, 1, 3, 2]])  # pixel 2 is sorted last
    torch.testing.assert_close(gx[0], -signs * by_pixel, rtol=1e-14, atol=1e-15)


def test_reference_steps_are_berman_algorithm_1():
    x = [[[2.0, 0.0, -1.0], [0.0, 1.0, 1.0]]]
    with R.record() as steps:
        R.lovasz_softmax_loss(x, [[0, 1, 0]])
    names = [s.name for s in steps]
    for part in ("errors", "errors sorted", "target in that order", "intersection", "union"):
        assert f"batch, class 0: {part}" in names
    assert "batch, class 1: Lovász gradient" in names
    by_name = {s.name: s.value for s in steps}
    e = by_name["batch, class 0: errors sorted"]
    assert np.all(np.diff(e) <= 0)
    grad = by_name["batch, class 0: Lovász gradient"]
    assert by_name["batch, class 0: Lovász loss"] == pytest.approx(float(e @ grad))
    assert grad.sum() == pytest.approx(1.0)  # J_P = 1: every pixel counted wrong


# ------------------------------------------------------------------ ties and derivatives
def test_value_at_ties_is_the_papers_and_independent_of_pixel_order():
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-2, 3, (2, 3, 12), generator=g).double()  # many equal errors
    y = torch.randint(0, 3, (2, 12), generator=g)
    xb, yb = x[:, 0], (y == 0).long()
    perm = torch.randperm(12, generator=g)
    for per_image in (False, True):
        got = LF.lovasz_softmax_loss(x, y, per_image=per_image, reduction="none")
        want = paper_softmax(_softmax(x), y.numpy(), per_image=per_image)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
        shuffled = LF.lovasz_softmax_loss(x[..., perm], y[:, perm], per_image=per_image)
        assert float(shuffled) == pytest.approx(float(got.mean()), rel=1e-12)
        hinge = LF.lovasz_hinge_loss(xb, yb, per_image=per_image, reduction="none")
        np.testing.assert_allclose(hinge.numpy(), paper_hinge(xb, yb, per_image=per_image))
        hinge_shuffled = LF.lovasz_hinge_loss(xb[:, perm], yb[:, perm], per_image=per_image)
        assert float(hinge_shuffled) == pytest.approx(float(hinge.mean()), rel=1e-12)


@pytest.mark.parametrize("per_image, classes", [(False, "present"), (True, "all")])
def test_gradcheck_and_gradgradcheck_away_from_ties(per_image, classes):
    x, y = _maps(4, shape=(2, 3, 4), ignore=255)
    xs = x.clone().requires_grad_(True)

    def softmax(t):
        return LF.lovasz_softmax_loss(
            t, y, per_image=per_image, classes=classes, ignore_index=255, reduction="none"
        )

    assert torch.autograd.gradcheck(softmax, (xs,))
    assert torch.autograd.gradgradcheck(softmax, (xs,))
    xb, yb = _masks(5, shape=(2, 5), ignore=255)
    xb.requires_grad_(True)

    def hinge(t):
        return LF.lovasz_hinge_loss(t, yb, per_image=per_image, ignore_index=255)

    assert torch.autograd.gradcheck(hinge, (xb,))
    assert torch.autograd.gradgradcheck(hinge, (xb,))


def test_gradient_at_a_tie_is_one_of_the_one_sided_gradients():
    """At a tie the loss has a kink: the gradient returned is that of one order of the
    tied pixels (stable: their index order), a one-sided derivative."""
    y = torch.tensor([[0, 0, 1]])
    x = torch.tensor([[0.5, 0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    (g_tie,) = torch.autograd.grad(LF.lovasz_hinge_loss(x, y), x)
    nudged = x.detach() + torch.tensor([[1e-9, 0.0, 0.0]], dtype=torch.float64)
    nudged.requires_grad_(True)
    (g_side,) = torch.autograd.grad(LF.lovasz_hinge_loss(nudged, y), nudged)
    torch.testing.assert_close(g_tie, g_side)


# ------------------------------------------------------------------ the closed-form gradients
@pytest.fixture
def plain(monkeypatch):
    """Run a call on the plain autograd path (as under torch.compile or torch.func)."""
    from losskit.functional import _fused

    def run(fn, *args, **kw):
        with monkeypatch.context() as m:
            m.setattr(_fused, "eager", lambda: False)
            return fn(*args, **kw)

    return run


def _fast_and_plain(plain, fn, x, y, **options):
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast = fn(x1, y, reduction="none", **options)
    slow = plain(fn, x2, y, reduction="none", **options)
    tol = {torch.float32: 1e-5, torch.float64: 1e-13}[x.dtype]
    torch.testing.assert_close(fast, slow, rtol=tol, atol=tol)
    w = torch.rand(fast.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    (g1,) = torch.autograd.grad((fast * w).sum(), x1)
    (g2,) = torch.autograd.grad((slow * w).sum(), x2)
    assert torch.isfinite(g1).all()
    torch.testing.assert_close(g1, g2, rtol=tol, atol=tol * max(g2.abs().max().item(), 1e-3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_fast_paths_are_the_plain_path(plain, dtype, per_image, ties):
    """The closed forms (per-class sorts of int64 keys for float32, the Lovász gradient
    scattered to each pixel's rank) give the plain path's values and gradients: with
    ties (the same stable order), ignored pixels holding NaN logits, saturated logits,
    absent classes and probabilities."""
    x, y = _maps(11, shape=(3, 4, 5, 6), ignore=255)
    if ties:  # integer logits: many equal probabilities and errors
        x = x.round()
    x[0, :, 0, 0] = float("nan")  # an ignored pixel (every 4th is)
    x[1, 2, 1] = 40.0  # a saturated softmax
    x = x.to(dtype)
    y[:, 0, 1] = 3  # class 3 present in the first column only
    for classes in ("present", "all", [1, 3]):
        _fast_and_plain(
            plain,
            LF.lovasz_softmax_loss,
            x,
            y,
            ignore_index=255,
            per_image=per_image,
            classes=classes,
        )
    clean = torch.nan_to_num(x, nan=0.0)
    _fast_and_plain(plain, LF.lovasz_softmax_loss, clean, y.clamp_max(3), per_image=per_image)
    probs = torch.softmax(clean.double(), 1).to(dtype)
    _fast_and_plain(
        plain, LF.lovasz_softmax_loss, probs, y.clamp_max(3), from_logits=False, per_image=per_image
    )
    xb, yb = _masks(12, shape=(3, 7, 5), ignore=255)
    if ties:
        xb = (xb * 2).round() / 2  # hinges 1 - x s on a grid: ties, and 0 where |x| = 1
    xb[0, 0, 0] = float("inf")  # ignored (every 3rd pixel is)
    xb = xb.to(dtype)
    _fast_and_plain(plain, LF.lovasz_hinge_loss, xb, yb, ignore_index=255, per_image=per_image)
    hard = xb[:2].clamp(-50.0, 50.0)
    _fast_and_plain(plain, LF.lovasz_hinge_loss, hard, yb[:2].clamp_max(1), per_image=per_image)


def test_key_sort_is_the_stable_sort():
    from losskit.functional.lovasz import _sort_order

    g = torch.Generator().manual_seed(13)
    e = torch.randint(0, 5, (3, 1000), generator=g).float() / 4
    e[:, ::7] = -1.0  # uncounted pixels
    e[0, :5] = 0.0
    values, order = _sort_order(e.clone())
    want = torch.sort(e, dim=-1, descending=True, stable=True)
    assert torch.equal(values, want.values) and torch.equal(order, want.indices)


# ------------------------------------------------------------------ edges
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_extreme_logits_are_finite(dtype):
    x, y = _maps(6, ignore=255)
    x = (x.sign() * 1e4).to(dtype).requires_grad_(True)
    xb, yb = _masks(7, ignore=255)
    xb = (xb.sign() * 1e4).to(dtype).requires_grad_(True)
    for per_image in (False, True):
        for classes in ("present", "all"):
            out = LF.lovasz_softmax_loss(
                x, y, ignore_index=255, per_image=per_image, classes=classes
            )
            (grad,) = torch.autograd.grad(out, x)
            assert torch.isfinite(out) and torch.isfinite(grad).all()
        out = LF.lovasz_hinge_loss(xb, yb, ignore_index=255, per_image=per_image)
        (grad,) = torch.autograd.grad(out, xb)
        assert torch.isfinite(out) and torch.isfinite(grad).all()
        assert float(out) == pytest.approx(
            float(paper_hinge(xb.detach().double(), yb, per_image=per_image, ignore=255).mean()),
            rel=1e-2,
        )


def test_all_ignored_gives_zero_with_zero_gradient():
    x, y = _maps(8, shape=(2, 3, 4))
    y = torch.full_like(y, 255)
    x = x.masked_fill(torch.ones_like(x, dtype=torch.bool), float("nan")).requires_grad_(True)
    for per_image in (False, True):
        for classes in ("present", "all", [0]):
            opts = {"per_image": per_image, "classes": classes, "ignore_index": 255}
            out = LF.lovasz_softmax_loss(x, y, **opts)
            assert out.item() == 0.0
            (grad,) = torch.autograd.grad(out, x)
            assert torch.equal(grad, torch.zeros_like(grad))
        xb = torch.full((2, 5), float("nan"), dtype=torch.float64, requires_grad=True)
        out = LF.lovasz_hinge_loss(
            xb, torch.full((2, 5), 255), per_image=per_image, ignore_index=255
        )
        assert out.item() == 0.0
        (grad,) = torch.autograd.grad(out, xb)
        assert torch.equal(grad, torch.zeros_like(grad))


def test_an_image_without_counted_pixels_counts_zero_in_the_mean():
    x, y = _maps(9, shape=(3, 3, 4))
    y[1] = -1
    per = LF.lovasz_softmax_loss(x, y, per_image=True, ignore_index=-1, reduction="none")
    assert per[1].item() == 0.0 and per[0] > 0 and per[2] > 0
    mean = LF.lovasz_softmax_loss(x, y, per_image=True, ignore_index=-1)
    assert mean.item() == pytest.approx(per.sum().item() / 3)  # Berman's mean: N images


def test_ignored_pixels_are_the_same_as_absent_pixels():
    x, y = _maps(10, shape=(2, 3, 6))
    y[:, ::2] = 255
    got = LF.lovasz_softmax_loss(x, y, ignore_index=255)
    want = LF.lovasz_softmax_loss(x[..., 1::2], y[:, 1::2])
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    xb, yb = _masks(11, shape=(2, 6))
    yb[:, ::2] = 255
    got = LF.lovasz_hinge_loss(xb, yb, ignore_index=255, per_image=False)
    want = LF.lovasz_hinge_loss(xb[:, 1::2], yb[:, 1::2], per_image=False)
    assert got.item() == pytest.approx(want.item(), rel=1e-12)


def test_absent_classes():
    """ "present" skips a class absent from the target; "all" counts it, with the
    Jaccard loss of an empty mask: J_k = 1 from the first pixel, so its loss is the
    largest error, the largest probability of the class."""
    x = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 0.5, 1.0], [-1.0, 0.0, 2.5]]], dtype=torch.float64)
    y = torch.tensor([[0, 1, 0]])  # class 2 absent
    p = torch.softmax(x, 1)
    present = LF.lovasz_softmax_loss(x, y, classes="present")
    only01 = LF.lovasz_softmax_loss(x, y, classes=[0, 1])
    assert present.item() == pytest.approx(only01.item(), rel=1e-14)
    every = LF.lovasz_softmax_loss(x, y, classes="all")
    absent = LF.lovasz_softmax_loss(x, y, classes=[2])
    assert absent.item() == pytest.approx(p[0, 2].max().item(), rel=1e-14)
    assert every.item() == pytest.approx((2 * present.item() + absent.item()) / 3, rel=1e-14)
    # an image whose every pixel is one class: "present" averages that class alone
    y0 = torch.zeros(1, 3, dtype=torch.long)
    assert LF.lovasz_softmax_loss(x, y0).item() == pytest.approx(
        LF.lovasz_softmax_loss(x, y0, classes=[0]).item()
    )


def test_one_pixel_and_empty_batches():
    x = torch.tensor([[0.3, -0.2, 1.0]], dtype=torch.float64, requires_grad=True)  # (N, C)
    out = LF.lovasz_softmax_loss(x, torch.tensor([2]))
    # one pixel of class 2: the error of class 2 alone, 1 - p_2
    assert out.item() == pytest.approx(1 - torch.softmax(x, 1)[0, 2].item(), rel=1e-14)
    (grad,) = torch.autograd.grad(out, x)
    assert torch.isfinite(grad).all()
    xb = torch.tensor([0.4, -2.0], dtype=torch.float64)  # two one-pixel images
    hinge = LF.lovasz_hinge_loss(xb, torch.tensor([1, 1]), reduction="none")
    torch.testing.assert_close(hinge, torch.tensor([0.6, 3.0], dtype=torch.float64))
    for per_image in (False, True):
        empty = torch.zeros(0, 3, 4, requires_grad=True)
        out = LF.lovasz_softmax_loss(
            empty, torch.zeros(0, 4, dtype=torch.long), per_image=per_image
        )
        assert out.item() == 0.0
        out.backward()
        no_pixels = torch.zeros(2, 3, 0, requires_grad=True)
        out = LF.lovasz_softmax_loss(no_pixels, torch.zeros(2, 0, dtype=torch.long))
        assert out.item() == 0.0
        out = LF.lovasz_hinge_loss(torch.zeros(0, 5), torch.zeros(0, 5), per_image=per_image)
        assert out.item() == 0.0


def test_from_logits_false_takes_probabilities():
    x, y = _maps(12, ignore=255)
    p = torch.softmax(x, 1)
    want = LF.lovasz_softmax_loss(x, y, ignore_index=255, per_image=True)
    got = LF.lovasz_softmax_loss(p, y, ignore_index=255, per_image=True, from_logits=False)
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert float(
        R.lovasz_softmax_loss(p, y, ignore_index=255, per_image=True, from_logits=False)
    ) == (pytest.approx(want.item(), rel=1e-12))
    with pytest.raises(LossInputError, match=r"input must hold values in \[0, 1\].*from_logits"):
        LF.lovasz_softmax_loss(x, y, ignore_index=255, from_logits=False)


def test_half_precision_returns_float32():
    x, y = _maps(13, dtype=torch.float16)
    out = LF.lovasz_softmax_loss(x, y)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(LF.lovasz_softmax_loss(x.float(), y).item(), rel=1e-6)


def test_torch_compile_with_options():
    x, y = _maps(14, ignore=255)
    xb, yb = _masks(15, ignore=255)
    soft = torch.compile(LF.lovasz_softmax_loss, backend="aot_eager", fullgraph=True)
    hinge = torch.compile(LF.lovasz_hinge_loss, backend="aot_eager", fullgraph=True)
    # the defaults are the contract suite's; here the other per_image, with ignore_index
    opts = {"per_image": True, "ignore_index": 255, "classes": "all"}
    torch.testing.assert_close(soft(x, y, **opts), LF.lovasz_softmax_loss(x, y, **opts))
    opts = {"per_image": False, "ignore_index": 255}
    torch.testing.assert_close(hinge(xb, yb, **opts), LF.lovasz_hinge_loss(xb, yb, **opts))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda x, y: LF.lovasz_softmax_loss(x[:, 0, 0, 0], y[:, 0, 0]),
            LossInputError,
            r"\(N, C, \*\)",
        ),
        (lambda x, y: LF.lovasz_softmax_loss(x, y[:, :2]), LossInputError, "target shape"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y.double()), LossTypeError, "integer class"),
        (
            lambda x, y: LF.lovasz_softmax_loss(x, torch.softmax(x, 1)),
            LossInputError,
            "argmax",
        ),
        (lambda x, y: LF.lovasz_softmax_loss(x, y + 1), LossInputError, "1-based"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y * 0 + 255), LossInputError, "ignore_index=255"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y, classes="some"), LossInputError, "'present'"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y, classes=[]), LossInputError, "non-empty"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y, classes=[4]), LossInputError, "class 4"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y, classes=[0.5]), LossTypeError, "ints"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y, per_image=1), LossTypeError, "True or False"),
        (lambda x, y: LF.lovasz_softmax_loss(x, y, ignore_index=1.5), LossTypeError, "int"),
        (lambda x, y: LF.lovasz_hinge_loss(x[:, 0], y[:, :2]), LossInputError, "does not match"),
        (lambda x, y: LF.lovasz_hinge_loss(x[:, :1], y % 2), LossInputError, r"input\[:, 0\]"),
        (lambda x, y: LF.lovasz_hinge_loss(x[:, 0], y + 1), LossInputError, "labels 0 or 1"),
        (
            lambda x, y: LF.lovasz_hinge_loss(x[:, 0], torch.rand(y.shape, dtype=torch.float64)),
            LossInputError,
            "hard labels",
        ),
        (
            lambda x, y: LF.lovasz_hinge_loss(torch.tensor(1.0), torch.tensor(1.0)),
            LossInputError,
            r"\(N, \*\)",
        ),
        (
            lambda x, y: LF.lovasz_hinge_loss(x[:, 0], y % 2, reduction="avg"),
            LossInputError,
            "reduction",
        ),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, match):
    x, y = _maps(16)
    with pytest.raises(error, match=match) as info:
        call(x, y)
    assert str(info.value).split(":")[0] in ("lovasz_softmax_loss", "lovasz_hinge_loss")


# ------------------------------------------------------------------ explain and plot
def test_explain_shows_the_by_hand_steps():
    e = losskit.explain("lovasz_hinge_loss")
    names = [s.name for s in e.steps]
    assert "image 0: hinge errors" in names and "image 0: Lovász gradient" in names
    assert e.result == pytest.approx(0.9666666666666667)
    assert e.check["losskit_abs_diff"] < 1e-6
    e = losskit.explain("lovasz_softmax", [[[1.0, -1.0], [0.0, 2.0]]], [[0, 1]])
    assert "batch, class 1: Jaccard loss of each prefix" in [s.name for s in e.steps]


def test_plot_curves_on_the_toy_mask():
    from losskit.plot import curve

    # two pixels, each of its true class with probability p: every error is 1 - p, so
    # each class's Lovász loss is 1 - p (softmax) and relu(1 - logit p) (hinge)
    p, loss, grad, label = curve("lovasz_softmax_loss")
    torch.testing.assert_close(loss, 1 - p)
    torch.testing.assert_close(grad, -p * (1 - p))
    p, loss, grad, _ = curve("lovasz_hinge_loss")
    z = torch.log(p) - torch.log1p(-p)
    torch.testing.assert_close(loss, torch.relu(1 - z))
    torch.testing.assert_close(grad, -(z < 1).double())


# ------------------------------------------------------------------ peers
@pytest.fixture(scope="session")
def smp():
    """smp's lovasz.py, loaded by path from its wheel (smp imports timm and torchvision)."""
    wheel = peer_wheel("segmentation-models-pytorch", SMP_VERSION)
    losses = CACHE / f"smp-{SMP_VERSION}-lovasz"
    losses.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for f in ("constants.py", "lovasz.py"):
            (losses / f).write_bytes(z.read(f"segmentation_models_pytorch/losses/{f}"))
    pkg = types.ModuleType("_smplovasz")
    pkg.__path__ = [str(losses)]
    sys.modules["_smplovasz"] = pkg
    for f in ("constants", "lovasz"):
        spec = importlib.util.spec_from_file_location(f"_smplovasz.{f}", losses / f"{f}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return sys.modules["_smplovasz.lovasz"]


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [None, 255])
def test_parity_with_smp_lovasz_loss(smp, per_image, ignore):
    """smp's LovaszLoss is Berman's code: classes="present" (absent classes dropped, as
    losskit's default), softmax inside for mode="multiclass", the hinge for "binary"."""
    x, y = _maps(17, shape=(3, 4, 6, 5), dtype=torch.float32)
    if ignore is not None:
        y.view(3, -1)[:, ::5] = ignore  # smp fails on an all-ignored image (empty tensor)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = LF.lovasz_softmax_loss(x1, y, per_image=per_image, ignore_index=ignore)
    theirs = smp.LovaszLoss("multiclass", per_image=per_image, ignore_index=ignore)(x2, y)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-7)
    # every class present: "all" agrees too
    assert all(len(torch.unique(y[i])) >= 4 for i in range(3))
    every = LF.lovasz_softmax_loss(x, y, per_image=per_image, ignore_index=ignore, classes="all")
    torch.testing.assert_close(every, theirs.detach(), rtol=1e-5, atol=1e-6)

    xb, yb = _masks(18, shape=(3, 6, 5))
    xb = xb.float()
    if ignore is not None:
        yb.view(3, -1)[:, ::4] = ignore
    ours = LF.lovasz_hinge_loss(xb, yb, per_image=per_image, ignore_index=ignore)
    theirs = smp.LovaszLoss("binary", per_image=per_image, ignore_index=ignore)(
        xb.unsqueeze(1), yb.unsqueeze(1)
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_parity_with_kornia():
    """kornia: per image, every class averaged (classes="all", per_image=True), no
    ignore_index; its hinge takes logits (B, 1, H, W) and averages over images."""
    kornia = pytest.importorskip("kornia")
    x, y = _maps(19, shape=(2, 3, 4, 5))
    y[1] = 0  # image 1: classes 1 and 2 absent
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = LF.lovasz_softmax_loss(x1, y, per_image=True, classes="all")
    theirs = kornia.losses.lovasz_softmax_loss(x2, y)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    present = LF.lovasz_softmax_loss(x, y, per_image=True)
    assert present.item() != pytest.approx(theirs.item())  # kornia counts absent classes
    xb, yb = _masks(20, shape=(3, 4, 5))
    ours = LF.lovasz_hinge_loss(xb, yb)
    theirs = kornia.losses.lovasz_hinge_loss(xb.unsqueeze(1), yb)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
