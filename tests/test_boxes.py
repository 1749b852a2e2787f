"""Box losses: parity with torchvision's pure-Python loss files, identities, errors."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch

import losskit
from conftest import peer_wheel
from losskit import LossInputError
from losskit.functional import boxes as F

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "peers"
VERSION = "0.29.1"
FILES = ("_utils.py", "giou_loss.py", "diou_loss.py", "ciou_loss.py")
NAMES = {
    "generalized_box_iou_loss": ("giou_loss", "generalized_box_iou_loss"),
    "distance_box_iou_loss": ("diou_loss", "distance_box_iou_loss"),
    "complete_box_iou_loss": ("ciou_loss", "complete_box_iou_loss"),
}


@pytest.fixture(scope="session")
def tv():
    """torchvision's box loss files, loaded by path (the wheel's compiled ops are not)."""
    wheel = peer_wheel("torchvision", VERSION)
    ops = CACHE / f"torchvision-{VERSION}-ops"
    ops.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for f in FILES:
            (ops / f).write_bytes(z.read(f"torchvision/ops/{f}"))
    pkg = types.ModuleType("_tvpeer")
    pkg.__path__ = []
    utils = types.ModuleType("_tvpeer.utils")
    utils._log_api_usage_once = lambda obj: None
    opsmod = types.ModuleType("_tvpeer.ops")
    opsmod.__path__ = [str(ops)]
    sys.modules.update({"_tvpeer": pkg, "_tvpeer.utils": utils, "_tvpeer.ops": opsmod})
    mods = {}
    for f in FILES:
        name = f"_tvpeer.ops.{f[:-3]}"
        spec = importlib.util.spec_from_file_location(name, ops / f)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods[f[:-3]] = mod
    return mods


def boxes(n, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 5
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 3 + 0.05
    return torch.cat([xy, xy + wh], -1).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", sorted(NAMES))
def test_parity_with_torchvision(tv, name, reduction, dtype):
    mod, fn = NAMES[name]
    peer = getattr(tv[mod], fn)
    a, b = boxes(200, dtype, 1), boxes(200, dtype, 2)
    a1, a2 = a.clone().requires_grad_(), a.clone().requires_grad_()
    ours = getattr(F, name)(a1, b, reduction=reduction)
    theirs = peer(a2, b, reduction=reduction)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(a1.grad, a2.grad, rtol=tol, atol=tol)


def test_iou_loss_matches_torchvision_intersection_union(tv):
    a, b = boxes(100, torch.float64, 3), boxes(100, torch.float64, 4)
    inter, union = tv["_utils"]._loss_inter_union(a, b)
    expected = 1 - inter / (union + 1e-7)
    torch.testing.assert_close(F.box_iou_loss(a, b, reduction="none"), expected)


def test_identities():
    a = boxes(50, torch.float64, 5)
    c = (a[:, :2] + a[:, 2:]) / 2
    wh = torch.rand(50, 2, dtype=torch.float64) * 2 + 0.1
    same_centre = torch.cat([c - wh / 2, c + wh / 2], -1)
    iou = F.box_iou_loss(a, same_centre, reduction="none")
    torch.testing.assert_close(F.distance_box_iou_loss(a, same_centre, reduction="none"), iou)
    # equal aspect ratio: CIoU = DIoU
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    s = torch.rand(50, dtype=torch.float64) + 0.5
    shift = torch.rand(50, 2, dtype=torch.float64)
    scaled = torch.stack([a[:, 0] + shift[:, 0], a[:, 1] + shift[:, 1]], -1)
    scaled = torch.cat([scaled, scaled + torch.stack([w * s, h * s], -1)], -1)
    torch.testing.assert_close(
        F.complete_box_iou_loss(a, scaled, reduction="none"),
        F.distance_box_iou_loss(a, scaled, reduction="none"),
    )
    # one inside the other: GIoU = IoU
    inner = torch.cat([a[:, :2] + 0.01, a[:, 2:] - 0.01], -1)
    torch.testing.assert_close(
        F.generalized_box_iou_loss(a, inner, reduction="none"),
        F.box_iou_loss(a, inner, reduction="none"),
    )


@pytest.mark.parametrize("name", F.__all__)
def test_formats_agree(name):
    a, b = boxes(40, torch.float64, 6), boxes(40, torch.float64, 7)

    def cxcywh(t):
        return torch.cat([(t[:, :2] + t[:, 2:]) / 2, t[:, 2:] - t[:, :2]], -1)

    def xywh(t):
        return torch.cat([t[:, :2], t[:, 2:] - t[:, :2]], -1)

    fn = getattr(F, name)
    ref = fn(a, b, reduction="none")
    torch.testing.assert_close(fn(cxcywh(a), cxcywh(b), box_format="cxcywh", reduction="none"), ref)
    torch.testing.assert_close(fn(xywh(a), xywh(b), box_format="xywh", reduction="none"), ref)


@pytest.mark.parametrize("name", F.__all__)
def test_degenerate_boxes_finite_and_identical_zero(name):
    fn = getattr(F, name)
    x = torch.tensor(
        [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 3.0], [0.0, 0.0, 1.0, 1.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    loss = fn(x, x.detach().clone(), reduction="none")
    assert torch.all(loss.abs() < 1e-6), loss
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()
    y = torch.tensor([[0.0, 0.0, 2.0, 2.0]] * 4, dtype=torch.float64)
    x.grad = None
    loss = fn(x, y, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", F.__all__)
def test_invalid_boxes_raise(name):
    bad = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0], [0.0, 0.0, float("nan"), 1.0]])
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)
    with pytest.raises(LossInputError, match=r"2 input box\(es\) are invalid.*\(1,\)"):
        getattr(F, name)(bad, good)
    with pytest.raises(LossInputError, match="box_format"):
        getattr(F, name)(good, good, box_format="yxyx")


def test_complete_iou_gradient_holds_alpha_constant():
    """CIoU's gradient is that of ``DIoU + alpha v`` with ``alpha`` held at its value (the
    row's ``detached``): float64 gradcheck of that surrogate, alpha computed once."""
    x, y = losskit.spec("complete_box_iou_loss").sample((6, 4), seed=3)

    def v(b):
        w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
        return w, h

    def aspect(p):
        (wp, hp), (wt, ht) = v(p), v(y)
        return 4 / math.pi**2 * (torch.atan(wt / ht) - torch.atan(wp / hp)) ** 2

    with torch.no_grad():
        iou = 1 - F.box_iou_loss(x, y, reduction="none", eps=1e-7)
        a = aspect(x)
        alpha = a / (1 - iou + a + 1e-7)

    def surrogate(p):
        return F.distance_box_iou_loss(p, y, reduction="none") + alpha * aspect(p)

    xg = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(surrogate, (xg,))
    got = torch.autograd.grad(F.complete_box_iou_loss(xg, y, reduction="sum"), xg)[0]
    want = torch.autograd.grad(surrogate(xg).sum(), xg)[0]
    torch.testing.assert_close(got, want)
    assert losskit.spec("complete_box_iou_loss").detached


def test_box_rows_modules_and_weights():
    """The registry rows: modules of torch's naming, a weight per box, 'none' per box."""
    x, y = losskit.spec("box_iou_loss").sample((5, 4), seed=1)
    w = torch.tensor([1.0, 0.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    for name in F.__all__:
        row = losskit.spec(name)
        per_box = row.functional(x, y, reduction="none")
        assert per_box.shape == (5,)
        want = (per_box * w).sum() / w.sum()
        torch.testing.assert_close(row.module(weight=None)(x, y, weight=w), want)
        torch.testing.assert_close(losskit.get(row.module_name)(x, y, weight=w), want)


def _hard_boxes():
    """Box pairs with every tie the closed form must treat as autograd does: identical
    boxes, shared edges, touching and disjoint boxes, zero width or height, a point box
    against itself and against another point."""
    x, y = boxes(120, torch.float64, 11), boxes(120, torch.float64, 12)
    x[:10] = y[:10]
    x[10:20, 0] = y[10:20, 0]
    x[20:30, 2] = y[20:30, 2]
    x[30:40, 2] = y[30:40, 0]  # touching along x
    x[40:50, 1] = y[40:50, 3]  # touching along y
    x[50:55, 2] = x[50:55, 0]  # zero width
    x[55:60, 3] = x[55:60, 1]  # zero height
    x[60:63] = y[60:63] = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    x[63:66] = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    y[63:66] = torch.tensor([2.0, 2.0, 2.0, 2.0], dtype=torch.float64)
    x[66:70] = y[66:70] + 10.0  # far apart
    x[70:80, :2] = y[70:80, :2]
    x[:, 2:] = torch.maximum(x[:, 2:], x[:, :2])
    y[57:60] = x[57:60]  # a line against itself: IoU 1, no IoU gradient
    return x, y


@pytest.mark.parametrize("eps", [1e-7, 1e-3])
@pytest.mark.parametrize("name", F.__all__)
def test_closed_form_matches_plain_path(name, eps, monkeypatch):
    """The closed-form value and gradient (``_BoxRule`` through ``fused``) against the
    plain autograd path in float64, over blocks (block boundaries inside the batch),
    with a weight and an upstream gradient != 1; and the second derivative, which runs
    the plain path."""
    monkeypatch.setattr(F, "_BOX_BLOCK", 16)
    x, y = _hard_boxes()
    kind = {
        "box_iou_loss": "iou",
        "generalized_box_iou_loss": "giou",
        "distance_box_iou_loss": "diou",
        "complete_box_iou_loss": "ciou",
    }[name]
    w = torch.rand(len(x), dtype=torch.float64) + 0.5
    g = torch.randn(len(x), dtype=torch.float64)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast = getattr(F, name)(a, y, eps=eps, reduction="none")
    plain = F._PLAIN[kind](b, y, eps)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    (fast * g).sum().backward()
    (plain * g).sum().backward()
    assert torch.isfinite(a.grad).all()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    # a weighted mean, and the value without a graph
    a.grad = b.grad = None
    getattr(F, name)(a, y, eps=eps, weight=w).backward()
    ((F._PLAIN[kind](b, y, eps) * w).sum() / w.sum()).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(getattr(F, name)(x, y, eps=eps, reduction="none"), plain)
    # double backward differentiates the plain path
    a2, b2 = x[80:].clone().requires_grad_(), x[80:].clone().requires_grad_()
    (ga,) = torch.autograd.grad(getattr(F, name)(a2, y[80:], eps=eps), a2, create_graph=True)
    (gb,) = torch.autograd.grad(F._PLAIN[kind](b2, y[80:], eps).mean(), b2, create_graph=True)
    torch.testing.assert_close(ga, gb)
    torch.testing.assert_close(
        torch.autograd.grad(ga.square().sum(), a2)[0], torch.autograd.grad(gb.square().sum(), b2)[0]
    )


@pytest.mark.parametrize("name", F.__all__)
def test_target_gradient_and_overflowing_sides(name):
    """A target that requires grad takes the plain path (its gradient too); finite boxes
    whose width overflows float32 pass the value check, as before the fast check."""
    x, y = boxes(30, torch.float64, 13), boxes(30, torch.float64, 14)
    fn = getattr(F, name)
    yr = y.clone().requires_grad_()
    fn(x, yr).backward()
    assert yr.grad is not None and torch.isfinite(yr.grad).all()
    big = torch.tensor([[-3e38, 0.0, 3e38, 1.0]])
    fn(big, big.clone())  # sides inf in float32, coordinates finite: no error
    bad = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, float("inf"), 1.0]])
    with pytest.raises(LossInputError, match=r"1 input box\(es\) are invalid.*\(1,\)"):
        fn(bad, bad.abs().nan_to_num(posinf=2.0))
    with pytest.raises(LossInputError, match=r"1 target box\(es\) are invalid"):
        fn(bad[:1].expand(2, 4), torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0]]))
