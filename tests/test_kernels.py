"""Triton kernels against the torch path: under TRITON_INTERPRET=1 on CPU (in `make test`),
and on CUDA with `pytest -m gpu`."""

from __future__ import annotations

import warnings

import pytest
import torch

import losskit
import losskit.functional as LF
from conftest import TOL
from losskit import kernels

pytestmark = pytest.mark.skipif(not kernels.triton_importable(), reason="needs Triton")

DEVICES = [
    pytest.param("cpu", id="interpreter"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ],
    ),
]
DTYPES = [torch.float32, torch.bfloat16]


@pytest.fixture(autouse=True)
def _quiet_interpreter():
    # the interpreter evaluates both sides of tl.where; inf * 0 there is harmless
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _tol(dtype):
    # float32 kernels use exp/log in another order than torch: a few ulps apart
    return (
        dict(rtol=1e-5, atol=1e-6)
        if dtype == torch.float32
        else dict(zip(("rtol", "atol"), TOL[dtype], strict=True))
    )


def _run(fn, x, target, backend, reduction, seed=3, **options):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, target, backend=backend, reduction=reduction, **options)
    if reduction == "none":  # an upstream gradient that is not 1
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(x.device)
    else:
        g = torch.tensor(1.7, device=x.device)
    (out * g).sum().backward()
    return out.detach(), x.grad


def _compare(fn, x, target, dtype, **options):
    for reduction in ("none", "mean", "sum"):
        want = _run(fn, x, target, "torch", reduction, **options)
        got = _run(fn, x, target, "triton", reduction, **options)
        assert (
            got[0].dtype == want[0].dtype == (torch.float32 if dtype == torch.bfloat16 else dtype)
        )
        assert got[1].dtype == dtype
        torch.testing.assert_close(got[0], want[0], **_tol(dtype), msg=reduction)
        torch.testing.assert_close(got[1].float(), want[1].float(), **_tol(dtype), msg=reduction)


# ----------------------------------------------------------------------------- sigmoid family
SIGMOID_CASES = [
    (LF.binary_cross_entropy_with_logits, {}),
    (LF.binary_cross_entropy_with_logits, {"label_smoothing": 0.1, "pos_weight": "pw"}),
    (LF.binary_cross_entropy_with_logits, {"ignore_index": -1.0, "weight": "w"}),
    (LF.sigmoid_focal_loss, {}),
    (LF.sigmoid_focal_loss, {"gamma": 0.5, "alpha": None, "weight": "w"}),
    (LF.sigmoid_focal_loss, {"gamma": 0.25, "pos_weight": "pw", "ignore_index": -1.0}),
    (LF.sigmoid_focal_loss, {"gamma": 0.0}),
    (LF.sigmoid_focal_loss, {"gamma": 5.0, "normalizer": 3.0}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "fn, options",
    SIGMOID_CASES,
    ids=[f"{f.__name__}-{i}" for i, (f, _) in enumerate(SIGMOID_CASES)],
)
@pytest.mark.parametrize("shape", [(7, 37), (3, 4, 5)], ids=str)
def test_sigmoid_kernel_matches_torch(fn, options, shape, dtype, device):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g) * 4).to(device, dtype)
    y = (torch.rand(shape, generator=g) > 0.6).float()
    y.view(-1)[::7] = 0.3  # some soft targets
    options = dict(options)
    if "ignore_index" in options:
        y.view(-1)[1::5] = options["ignore_index"]
    if options.get("weight") == "w":
        options["weight"] = (torch.rand(shape, generator=g) + 0.2).to(device)
    if options.get("pos_weight") == "pw":
        options["pos_weight"] = (torch.rand(shape[-1], generator=g) + 0.5).to(device)
    if "normalizer" in options:
        x_all = x
        for backend in ("torch", "triton"):  # normalizer only with "mean"
            out = fn(x_all, y.to(device, dtype), backend=backend, **options)
            assert torch.isfinite(out)
        want = fn(x, y.to(device, dtype), backend="torch", **options)
        got = fn(x, y.to(device, dtype), backend="triton", **options)
        torch.testing.assert_close(got, want, **_tol(dtype))
        return
    _compare(fn, x, y.to(device, dtype), dtype, **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_sigmoid_kernel_extreme_logits_and_all_ignored(gamma, device):
    x = torch.tensor([[1e4, -1e4, 88.0, -88.0, 0.0]], device=device)
    y = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0]], device=device)
    for reduction in ("none", "mean", "sum"):
        got = _run(LF.sigmoid_focal_loss, x, y, "triton", reduction, gamma=gamma)
        want = _run(LF.sigmoid_focal_loss, x, y, "torch", reduction, gamma=gamma)
        assert torch.isfinite(got[0]).all() and torch.isfinite(got[1]).all()
        torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)
    ignored = torch.full_like(y, -1.0)
    out, grad = _run(
        LF.binary_cross_entropy_with_logits, x, ignored, "triton", "mean", ignore_index=-1.0
    )
    assert out.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))


# ----------------------------------------------------------------------------- softmax family
SOFTMAX_CASES = [
    (LF.cross_entropy, {}),
    (LF.cross_entropy, {"weight": "w", "ignore_index": 1, "label_smoothing": 0.2}),
    (LF.cross_entropy, {"label_smoothing": 0.1, "z_loss": 1e-2}),
    (LF.cross_entropy, {"weight": "w", "z_loss": 1e-3, "ignore_index": 0}),
    (LF.softmax_focal_loss, {}),
    (LF.softmax_focal_loss, {"gamma": 0.5, "weight": "w", "ignore_index": 1}),
    (LF.softmax_focal_loss, {"gamma": 5.0}),
    (LF.symmetric_cross_entropy, {"weight": "w", "ignore_index": 1}),
    (LF.symmetric_cross_entropy, {"alpha": 0.1, "beta": 2.0, "log_zero": -6.0}),
    (LF.reverse_cross_entropy, {"log_zero": -2.0, "weight": "w"}),
    (LF.softmax_focal_loss, {"label_smoothing": 0.1}),
    (
        LF.softmax_focal_loss,
        {"gamma": 0.5, "weight": "w", "ignore_index": 1, "label_smoothing": 0.2},
    ),
]


def _index_case(shape, device, dtype, options, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 3).to(device, dtype)
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = torch.randint(0, classes, target_shape, generator=g)
    options = dict(options)
    if "ignore_index" in options and t.dim():
        t.view(-1)[::3] = options["ignore_index"]
    if options.get("weight") == "w":
        options["weight"] = (torch.rand(classes, generator=g) + 0.3).to(device)
    return x, t.to(device), options


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "fn, options",
    SOFTMAX_CASES,
    ids=[f"{f.__name__}-{i}" for i, (f, _) in enumerate(SOFTMAX_CASES)],
)
@pytest.mark.parametrize("shape", [(7, 37), (2, 5, 3, 4), (6,)], ids=str)
def test_softmax_kernel_matches_torch(fn, options, shape, dtype, device):
    x, t, options = _index_case(shape, device, dtype, options)
    _compare(fn, x, t, dtype, **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "fn, options",
    [SOFTMAX_CASES[1], SOFTMAX_CASES[5], SOFTMAX_CASES[7]],
    ids=["cross_entropy", "softmax_focal_loss", "symmetric_cross_entropy"],
)
def test_softmax_kernel_many_classes(fn, options, device):
    # more classes than one block of the class loop (13 x 5000 > 4096)
    x, t, options = _index_case((3, 5000), device, torch.float32, options)
    _compare(fn, x, t, torch.float32, **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "fn, options",
    [SOFTMAX_CASES[i] for i in (1, 2, 6, 10)],
    ids=["cross_entropy", "ce_weight_zloss", "symmetric", "focal_smoothing_weight"],
)
@pytest.mark.parametrize(
    "shape",
    # blocks of 128 pixels that straddle images (150 pixels each); more classes than a
    # 4096-element tile holds at 128 pixels (8 pixels per program)
    [(3, 19, 3, 50), (2, 300, 5, 3)],
    ids=str,
)
def test_softmax_kernel_blocked_pixels(fn, options, shape, device):
    x, t, options = _index_case(shape, device, torch.float32, options, seed=3)
    _compare(fn, x, t, torch.float32, **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "fn, options", SOFTMAX_CASES[::2], ids=[f.__name__ for f, _ in SOFTMAX_CASES[::2]]
)
def test_softmax_kernel_extreme_logits(fn, options, device):
    x = torch.tensor(
        [[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [0.0, 0.0, 0.0], [float("-inf"), 2.0, 1.0]],
        device=device,
    )
    t = torch.tensor([0, 0, 2, 1], device=device)
    options = {k: v for k, v in options.items() if k != "weight"}
    for reduction in ("none", "mean", "sum"):
        got = _run(fn, x, t, "triton", reduction, **options)
        want = _run(fn, x, t, "torch", reduction, **options)
        # finite wherever torch is (a -inf logit with label smoothing is an infinite loss)
        assert torch.equal(torch.isfinite(got[0]), torch.isfinite(want[0]))
        assert torch.isfinite(got[1]).all()
        torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "fn", [LF.cross_entropy, LF.softmax_focal_loss, LF.symmetric_cross_entropy]
)
def test_softmax_kernel_all_ignored(fn, device):
    x = torch.randn(4, 6, device=device, requires_grad=True)
    t = torch.full((4,), -100, device=device)
    out = fn(x, t, backend="triton")
    out.backward()
    assert out.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


# ----------------------------------------------------------------------------- dispatch
def test_backend_torch_and_bad_backend():
    x, t = torch.randn(3, 4), torch.tensor([0, 1, 2])
    assert torch.equal(LF.cross_entropy(x, t, backend="torch"), LF.cross_entropy(x, t))
    with pytest.raises(losskit.LossInputError, match="backend must be one of"):
        LF.cross_entropy(x, t, backend="cuda")


def test_triton_refuses_unsupported_options_and_auto_falls_back():
    x = torch.randn(3, 4)
    probs = torch.softmax(torch.randn(3, 4), 1)
    with pytest.raises(losskit.LossInputError, match="does not support probability targets"):
        LF.cross_entropy(x, probs, backend="triton")
    with pytest.raises(losskit.LossInputError, match="does not support float64"):
        LF.sigmoid_focal_loss(x.double(), torch.rand(3, 4).double(), backend="triton")
    # auto: the torch path, same numbers
    assert torch.equal(LF.cross_entropy(x, probs, backend="auto"), LF.cross_entropy(x, probs))


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(losskit.LossInputError, match="needs a CUDA tensor.*TRITON_INTERPRET=1"):
        LF.cross_entropy(torch.randn(3, 4), torch.tensor([0, 1, 2]), backend="triton")


def test_auto_uses_torch_on_cpu():
    assert not kernels.select("cross_entropy", "auto", torch.zeros(1), None)


def test_kernel_backward_twice_is_refused():
    x = torch.randn(3, 4, requires_grad=True)
    out = LF.cross_entropy(x, torch.tensor([0, 1, 2]), backend="triton")
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_kernel_does_not_modify_inputs():
    x = torch.randn(5, 7)
    t = torch.randint(0, 7, (5,))
    before = x.clone(), t.clone()
    LF.cross_entropy(x.requires_grad_(True), t, backend="triton").backward()
    assert torch.equal(x.detach(), before[0]) and torch.equal(t, before[1])
