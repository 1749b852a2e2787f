"""Regression losses: the seed articles' worked examples, identities between the losses,
torch parity over every option combination, and the common semantics (normalizer, empty
mean, half precision, no in-place writes, module forms)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from conftest import TOL, assert_close

REDUCTIONS = ("none", "mean", "sum")
DTYPES = (torch.float32, torch.float64)
SHAPES = ((7,), (4, 5), (2, 3, 4))

# Every regression loss with a non-default hyperparameter set (module tests use these).
ALL_LOSSES = [
    pytest.param(LF.l1_loss, {}, id="l1_loss"),
    pytest.param(LF.mse_loss, {}, id="mse_loss"),
    pytest.param(LF.rmse_loss, {}, id="rmse_loss"),
    pytest.param(LF.smooth_l1_loss, {"beta": 0.5}, id="smooth_l1_loss"),
    pytest.param(LF.huber_loss, {"delta": 0.3}, id="huber_loss"),
    pytest.param(LF.pseudo_huber_loss, {"delta": 0.7}, id="pseudo_huber_loss"),
    pytest.param(LF.log_cosh_loss, {}, id="log_cosh_loss"),
    pytest.param(LF.quantile_loss, {"quantile": 0.8}, id="quantile_loss"),
]
# The elementwise ones: "none" keeps the input's shape and "mean" is sum / count.
ELEMENTWISE = [p for p in ALL_LOSSES if p.id != "rmse_loss"]

# (losskit function, torch function, hyperparameters) for the losses torch has.
TORCH_PAIRS = [
    pytest.param(LF.l1_loss, TF.l1_loss, {}, id="l1"),
    pytest.param(LF.mse_loss, TF.mse_loss, {}, id="mse"),
    pytest.param(LF.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 1.0}, id="smooth_l1-b1"),
    pytest.param(LF.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.5}, id="smooth_l1-b0.5"),
    pytest.param(LF.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.0}, id="smooth_l1-b0"),
    pytest.param(LF.huber_loss, TF.huber_loss, {"delta": 1.0}, id="huber-d1"),
    pytest.param(LF.huber_loss, TF.huber_loss, {"delta": 0.3}, id="huber-d0.3"),
]

MODULES = [
    pytest.param(losskit.nn.L1Loss, LF.l1_loss, {}, id="L1Loss"),
    pytest.param(losskit.nn.MAELoss, LF.mae_loss, {}, id="MAELoss"),
    pytest.param(losskit.nn.MSELoss, LF.mse_loss, {}, id="MSELoss"),
    pytest.param(losskit.nn.RMSELoss, LF.rmse_loss, {}, id="RMSELoss"),
    pytest.param(losskit.nn.SmoothL1Loss, LF.smooth_l1_loss, {"beta": 0.5}, id="SmoothL1Loss"),
    pytest.param(losskit.nn.HuberLoss, LF.huber_loss, {"delta": 0.5}, id="HuberLoss"),
    pytest.param(
        losskit.nn.PseudoHuberLoss, LF.pseudo_huber_loss, {"delta": 2.0}, id="PseudoHuberLoss"
    ),
    pytest.param(losskit.nn.LogCoshLoss, LF.log_cosh_loss, {}, id="LogCoshLoss"),
    pytest.param(losskit.nn.QuantileLoss, LF.quantile_loss, {"quantile": 0.9}, id="QuantileLoss"),
]


def _randn(shape, dtype=torch.float64, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def _weight(shape, dtype=torch.float64, seed=7):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


# --------------------------------------------------------------------------- seed 003
SEED003_SAMPLE = [[1.0, 1.0], [1.0, 1.0]]
SEED003_TARGET = [[0.0, 1.0], [2.0, 3.0]]


def _seed003_by_hand(kind):
    """The article's arithmetic, element by element (sample - target residuals)."""
    pairs = [
        (s, t)
        for srow, trow in zip(SEED003_SAMPLE, SEED003_TARGET, strict=True)
        for s, t in zip(srow, trow, strict=True)
    ]
    if kind == "l1":  # (|0-1| + |1-1| + |2-1| + |3-1|) / 4
        terms = [abs(t - s) for s, t in pairs]
    elif kind == "mse":
        terms = [(t - s) ** 2 for s, t in pairs]
    else:  # smooth L1 with beta = 1: 0.5 r^2 for |r| < 1, |r| - 0.5 otherwise
        terms = [0.5 * (t - s) ** 2 if abs(t - s) < 1 else abs(t - s) - 0.5 for s, t in pairs]
    return sum(terms) / len(terms)


@pytest.mark.parametrize(
    "fn, kind, printed",
    [
        (LF.l1_loss, "l1", 1.0),
        (LF.mae_loss, "l1", 1.0),
        (LF.smooth_l1_loss, "smooth_l1", 0.625),
        (LF.mse_loss, "mse", 1.5),
    ],
    ids=["l1", "mae", "smooth_l1", "mse"],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed003_worked_example(fn, kind, printed, dtype):
    sample = torch.ones(2, 2, dtype=dtype)
    target = torch.tensor(SEED003_TARGET, dtype=dtype)
    got = fn(sample, target)
    assert got.dtype == dtype and got.shape == ()
    by_hand = _seed003_by_hand(kind)
    assert by_hand == printed  # the article's own arithmetic gives its printed number
    assert got.item() == pytest.approx(by_hand, rel=1e-7)
    assert got.item() == pytest.approx(printed, rel=1e-7)


def test_seed003_module_forms():
    sample = torch.ones(2, 2)
    target = torch.tensor(SEED003_TARGET)
    assert losskit.nn.L1Loss()(sample, target).item() == _seed003_by_hand("l1")
    assert losskit.nn.SmoothL1Loss()(sample, target).item() == _seed003_by_hand("smooth_l1")
    assert losskit.nn.MSELoss()(sample, target).item() == _seed003_by_hand("mse")


# --------------------------------------------------------------------------- seed 004
Y_HAT = np.array([0.020, 0.176, 0.313])
Y_TRUE = np.array([0.019, 0.234, 0.918])


def _article_rmse(predictions, targets):
    return np.sqrt(((predictions - targets) ** 2).mean())


def _article_mae(true, pred):
    return np.abs(true - pred).mean()


def _article_huber(true, pred, delta=1):
    loss = np.where(
        np.abs(true - pred) < delta,
        0.5 * ((true - pred) ** 2),
        delta * np.abs(true - pred) - 0.5 * (delta**2),
    )
    return loss.mean()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "name, fn, article",
    [
        ("rmse", LF.rmse_loss, lambda: _article_rmse(Y_HAT, Y_TRUE)),
        ("mae", LF.mae_loss, lambda: _article_mae(Y_TRUE, Y_HAT)),
        ("l1", LF.l1_loss, lambda: _article_mae(Y_TRUE, Y_HAT)),
        (
            "huber",
            lambda x, y: LF.huber_loss(x, y, delta=1.0),
            lambda: _article_huber(Y_TRUE, Y_HAT, delta=1),
        ),
    ],
    ids=["rmse", "mae", "l1", "huber"],
)
def test_seed004_numpy_functions(name, fn, article, dtype):
    x = torch.tensor(Y_HAT, dtype=dtype)
    y = torch.tensor(Y_TRUE, dtype=dtype)
    got = fn(x, y)
    assert got.dtype == dtype
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    assert got.item() == pytest.approx(float(article()), rel=rtol)


def test_seed004_mae_is_l1():
    assert LF.mae_loss is LF.l1_loss
    assert losskit.nn.MAELoss is losskit.nn.L1Loss
    assert type(losskit.get("mae_loss")) is losskit.nn.L1Loss


def test_seed004_huber_delta_matters():
    # The third residual (0.605) is below delta=1 but above delta=0.1: the branch changes.
    x = torch.tensor(Y_HAT)
    y = torch.tensor(Y_TRUE)
    got = LF.huber_loss(x, y, delta=0.1).item()
    assert got == pytest.approx(float(_article_huber(Y_TRUE, Y_HAT, delta=0.1)), rel=1e-12)
    assert got != pytest.approx(float(_article_huber(Y_TRUE, Y_HAT, delta=1)), rel=1e-3)


# --------------------------------------------------------------------------- identities
@pytest.mark.parametrize("b", [0.05, 0.3, 1.0, 2.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_smooth_l1_is_huber_over_beta(b, reduction, weighted):
    x = _randn((6, 5))
    y = _randn((6, 5), seed=1)
    w = _weight((5,)) if weighted else None
    x1, x2 = _leaf(x), _leaf(x)
    smooth = LF.smooth_l1_loss(x1, y, beta=b, weight=w, reduction=reduction)
    huber = LF.huber_loss(x2, y, delta=b, weight=w, reduction=reduction) / b
    assert_close(smooth, huber)
    upstream = _randn(smooth.shape, seed=3)
    smooth.backward(upstream)
    huber.backward(upstream)
    assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pseudo_huber_is_quadratic_for_small_residuals(delta, dtype):
    r = torch.tensor([1e-3, -2e-3, 5e-4, -1e-3], dtype=dtype)
    x = _leaf(r)
    out = LF.pseudo_huber_loss(x, torch.zeros_like(r), delta=delta, reduction="none")
    r64 = r.double()
    torch.testing.assert_close(out.double(), r64**2 / 2, rtol=1e-5, atol=0)
    out.sum().backward()
    torch.testing.assert_close(x.grad.double(), r64, rtol=1e-5, atol=0)  # d(r^2/2)/dr = r


@pytest.mark.parametrize("delta", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pseudo_huber_is_linear_for_large_residuals(delta, dtype):
    r = torch.tensor([1e3, -1e4, 5e4, -3e3], dtype=dtype)
    x = _leaf(r)
    out = LF.pseudo_huber_loss(x, torch.zeros_like(r), delta=delta, reduction="none")
    assert torch.isfinite(out).all()
    r64 = r.double()
    torch.testing.assert_close(out.double(), delta * r64.abs() - delta**2, rtol=1e-5, atol=0)
    out.sum().backward()
    torch.testing.assert_close(x.grad.double(), delta * r64.sign(), rtol=1e-5, atol=0)


def test_pseudo_huber_definition():
    # delta^2 (sqrt(1 + (r / delta)^2) - 1), the SPEC's formula, at moderate residuals.
    r = _randn((20,), scale=3.0)
    for delta in (0.2, 1.0, 4.0):
        want = delta**2 * (torch.sqrt(1 + (r / delta) ** 2) - 1)
        got = LF.pseudo_huber_loss(r, torch.zeros_like(r), delta=delta, reduction="none")
        assert_close(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_log_cosh_is_stable_for_large_residuals(dtype):
    rs = [1e4, -1e4, 3e3, -1e3, 50.0, -20.0, 10.0, -9.5]
    x = _leaf(torch.tensor(rs, dtype=dtype))
    out = LF.log_cosh_loss(x, torch.zeros_like(x), reduction="none")
    assert torch.isfinite(out).all()
    # log cosh r = |r| - log 2 + log1p(exp(-2|r|)), exact; the last term is < 1e-8 here.
    want = torch.tensor(
        [abs(r) - math.log(2) + math.log1p(math.exp(-2 * abs(r))) for r in rs], dtype=torch.float64
    )
    rtol = TOL[dtype][0]
    torch.testing.assert_close(out.double(), want, rtol=rtol, atol=0)
    far = torch.tensor([abs(r) - math.log(2) for r in rs[:4]], dtype=torch.float64)
    torch.testing.assert_close(out[:4].double(), far, rtol=rtol, atol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    grad_want = torch.tensor([math.tanh(r) for r in rs], dtype=torch.float64)
    torch.testing.assert_close(x.grad.double(), grad_want, rtol=rtol, atol=0)
    # mean of the two 1e4 residuals, the docstring example's regime
    assert LF.log_cosh_loss(x[:2], torch.zeros(2, dtype=dtype)).item() == pytest.approx(
        1e4 - math.log(2), rel=rtol
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_log_cosh_small_residuals_keep_relative_precision(dtype):
    # log(cosh(1e-4)) rounds to 0 in float32 if computed naively; log cosh r = r^2/2 - r^4/12.
    r = torch.tensor([1e-4, -3e-4, 1e-6, 1e-10], dtype=dtype)
    x = _leaf(r)
    out = LF.log_cosh_loss(x, torch.zeros_like(r), reduction="none")
    r64 = r.double()
    want = r64**2 / 2 - r64**4 / 12
    assert (out > 0).all()
    torch.testing.assert_close(out.double(), want, rtol=2 * TOL[dtype][0], atol=0)
    out.sum().backward()
    torch.testing.assert_close(x.grad.double(), torch.tanh(r64), rtol=2 * TOL[dtype][0], atol=0)


def test_log_cosh_matches_definition_at_moderate_residuals():
    r = _randn((50,), scale=4.0)
    got = LF.log_cosh_loss(r, torch.zeros_like(r), reduction="none")
    assert_close(got, torch.log(torch.cosh(r)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_quantile_half_is_half_l1(reduction, weighted):
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    w = _weight((4, 5)) if weighted else None
    x1, x2 = _leaf(x), _leaf(x)
    q = LF.quantile_loss(x1, y, quantile=0.5, weight=w, reduction=reduction)
    half_l1 = 0.5 * LF.l1_loss(x2, y, weight=w, reduction=reduction)
    assert_close(q, half_l1)
    q.sum().backward()
    half_l1.sum().backward()
    assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("q", [0.1, 0.9])
def test_quantile_is_pinball(q):
    # r = y - x: under-prediction (r > 0) costs q per unit, over-prediction 1 - q.
    x = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    y = torch.tensor([2.0, 2.0, 2.0], dtype=torch.float64)
    got = LF.quantile_loss(x, y, quantile=q, reduction="none")
    assert got.tolist() == pytest.approx([q * 1.0, (1 - q) * 1.0, 0.0], rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_rmse_zero_error_has_zero_gradient(reduction):
    x = _randn((4, 3))
    xl = _leaf(x)
    out = LF.rmse_loss(xl, x.clone(), reduction=reduction)
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert not torch.isnan(xl.grad).any()
    assert torch.equal(xl.grad, torch.zeros_like(x))


@pytest.mark.parametrize("shape", [(4, 3, 2), (5, 6), (6,)], ids=str)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_rmse_none_is_per_sample_and_sum_adds_them(shape, weighted):
    x, y = _randn(shape), _randn(shape, seed=1)
    w = _weight(shape) if weighted else torch.ones(shape, dtype=torch.float64)
    kw = {"weight": w} if weighted else {}
    none = LF.rmse_loss(x, y, reduction="none", **kw)
    assert none.shape == (shape[0],)
    per_sample = torch.stack(
        [torch.sqrt((w[i] * (x[i] - y[i]) ** 2).sum() / w[i].sum()) for i in range(shape[0])]
    )
    assert_close(none, per_sample)
    if len(shape) == 1:  # one element per sample: the RMSE is |r|
        assert_close(none, (x - y).abs())
    assert_close(LF.rmse_loss(x, y, reduction="sum", **kw), per_sample.sum())
    # "mean" is the RMSE over every element, not the mean of the per-sample values
    assert_close(
        LF.rmse_loss(x, y, reduction="mean", **kw), torch.sqrt((w * (x - y) ** 2).sum() / w.sum())
    )


def test_rmse_is_sqrt_of_mse():
    x, y = _randn((3, 8)), _randn((3, 8), seed=1)
    assert_close(LF.rmse_loss(x, y), torch.sqrt(LF.mse_loss(x, y)))


def test_rmse_of_many_float32_elements_keeps_float32_precision():
    # a million residuals: the sum of squares must not lose digits to float32 lanes
    # (torch.linalg.vector_norm's float32 accumulation is 1e-5 off here)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1 << 20, generator=g), torch.randn(1 << 20, generator=g)
    exact = torch.sqrt(((x.double() - y.double()) ** 2).mean())
    got = LF.rmse_loss(x.requires_grad_(True), y)
    assert abs(float(got) / float(exact) - 1) < 1e-6


# --------------------------------------------------------------------------- torch parity
def _torch_oracle(torch_fn, x, y, weight, reduction, hp):
    if weight is None:
        return torch_fn(x, y, reduction=reduction, **hp)
    unreduced = weight * torch_fn(x, y, reduction="none", **hp)
    if reduction == "none":
        return unreduced
    if reduction == "sum":
        return unreduced.sum()
    return unreduced.sum() / torch.broadcast_to(weight, unreduced.shape).sum()


@pytest.mark.parametrize("fn, torch_fn, hp", TORCH_PAIRS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_kind", [None, "element", "last_dim"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_torch_parity(fn, torch_fn, hp, reduction, weight_kind, shape, dtype):
    x, y = _randn(shape, dtype), _randn(shape, dtype, seed=1)
    weight = None
    if weight_kind == "element":
        weight = _weight(shape, dtype)
    elif weight_kind == "last_dim":
        weight = _weight(shape[-1:], dtype)
    x1, y1, x2, y2 = _leaf(x), _leaf(y), _leaf(x), _leaf(y)
    got = fn(x1, y1, weight=weight, reduction=reduction, **hp)
    want = _torch_oracle(torch_fn, x2, y2, weight, reduction, hp)
    assert got.dtype == dtype and got.shape == want.shape
    assert_close(got, want)
    upstream = _randn(got.shape, dtype, seed=5) if reduction == "none" else None
    got.backward(upstream)
    want.backward(upstream)
    assert_close(x1.grad, x2.grad)
    assert_close(y1.grad, y2.grad)


@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_weighted_huber_mean_is_weight_normalised_unlike_torch(delta):
    # torch's huber_loss(weight=) mean divides by the element count; losskit by sum(w).
    x, y, w = _randn((4, 5)), _randn((4, 5), seed=1), _weight((4, 5))
    theirs_sum = TF.huber_loss(x, y, weight=w, reduction="sum", delta=delta)
    assert_close(LF.huber_loss(x, y, weight=w, reduction="sum", delta=delta), theirs_sum)
    assert_close(LF.huber_loss(x, y, weight=w, delta=delta), theirs_sum / w.sum())
    assert_close(TF.huber_loss(x, y, weight=w, delta=delta), theirs_sum / w.numel())


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("fn, torch_fn, hp", TORCH_PAIRS)
@pytest.mark.parametrize("target_shape", [(5,), (4, 1), (1, 5)], ids=str)
def test_shape_mismatch_raises_unless_broadcast(fn, torch_fn, hp, target_shape):
    x, y = _randn((4, 5)), _randn(target_shape, seed=1)
    with pytest.raises(losskit.LossInputError, match="broadcast=True"):
        fn(x, y, **hp)
    x1, x2 = _leaf(x), _leaf(x)
    for reduction in REDUCTIONS:
        got = fn(x1, y, broadcast=True, reduction=reduction, **hp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the broadcast
            want = torch_fn(x2, y, reduction=reduction, **hp)
        assert_close(got, want)
    fn(x1, y, broadcast=True, **hp).backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_fn(x2, y, **hp).backward()
    assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
def test_broadcast_equals_explicit_expand(fn, hp):
    x, y = _randn((4, 5)), _randn((5,), seed=1)
    with pytest.raises(losskit.LossInputError):
        fn(x, y, **hp)
    for reduction in REDUCTIONS:
        got = fn(x, y, broadcast=True, reduction=reduction, **hp)
        assert_close(got, fn(x, y.expand(4, 5), reduction=reduction, **hp))


# --------------------------------------------------------------------------- normalizer
@pytest.mark.parametrize("fn, hp", ELEMENTWISE)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_normalizer_divides_the_sum(fn, hp, weighted):
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    kw = {"weight": _weight((5,))} if weighted else {}
    total = fn(x, y, reduction="sum", **kw, **hp)
    for k in (4.0, 13, 0.5):
        assert_close(fn(x, y, normalizer=k, **kw, **hp), total / k)
    as_tensor = fn(x, y, normalizer=torch.tensor(4.0, dtype=torch.float64), **kw, **hp)
    assert as_tensor.shape == ()
    assert_close(as_tensor, total / 4.0)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_rmse_normalizer(weighted):
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    kw = {"weight": _weight((4, 5))} if weighted else {}
    want = torch.sqrt(LF.mse_loss(x, y, reduction="sum", **kw) / 6.0)
    assert_close(LF.rmse_loss(x, y, normalizer=6.0, **kw), want)
    assert_close(LF.rmse_loss(x, y, normalizer=torch.tensor(6.0), **kw), want)


@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_normalizer_without_mean_raises(fn, hp, reduction):
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    with pytest.raises(losskit.LossInputError, match="normalizer") as info:
        fn(x, y, reduction=reduction, normalizer=4.0, **hp)
    assert "reduction='mean'" in str(info.value)


def test_normalizer_tensor_gradient():
    # A 0-dim tensor normalizer (e.g. a global token count) keeps the graph intact.
    x, y = _randn((3, 4)), _randn((3, 4), seed=1)
    x1, x2 = _leaf(x), _leaf(x)
    LF.mse_loss(x1, y, normalizer=torch.tensor(8.0, dtype=torch.float64)).backward()
    (LF.mse_loss(x2, y, reduction="sum") / 8.0).backward()
    assert_close(x1.grad, x2.grad)


# --------------------------------------------------------------------------- empty mean
@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
@pytest.mark.parametrize("shape", [(0,), (0, 3)], ids=str)
def test_empty_input_mean_is_zero(fn, hp, shape):
    x = torch.zeros(shape, requires_grad=True)
    out = fn(x, torch.zeros(shape), **hp)
    assert out.shape == () and out.dtype == torch.float32
    assert out.item() == 0.0  # torch gives NaN here
    out.backward()
    assert x.grad is not None and x.grad.shape == shape
    assert fn(x, torch.zeros(shape), reduction="sum", **hp).item() == 0.0


@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
@pytest.mark.parametrize("weight_shape", [(4, 5), (5,)], ids=str)
def test_all_zero_weight_gives_zero_with_zero_gradient(fn, hp, weight_shape):
    x = _leaf(_randn((4, 5)))
    out = fn(x, _randn((4, 5), seed=1), weight=torch.zeros(weight_shape, dtype=torch.float64), **hp)
    assert not torch.isnan(out).any()
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_precision_returns_float32(fn, hp, half, reduction):
    x, y = _randn((6, 5), half), _randn((6, 5), half, seed=1)
    xh = _leaf(x)
    xf = _leaf(x.float())  # the same values, in float32
    got = fn(xh, y, reduction=reduction, **hp)
    want = fn(xf, y.float(), reduction=reduction, **hp)
    assert got.dtype == torch.float32
    rtol, atol = TOL[half]
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    upstream = torch.ones_like(want)
    got.backward(upstream)
    want.backward(upstream)
    assert xh.grad.dtype == half
    torch.testing.assert_close(xh.grad.float(), xf.grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_float_inputs_keep_their_dtype(fn, hp, dtype):
    x = _leaf(_randn((3, 4), dtype))
    out = fn(x, _randn((3, 4), dtype, seed=1), **hp)
    assert out.dtype == dtype
    out.backward()
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("fn, hp", ALL_LOSSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_inputs_not_modified_in_place(fn, hp, reduction, dtype):
    x, y, w = _randn((4, 5), dtype), _randn((4, 5), dtype, seed=1), _weight((4, 5), dtype)
    before = [t.clone() for t in (x, y, w)]
    x.requires_grad_(True)
    y.requires_grad_(True)
    w.requires_grad_(True)
    fn(x, y, weight=w, reduction=reduction, **hp).sum().backward()
    for after, orig in zip((x, y, w), before, strict=True):
        assert torch.equal(after.detach(), orig)


# --------------------------------------------------------------------------- modules
def test_huber_module_equals_functional():
    x, y = _randn((4, 5), torch.float32), _randn((4, 5), torch.float32, seed=1)
    module = losskit.nn.HuberLoss(delta=0.5)
    assert torch.equal(module(x, y), LF.huber_loss(x, y, delta=0.5))
    assert not torch.equal(module(x, y), LF.huber_loss(x, y))  # delta really is used


@pytest.mark.parametrize("module_cls, fn, hp", MODULES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_module_equals_functional(module_cls, fn, hp, reduction):
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    module = module_cls(reduction=reduction, **hp)
    assert isinstance(module, torch.nn.Module)
    assert torch.equal(module(x, y), fn(x, y, reduction=reduction, **hp))


def test_module_tensor_weight_is_a_buffer_that_moves():
    w = _weight((5,), torch.float32)
    module = losskit.nn.L1Loss(weight=w)
    assert "weight" in dict(module.named_buffers())
    assert "weight" in module.state_dict()
    module = module.to(torch.float64)
    assert module.weight.dtype == torch.float64
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    assert torch.equal(module(x, y), LF.l1_loss(x, y, weight=w.double()))
    assert torch.equal(module.weight, w.double())


def test_module_forward_overrides():
    x, y = _randn((4, 5)), _randn((4, 5), seed=1)
    module = losskit.nn.HuberLoss(delta=0.5)
    got = module(x, y, normalizer=4.0)
    assert_close(got, LF.huber_loss(x, y, delta=0.5, reduction="sum") / 4.0)
    assert_close(module(x, y, delta=2.0), LF.huber_loss(x, y, delta=2.0))
    # the override is per call: the stored options are unchanged
    assert torch.equal(module(x, y), LF.huber_loss(x, y, delta=0.5))


def test_module_unknown_option_raises_type_error():
    with pytest.raises(TypeError, match="delt") as info:
        losskit.nn.HuberLoss(delt=0.5)
    assert isinstance(info.value, losskit.LossTypeError)
    assert "HuberLoss" in str(info.value) and "delta" in str(info.value)


@pytest.mark.parametrize("module_cls, fn, hp", MODULES)
def test_module_bad_reduction_raises_at_construction(module_cls, fn, hp):
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'") as info:
        module_cls(reduction="avg", **hp)
    assert module_cls.__name__ in str(info.value)
    assert "'avg'" in str(info.value)


def test_module_reduction_none_value_raises_at_construction():
    with pytest.raises(ValueError, match="'none', 'mean', 'sum', got None") as info:
        losskit.nn.HuberLoss(reduction=None)
    assert str(info.value).startswith("HuberLoss:")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_extreme_residuals_use_scaled_forms(dtype):
    """Residuals whose squares overflow or underflow: the scaled forms give the true
    values and gradients (pseudo-Huber of 1e20 at delta 1e-20 is ~1, not 0 with a NaN
    gradient; RMSE of [1e20, 0] is 1e20 / sqrt(2), not inf; of 1e-25, 1e-25, not 0)."""
    x = torch.tensor([1e20], dtype=dtype, requires_grad=True)
    loss = losskit.functional.pseudo_huber_loss(x, torch.zeros(1, dtype=dtype), delta=1e-20)
    (grad,) = torch.autograd.grad(loss, x)
    assert loss.item() == pytest.approx(1.0, rel=1e-6)
    assert grad.item() == pytest.approx(1e-20, rel=1e-6)
    for values, want, want_grad in (
        ([1e20, 0.0], 1e20 / math.sqrt(2), [1 / math.sqrt(2), 0.0]),
        ([1e-25, 1e-25], 1e-25, [0.5, 0.5]),
    ):
        x = torch.tensor(values, dtype=dtype, requires_grad=True)
        loss = losskit.functional.rmse_loss(x, torch.zeros(2, dtype=dtype))
        (grad,) = torch.autograd.grad(loss, x)
        assert loss.item() == pytest.approx(want, rel=1e-6)
        torch.testing.assert_close(grad, torch.tensor(want_grad, dtype=dtype))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name, hyper",
    [
        ("mse_loss", {}),
        ("l1_loss", {}),
        ("huber_loss", {"delta": 0.3}),
        ("smooth_l1_loss", {"beta": 0.5}),
        ("smooth_l1_loss", {"beta": 0.0}),
    ],
)
def test_aten_kernels_are_torch_functionals(name, hyper, reduction):
    """``functional/_aten``: torch's kernels without torch.nn.functional's wrapper give its
    values, gradients (a zero residual included) and autograd node."""
    from losskit.functional import _aten

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randn(6, 5, generator=g, dtype=torch.float64)
    y[0] = x[0]  # r = 0: the L1 gradient 0 (beta = 0 is torch's L1 loss)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    got = getattr(_aten, name)(a, y, reduction, **hyper)
    want = getattr(TF, name)(b, y, reduction=reduction, **hyper)
    assert type(got.grad_fn) is type(want.grad_fn)
    assert torch.equal(got, want)
    up = torch.rand(got.shape, generator=g, dtype=torch.float64)
    assert torch.equal(torch.autograd.grad(got, a, up)[0], torch.autograd.grad(want, b, up)[0])


def test_plain_pair_fast_accept_is_the_checked_path():
    """``prepare_pointwise``'s fast accept (tensors of one shape, dtype and device, no
    weight) returns what the full checks return; anything else takes the checks."""
    from losskit.functional._common import prepare_pointwise

    x, y = torch.randn(3, 4), torch.randn(3, 4)
    got = prepare_pointwise("mse_loss", x, y)
    assert got[0] is x and got[1] is y and got[2] is None
    with pytest.raises(losskit.LossInputError, match="does not match"):
        prepare_pointwise("mse_loss", x, torch.randn(4))
    with pytest.raises(losskit.LossInputError, match="reduction"):
        prepare_pointwise("mse_loss", x, y, reduction="avg")
    half = prepare_pointwise("mse_loss", x.half(), y.half())
    assert half[0].dtype == half[1].dtype == torch.float32
