"""Closed-form gradients (``functional/_fused.py``): the fast paths give the plain autograd
path's values, gradients and second derivatives, over residuals and logits from tiny to
huge. (Speed is measured by ``python -m benchmarks --suite cpu``, never here.)"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import losskit.functional as LF
from losskit.functional import _fused, regression

DTYPES = [torch.float32, torch.float64]


@pytest.fixture(autouse=True)
def closed_forms_at_any_size(monkeypatch):
    """The closed forms themselves, on these small inputs too (a small input of a loss
    whose plain path is one torch kernel otherwise runs that kernel)."""
    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", False)


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
    pytest.param(LF.quantile_loss, {"quantile": 0.5}, id="quantile"),
    pytest.param(LF.quantile_loss, {"quantile": 0.9}, id="quantile-0.9"),
    pytest.param(LF.quantile_loss, {"quantile": 0.05}, id="quantile-0.05"),
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


SUMMED = [
    *POINTWISE,
    pytest.param(LF.l1_loss, {}, id="l1"),
    pytest.param(LF.smooth_l1_loss, {"beta": 0.0}, id="smooth_l1-beta0"),
    pytest.param(LF.mse_loss, {}, id="mse"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn, options", SUMMED)
def test_summed_fast_path_is_the_plain_path(plain, fn, options, dtype, reduction):
    """A plain mean or sum runs the rule whole (``_fused.Summed``): the plain path's
    value and gradients, for the input and the target."""
    r = _residuals(dtype)
    y = torch.randn(r.shape, dtype=dtype)
    x1, y1 = (r + y).requires_grad_(True), y.clone().requires_grad_(True)
    x2, y2 = (r + y).requires_grad_(True), y.clone().requires_grad_(True)
    fast = fn(x1, y1, reduction=reduction, **options)
    slow = plain(fn, x2, y2, reduction=reduction, **options)
    assert type(fast.grad_fn).__name__ == "_FusedBackward"
    assert type(slow.grad_fn).__name__ != "_FusedBackward"
    _close(fast.detach(), slow.detach(), dtype)
    g1, g2 = torch.autograd.grad(fast, (x1, y1)), torch.autograd.grad(slow, (x2, y2))
    for a, b in zip(g1, g2, strict=True):
        _close(a, b, dtype)


KERNEL_PAIRS = [
    pytest.param(LF.huber_loss, torch.nn.functional.huber_loss, {"delta": 1.0}, id="huber"),
    pytest.param(LF.huber_loss, torch.nn.functional.huber_loss, {"delta": 0.3}, id="huber-0.3"),
    pytest.param(
        LF.smooth_l1_loss, torch.nn.functional.smooth_l1_loss, {"beta": 1.0}, id="smooth_l1"
    ),
    pytest.param(
        LF.smooth_l1_loss, torch.nn.functional.smooth_l1_loss, {"beta": 0.2}, id="smooth_l1-0.2"
    ),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [*DTYPES, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "broadcast"])
@pytest.mark.parametrize("fn, torch_fn, options", KERNEL_PAIRS)
def test_kernel_pair_is_torchs_bit_for_bit(fn, torch_fn, options, layout, dtype, reduction):
    """A plain mean or sum of a loss torch computes runs torch's value kernel and its
    backward kernel into an empty buffer (``_fused.Kernels``): torch's value and
    both gradients, bit for bit, where the residuals cross the quadratic's bound and
    where one is exactly on it. Half precision is computed in float32 (as everywhere)."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(40, 24, generator=g, dtype=torch.float64) * 2).to(dtype)
    y = (torch.randn(40, 24, generator=g, dtype=torch.float64) * 2).to(dtype)
    bound = next(iter(options.values()))
    x[0, :3] = y[0, :3] + torch.tensor([bound, -bound, 0.0], dtype=dtype)
    if layout == "transposed":
        x, y = x.t(), y.t()
    elif layout == "broadcast":
        y = y[:1]
    runs = []
    for _ in range(2):
        xi, yi = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        runs.append((xi, yi))
    (x1, y1), (x2, y2) = runs
    got = fn(x1, y1, reduction=reduction, broadcast=layout == "broadcast", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the broadcast
        wide = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
        want = torch_fn(x2.to(wide), y2.to(wide), reduction=reduction, **options)
    assert type(got.grad_fn).__name__ == "_FusedBackward"
    assert torch.equal(got, want)
    upstream = torch.tensor(0.7, dtype=want.dtype)
    for a, b in zip(
        torch.autograd.grad(got, (x1, y1), upstream),
        torch.autograd.grad(want, (x2, y2), upstream),
        strict=True,
    ):
        assert a.shape == b.shape and torch.equal(a, b)


SUMMED_TOTALS = [
    pytest.param(
        LF.binary_cross_entropy_with_logits,
        torch.nn.functional.binary_cross_entropy_with_logits,
        lambda g: torch.randn(12, 7, generator=g, dtype=torch.float64) * 3,
        lambda g: torch.rand(12, 7, generator=g, dtype=torch.float64),
        id="bce_with_logits",
    ),
    pytest.param(
        LF.binary_cross_entropy,
        torch.nn.functional.binary_cross_entropy,
        lambda g: torch.rand(12, 7, generator=g, dtype=torch.float64) * 0.98 + 0.01,
        lambda g: torch.rand(12, 7, generator=g, dtype=torch.float64),
        id="bce",
    ),
    pytest.param(
        LF.multi_margin_loss,
        torch.nn.functional.multi_margin_loss,
        lambda g: torch.randn(12, 7, generator=g, dtype=torch.float64),
        lambda g: torch.randint(0, 7, (12,), generator=g),
        id="multi_margin",
    ),
]


@pytest.mark.parametrize("normalizer", [None, 5.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("fn, torch_fn, make_x, make_y", SUMMED_TOTALS)
def test_summed_total_divides_inside_its_node(
    plain_all, fn, torch_fn, make_x, make_y, reduction, normalizer
):
    """A rule that gives the summed loss takes the mean's division into its node
    (``_fused.fused_total``): no division node in the graph, torch's value and gradient;
    a normalizer divides the total as before."""
    if normalizer is not None and reduction == "sum":
        pytest.skip("normalizer goes with reduction='mean' only")
    g = torch.Generator().manual_seed(5)
    x, y = make_x(g), make_y(g)
    x1, x2, x3 = (x.clone().requires_grad_(True) for _ in range(3))
    got = fn(x1, y, reduction=reduction, normalizer=normalizer)
    if reduction == "mean" and normalizer is None:
        assert type(got.grad_fn).__name__ == "_FusedBackward"
    want = torch_fn(x2, y, reduction="sum")
    if reduction == "mean":
        want = want / (normalizer or (x.shape[0] if fn is LF.multi_margin_loss else x.numel()))
    torch.testing.assert_close(got, want, rtol=1e-13, atol=0)
    g1, g2 = torch.autograd.grad(got, x1)[0], torch.autograd.grad(want, x2)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-15)
    # the first derivative with a graph: the plain path's
    slow = plain_all(fn, x3, y, reduction=reduction, normalizer=normalizer)
    assert type(slow.grad_fn).__name__ != "_FusedBackward"
    (g3,) = torch.autograd.grad(slow, x3, create_graph=True)
    fast = fn(x1, y, reduction=reduction, normalizer=normalizer)
    (g4,) = torch.autograd.grad(fast, x1, create_graph=True)
    torch.testing.assert_close(g4, g3, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fn, torch_fn, options", KERNEL_PAIRS)
def test_kernel_pair_second_derivative_and_retained_graph(fn, torch_fn, options):
    """Double backward is torch's (the plain path is its kernel); a retained graph's second
    backward gives the first one's gradient again."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(30, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    b = x.detach().clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(fn(x, y, **options), x, create_graph=True)
    (g2,) = torch.autograd.grad(torch_fn(b, y, **options), b, create_graph=True)
    assert torch.equal(g1, g2)
    u = torch.randn(30, generator=g, dtype=torch.float64)
    assert torch.equal(torch.autograd.grad(g1, x, u)[0], torch.autograd.grad(g2, b, u)[0])
    out = fn(x, y, reduction="sum", **options)
    first = torch.autograd.grad(out, x, retain_graph=True)[0]
    assert torch.equal(torch.autograd.grad(out, x)[0], first)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_log_cosh_without_large_residuals_is_the_plain_path(plain, dtype, reduction):
    """No |r| past 20 (on CPU): the rule skips its clamp; the same value and gradient."""
    r = torch.cat([torch.linspace(-20, 20, 401, dtype=dtype), torch.zeros(3, dtype=dtype)])
    r = torch.cat([r, torch.logspace(-30, 1, 64, dtype=torch.float64).to(dtype)])
    x1, x2 = r.clone().requires_grad_(True), r.clone().requires_grad_(True)
    fast = LF.log_cosh_loss(x1, torch.zeros_like(r), reduction=reduction)
    slow = plain(LF.log_cosh_loss, x2, torch.zeros_like(r), reduction=reduction)
    _close(fast.detach(), slow.detach(), dtype)
    _close(torch.autograd.grad(fast.sum(), x1)[0], torch.autograd.grad(slow.sum(), x2)[0], dtype)


@pytest.mark.parametrize("fn, options", POINTWISE)
def test_pointwise_second_derivative_is_the_plain_paths(plain, fn, options):
    r = _residuals(torch.float64, 50)
    y = torch.zeros_like(r)
    x1 = r.clone().requires_grad_(True)
    x2 = r.clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(fn(x1, y, **options), x1, create_graph=True)
    (g2,) = torch.autograd.grad(plain(fn, x2, y, **options), x2, create_graph=True)
    torch.testing.assert_close(g1, g2, rtol=1e-14, atol=0)
    if not g2.requires_grad:  # piecewise linear (quantile): the second derivative is 0
        assert not g1.requires_grad
        return
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


@pytest.fixture
def plain_all(monkeypatch):
    """The plain autograd path of every fast path (eager() false everywhere)."""
    from losskit.functional import _sigmoid, binary, detection, distributions, keras, multilabel

    def run(fn, *args, **kw):
        with monkeypatch.context() as m:
            modules = (_fused, regression, _sigmoid, binary, detection, distributions, keras)
            for mod in (*modules, multilabel):
                m.setattr(mod, "eager", lambda: False)
            return fn(*args, **kw)

    return run


def _fast_and_plain(plain_all, fn, inputs, wrt=(0,), **options):
    """``fn(*inputs, **options)`` and the gradients of ``sum(value * u)`` (``u`` fixed
    uniform weights) with respect to the inputs at positions ``wrt``, on the closed form's
    path and on the plain autograd path: two tuples ``(value, *grads)``."""
    results = []
    for run in (lambda f, *a, **k: f(*a, **k), plain_all):
        args = [t.clone().requires_grad_(True) if i in wrt else t for i, t in enumerate(inputs)]
        value = run(fn, *args, **options)
        u = torch.rand(value.shape, generator=torch.Generator().manual_seed(1), dtype=value.dtype)
        results.append((value, *torch.autograd.grad((value * u).sum(), [args[i] for i in wrt])))
    return results


def _compare(plain_all, fn, x, rest, dtype, value_atol=None, grad_atol=0.0, **options):
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast = fn(x1, *rest, reduction="none", **options)
    slow = plain_all(fn, x2, *rest, reduction="none", **options)
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
    # values: relative where they are not tiny (the plain path is the less exact one)
    atol = tol * 1e-3 if value_atol is None else value_atol
    torch.testing.assert_close(fast, slow, rtol=tol, atol=atol)
    w = torch.rand(fast.shape, dtype=dtype)
    (g1,) = torch.autograd.grad((fast * w).sum(), x1)
    (g2,) = torch.autograd.grad((slow * w).sum(), x2)
    assert torch.isfinite(g1).all()
    torch.testing.assert_close(g1, g2, rtol=tol, atol=max(tol * g2.abs().max().item(), grad_atol))
    return x1, x2


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 1e4])
@pytest.mark.parametrize("gamma", [2.0, 0.5, 1.0, 3.7])
def test_softmax_focal_fast_path_is_the_plain_path(plain_all, dtype, scale, gamma):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 7, generator=g, dtype=dtype) * scale
    t = torch.randint(0, 7, (64,), generator=g)
    _compare(plain_all, LF.softmax_focal_loss, x, (t,), dtype, gamma=gamma)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 40.0])
def test_softmax_focal_fast_path_on_maps_weights_and_ignored(plain_all, dtype, scale):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, 4, generator=g, dtype=dtype) * scale
    t = torch.randint(0, 5, (2, 3, 4), generator=g)
    t[0, 0, 0] = -100
    x[0, :, 0, 0] = float("nan")  # an ignored pixel: inert
    w = torch.rand(5, generator=g, dtype=dtype)
    _compare(plain_all, LF.softmax_focal_loss, x, (t,), dtype, weight=w)
    masked = torch.randn(4, 3, generator=g, dtype=dtype)
    masked[0, 1] = float("-inf")  # a masked class that is not the target
    _compare(plain_all, LF.softmax_focal_loss, masked, (torch.tensor([0, 1, 2, 0]),), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 1e4])
@pytest.mark.parametrize("gamma", [2.0, 0.5, 1.0, 3.7])
@pytest.mark.parametrize(
    "target", ["index smoothed", "index smoothed weighted ignored", "probs", "probs smoothed"]
)
def test_softmax_focal_every_class_weighted_fast_path_is_the_plain_path(
    plain_all, dtype, scale, gamma, target
):
    """The closed form where the target weighs every class (label smoothing, probability
    targets): value and gradient of the plain path, rows and maps, and a retained
    graph's second backward."""
    g = torch.Generator().manual_seed(4)
    for shape in [(64, 7), (2, 7, 3, 4)]:
        x = torch.randn(shape, generator=g, dtype=dtype) * scale
        options = {"gamma": gamma}
        if "smoothed" in target:
            options["label_smoothing"] = 0.15
        if target.startswith("index"):
            t = torch.randint(0, 7, (shape[0], *shape[2:]), generator=g)
            if "ignored" in target:
                t.view(-1)[::5] = -100
                options["weight"] = torch.rand(7, generator=g, dtype=dtype) + 0.1
        else:
            t = torch.softmax(torch.randn(shape, generator=g, dtype=dtype) * 2, 1)
        x1, _ = _compare(plain_all, LF.softmax_focal_loss, x, (t,), dtype, **options)
        out = LF.softmax_focal_loss(x1, t, reduction="none", **options)
        assert out.grad_fn.name() == "_FusedBackward"
        up = torch.rand(out.shape, generator=g, dtype=dtype)
        (g1,) = torch.autograd.grad(out, x1, up, retain_graph=True)
        g1 = g1.clone()
        (g2,) = torch.autograd.grad(out, x1, up)
        assert torch.equal(g1, g2)


@pytest.mark.parametrize("layout", ["rows", "map"])
def test_softmax_focal_top_class_keeps_relative_precision(layout):
    """p_t near 1: the loss is about (1 - p_t)^3; the fast path takes 1 - p_t from the
    other classes' sum, exact in float32 where log_softmax's is not. The map (classes in
    dimension 1) takes exp(x - max) by exp2 (``_math.exp_of_difference_``), within a few
    ulps of it here."""
    x = torch.tensor([[12.0, -3.0, -4.0], [20.0, 0.0, 1.0]])
    t = torch.tensor([0, 0])
    if layout == "map":  # the same logits as (1, 3, 2, 1)
        x, t = x.T.reshape(1, 3, 2, 1).contiguous(), t.reshape(1, 2, 1)
    want = LF.softmax_focal_loss(x.double(), t, reduction="none")
    got = LF.softmax_focal_loss(x, t, reduction="none")
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=0)


FOCAL_BINARY = [
    *[
        pytest.param(LF.sigmoid_focal_loss, o, id=f"sigmoid_focal-{o}")
        for o in (
            {},
            {"gamma": 1.0},
            {"gamma": 3.5, "alpha": 0.7},
            {"alpha": None},
            {"gamma": 0.5, "alpha": 0.75},  # below 1: (1 - p_t)^(gamma - 1) unbounded
            {"gamma": 0.1, "alpha": None},
        )
    ],
    *[  # pos_weight per class, below and above 1, and one for all
        pytest.param(LF.sigmoid_focal_loss, o, id=f"sigmoid_focal-pos_weight-{i}")
        for i, o in enumerate(
            (
                {"pos_weight": torch.tensor([0.5, 1.0, 2.0, 3.0, 0.1, 1.5, 10.0])},
                {"pos_weight": torch.tensor(4.0), "gamma": 1.0, "alpha": None},
            )
        )
    ],
    *[
        pytest.param(LF.poly1_focal_loss, o, id=f"poly1_focal-{o}")
        for o in (
            {},
            {"gamma": 1.0, "epsilon": -0.5},
            {"gamma": 3.0, "alpha": 0.7, "epsilon": 2.0},
            {"gamma": 0.5, "epsilon": 2.0},
        )
    ],
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])
@pytest.mark.parametrize("fn, options", FOCAL_BINARY)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_binary_focal_fast_paths_are_the_plain_path(plain_all, dtype, scale, fn, options, soft):
    """The sigmoid and poly-1 focal closed forms give the plain path's value and gradient."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(50, 7, generator=g, dtype=dtype) * scale
    y = torch.rand(50, 7, generator=g, dtype=dtype)
    y = y if soft else (y < 0.3).to(dtype)
    _compare(plain_all, fn, x, (y,), dtype, **options)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 1e4])
@pytest.mark.parametrize(
    "fn, options",
    [
        (LF.generalized_cross_entropy, {"q": 0.7}),
        (LF.generalized_cross_entropy, {"q": 1e-3}),
        (LF.generalized_cross_entropy, {"q": 1.0}),
        (LF.poly1_cross_entropy, {"epsilon": 1.0}),
        (LF.poly1_cross_entropy, {"epsilon": -1.0}),
        (LF.poly1_cross_entropy, {"epsilon": 2.5}),
    ],
    ids=["gce-0.7", "gce-1e-3", "gce-1", "poly1-1", "poly1--1", "poly1-2.5"],
)
def test_target_probability_fast_paths_are_the_plain_path(plain_all, dtype, scale, fn, options):
    """Losses of the target class's probability alone (one softmax, the gradient
    f(p_y) (p - onehot)): the plain log_softmax path's values and gradients, with class
    weights and ignored targets, at logits up to 1e4."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(64, 7, generator=g, dtype=dtype) * scale
    t = torch.randint(0, 7, (64,), generator=g)
    t[::9] = -100
    w = torch.rand(7, generator=g, dtype=dtype) + 0.2
    # float32 near p_y = 1: both paths round the loss (about 1 - p_y) to float32's ulp;
    # at logits of 1e4 a misclassified row's gradient p_y^q (p - onehot) underflows, and
    # the two paths differ only below 1e-150
    atol = 1e-7 if dtype == torch.float32 else None
    both = dict(value_atol=atol, grad_atol=1e-150, **options)
    _compare(plain_all, fn, x, (t,), dtype, **both)
    _compare(plain_all, fn, x, (t,), dtype, weight=w, **both)


def test_sigmoid_focal_infinite_logits_on_the_fast_path():
    x = torch.tensor([float("inf"), float("-inf"), float("inf"), 0.5], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    none = LF.sigmoid_focal_loss(x, y, reduction="none")
    assert none[:2].tolist() == [0.0, 0.0] and none[2].item() == float("inf")
    (grad,) = torch.autograd.grad(LF.sigmoid_focal_loss(x[[0, 1, 3]], y[[0, 1, 3]]), x)
    assert grad[:2].tolist() == [0.0, 0.0] and torch.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"gamma": 3.5, "alpha": 0.7},
        {"alpha": None},
        {"pos_weight": torch.tensor(2.5)},
        {"gamma": 0.5},
    ],
    ids=str,
)
def test_sigmoid_focal_fast_path_reuses_its_buffers_exactly(plain_all, dtype, options):
    """The closed form's five buffers, each reused once its value is spent (q in the
    sign's, ce in sigmoid(|x|)'s, 1 - p_t in sigmoid(-|x|)'s): logits at 0 (both
    sigmoids 1/2), tiny and large, against hard and soft targets."""
    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, 60.0, -60.0, 1e4, -1e4], dtype=dtype)
    x = x.repeat_interleave(4)
    y = torch.tensor([0.0, 1.0, 0.5, 0.9], dtype=dtype).repeat(10)
    _compare(plain_all, LF.sigmoid_focal_loss, x, (y,), dtype, **options)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_detection_gathered_anchors_are_the_where_form(plain_all, reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 30, 4, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 30), generator=g), 4).double()
    state = torch.randint(-1, 2, (2, 30), generator=g)
    x[state == -1] = float("nan")  # ignored anchors: never read
    y[state == 0] = float("nan")  # background anchors: target taken as 0
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast = LF.detection_focal_loss(x1, y, state, reduction=reduction)
    slow = plain_all(LF.detection_focal_loss, x2, y, state, reduction=reduction)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-15)
    (g1,) = torch.autograd.grad(fast.sum(), x1)
    (g2,) = torch.autograd.grad(slow.sum(), x2)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-15)
    assert torch.equal(g1[state == -1], torch.zeros_like(g1[state == -1]))


@pytest.mark.parametrize(
    "fn, args",
    [
        (LF.softmax_focal_loss, lambda: (torch.randn(4, 5), torch.tensor([0, 1, 4, 2]))),
        (LF.sigmoid_focal_loss, lambda: (torch.randn(4, 5), (torch.rand(4, 5) < 0.4).float())),
        (LF.cosine_similarity_loss, lambda: (torch.randn(4, 5), torch.randn(4, 5))),
    ],
    ids=["softmax_focal", "sigmoid_focal", "cosine_similarity"],
)
def test_second_derivatives_are_the_plain_paths(plain_all, fn, args):
    x, y = args()
    x = x.double()
    y = y.double() if y.is_floating_point() else y
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(fn(x1, y), x1, create_graph=True)
    (g2,) = torch.autograd.grad(plain_all(fn, x2, y), x2, create_graph=True)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=0)
    (h1,) = torch.autograd.grad(g1.square().sum(), x1)
    (h2,) = torch.autograd.grad(g2.square().sum(), x2)
    torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-15)


OVERLAP = [
    pytest.param(LF.dice_loss, {}, id="dice"),
    pytest.param(LF.dice_loss, {"squared": True, "log_loss": True}, id="dice-squared-log"),
    pytest.param(LF.jaccard_loss, {"smooth": 0.5, "per_image": False}, id="jaccard-batch"),
    pytest.param(LF.tversky_loss, {"alpha": 0.3, "beta": 0.7}, id="tversky"),
    pytest.param(LF.focal_tversky_loss, {"alpha": 0.7, "beta": 0.3, "gamma": 1.5}, id="focal"),
    pytest.param(LF.generalized_dice_loss, {}, id="generalized"),
    pytest.param(
        LF.generalized_dice_loss,
        {"weight_type": "simple", "include_background": False, "per_image": False},
        id="generalized-simple",
    ),
]


def _ce_inputs(dtype, shape, scale, seed=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * scale
    if len(shape) == 1:  # unbatched (C,): a 0-dim target
        return x, torch.randint(0, shape[0], (), generator=g)
    t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return x, t


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("fn, options", OVERLAP)
def test_overlap_sums_fast_path_is_the_plain_path(plain, fn, options, dtype, scale):
    """Softmax logits with class indices: the closed-form sums (softmax, the target
    class's probability scattered into its class) give the one-hot path's values and
    gradients, with absent classes, a saturated softmax, ignored pixels (NaN logits
    there) and class weights."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 5, 4, 6, generator=g, dtype=dtype) * scale
    t = torch.randint(0, 4, (3, 4, 6), generator=g)  # class 4 absent everywhere
    t[1] = 2  # an image with one class
    options = dict(options)
    if fn is not LF.generalized_dice_loss:
        options["weight"] = torch.rand(5, generator=g, dtype=dtype)
    for ignore in (None, 255, 1):
        xi, ti = x.clone(), t.clone()
        if ignore is not None:
            ti[0, :2] = ignore
            ti[2, 1, 3] = ignore
            if ignore == 255:
                xi[0, :, :2] = float("nan")  # ignored pixels are inert
        x1, x2 = xi.clone().requires_grad_(True), xi.clone().requires_grad_(True)
        fast = fn(x1, ti, ignore_index=ignore, reduction="none", **options)
        slow = plain(fn, x2, ti, ignore_index=ignore, reduction="none", **options)
        tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
        torch.testing.assert_close(fast, slow, rtol=tol, atol=tol * 1e-3)
        w = torch.rand(fast.shape, generator=g, dtype=dtype)
        (g1,) = torch.autograd.grad((fast * w).sum(), x1)
        (g2,) = torch.autograd.grad((slow * w).sum(), x2)
        assert torch.isfinite(g1).all()
        # a saturated softmax rounds p (1 - p) to 0 on one path and to ~eps on the other
        torch.testing.assert_close(g1, g2, rtol=tol, atol=tol * max(g2.abs().max().item(), 1e-3))


def test_overlap_sums_second_derivative_and_retained_graph(plain):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (2, 5), generator=g)
    for fn in (LF.dice_loss, LF.tversky_loss):
        assert torch.autograd.gradgradcheck(lambda v, fn=fn: fn(v, t, ignore_index=0), (x,))
        out = fn(x, t)
        (g1,) = torch.autograd.grad(out, x, retain_graph=True)
        (g2,) = torch.autograd.grad(out, x)
        assert torch.equal(g1, g2)
        (g3,) = torch.autograd.grad(plain(fn, x, t), x)
        torch.testing.assert_close(g1, g3, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
@pytest.mark.parametrize("shape", [(64, 7), (3, 5, 4, 6), (9,)], ids=str)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight": True},
        {"ignore": True},
        {"weight": True, "ignore": True},
        {"smooth": True},
        {"smooth": True, "weight": True, "ignore": True},
    ],
    ids=str,
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_index_cross_entropy_fast_path_is_the_plain_path(
    plain_all, dtype, scale, shape, options, reduction
):
    """Closed-form cross entropy (softmax kept on CPU rows, log_softmax on maps): value
    and gradient of the plain path, with targets of p_t far below the smallest normal
    number (scale 1e4: log_softmax's exact log), class weights, ignored targets and
    label smoothing."""
    x, t = _ce_inputs(dtype, shape, scale)
    kw = {"reduction": reduction}
    if options.get("smooth"):
        kw["label_smoothing"] = 0.2
    if options.get("weight"):
        kw["weight"] = torch.rand(shape[0] if len(shape) == 1 else shape[1], dtype=dtype) + 0.1
    if options.get("ignore") and t.dim():
        t = t.clone()
        t.view(-1)[::3] = -100
        x = x.clone()
        x.movedim(1, -1).reshape(-1, x.shape[1])[::3] = float("nan")  # ignored: inert
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast = LF.cross_entropy(x1, t, **kw)
    slow = plain_all(LF.cross_entropy, x2, t, **kw)
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(fast, slow, rtol=tol, atol=tol * 1e-3)
    w = torch.rand(fast.shape, dtype=dtype)
    (g1,) = torch.autograd.grad((fast * w).sum(), x1)
    (g2,) = torch.autograd.grad((slow * w).sum(), x2)
    assert torch.isfinite(g1).all()
    torch.testing.assert_close(g1, g2, rtol=tol, atol=tol * g2.abs().max().item())


def test_index_cross_entropy_fast_path_masked_classes_and_retained_graph():
    """-inf logits (a masked vocabulary) give 0 gradient there; a target behind a -inf
    logit gives torch's inf; a retained graph's second backward gives the same gradient
    (the first one's buffer became the gradient)."""
    x = torch.tensor([[2.0, float("-inf"), 0.5], [1.0, 3.0, float("-inf")]], requires_grad=True)
    t = torch.tensor([0, 1])
    out = LF.cross_entropy(x, t)
    (g1,) = torch.autograd.grad(out, x, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x)
    assert torch.equal(g1, g2) and torch.isfinite(g1).all()
    assert g1[0, 1] == 0 and g1[1, 2] == 0
    want = torch.nn.functional.cross_entropy(x.detach(), t)
    torch.testing.assert_close(out.detach(), want)
    assert torch.isinf(LF.cross_entropy(x, torch.tensor([1, 1])))
    xm = x.detach().T.reshape(1, 3, 2, 1).clone().requires_grad_(True)  # a map, dim 1
    out = LF.cross_entropy(xm, t.view(1, 2, 1))
    (g1,) = torch.autograd.grad(out, xm, retain_graph=True)
    (g2,) = torch.autograd.grad(out, xm)
    assert torch.equal(g1, g2) and torch.isfinite(g1).all()
    torch.testing.assert_close(out.detach(), want)
    assert g1[0, 1, 0, 0] == 0 and g1[0, 2, 1, 0] == 0
    y = torch.tensor([[0.1, 0.2], [0.3, 0.4]]).requires_grad_(True)
    ys = y.log_softmax(1)  # a non-leaf input: the gradient flows on
    (gy,) = torch.autograd.grad(LF.cross_entropy(ys, torch.tensor([0, 1])), y)
    (gw,) = torch.autograd.grad(
        torch.nn.functional.cross_entropy(y.log_softmax(1), torch.tensor([0, 1])), y
    )
    torch.testing.assert_close(gy, gw)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 2)], ids=str)
def test_index_cross_entropy_second_derivatives_are_the_plain_paths(plain_all, shape):
    x, t = _ce_inputs(torch.float64, shape, 2.0)
    wt = torch.rand(shape[1], dtype=torch.float64) + 0.5
    for kw in ({}, {"weight": wt}, {"reduction": "sum"}):
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        (g1,) = torch.autograd.grad(LF.cross_entropy(x1, t, **kw), x1, create_graph=True)
        (g2,) = torch.autograd.grad(plain_all(LF.cross_entropy, x2, t, **kw), x2, create_graph=True)
        torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-15)
        (h1,) = torch.autograd.grad(g1.square().sum(), x1)
        (h2,) = torch.autograd.grad(g2.square().sum(), x2)
        torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3, 3)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_softmax_focal_retained_graph_recomputes_its_buffer(shape, reduction):
    """The backward writes the gradient into the forward's exp(x - max): a retained
    graph's second backward gives the same gradient."""
    x, t = _ce_inputs(torch.float64, shape, 3.0)
    x = x.requires_grad_(True)
    out = LF.softmax_focal_loss(x, t, gamma=2.0, reduction=reduction)
    w = torch.rand(out.shape, dtype=x.dtype)
    (g1,) = torch.autograd.grad(out, x, w, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x, w)
    assert torch.equal(g1, g2)


def _keras_inputs(dtype, shape, dim, seed=5):
    """Probabilities with exact 0s and 1s, a row of zeros (its sum below eps), rows far
    from summing to 1 (one below eps=0.05 with entries inside the clip), and a
    probability target with one-hot rows."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype)
    x = torch.where(x < 0.15, torch.zeros((), dtype=dtype), x)
    x = x.movedim(dim, -1).contiguous()
    x[0] = 0.0
    x[1] = 0.0
    x[1, ..., 0] = 1.0  # p = 1: clipped to 1 - eps
    x[2] *= 1e-3
    x[4] = 0.0
    x[4, ..., :2] = 0.02  # a sum of 0.04: below eps=0.05, the sum's clamp holds
    q = torch.rand(x.shape, generator=g, dtype=dtype)
    q[3] = 0.0
    q[3, ..., 1] = 1.0
    q = q / q.sum(-1, keepdim=True)
    return x.movedim(-1, dim), q.movedim(-1, dim)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape, dim", [((16, 9), -1), ((5, 4, 3, 6), 1)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.2}, {"eps": 0.05}], ids=str)
def test_categorical_cross_entropy_fast_path_is_the_plain_path(
    plain_all, dtype, shape, dim, reduction, options
):
    """Keras's clipped form in closed form: the value and gradient of the plain path,
    with clipped probabilities (0, 1, rows of zeros) and rows not summing to 1."""
    x, q = _keras_inputs(dtype, shape, dim)
    kw = {"dim": dim, "reduction": reduction, **options}
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast = LF.categorical_cross_entropy(x1, q, **kw)
    slow = plain_all(LF.categorical_cross_entropy, x2, q, **kw)
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(fast, slow, rtol=tol, atol=tol * 1e-3)
    w = torch.rand(fast.shape, dtype=dtype) + 0.5
    (g1,) = torch.autograd.grad((fast * w).sum(), x1, retain_graph=True)
    (g2,) = torch.autograd.grad((slow * w).sum(), x2)
    assert torch.isfinite(g1).all()
    torch.testing.assert_close(g1, g2, rtol=tol, atol=tol * g2.abs().max().item())
    (g3,) = torch.autograd.grad((fast * w).sum(), x1)  # a retained graph: recomputed
    assert torch.equal(g1, g3)


def test_categorical_cross_entropy_second_derivatives_are_the_plain_paths(plain_all):
    x, q = _keras_inputs(torch.float64, (6, 5), -1)
    x = x * 0.8 + 0.1  # inside the clip: a nonzero second derivative
    for reduction in ("mean", "none"):
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        f1 = LF.categorical_cross_entropy(x1, q, reduction=reduction).sum()
        f2 = plain_all(LF.categorical_cross_entropy, x2, q, reduction=reduction).sum()
        (g1,) = torch.autograd.grad(f1, x1, create_graph=True)
        (g2,) = torch.autograd.grad(f2, x2, create_graph=True)
        torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-15)
        (h1,) = torch.autograd.grad(g1.square().sum(), x1)
        (h2,) = torch.autograd.grad(g2.square().sum(), x2)
        torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0, 1e4])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options",
    [{}, {"label_smoothing": 0.1}, {"ignore_index": -1.0}, {"weight": True}, {"normalizer": 7.0}],
    ids=["plain", "smoothing", "ignore", "weight", "normalizer"],
)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_bce_with_logits_fast_path_is_the_plain_path(
    plain_all, dtype, scale, reduction, options, soft
):
    """The closed form (for a mean or a sum: two sums of terms >= 0 without a weight or
    ignored targets, else per element) gives torch's value and gradient (input and
    target) at logits up to 1e4, agreeing logits included (loss about exp(-|x|), where
    softplus(x) - x y would cancel); reduction="none" is torch's."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(40, 9, generator=g, dtype=dtype) * scale
    y = torch.rand(40, 9, generator=g, dtype=dtype)
    y = y if soft else (y < 0.4).to(dtype)
    x[0, :3] = torch.tensor([30.0, -30.0, 0.0], dtype=dtype)
    y[0, :3] = torch.tensor([1.0, 0.0, 1.0], dtype=dtype)
    options = dict(options)
    if "normalizer" in options and reduction != "mean":
        pytest.skip("normalizer goes with reduction='mean' only")
    if options.pop("weight", False):
        options["weight"] = torch.rand(9, generator=g, dtype=dtype) + 0.1
    if "ignore_index" in options:
        y[1::5, 2] = -1.0
        x[1::5, 2] = float("nan")  # ignored: inert
    tol = {torch.float32: 2e-5, torch.float64: 1e-12}[dtype]
    for target_grad in (False, True):
        got, want = [], []
        for run, out in ((lambda f, *a, **k: f(*a, **k), got), (plain_all, want)):
            xi = x.clone().requires_grad_(True)
            yi = y.clone().requires_grad_(target_grad)
            value = run(LF.binary_cross_entropy_with_logits, xi, yi, reduction=reduction, **options)
            w = torch.rand(value.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
            wrt = (xi, yi) if target_grad else (xi,)
            out.append(value)
            out.extend(torch.autograd.grad((value * w).sum(), wrt))
        for a, b in zip(got, want, strict=True):
            assert torch.isfinite(a).all()
            scale = max(b.detach().abs().max().item(), 1.0)
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * 1e-3 * scale)


def test_bce_with_logits_agreeing_logits_keep_relative_precision():
    """A sum of losses of about exp(-|x|) keeps float32's relative precision (torch's
    ``(1 - y) x - log_sigmoid(x)`` rounds at -x's ulp for y = 0)."""
    x = torch.tensor([12.0, -15.0, 20.0, -9.0])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    want = torch.nn.functional.softplus(-x.double().abs())  # the exact loss
    got = LF.binary_cross_entropy_with_logits(x.requires_grad_(True), y, reduction="sum")
    torch.testing.assert_close(got.double(), want.sum(), rtol=1e-6, atol=0)
    got = LF.binary_cross_entropy_with_logits(x, y, weight=w)
    want = (want * w).sum() / w.sum()
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_infinite_logits_take_the_careful_path(reduction):
    x = torch.tensor([float("inf"), float("-inf"), 0.5, float("inf")], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    out = LF.binary_cross_entropy_with_logits(x, y, reduction=reduction)
    if reduction == "none":
        assert out[:3].isfinite().all() and out[3].item() == float("inf")
        assert out[:2].tolist() == [0.0, 0.0]
    else:
        assert out.item() == float("inf")
    (grad,) = torch.autograd.grad(
        LF.binary_cross_entropy_with_logits(x[:3], y[:3], reduction=reduction).sum(), x
    )
    assert grad[:2].tolist() == [0.0, 0.0] and torch.isfinite(grad).all() and grad[2] != 0


@pytest.mark.parametrize(
    "fn, low, span",
    [(LF.binary_cross_entropy_with_logits, -2.0, 4.0), (LF.binary_cross_entropy, 0.05, 0.9)],
    ids=["with_logits", "probabilities"],
)
def test_bce_second_derivative_is_the_plain_paths(plain_all, fn, low, span):
    """Double backward of the BCE closed forms runs the plain path (torch's)."""
    x = torch.rand(4, 5, dtype=torch.float64) * span + low
    y = (torch.rand(4, 5) < 0.4).double()
    for reduction in ("mean", "none"):
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        (g1,) = torch.autograd.grad(fn(x1, y, reduction=reduction).sum(), x1, create_graph=True)
        (g2,) = torch.autograd.grad(
            plain_all(fn, x2, y, reduction=reduction).sum(), x2, create_graph=True
        )
        torch.testing.assert_close(g1, g2, rtol=1e-12, atol=0)
        (h1,) = torch.autograd.grad(g1.square().sum(), x1)
        (h2,) = torch.autograd.grad(g2.square().sum(), x2)
        torch.testing.assert_close(h1, h2, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_bce_fast_path_is_torchs(plain_all, dtype, reduction, weighted, soft):
    """BCE on probabilities from vectorized logs: torch's value (logs clamped at -100) and
    gradient ((x - y) / max(x (1 - x), 1e-12)) at 0, 1, tiny and nearly-1 probabilities."""
    g = torch.Generator().manual_seed(9)
    p = torch.rand(30, 8, generator=g, dtype=torch.float64)
    p[0] = torch.tensor([0.0, 1.0, 1e-30, 1e-8, 1 - 1e-7, 0.5, 1e-45, 1.0 - 2**-24])
    x = p.to(dtype)
    y = torch.rand(30, 8, generator=g, dtype=dtype)
    y = y if soft else (y < 0.5).to(dtype)
    y[0, :2] = torch.tensor([1.0, 0.0], dtype=dtype)  # confidently wrong: 100 each
    w = torch.rand(8, generator=g, dtype=dtype) + 0.1 if weighted else None
    tol = {torch.float32: 2e-6, torch.float64: 1e-12}[dtype]
    got, want = [], []
    for run, out in ((lambda f, *a, **k: f(*a, **k), got), (plain_all, want)):
        xi = x.clone().requires_grad_(True)
        value = run(LF.binary_cross_entropy, xi, y, weight=w, reduction=reduction)
        u = torch.rand(value.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        out.append(value)
        out.extend(torch.autograd.grad((value * u).sum(), xi))
    # torch's mean divides its gradient by the count last, the closed form's upstream
    # gradient comes divided: they differ in the subnormals (x = 1e-45), nowhere else
    atol = 1e-30 if dtype == torch.float32 else 1e-300
    for a, b in zip(got, want, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=tol, atol=atol)
    if reduction == "none" and not weighted:
        assert got[0][0, :2].tolist() == [100.0, 100.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "case", ["plain", "scales", "dim0", "weight", "broadcast", "floor", "zero", "huge", "eps"]
)
def test_cosine_fast_path_is_the_scaled_path(plain_all, dtype, reduction, case):
    """-x.y / (|x| |y|) and its closed-form gradients (input and target) give the scaled
    l2_normalize form's values and gradients, for vectors from 1e-6 to 1e15 and nearly
    parallel ones; zero, floored, huge (1e20) and tiny vectors take the scaled form."""
    g = torch.Generator().manual_seed(10)
    x = torch.randn(12, 9, generator=g, dtype=torch.float64)
    y = torch.randn(12, 9, generator=g, dtype=torch.float64)
    y[0] = x[0] * 3 + 1e-4 * y[0]  # nearly parallel
    y[1] = -x[1]
    options = {"dim": 0} if case == "dim0" else {}
    if case == "scales":
        x = x * torch.logspace(-6, 15, 12, dtype=torch.float64)[:, None]
        y = y * torch.logspace(15, -6, 12, dtype=torch.float64)[:, None]
    elif case == "weight":
        options["weight"] = torch.rand(12, generator=g, dtype=torch.float64)
    elif case == "broadcast":
        y, options["broadcast"] = y[:1], True
    elif case == "floor":
        x[2] *= 1e-9  # norm below eps: floored
    elif case == "zero":
        x[3] = 0.0
    elif case == "huge":
        x[4] *= 1e20
    elif case == "eps":
        options["eps"] = 0.5
    # float64 is its own reference: the cancellation of nearly parallel vectors (1e-4
    # apart) costs 1e4 ulps of the gradient there
    tol = {torch.float32: 2e-5, torch.float64: 1e-10}[dtype]

    def results(run, dtype, target_grad):
        xi = x.to(dtype).requires_grad_(True)
        yi = y.to(dtype).requires_grad_(target_grad)
        value = run(LF.cosine_similarity_loss, xi, yi, reduction=reduction, **options)
        u = torch.rand(value.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        grads = torch.autograd.grad((value * u).sum(), (xi, yi) if target_grad else (xi,))
        return [t.double() for t in (value, *grads)]

    def fast(fn, *a, **k):
        return fn(*a, **k)

    for target_grad in (False, True):
        got = results(fast, dtype, target_grad)
        want = results(plain_all, dtype, target_grad)
        exact = results(plain_all, torch.float64, target_grad)
        # about as close to the float64 result as the scaled form in this dtype (within 4x:
        # their rounding differs; gradients of nearly parallel vectors cancel in both),
        # within tol of the largest value
        for a, b, e in zip(got, want, exact, strict=True):
            assert torch.isfinite(a).all()
            err, bound = (a - e).abs().max(), 4 * (b - e).abs().max()
            assert err <= bound + tol * e.abs().max(), (err, bound)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", [LF.hinge, LF.squared_hinge], ids=["hinge", "squared"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("labels", ["zero_one", "signs", "ones", "weight", "unchecked"])
def test_hinge_fast_path_is_the_plain_path(plain_all, dtype, fn, reduction, labels):
    """The margin's closed form (labels read from float passes) gives the plain form's
    values and gradients: 0/1 labels converted, -1/1 labels, all ones, margins exactly 0,
    logits of 1e30, per-sample weights, and unconverted labels with value checks off."""
    import losskit

    g = torch.Generator().manual_seed(11)
    x = torch.randn(20, 6, generator=g, dtype=dtype) * 2
    x[0] = torch.tensor([1.0, -1.0, 1e30, -1e30, 0.0, 1.0], dtype=dtype)
    y = (torch.rand(20, 6, generator=g) < 0.5).to(dtype)
    options = {}
    if labels == "signs":
        y = y * 2 - 1
    elif labels == "ones":
        y = torch.ones_like(y)
    elif labels == "weight":
        options["weight"] = torch.rand(20, generator=g, dtype=dtype)
    elif labels == "unchecked":
        y[1:] = y[1:] * 2 - 1
        y[0, 0] = 0.0  # -1 and 0 mixed: an error under value checks, unconverted without
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    with losskit.set_checks(labels != "unchecked"):
        got, want = _fast_and_plain(plain_all, fn, (x, y), reduction=reduction, **options)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", ["plain", "weight", "normalizer", "infinite"])
def test_hinge_embedding_fast_path_is_torchs_formula(plain_all, dtype, reduction, case):
    """The clamp-selected closed form gives torch's own values and gradients: distances at
    the margin (clamp_min passes there), inside and beyond it, 0, 1e30, and, in rows of
    their own, infinite distances of both labels (a 0/1 mask would make them NaN)."""
    import torch.nn.functional as TF

    if case == "normalizer" and reduction != "mean":
        pytest.skip("normalizer goes with reduction='mean' only")
    g = torch.Generator().manual_seed(19)
    margin = 1.5
    x = torch.rand(16, 6, generator=g, dtype=dtype) * 3
    x[0] = torch.tensor([margin, margin, 0.0, 0.0, 1e30, 1e30], dtype=dtype)
    y = (torch.rand(16, 6, generator=g) < 0.5).to(dtype) * 2 - 1
    y[0] = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=dtype)
    options = {}
    if case == "weight":
        options["weight"] = torch.rand(16, 6, generator=g, dtype=dtype)
    elif case == "normalizer":
        options["normalizer"] = 7.0
    elif case == "infinite":  # y = -1: inf gives loss 0, -inf loss inf
        x = torch.tensor([math.inf, -math.inf, math.inf, -math.inf, 0.5], dtype=dtype)
        y = torch.tensor([-1.0, -1.0, -1.0, -1.0, 1.0], dtype=dtype)
    results = _fast_and_plain(
        plain_all, LF.hinge_embedding_loss, (x, y), margin=margin, reduction=reduction, **options
    )
    torch_value = TF.hinge_embedding_loss(x, y, margin=margin, reduction="none")
    if case == "infinite":
        assert torch_value.tolist() == [0.0, math.inf, 0.0, math.inf, 0.5]
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    (got, got_grad), (want, want_grad) = results
    torch.testing.assert_close(got, want, rtol=tol, atol=0)
    torch.testing.assert_close(got_grad, want_grad, rtol=tol, atol=0)
    if case == "plain" and reduction == "none":
        torch.testing.assert_close(got, torch_value, rtol=0, atol=0)


@pytest.mark.parametrize("fn", [LF.hinge, LF.squared_hinge], ids=["hinge", "squared"])
def test_hinge_labels_from_float_passes_keep_the_messages(fn):
    import losskit

    x = torch.randn(3, 4)
    for bad, text in [
        (torch.tensor([0.0, 1.0, 0.5, 1.0]), "found 0.5"),
        (torch.tensor([0.0, 1.0, 2.0, 1.0]), "found 2.0"),
        (torch.tensor([-1.0, 1.0, 0.0, 1.0]), "mixes the labels -1 and 0"),
        (torch.tensor([-1.0, 1.0, float("nan"), 1.0]), "nan"),
    ]:
        with pytest.raises(losskit.LossInputError, match=text):
            fn(x, bad.expand(3, 4).clone())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "case", ["onehot", "soft", "ties", "maps", "weight", "inactive", "infinite"]
)
def test_categorical_hinge_fast_path_is_the_plain_path(plain_all, dtype, reduction, case):
    """The closed form (the max's ties counted from one sign pass, the gradient scattered
    to the one max of each row, or shared among ties as amax's backward shares it) gives
    the plain form's values and gradients."""
    g = torch.Generator().manual_seed(12)
    shape = (2, 5, 7) if case == "maps" else (16, 7)
    x = torch.randn(shape, generator=g, dtype=dtype)
    y = torch.nn.functional.one_hot(torch.randint(0, 7, shape[:-1], generator=g), 7).to(dtype)
    options = {}
    if case == "soft":
        y = torch.softmax(torch.randn(shape, generator=g, dtype=dtype) * 3, dim=-1)
    elif case == "ties":
        x = torch.randint(-2, 3, shape, generator=g).to(dtype)  # many equal maxima
        x[0] = 0.0  # the true class's 0 ties with the others
    elif case == "weight":
        options["weight"] = torch.rand(shape[:-1], generator=g, dtype=dtype)
    elif case == "inactive":
        x = x + 10 * y  # margins met: loss 0, no gradient
        x[0] = y[0] * 1.0  # margin exactly 0
    elif case == "infinite":
        # a wrong class's infinite score: sum(y x) holds 0 * inf (NaN) in both forms; the
        # indicator's inf - inf takes the comparison
        x[0, (y[0].argmax() + 1) % 7] = float("inf")
    got, want = _fast_and_plain(
        plain_all, LF.categorical_hinge, (x, y), reduction=reduction, **options
    )
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, equal_nan=case == "infinite")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [1e-7, 0.0, 0.5])
def test_msle_fast_path_is_the_plain_path(plain_all, dtype, reduction, eps):
    """(log1p(max(x, eps)) - log1p(max(y, eps)))^2 and its derivative: the plain form's
    values and gradients, inputs below, at and above eps (the clamp's zero gradient
    below, its pass at eps), 0 and 1e30 included."""
    g = torch.Generator().manual_seed(17)
    x = torch.rand(12, 6, generator=g, dtype=torch.float64) * 5
    x[0] = torch.tensor([0.0, 1e-30, eps, 0.25, 1e30, -1.0]).clamp_min(0 if eps else -1.0)
    y = torch.rand(12, 6, generator=g, dtype=torch.float64) * 5
    x, y = x.to(dtype), y.to(dtype)

    def results(run):
        xi = x.clone().requires_grad_(True)
        value = run(LF.mean_squared_logarithmic_error, xi, y, reduction=reduction, eps=eps)
        u = torch.rand(value.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        return value, *torch.autograd.grad((value * u).sum(), xi)

    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    fast = results(lambda f, *args, **kw: f(*args, **kw))
    for got, want in zip(fast, results(plain_all), strict=True):
        torch.testing.assert_close(got, want, rtol=tol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", ["plain", "full", "per_sample", "weight", "huge"])
def test_gaussian_nll_fast_path_is_the_plain_path(plain_all, dtype, reduction, case):
    """(log m + r^2 / m) / 2 and its three derivatives: the plain form's values and
    gradients, variances below eps (the clamp passes the gradient, as torch's), at it
    and above, a per-sample variance, full, weights, and residuals of 1e15 (in float32
    r^2 overflows in the plain form only: compared where it is finite)."""
    g = torch.Generator().manual_seed(23)
    x = torch.randn(12, 5, generator=g, dtype=dtype)
    y = torch.randn(12, 5, generator=g, dtype=dtype)
    v = torch.rand(12, 5, generator=g, dtype=dtype) * 2
    v[0] = torch.tensor([0.0, 1e-9, 1e-6, 3.0, 1e30], dtype=dtype)
    options = {}
    if case == "full":
        options["full"] = True
    elif case == "per_sample":
        v = v[:, :1]
    elif case == "weight":
        options["weight"] = torch.rand(12, 5, generator=g, dtype=dtype)
    elif case == "huge":
        x[1] = 1e15
        v[1] = 1e16
    results = _fast_and_plain(
        plain_all, LF.gaussian_nll_loss, (x, y, v), (0, 1, 2), reduction=reduction, **options
    )
    tol = {torch.float32: 2e-6, torch.float64: 1e-13}[dtype]
    for a, b in zip(*results, strict=True):
        assert torch.isfinite(a).all()
        if case == "huge" and dtype == torch.float32 and not torch.isfinite(b).all():
            continue  # the plain form's r^2 overflowed
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("log_input", [True, False], ids=["log_rate", "rate"])
@pytest.mark.parametrize("full", [False, True], ids=["", "full"])
def test_poisson_nll_fast_path_is_the_plain_path(plain_all, dtype, reduction, log_input, full):
    """exp(x) - y x (log-rates, from -30 to 30) and x - y log(x + eps) (rates, 0 and
    1e-30 to 1e30 included): the plain form's values and both inputs' gradients."""
    g = torch.Generator().manual_seed(29)
    if log_input:
        x = torch.linspace(-30, 30, 60, dtype=dtype)
    else:
        x = torch.cat([torch.zeros(1), torch.logspace(-30, 30, 59)]).to(dtype)
    y = torch.poisson(torch.full((60,), 3.0, dtype=dtype), generator=g)
    results = _fast_and_plain(
        plain_all, LF.poisson_nll_loss, (x, y), (0, 1),
        log_input=log_input, full=full, reduction=reduction,
    )  # fmt: skip
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weight"])
def test_mape_fast_path_is_the_plain_path(plain_all, dtype, reduction, weighted):
    """|x - y| / max(|y|, eps): the plain form's values and gradients, at x = y (abs'
    0), targets of 0 (the floor), negative ones and 1e30."""
    g = torch.Generator().manual_seed(31)
    x = torch.randn(8, 6, generator=g, dtype=dtype) * 10
    y = torch.randn(8, 6, generator=g, dtype=dtype) * 10
    x[0], y[0] = (
        torch.tensor([1.0, 0.0, -2.0, 5.0, 1e30, 3.0], dtype=dtype),
        torch.tensor([1.0, 0.0, 0.0, -5.0, 1e30, -1e30], dtype=dtype),
    )
    options = {"weight": torch.rand(8, generator=g, dtype=dtype)} if weighted else {}
    results = _fast_and_plain(
        plain_all, LF.mean_absolute_percentage_error, (x, y), reduction=reduction, **options
    )
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("gamma_neg", [4.0, 0.0, 0.5, 2.5])
@pytest.mark.parametrize("case", ["hard", "soft", "ignored", "weight", "infinite"])
def test_asymmetric_clipped_fast_path_is_the_plain_path(
    plain_all, dtype, reduction, gamma_neg, case
):
    """The clipped asymmetric loss's closed form (gamma_pos 0): the plain form's values and
    gradients over logits from -1e4 to 1e4, around the clip (p = m: the clamp's corner),
    soft targets, ignored targets, weights and infinite logits."""
    g = torch.Generator().manual_seed(37)
    x = torch.randn(12, 8, generator=g, dtype=dtype) * 4
    m = 0.05
    at_clip = math.log(m / (1 - m))  # sigmoid(at_clip) = m
    x[0] = torch.tensor([-1e4, -30.0, at_clip, at_clip + 1e-3, 0.0, 30.0, 1e4, -3.0])
    y = (torch.rand(12, 8, generator=g) < 0.3).to(dtype)
    options = {"gamma_neg": gamma_neg, "clip": m}
    if case == "soft":
        y = torch.rand(12, 8, generator=g, dtype=dtype)
    elif case == "ignored":
        y[1, :3] = -1.0
        options["ignore_index"] = -1
    elif case == "weight":
        options["weight"] = torch.rand(12, 8, generator=g, dtype=dtype)
    elif case == "infinite":
        x[2, 0], x[2, 1] = -math.inf, math.inf
        y[2, 0], y[2, 1] = 0.0, 1.0  # agreeing: finite losses
    results = _fast_and_plain(plain_all, LF.asymmetric_loss, (x, y), reduction=reduction, **options)
    tol = {torch.float32: 2e-6, torch.float64: 1e-13}[dtype]
    for a, b in zip(*results, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_msle_masked_non_finite_derivatives_take_the_where_form(plain_all, reduction):
    """Below eps the clamp's derivative is 0 whatever the rest of the chain: a NaN input
    and an infinite target there give a 0 gradient (a product with the 0/1 mask would
    give NaN), as the plain form's; the other entries keep theirs."""
    x = torch.tensor([0.5, 0.0, float("nan"), 2.0, 1e-9])
    y = torch.tensor([1.0, float("inf"), 1.0, 3.0, 0.5])
    grads = []
    for run in (lambda f, *a, **k: f(*a, **k), plain_all):
        xi = x.clone().requires_grad_(True)
        value = run(LF.mean_squared_logarithmic_error, xi, y, reduction=reduction)
        grads.append(torch.autograd.grad(value.sum(), xi)[0])
    fast, slow = grads
    assert fast[1] == 0 and fast[2] == 0 and fast[4] == 0
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", ["plain", "zeros", "weight", "eps"])
def test_poisson_fast_path_is_the_plain_path(plain_all, dtype, reduction, case):
    """x - y log(x + eps) and 1 - y / (x + eps): the plain form's values and gradients,
    rates of 0 and from 1e-30 to 1e30 included."""
    g = torch.Generator().manual_seed(13)
    x = torch.rand(16, 6, generator=g, dtype=torch.float64) * 4
    x[0] = torch.tensor([0.0, 1e-30, 1e-8, 1e30, 1.0, 7.0])
    y = torch.poisson(torch.full((16, 6), 2.0, dtype=torch.float64), generator=g)
    options = {}
    if case == "zeros":
        y[::2] = 0.0
    elif case == "weight":
        options["weight"] = torch.rand(16, generator=g, dtype=torch.float64)
    elif case == "eps":
        options["eps"] = 0.5
    x, y = x.to(dtype), y.to(dtype)

    def results(run, y):
        xi = x.clone().requires_grad_(True)
        value = run(LF.poisson_loss, xi, y, reduction=reduction, **options)
        u = torch.rand(value.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        return value, *torch.autograd.grad((value * u).sum(), xi)

    got, want = results(lambda f, *a, **k: f(*a, **k), y), results(plain_all, y)
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    assert torch.isfinite(got[1]).all()
    torch.testing.assert_close(got[0], want[0], rtol=tol, atol=0)
    # 1 - y / (x + eps) cancels near x = y in either form's rounding: within tol of its
    # terms' size, (1 + y / (x + eps)) times the upstream gradient (the gradient at y = 0)
    upstream = results(plain_all, torch.zeros_like(y))[1].abs()
    bound = tol * (1 + y / (x + options.get("eps", 1e-7))) * upstream
    assert ((got[1] - want[1]).abs() <= bound).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("case", ["plain", "zeros", "masked", "subnormal"])
def test_kl_div_unmasked_fast_path_is_the_plain_path(plain_all, dtype, reduction, case):
    """q (log max(q, 2^-149) - x) and -q without masks: the masked form's values and
    gradients; an input of -inf where q = 0 (a masked class) and subnormal targets are
    computed again with the masks."""
    g = torch.Generator().manual_seed(14)
    x = torch.log_softmax(torch.randn(12, 7, generator=g, dtype=dtype) * 3, dim=-1)
    y = torch.softmax(torch.randn(12, 7, generator=g, dtype=dtype) * 3, dim=-1)
    if case in ("zeros", "masked"):
        y[::3, 2] = 0.0
    if case == "masked":
        x[0, 2] = float("-inf")
    if case == "subnormal":
        y[1, 1] = torch.finfo(dtype).tiny / 8
        y[2, 3] = 2.0 ** (-1074 if dtype == torch.float64 else -149)
    got, want = [], []
    for run, out in ((lambda f, *a, **k: f(*a, **k), got), (plain_all, want)):
        xi = x.clone().requires_grad_(True)
        value = run(LF.kl_div, xi, y, reduction=reduction)
        u = torch.rand(value.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
        out.extend((value, *torch.autograd.grad((value * u).sum(), xi)))
    tol = {torch.float32: 1e-6, torch.float64: 1e-14}[dtype]
    for a, b in zip(got, want, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * 1e-3)
    assert not (torch.signbit(got[0]) & (got[0] == 0)).any()  # q = 0 adds 0.0, not -0.0


def test_closed_forms_read_their_checks_without_warnings():
    """The host reads of the fast paths (a finite sum, the labels' kind) detach first:
    torch warns on ``item()`` of a tensor that requires grad."""
    import warnings

    x = torch.randn(4, 5, requires_grad=True)
    y = (torch.rand(4, 5) < 0.5).float()
    calls = [
        lambda: LF.binary_cross_entropy_with_logits(x, y),
        lambda: LF.binary_cross_entropy_with_logits(x, y, weight=torch.rand(5)),
        lambda: LF.binary_cross_entropy(torch.sigmoid(x), y),
        lambda: LF.kl_div(torch.log_softmax(x, -1), torch.softmax(y, -1)),
        lambda: LF.kl_div(torch.log_softmax(x, -1), torch.softmax(y, -1), reduction="none"),
        lambda: LF.cosine_similarity_loss(x, y + 1),
        lambda: LF.hinge(x, y),
        lambda: LF.squared_hinge(x, y),
        lambda: LF.categorical_hinge(x, torch.softmax(y, -1)),
        lambda: LF.poisson_loss(x.exp(), y),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for call in calls:
            call().sum().backward()


def test_bce_with_logits_retained_graph_keeps_its_gradient():
    x = torch.randn(6, 4, requires_grad=True)
    y = torch.rand(6, 4)
    out = LF.binary_cross_entropy_with_logits(x, y)
    (g1,) = torch.autograd.grad(out, x, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x)
    assert torch.equal(g1, g2)
    torch.testing.assert_close(g1, (torch.sigmoid(x) - y).detach() / x.numel())
    out = LF.binary_cross_entropy_with_logits(x, y, reduction="sum")
    out.backward(retain_graph=True)
    out.backward()
    torch.testing.assert_close(x.grad, 2 * (torch.sigmoid(x) - y).detach())


def test_categorical_hinge_retained_graph_keeps_its_gradient():
    x = torch.randn(5, 4, requires_grad=True)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0]), 4).float()
    out = LF.categorical_hinge(x, y)
    (g1,) = torch.autograd.grad(out, x, retain_graph=True)
    (g2,) = torch.autograd.grad(out, x)
    assert torch.equal(g1, g2)


@pytest.mark.parametrize(
    "fn",
    [LF.hinge, LF.squared_hinge, LF.categorical_hinge, LF.poisson_loss],
    ids=["hinge", "squared_hinge", "categorical_hinge", "poisson_loss"],
)
def test_closed_forms_keep_the_targets_gradient(plain_all, fn):
    """A target that requires grad gets the plain form's gradient (the closed forms
    without a target gradient step aside)."""
    x = torch.rand(5, 4, dtype=torch.float64) + 0.1
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0]), 4).double()
    grads = []
    for run in (lambda f, *a, **k: f(*a, **k), plain_all):
        xi, yi = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(run(fn, xi, yi), (xi, yi)))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_categorical_ce_clip_bounds_give_one_gradient_on_every_path(plain_all, reduction):
    """A probability exactly at the clip's bound (eps, 1 - eps) has a zero gradient on
    the closed form and on the plain path alike."""
    eps = 0.125  # exact in binary: p = x / sum(x) lands on the bounds exactly
    x = torch.tensor([[0.125, 0.875, 0.0], [0.5, 0.25, 0.25]], dtype=torch.float64)
    q = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    grads = []
    for run in (lambda f, *a, **k: f(*a, **k), plain_all):
        xi = x.clone().requires_grad_(True)
        out = run(LF.categorical_cross_entropy, xi, q, eps=eps, reduction=reduction)
        grads.append(torch.autograd.grad(out.sum(), xi)[0])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "fn, kernel, bound",
    [
        (LF.l1_loss, torch.nn.functional.l1_loss, "SMALL"),
        (LF.binary_cross_entropy, torch.nn.functional.binary_cross_entropy, "_KERNEL_UP_TO"),
    ],
)
def test_small_inputs_run_the_kernel_of_the_plain_path(monkeypatch, fn, kernel, bound):
    """A loss whose plain path is one torch kernel runs it up to its bound (the closed
    form's Python costs more there), the closed form above; one value either side."""
    from losskit.functional import binary

    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", True)
    limit = getattr(_fused if bound == "SMALL" else binary, bound)
    g = torch.Generator().manual_seed(0)
    for n, closed in ((limit, False), (limit + 1, True)):
        x = torch.rand(n, generator=g, dtype=torch.float64).requires_grad_(True)
        y = torch.rand(n, generator=g, dtype=torch.float64)
        got = fn(x, y, reduction="sum")
        assert (type(got.grad_fn).__name__ == "_FusedBackward") == closed
        b = x.detach().clone().requires_grad_(True)
        want = kernel(b, y, reduction="sum")
        torch.testing.assert_close(got, want, rtol=1e-13, atol=0)
        torch.testing.assert_close(
            torch.autograd.grad(got, x)[0], torch.autograd.grad(want, b)[0], rtol=1e-13, atol=0
        )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("p", [1, 2])
def test_small_multi_margin_runs_torchs_kernels(monkeypatch, p, reduction):
    """Up to ``SMALL`` scores the multi-margin loss's mean or sum is torch's value and
    backward kernels in one node (bit for bit torch's); above it the closed form; a
    second derivative is the composition's on both sides."""
    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", True)
    g = torch.Generator().manual_seed(6)
    for n, kernels in ((_fused.SMALL // 1000, True), (_fused.SMALL // 1000 + 1, False)):
        x = torch.randn(n, 1000, generator=g, dtype=torch.float64)
        y = torch.randint(0, 1000, (n,), generator=g)
        x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        got = LF.multi_margin_loss(x1, y, p=p, reduction=reduction)
        want = torch.nn.functional.multi_margin_loss(x2, y, p=p, reduction=reduction)
        assert type(got.grad_fn).__name__ == "_FusedBackward"
        g1, g2 = torch.autograd.grad(got, x1)[0], torch.autograd.grad(want, x2)[0]
        if kernels:
            assert torch.equal(got, want) and torch.equal(g1, g2)
        else:
            torch.testing.assert_close(got, want, rtol=1e-13, atol=0)
            torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-15)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    y = torch.tensor([0, 4, 2])
    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", False)
    closed = torch.autograd.grad(
        LF.multi_margin_loss(x, y, p=p, reduction=reduction), x, create_graph=True
    )[0]
    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", True)
    small = torch.autograd.grad(
        LF.multi_margin_loss(x, y, p=p, reduction=reduction), x, create_graph=True
    )[0]
    torch.testing.assert_close(small, closed, rtol=1e-14, atol=0)
    u = torch.randn(3, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        torch.autograd.grad(small, x, u)[0], torch.autograd.grad(closed, x, u, allow_unused=True)[0]
    )


@pytest.mark.parametrize("dtype,ulps", [(torch.float32, 2.0), (torch.float64, 2.5)])
def test_softplus_of_minus_abs_within_a_few_ulps(dtype, ulps):
    """``log1p(exp(-|x|))`` by ``-log1p(-sigmoid(-|x|))`` (``_math``): relative error
    within a few ulps of float64's ``log1p(exp(-|x|))`` wherever the value is a normal
    number, an absolute error below the smallest normal one beyond, 0 at ``+-inf``, NaN
    at NaN, and the negated form its exact negative."""
    from losskit.functional import _math

    x = torch.cat([torch.linspace(-120, 120, 200001, dtype=torch.float64), torch.zeros(1)])
    x = x.to(dtype)
    got = _math.softplus_of_minus_abs(x).double()
    want = torch.log1p(torch.exp(-x.double().abs()))
    tiny = torch.finfo(dtype).tiny
    normal = want > tiny
    rel = (got - want).abs()[normal] / want[normal]
    assert float(rel.max()) <= ulps * torch.finfo(dtype).eps
    beyond = (got - want).abs()[~normal]  # float32 past |x| = 87 (none in float64)
    assert beyond.numel() == 0 or float(beyond.max()) <= tiny
    assert torch.equal(
        _math.softplus_of_minus_abs(x, negated=True), -_math.softplus_of_minus_abs(x)
    )
    edge = _math.softplus_of_minus_abs(torch.tensor([math.inf, -math.inf, math.nan], dtype=dtype))
    assert edge[:2].tolist() == [0.0, 0.0] and math.isnan(edge[2])
