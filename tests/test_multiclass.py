"""Multi-class losses: torch parity over every option combination, the empty-mean rule,
unbatched input, integer target dtypes, the seed articles' worked examples (recomputed by
hand), error messages, identities between the losses, z-loss, stability at extreme logits
and the Keras categorical cross entropy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from conftest import assert_close

REDUCTIONS = ("none", "mean", "sum")
SHAPES = {"2d": (7, 5), "4d": (2, 5, 3, 4)}
DTYPES = (torch.float64, torch.float32, torch.bfloat16)
GAMMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 5.0)
INDEX_LOSSES = {
    "cross_entropy": LF.cross_entropy,
    "softmax_focal_loss": LF.softmax_focal_loss,
    "symmetric_cross_entropy": LF.symmetric_cross_entropy,
    "reverse_cross_entropy": LF.reverse_cross_entropy,
}


# --------------------------------------------------------------------------- helpers
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _logits(shape, seed=0, scale=3.0):
    return torch.randn(shape, generator=_gen(seed), dtype=torch.float64) * scale


def _index_target(shape, seed=1, force=1):
    """Class indices ``(N, d1, ...)`` for an input of ``shape``; class ``force`` appears."""
    c = shape[1] if len(shape) > 1 else shape[0]
    idx_shape = (shape[0], *shape[2:]) if len(shape) > 1 else ()
    y = torch.randint(0, c, idx_shape, generator=_gen(seed))
    if y.dim() and force is not None:
        y.view(-1)[::4] = force  # ignore_index=force then really ignores something
    return y


def _probs_target(shape, seed=2):
    return torch.softmax(_logits(shape, seed, scale=1.5), dim=1 if len(shape) > 1 else 0)


def _class_weight(c, seed=7):
    return torch.rand(c, generator=_gen(seed), dtype=torch.float64) + 0.25


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


def _upstream(out, seed=11):
    """A scalar to backpropagate, with an upstream gradient that is not 1."""
    if out.dim() == 0:
        return out * 1.7
    g = torch.rand(out.shape, generator=_gen(seed), dtype=torch.float64) + 0.5
    return (out * g.to(out.dtype)).sum()


def _value_and_grad(fn, x, *args, **kwargs):
    leaf = _leaf(x)
    out = fn(leaf, *args, **kwargs)
    (grad,) = torch.autograd.grad(_upstream(out), leaf)
    return out.detach(), grad


def _ref_dtype(dtype):
    """torch's reference runs in float32 for half-precision inputs."""
    return torch.float32 if dtype == torch.bfloat16 else dtype


def _check_parity(ours, theirs, x64, dtype, reduction, *args, **kwargs):
    """``ours`` on ``x`` in ``dtype`` vs ``theirs`` (torch) on the same values in the
    reference dtype: values and input gradients, with the tolerance table."""
    x = x64.to(dtype)
    x_ref = x.to(_ref_dtype(dtype))  # the same values: bfloat16 rounding happens first
    ref_args = [a.to(_ref_dtype(dtype)) if a.is_floating_point() else a for a in args]
    ref_kwargs = {
        k: v.to(_ref_dtype(dtype)) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()
    }
    got, got_grad = _value_and_grad(ours, x, *args, reduction=reduction, **kwargs)
    want, want_grad = _value_and_grad(theirs, x_ref, *ref_args, reduction=reduction, **ref_kwargs)
    assert got.dtype == _ref_dtype(dtype)  # half precision comes back as float32
    assert got_grad.dtype == dtype
    assert got.shape == want.shape
    assert_close(got, want, dtype, msg=f"value, reduction={reduction}")
    if dtype != torch.float32:
        assert_close(got_grad.to(want_grad.dtype), want_grad, dtype, msg=f"grad, {reduction}")
        return
    # float32: the gradient against torch's in float64 (the exact one), within a few units
    # in the last place of its largest entry; torch's float32 gradient is itself 1-3 such
    # units off where p - q cancels (label smoothing), so two float32 roundings of the
    # same formula need not agree to 1e-7
    exact_args = [a.double() if a.is_floating_point() else a for a in args]
    exact_kwargs = {k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    _, exact = _value_and_grad(theirs, x64, *exact_args, reduction=reduction, **exact_kwargs)
    ulps = 4 * torch.finfo(dtype).eps * float(exact.abs().max())
    assert_close(got_grad.double(), exact, dtype, atol=ulps, msg=f"grad, {reduction}")


# --------------------------------------------------------------------------- 1. torch parity
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2], ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("ignore_index", [-100, 1], ids=lambda v: f"ii{v}")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_cross_entropy_index_torch_parity(shape, dtype, weighted, ignore_index, label_smoothing):
    x = _logits(shape)
    y = _index_target(shape)
    assert (y == 1).any()
    options = {"ignore_index": ignore_index, "label_smoothing": label_smoothing}
    if weighted:
        options["weight"] = _class_weight(shape[1]).to(_ref_dtype(dtype))
    for reduction in REDUCTIONS:
        _check_parity(LF.cross_entropy, TF.cross_entropy, x, dtype, reduction, y, **options)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2], ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_cross_entropy_probs_torch_parity_unweighted(shape, dtype, label_smoothing):
    x = _logits(shape)
    q = _probs_target(shape).to(_ref_dtype(dtype))
    for reduction in REDUCTIONS:
        _check_parity(
            LF.cross_entropy,
            TF.cross_entropy,
            x,
            dtype,
            reduction,
            q,
            label_smoothing=label_smoothing,
        )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2], ids=lambda v: f"ls{v}")
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_cross_entropy_probs_weighted_mean_divides_by_weighted_target_mass(shape, label_smoothing):
    # SPEC 2: weighted mean is sum(w l) / sum(w); for probability targets the weight of a
    # sample is sum_c w_c q_ic. torch divides by N instead (a documented deviation).
    x = _logits(shape)
    q = _probs_target(shape)
    c = shape[1]
    w = _class_weight(c)
    wv = w.view(1, c, *([1] * (len(shape) - 2)))
    logp = torch.log_softmax(x, dim=1)
    qs = q * (1 - label_smoothing) + label_smoothing / c
    per = -(wv * qs * logp).sum(1)
    den = (wv * q).sum(1).sum()
    kw = {"weight": w, "label_smoothing": label_smoothing}
    got_none = LF.cross_entropy(x, q, reduction="none", **kw)
    got_sum = LF.cross_entropy(x, q, reduction="sum", **kw)
    got_mean = LF.cross_entropy(x, q, **kw)
    assert_close(got_none, per)
    assert_close(got_sum, per.sum())
    assert_close(got_mean, per.sum() / den)
    # torch agrees on "none" and "sum", and its mean is the sum over N samples
    assert_close(got_none, TF.cross_entropy(x, q, reduction="none", **kw))
    assert_close(got_sum, TF.cross_entropy(x, q, reduction="sum", **kw))
    torch_mean = TF.cross_entropy(x, q, **kw)
    assert_close(torch_mean, per.sum() / per.numel())
    assert not torch.allclose(got_mean, torch_mean)
    # and the gradient of the mean is the gradient of the formula
    _, g_got = _value_and_grad(LF.cross_entropy, x, q, **kw)
    _, g_want = _value_and_grad(lambda t: -(wv * qs * torch.log_softmax(t, dim=1)).sum() / den, x)
    assert_close(g_got, g_want)


@pytest.mark.parametrize("ignore_index", [-100, 1], ids=lambda v: f"ii{v}")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_nll_loss_torch_parity(shape, dtype, weighted, ignore_index):
    logp = torch.log_softmax(_logits(shape), dim=1)
    y = _index_target(shape)
    options = {"ignore_index": ignore_index}
    if weighted:
        options["weight"] = _class_weight(shape[1]).to(dtype)
    for reduction in REDUCTIONS:
        _check_parity(LF.nll_loss, TF.nll_loss, logp, dtype, reduction, y, **options)


@pytest.mark.parametrize(
    "ours, theirs", [(LF.nll_loss, TF.nll_loss), (LF.cross_entropy, TF.cross_entropy)]
)
def test_cpu_kernel_path_keeps_the_checks_and_the_empty_mean(ours, theirs):
    """(N, C) inputs on CPU take torch's kernel (cross entropy up to ``SMALL`` elements
    and with no target ignored), which checks the class indices itself: a bad target
    still gets losskit's message, every target ignored gives 0 (torch: NaN) with a zero
    gradient, some ignored give torch's value and gradient, a NaN in an ignored row
    stays out."""
    logp = torch.log_softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), 1)
    for bad, hint in ((4, "1-based"), (-3, "ignore_index=-3"), (255, "ignore_index=255")):
        y = torch.tensor([1, 2, 3, 1, 2, bad])
        for reduction in ("mean", "sum"):
            with pytest.raises(losskit.LossInputError, match=hint):
                ours(logp, y if bad != 4 else y.clamp_min(1), reduction=reduction)
    x = logp.clone().requires_grad_(True)
    out = ours(x, torch.full((6,), -100))
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    y = torch.tensor([0, -100, 3, 1, -100, 2])
    for reduction in ("mean", "sum"):
        a, b = logp.clone().requires_grad_(True), logp.clone().requires_grad_(True)
        got = ours(a, y, reduction=reduction)
        want = theirs(b, y, reduction=reduction)
        torch.testing.assert_close(got, want)
        got.backward()
        want.backward()
        torch.testing.assert_close(a.grad, b.grad)
    assert ours(torch.full((2, 3), math.nan), torch.tensor([0, 1])).isnan()
    # a NaN in an ignored row reaches neither the value nor the gradient
    dirty = logp.clone()
    dirty[1] = math.nan
    dirty.requires_grad_(True)
    out = ours(dirty, y)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(dirty.grad).all()


@pytest.mark.parametrize(
    "ours, theirs", [(LF.nll_loss, TF.nll_loss), (LF.cross_entropy, TF.cross_entropy)]
)
def test_cpu_kernel_path_of_maps(ours, theirs):
    """(N, C, H, W) maps take the same kernels: torch's values and gradients, losskit's
    message for a bad pixel, ignored pixels (with a NaN in them) inert."""
    g = torch.Generator().manual_seed(2)
    x = torch.log_softmax(torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64), 1)
    y = torch.randint(0, 3, (2, 4, 5), generator=g)
    for reduction in ("mean", "sum"):
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        got, want = ours(a, y, reduction=reduction), theirs(b, y, reduction=reduction)
        torch.testing.assert_close(got, want)
        got.backward()
        want.backward()
        torch.testing.assert_close(a.grad, b.grad)
    bad = y.clone()
    bad[1, 2, 3] = 3
    with pytest.raises(losskit.LossInputError, match="1-based|class ind"):
        ours(x, bad)
    ignored = y.clone()
    ignored[0, 1] = -100
    dirty = x.clone()
    dirty[0, :, 1] = math.nan
    dirty.requires_grad_(True)
    out = ours(dirty, ignored)
    out.backward()
    torch.testing.assert_close(out, theirs(x, ignored))
    assert torch.isfinite(dirty.grad).all()


def test_cross_entropy_kernel_path_is_the_closed_form():
    """Up to ``SMALL`` elements cross entropy runs torch's kernel, above it the closed
    form: the two agree (value and gradient) on either side of the bound."""
    from losskit.functional import _fused

    g = torch.Generator().manual_seed(1)
    for n, node in ((_fused.SMALL // 8, "NllLossBackward0"), (_fused.SMALL // 8 + 1, "_Fused")):
        x = torch.randn(n, 8, generator=g, dtype=torch.float64) * 5
        y = torch.randint(0, 8, (n,), generator=g)
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        got = LF.cross_entropy(a, y)
        assert type(got.grad_fn).__name__.startswith(node)
        want = -torch.log_softmax(b, 1).gather(1, y[:, None]).mean()
        torch.testing.assert_close(got, want, rtol=1e-13, atol=0)
        got.backward()
        want.backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_nll_of_log_softmax_is_cross_entropy(shape, weighted):
    x = _logits(shape)
    y = _index_target(shape)
    kw = {"ignore_index": 1, "weight": _class_weight(shape[1]) if weighted else None}
    for reduction in REDUCTIONS:
        ce, g_ce = _value_and_grad(LF.cross_entropy, x, y, reduction=reduction, **kw)
        nll, g_nll = _value_and_grad(
            lambda t, r=reduction: LF.nll_loss(torch.log_softmax(t, 1), y, reduction=r, **kw), x
        )
        assert_close(nll, ce)
        assert_close(g_nll, g_ce)


# --------------------------------------------------------------------------- 2. all ignored
ALL_IGNORED = [
    pytest.param(LF.cross_entropy, {}, id="cross_entropy"),
    pytest.param(LF.cross_entropy, {"weight": True}, id="cross_entropy-weight"),
    pytest.param(LF.cross_entropy, {"label_smoothing": 0.2}, id="cross_entropy-ls"),
    pytest.param(
        LF.cross_entropy, {"weight": True, "label_smoothing": 0.2}, id="cross_entropy-weight-ls"
    ),
    pytest.param(LF.cross_entropy, {"z_loss": 1e-2}, id="cross_entropy-z"),
    pytest.param(LF.nll_loss, {}, id="nll_loss"),
    pytest.param(LF.nll_loss, {"weight": True}, id="nll_loss-weight"),
    pytest.param(LF.softmax_focal_loss, {}, id="softmax_focal_loss"),
    pytest.param(
        LF.softmax_focal_loss, {"weight": True, "label_smoothing": 0.1}, id="focal-weight-ls"
    ),
    pytest.param(LF.symmetric_cross_entropy, {}, id="symmetric_cross_entropy"),
    pytest.param(LF.symmetric_cross_entropy, {"weight": True}, id="sce-weight"),
    pytest.param(LF.reverse_cross_entropy, {}, id="reverse_cross_entropy"),
]


@pytest.mark.parametrize("ignore_index", [-100, 3], ids=lambda v: f"ii{v}")
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("fn, options", ALL_IGNORED)
def test_all_ignored_mean_is_zero_with_zero_gradient(fn, options, shape, ignore_index):
    options = dict(options)
    if options.get("weight"):
        options["weight"] = _class_weight(shape[1])
    x = _logits(shape)
    y = torch.full(_index_target(shape).shape, ignore_index)
    for dtype in (torch.float64, torch.float32):
        leaf = _leaf(x.to(dtype))
        out = fn(leaf, y, ignore_index=ignore_index, **options)
        assert out.item() == 0.0  # exactly, not NaN
        out.backward()
        assert torch.equal(leaf.grad, torch.zeros_like(leaf))
        assert LF.cross_entropy(leaf, y, ignore_index=ignore_index, reduction="sum").item() == 0
    # torch gives NaN here: the documented deviation
    assert torch.isnan(TF.cross_entropy(x, y, ignore_index=ignore_index))


# --------------------------------------------------------------------------- 3. unbatched
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight": True},
        {"label_smoothing": 0.2},
        {"weight": True, "label_smoothing": 0.2},
        {"ignore_index": 1},
    ],
    ids=["plain", "weight", "ls", "weight-ls", "ignore-other"],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_unbatched_input_matches_torch(options, dtype):
    options = dict(options)
    if options.get("weight"):
        options["weight"] = _class_weight(5).to(dtype)
    x = _logits((5,))
    y = torch.tensor(3)
    for reduction in REDUCTIONS:
        _check_parity(LF.cross_entropy, TF.cross_entropy, x, dtype, reduction, y, **options)
        _check_parity(
            LF.nll_loss,
            TF.nll_loss,
            torch.log_softmax(x, 0),
            dtype,
            reduction,
            y,
            **{k: v for k, v in options.items() if k != "label_smoothing"},
        )
        out = LF.cross_entropy(x.to(dtype), y, reduction=reduction, **options)
        assert out.shape == ()


def test_unbatched_probability_target_and_ignored_target():
    x = _logits((5,))
    q = _probs_target((5,))
    for reduction in REDUCTIONS:
        _check_parity(LF.cross_entropy, TF.cross_entropy, x, torch.float64, reduction, q)
    # an ignored 0-dim target: torch's mean is NaN, ours is 0 with zero gradient
    leaf = _leaf(x)
    out = LF.cross_entropy(leaf, torch.tensor(2), ignore_index=2)
    out.backward()
    assert out.item() == 0.0 and torch.equal(leaf.grad, torch.zeros_like(leaf))
    assert torch.isnan(TF.cross_entropy(x, torch.tensor(2), ignore_index=2))


# --------------------------------------------------------------------------- 4. target dtypes
@pytest.mark.parametrize("name", [*INDEX_LOSSES, "nll_loss"])
def test_any_integer_target_dtype_gives_the_int64_result(name):
    fn = LF.nll_loss if name == "nll_loss" else INDEX_LOSSES[name]
    shape = SHAPES["4d"]
    x = _logits(shape)
    if name == "nll_loss":
        x = torch.log_softmax(x, 1)
    y = _index_target(shape)
    kw = {"weight": _class_weight(shape[1]), "ignore_index": 1}  # uint8 cannot hold -100
    for reduction in REDUCTIONS:
        want, want_grad = _value_and_grad(fn, x, y, reduction=reduction, **kw)
        for dt in (torch.int8, torch.int16, torch.int32, torch.uint8):
            got, got_grad = _value_and_grad(fn, x, y.to(dt), reduction=reduction, **kw)
            assert torch.equal(got, want), (dt, reduction)
            assert torch.equal(got_grad, want_grad), (dt, reduction)


def test_integer_target_dtypes_in_metrics():
    x = _logits((9, 4))
    y = _index_target((9, 4))
    want = LF.top_k_accuracy(x, y, k=2)
    for dt in (torch.int8, torch.int16, torch.int32, torch.uint8):
        assert torch.equal(LF.top_k_accuracy(x, y.to(dt), k=2), want)
        assert torch.equal(LF.in_top_k(x, y.to(dt), k=2), LF.in_top_k(x, y, k=2))


# --------------------------------------------------------------------------- 5. seed articles
SEED002_PRED = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
SEED002_PRED4 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]


def _softmax_row(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def _ce(pred, label, **kw):
    return LF.cross_entropy(torch.tensor(pred, dtype=torch.float64), torch.tensor(label), **kw)


def test_seed002_plain_ignore_index_and_weight():
    p = [_softmax_row(r) for r in SEED002_PRED]
    # the article's softmax values of the target classes (label = [0, 1, 0])
    p0, p1, p2 = p[0][0], p[1][1], p[2][0]
    assert (round(p0, 4), round(p1, 4), round(p2, 4)) == (0.6900, 0.3543, 0.5987)

    # loss = -(ln 0.69 + ln 0.3543 + ln 0.5987) / 3
    plain = -(math.log(p0) + math.log(p1) + math.log(p2)) / 3
    got = _ce(SEED002_PRED, [0, 1, 0])
    assert got.item() == pytest.approx(plain, abs=1e-6)
    assert round(got.item(), 4) == 0.6405
    assert round(
        float(TF.cross_entropy(torch.tensor(SEED002_PRED), torch.tensor([0, 1, 0]))), 4
    ) == (0.6405)

    # ignore_index=1: loss = (-ln 0.69 - ln 0.5987) / 2
    ignored = -(math.log(p0) + math.log(p2)) / 2
    got = _ce(SEED002_PRED, [0, 1, 0], ignore_index=1)
    assert got.item() == pytest.approx(ignored, abs=1e-6)
    assert round(got.item(), 4) == 0.4421

    # weight [1, 2]: loss = -(1 ln 0.69 + 2 ln 0.3543 + 1 ln 0.5987) / (1 + 2 + 1)
    weighted = -(1 * math.log(p0) + 2 * math.log(p1) + 1 * math.log(p2)) / 4
    got = _ce(SEED002_PRED, [0, 1, 0], weight=torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert got.item() == pytest.approx(weighted, abs=1e-6)
    assert round(got.item(), 4) == 0.7398
    # and the module form the article uses, in float32
    module = losskit.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]))
    assert round(module(torch.tensor(SEED002_PRED), torch.tensor([0, 1, 0])).item(), 4) == 0.7398


def test_seed002_weight_and_ignore_index_example():
    s = [_softmax_row(r) for r in SEED002_PRED4]
    label = [2, 1, 0, 1]
    # the article's softmax values of the target classes
    assert round(s[0][2], 4) == 0.2552  # label 2 (ignored)
    assert round(s[1][1], 4) == 0.2683
    assert round(s[2][0], 4) == 0.4018
    assert round(s[3][1], 4) == 0.3603
    w = [2.0, 1.0, 2.0]
    counted = [i for i, y in enumerate(label) if y != 2]
    # (2 (-ln 0.4018) + 1 (-ln 0.2683) + 1 (-ln 0.3603)) / (2 + 1 + 1)
    by_hand = sum(-w[label[i]] * math.log(s[i][label[i]]) for i in counted)
    by_hand /= sum(w[label[i]] for i in counted)
    got = _ce(
        SEED002_PRED4, label, weight=torch.tensor(w, dtype=torch.float64), ignore_index=2
    ).item()
    assert got == pytest.approx(by_hand, abs=1e-6)
    assert round(got, 4) == 1.0401


def test_seed000_ignore_index_and_nll_typo():
    p = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.1, 0.2, 0.3]]
    label = [0, 1, 1]
    s = [_softmax_row(r) for r in p]
    # ignore_index=0 removes the first row: mean of the two others
    by_hand = -(math.log(s[1][1]) + math.log(s[2][1])) / 2
    got = _ce(p, label, ignore_index=0).item()
    assert got == pytest.approx(by_hand, abs=1e-6)
    assert round(got, 4) == 1.1019

    # NLL of log p; the article prints 1.4429, a typo: the true value is
    # -(ln .2 + ln .7 + ln .1) / 3 = 1.4229
    probs = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]], dtype=torch.float64)
    by_hand = -(math.log(0.2) + math.log(0.7) + math.log(0.1)) / 3
    got = LF.nll_loss(torch.log(probs), torch.tensor([0, 1, 2])).item()
    assert got == pytest.approx(by_hand, abs=1e-12)
    assert round(got, 4) == 1.4229
    # the article's one-hot form gives the same number
    onehot = torch.eye(3, dtype=torch.float64)[torch.tensor([0, 1, 2])]
    assert (-(onehot * torch.log(probs)).sum() / 3).item() == pytest.approx(got, abs=1e-12)


def test_seed001_per_sample_cross_entropy_is_log_sum_exp():
    output = torch.randn(2, 3, generator=_gen(3), dtype=torch.float64)
    target = torch.tensor([0, 2])
    got = LF.cross_entropy(output, target, reduction="none")

    def manual_cal(i):  # the article's function
        row = output[i].tolist()
        x_class = row[target[i]]
        return -x_class + math.log(sum(math.exp(v) for v in row))

    assert got.tolist() == pytest.approx([manual_cal(0), manual_cal(1)], abs=1e-12)
    nll = LF.nll_loss(torch.log_softmax(output, dim=-1), target, reduction="none")
    assert_close(nll, got)
    assert_close(LF.cross_entropy(output, target), got.mean())


# --------------------------------------------------------------------------- 6. errors
def _raises(cls, fn, *args, **kwargs):
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_seed003_cross_entropy_probability_target_outside_unit_interval():
    sample = torch.ones(2, 2)
    target = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    msg = _raises(losskit.LossInputError, LF.cross_entropy, sample, target)
    assert msg.startswith("cross_entropy:")
    assert "target" in msg and "[0, 1]" in msg and "max 3" in msg
    assert "long" in msg  # the hint for class indices
    msg = _raises(losskit.LossInputError, losskit.nn.CrossEntropyLoss(), sample, target)
    assert "max 3" in msg


def test_float_target_with_index_shape_hints_long():
    msg = _raises(
        losskit.LossTypeError, LF.cross_entropy, torch.ones(3, 4), torch.tensor([0.0, 1.0, 2.0])
    )
    assert msg.startswith("cross_entropy:")
    assert "float32" in msg and "(3,)" in msg and "long" in msg
    # NLLLoss too (the seed-003 NLLLoss case with a float (2, 2) target)
    for fn in (LF.nll_loss, LF.top_k_accuracy, LF.in_top_k):
        msg = _raises(losskit.LossTypeError, fn, torch.ones(2, 2), torch.tensor([0.0, 1.0]))
        assert msg.startswith(f"{fn.__name__}:") and "float32" in msg and "long" in msg
        msg = _raises(losskit.LossTypeError, fn, torch.ones(2, 2), torch.ones(2, 2))
        assert msg.startswith(f"{fn.__name__}:") and "float32" in msg


@pytest.mark.parametrize(
    "fn", [LF.nll_loss, LF.top_k_accuracy, LF.in_top_k], ids=lambda f: f.__name__
)
def test_float_target_message_names_no_missing_argument(fn):
    msg = _raises(losskit.LossTypeError, fn, torch.ones(2, 2), torch.tensor([0.0, 1.0]))
    assert "target_type" not in msg


def test_unit_class_dimension_in_index_target_hints_squeeze():
    msg = _raises(
        losskit.LossInputError, LF.cross_entropy, torch.ones(3, 4), torch.tensor([[0], [1], [2]])
    )
    assert "(3,)" in msg and "(3, 1)" in msg and "squeeze" in msg
    msg = _raises(
        losskit.LossInputError, LF.cross_entropy, torch.ones(2, 4, 5), torch.zeros(2, 1, 5).long()
    )
    assert "squeeze" in msg


def test_class_index_out_of_range_message():
    msg = _raises(
        losskit.LossInputError, LF.cross_entropy, torch.ones(3, 4), torch.tensor([0, 5, 2])
    )
    assert msg == (
        "cross_entropy: target has class index 5, but input has 4 classes "
        "(valid 0..3, or ignore_index=-100); 1 value out of range."
    )
    msg = _raises(
        losskit.LossInputError, LF.nll_loss, torch.ones(5, 4), torch.tensor([7, 5, 2, 7, -3])
    )
    assert msg.startswith("nll_loss:")
    assert "class indices -3, 5, 7" in msg and "4 values out of range" in msg
    assert "4 classes" in msg and "ignore_index=-100" in msg


@pytest.mark.parametrize("name", INDEX_LOSSES)
def test_one_based_labels_hint(name):
    msg = _raises(
        losskit.LossInputError, INDEX_LOSSES[name], torch.ones(4, 4), torch.tensor([1, 4, 2, 3])
    )
    assert msg.startswith(f"{name}:") and "1-based" in msg


@pytest.mark.parametrize("ignore_index", [-100, 255])
def test_one_based_labels_hint_with_ignored_targets(ignore_index):
    msg = _raises(
        losskit.LossInputError,
        LF.cross_entropy,
        torch.ones(4, 4),
        torch.tensor([1, 4, 2, ignore_index]),
        ignore_index=ignore_index,
    )
    assert "1-based" in msg


def test_void_label_255_hints_ignore_index():
    x = torch.ones(2, 3, 2, 2)
    y = torch.tensor([[[0, 255], [1, 2]], [[255, 255], [2, 1]]])
    msg = _raises(losskit.LossInputError, LF.cross_entropy, x, y)
    assert "class index 255" in msg and "3 values out of range" in msg
    assert "ignore_index=255" in msg
    assert LF.cross_entropy(x, y, ignore_index=255).isfinite()


def test_weight_of_wrong_length_names_shapes():
    msg = _raises(
        losskit.LossInputError,
        LF.cross_entropy,
        torch.ones(3, 4),
        torch.tensor([0, 1, 2]),
        weight=torch.ones(3),
    )
    assert msg.startswith("cross_entropy:") and "weight" in msg
    assert "(4,)" in msg and "(3,)" in msg


@pytest.mark.parametrize(
    "fn, arg, value, expected",
    [
        (LF.cross_entropy, "label_smoothing", 1.5, "<= 1"),
        (LF.cross_entropy, "label_smoothing", -0.1, ">= 0"),
        (LF.softmax_focal_loss, "gamma", -1.0, ">= 0"),
        (LF.softmax_focal_loss, "label_smoothing", 1.5, "<= 1"),
        (LF.cross_entropy, "z_loss", -1.0, ">= 0"),
        (LF.symmetric_cross_entropy, "log_zero", 0.0, "< 0"),
        (LF.reverse_cross_entropy, "log_zero", 1.0, "< 0"),
        (LF.symmetric_cross_entropy, "alpha", -1.0, ">= 0"),
        (LF.symmetric_cross_entropy, "beta", -1.0, ">= 0"),
        (LF.categorical_cross_entropy, "label_smoothing", 1.5, "<= 1"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_hyperparameter_ranges(fn, arg, value, expected):
    x = torch.rand(3, 4)
    y = torch.tensor([0, 1, 2])
    if fn is LF.categorical_cross_entropy:
        y = TF.one_hot(y, 4).float()
    msg = _raises(losskit.LossInputError, fn, x, y, **{arg: value})
    assert msg.startswith(f"{fn.__name__}:")
    assert arg in msg and expected in msg and str(value) in msg


def test_probability_targets_not_summing_to_one():
    q = torch.full((3, 4), 0.5)
    msg = _raises(losskit.LossInputError, LF.cross_entropy, torch.ones(3, 4), q)
    assert "sum to 1" in msg and "3 of 3 rows" in msg and "2" in msg
    msg = _raises(
        losskit.LossInputError,
        LF.softmax_focal_loss,
        torch.ones(2, 4, 3),
        torch.full((2, 4, 3), 0.1),
    )
    assert "sum to 1" in msg and "dimension 1" in msg


def test_set_checks_false_disables_value_checks():
    sample = torch.ones(2, 2)
    target = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    with losskit.set_checks(False):
        out = LF.cross_entropy(sample, target)
        # -sum_c q_c log(1/2), averaged over the two rows: (1 + 5) ln 2 / 2
        assert out.item() == pytest.approx(3 * math.log(2), rel=1e-6)
        LF.cross_entropy(torch.ones(3, 4), torch.full((3, 4), 0.5))  # sums of 2: unchecked
    with pytest.raises(losskit.LossInputError):  # and back on
        LF.cross_entropy(sample, target)
    # shape checks stay on
    with losskit.set_checks(False), pytest.raises(losskit.LossTypeError):
        LF.cross_entropy(torch.ones(3, 4), torch.tensor([0.0, 1.0, 2.0]))


def test_checks_off_on_cpu_still_learns_that_no_target_is_ignored():
    """With value checks off, the one read of the class indices still runs on CPU (no
    device to wait for), silently: torch's kernel then runs as with checks on, and an
    out-of-range or ignored target takes the masked path, as before. On a device (meta
    here) nothing is read."""
    from losskit import _checks as C

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 4])
    with losskit.set_checks(False):
        assert C.check_class_indices("loss", y, 5, -100)
        assert not C.check_class_indices("loss", torch.tensor([0, -100]), 5, -100)
        assert not C.check_class_indices("loss", torch.tensor([0, 5]), 5, -100)  # no error
        assert not C.check_class_indices("loss", y.to("meta"), 5, -100)
        off = LF.cross_entropy(x, y)
    on = LF.cross_entropy(x, y)
    assert type(off.grad_fn) is type(on.grad_fn)  # the same kernel, not the masked path
    assert type(off.grad_fn).__name__ == "NllLossBackward0"
    torch.testing.assert_close(off, on, rtol=0, atol=0)


def test_ignore_index_with_probability_target_is_refused():
    msg = _raises(
        losskit.LossInputError,
        LF.cross_entropy,
        torch.ones(3, 4),
        torch.full((3, 4), 0.25),
        ignore_index=1,
    )
    assert "ignore_index=1" in msg and "probabilities" in msg


# --------------------------------------------------------------------------- 7. identities
def _onehot(y, c):
    """One-hot of index targets along the class dimension 1."""
    return TF.one_hot(y, c).movedim(-1, 1).to(torch.float64)


def _one_hot_params():
    plain = [({}, "plain"), ({"weight": True}, "weight")]
    smoothed = [
        ({"label_smoothing": 0.2}, "ls"),
        ({"weight": True, "label_smoothing": 0.2}, "w-ls"),
    ]
    return [
        pytest.param(name, options, id=f"{name}-{oid}")
        for name in INDEX_LOSSES
        for options, oid in plain + (smoothed if name in SMOOTHED else [])
    ]


SMOOTHED = ("cross_entropy", "softmax_focal_loss")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("name, options", _one_hot_params())
def test_one_hot_target_equals_index_target(name, options, shape):
    options = dict(options)
    fn = INDEX_LOSSES[name]
    if options.get("weight"):
        options["weight"] = _class_weight(shape[1])
    x = _logits(shape)
    y = _index_target(shape)
    q = _onehot(y, shape[1])
    for reduction in REDUCTIONS:
        v_idx, g_idx = _value_and_grad(fn, x, y, reduction=reduction, **options)
        v_hot, g_hot = _value_and_grad(fn, x, q, reduction=reduction, **options)
        assert_close(v_hot, v_idx, msg=reduction)
        assert_close(g_hot, g_idx, msg=reduction)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight": True},
        {"ignore_index": 1},
        {"label_smoothing": 0.2},
        {"weight": True, "ignore_index": 1, "label_smoothing": 0.1},
        {"probs": True},
        {"probs": True, "weight": True, "label_smoothing": 0.1},
    ],
    ids=["plain", "weight", "ignore", "ls", "all", "probs", "probs-weight-ls"],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_softmax_focal_gamma0_is_cross_entropy_exactly(options, dtype):
    options = dict(options)
    shape = SHAPES["4d"]
    if options.get("weight"):
        options["weight"] = _class_weight(shape[1]).to(dtype)
    y = _probs_target(shape).to(dtype) if options.pop("probs", False) else _index_target(shape)
    x = _logits(shape).to(dtype)
    for reduction in REDUCTIONS:
        focal, g_focal = _value_and_grad(
            LF.softmax_focal_loss, x, y, gamma=0.0, reduction=reduction, **options
        )
        ce, g_ce = _value_and_grad(LF.cross_entropy, x, y, reduction=reduction, **options)
        assert torch.equal(focal, ce)
        assert torch.equal(g_focal, g_ce)


def _naive_softmax_focal(x, y, gamma, weight, ignore_index, reduction):
    """-(1 - p_t)^gamma log p_t w_y, mean over sum of w_y of the counted targets."""
    p = torch.softmax(x, dim=1)
    counted = y != ignore_index
    t = torch.where(counted, y, 0)
    p_t = p.gather(1, t.unsqueeze(1)).squeeze(1)
    w_y = weight[t] if weight is not None else torch.ones_like(p_t)
    w_y = w_y * counted
    loss = -((1 - p_t) ** gamma) * torch.log(p_t) * w_y
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w_y.sum()


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_softmax_focal_matches_naive_formula(shape, gamma, weighted):
    x = _logits(shape)
    y = _index_target(shape)
    w = _class_weight(shape[1]) if weighted else None
    for ignore_index in (-100, 1):
        for reduction in REDUCTIONS:
            got, g_got = _value_and_grad(
                LF.softmax_focal_loss,
                x,
                y,
                gamma=gamma,
                weight=w,
                ignore_index=ignore_index,
                reduction=reduction,
            )
            want, g_want = _value_and_grad(
                _naive_softmax_focal, x, y, gamma, w, ignore_index, reduction
            )
            assert_close(got, want, msg=f"{reduction} ii={ignore_index}")
            assert_close(g_got, g_want, msg=f"{reduction} ii={ignore_index}")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_symmetric_cross_entropy_beta0_is_alpha_times_cross_entropy(weighted):
    shape = SHAPES["4d"]
    x = _logits(shape)
    y = _index_target(shape)
    kw = {"weight": _class_weight(shape[1]) if weighted else None, "ignore_index": 1}
    for reduction in REDUCTIONS:
        sce, g_sce = _value_and_grad(
            LF.symmetric_cross_entropy, x, y, alpha=0.7, beta=0.0, reduction=reduction, **kw
        )
        ce, g_ce = _value_and_grad(LF.cross_entropy, x, y, reduction=reduction, **kw)
        assert_close(sce, 0.7 * ce)
        assert_close(g_sce, 0.7 * g_ce)


@pytest.mark.parametrize("log_zero", [-4.0, -1.5])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_reverse_cross_entropy_of_one_hot(shape, log_zero):
    x = _logits(shape)
    y = _index_target(shape)
    p_y = torch.softmax(x, 1).gather(1, y.unsqueeze(1)).squeeze(1)
    want = -log_zero * (1 - p_y)
    got = LF.reverse_cross_entropy(x, y, log_zero=log_zero, reduction="none")
    assert_close(got, want)
    got_hot = LF.reverse_cross_entropy(x, _onehot(y, shape[1]), log_zero=log_zero, reduction="none")
    assert_close(got_hot, want)


@pytest.mark.parametrize("ignore_index", [-100, 1], ids=lambda v: f"ii{v}")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_symmetric_is_alpha_ce_plus_beta_rce(shape, weighted, ignore_index):
    x = _logits(shape)
    y = _index_target(shape)
    kw = {"weight": _class_weight(shape[1]) if weighted else None, "ignore_index": ignore_index}
    a, b, lz = 0.6, 1.3, -3.0
    for reduction in REDUCTIONS:
        sce, g_sce = _value_and_grad(
            LF.symmetric_cross_entropy,
            x,
            y,
            alpha=a,
            beta=b,
            log_zero=lz,
            reduction=reduction,
            **kw,
        )
        leaf = _leaf(x)
        combo = a * LF.cross_entropy(leaf, y, reduction=reduction, **kw) + b * (
            LF.reverse_cross_entropy(leaf, y, log_zero=lz, reduction=reduction, **kw)
        )
        (g_combo,) = torch.autograd.grad(_upstream(combo), leaf)
        assert_close(sce, combo.detach(), msg=reduction)
        assert_close(g_sce, g_combo, msg=reduction)


def test_seed001_symmetric_cross_entropy_example():
    y_pred = [[10.0, 5.0, -6.0], [8.0, 8.0, 8.0]]
    y_true = [0, 2]
    log_zero = -4.0
    ce, rce = [], []
    for row, y in zip(y_pred, y_true, strict=True):
        lse = math.log(sum(math.exp(v) for v in row))
        p_y = math.exp(row[y] - lse)
        ce.append(lse - row[y])  # CE_i = logsumexp - x_y
        rce.append(-log_zero * (1 - p_y))  # RCE_i = 4 (1 - p_y)
    by_hand = sum(ce) / 2 + sum(rce) / 2
    x = torch.tensor(y_pred, dtype=torch.float64)
    t = torch.tensor(y_true)
    got = LF.symmetric_cross_entropy(x, t, alpha=1.0, beta=1.0, log_zero=log_zero)
    assert got.item() == pytest.approx(by_hand, abs=1e-12)
    assert round(got.item(), 4) == 1.8994
    assert_close(
        LF.reverse_cross_entropy(x, t, reduction="none"), torch.tensor(rce, dtype=torch.float64)
    )
    # the module with the article's a = b = 1, in float32
    module = losskit.nn.SymmetricCrossEntropyLoss(alpha=1, beta=1)
    assert module(x.float(), t).item() == pytest.approx(by_hand, rel=1e-6)


# --------------------------------------------------------------------------- 8. z-loss
@pytest.mark.parametrize("options", [{}, {"ignore_index": 1}, {"label_smoothing": 0.1}])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_z_loss_adds_logsumexp_squared_over_counted_samples(shape, weighted, options):
    x = _logits(shape)
    y = _index_target(shape)
    z = 0.03
    kw = dict(options)
    if weighted:
        kw["weight"] = _class_weight(shape[1])
    ii = kw.get("ignore_index", -100)
    counted = y != ii
    w_y = kw["weight"][torch.where(counted, y, 0)] if weighted else torch.ones(y.shape)
    w_y = w_y * counted

    def formula(t, reduction):
        # the z term is not class weighted, but shares the mean's denominator sum w_y
        per = TF.cross_entropy(t, y, reduction="none", **kw)
        per = per + z * torch.logsumexp(t, dim=1).square() * counted
        if reduction == "none":
            return per
        return per.sum() if reduction == "sum" else per.sum() / w_y.sum()

    for reduction in REDUCTIONS:
        got, g_got = _value_and_grad(LF.cross_entropy, x, y, z_loss=z, reduction=reduction, **kw)
        want, g_want = _value_and_grad(formula, x, reduction)
        assert_close(got, want, msg=reduction)
        assert_close(g_got, g_want, msg=reduction)
    if not weighted:  # plain: CE + z * mean(lse^2) over counted samples
        lse2 = torch.logsumexp(x, dim=1).square()[counted]
        want = LF.cross_entropy(x, y, **kw) + z * lse2.mean()
        assert_close(LF.cross_entropy(x, y, z_loss=z, **kw), want)


# --------------------------------------------------------------------------- 9. stability
def _extreme_logits(shape, dtype, big, seed=5):
    g = _gen(seed)
    x = torch.where(torch.rand(shape, generator=g) > 0.5, big, -big).to(torch.float64)
    x[0] = -big  # a row with every class tied
    x[-1].view(-1)[0] = big  # and one with ties at the top
    return x.to(dtype)


STABLE = [
    *[pytest.param(LF.softmax_focal_loss, {"gamma": g}, id=f"focal-gamma{g}") for g in GAMMAS],
    pytest.param(LF.softmax_focal_loss, {"gamma": 0.5, "label_smoothing": 0.1}, id="focal-ls"),
    pytest.param(LF.cross_entropy, {}, id="cross_entropy"),
    pytest.param(LF.cross_entropy, {"label_smoothing": 0.1, "z_loss": 1e-4}, id="ce-ls-z"),
    pytest.param(LF.symmetric_cross_entropy, {}, id="symmetric_cross_entropy"),
    pytest.param(LF.reverse_cross_entropy, {}, id="reverse_cross_entropy"),
]


@pytest.mark.parametrize(
    "dtype, big",
    [(torch.float32, 1e4), (torch.float64, 1e4), (torch.bfloat16, 1e3)],
    ids=["float32", "float64", "bfloat16"],
)
@pytest.mark.parametrize("fn, options", STABLE)
def test_extreme_logits_give_finite_values_and_gradients(fn, options, dtype, big):
    shape = (6, 4)
    x = _extreme_logits(shape, dtype, big)
    y = _index_target(shape, seed=9, force=None)
    q = _onehot(y, shape[1]).to(_ref_dtype(dtype))
    w = _class_weight(shape[1]).to(_ref_dtype(dtype))
    for target, weight, reduction in itertools.product((y, q), (None, w), REDUCTIONS):
        leaf = _leaf(x)
        out = fn(leaf, target, weight=weight, reduction=reduction, **options)
        assert torch.isfinite(out).all(), (reduction, out)
        assert (out >= 0).all()
        (grad,) = torch.autograd.grad(_upstream(out), leaf)
        assert torch.isfinite(grad).all(), reduction


@pytest.mark.parametrize("gamma", GAMMAS)
def test_softmax_focal_extreme_logits_are_right(gamma):
    # confident and right: loss 0; confident and wrong by 2e4: the CE 2e4, focal factor 1
    x = torch.tensor([[1e4, -1e4, -1e4], [-1e4, 1e4, -1e4]])
    y = torch.tensor([0, 0])
    got = LF.softmax_focal_loss(x, y, gamma=gamma, reduction="none")
    assert got[0].item() == 0.0
    assert got[1].item() == pytest.approx(2e4, rel=1e-6)
    leaf = _leaf(x)
    LF.softmax_focal_loss(leaf, y, gamma=gamma, reduction="sum").backward()
    assert torch.isfinite(leaf.grad).all()
    assert leaf.grad[1].tolist() == pytest.approx([-1.0, 1.0, 0.0], abs=1e-6)


MASKED_ROWS = [[2.0, 1.0, float("-inf"), 0.5], [0.5, float("-inf"), float("-inf"), 2.0]]


def _masked_parity(fn, **options):
    """A logit of -inf (a masked class) against the most negative finite float32 logit:
    the same loss and gradient (0 for the masked classes)."""
    y = torch.tensor([0, 3])
    masked = torch.tensor(MASKED_ROWS)
    finite = masked.clamp_min(torch.finfo(torch.float32).min)
    got, g_got = _value_and_grad(fn, masked, y, **options)
    want, g_want = _value_and_grad(fn, finite, y, **options)
    assert torch.isfinite(got) and torch.isfinite(g_got).all(), g_got
    assert_close(got, want)
    assert_close(g_got, g_want)
    assert torch.equal(g_got[torch.isinf(masked)], torch.zeros(3))


@pytest.mark.parametrize(
    "fn",
    [LF.cross_entropy, LF.symmetric_cross_entropy, LF.reverse_cross_entropy],
    ids=lambda f: f.__name__,
)
def test_minus_inf_logits_of_masked_classes(fn):
    _masked_parity(fn)
    assert_close(
        LF.cross_entropy(torch.tensor(MASKED_ROWS), torch.tensor([0, 3])),
        TF.cross_entropy(torch.tensor(MASKED_ROWS), torch.tensor([0, 3])),
    )


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_softmax_focal_minus_inf_logits_of_masked_classes(gamma):
    _masked_parity(LF.softmax_focal_loss, gamma=gamma)


def test_softmax_focal_gamma0_minus_inf_logits_of_masked_classes():
    _masked_parity(LF.softmax_focal_loss, gamma=0.0)


# --------------------------------------------------------------------------- 10. Keras CCE
def _keras_categorical_crossentropy(target, output, from_logits=False):
    """The seed 004 article's NumPy function."""

    def softmax(x, axis=-1):
        y = np.exp(x - np.max(x, axis, keepdims=True))
        return y / np.sum(y, axis, keepdims=True)

    output = np.array(output, dtype=np.float64)  # the article divides in place
    if from_logits:
        output = softmax(output)
    else:
        output /= output.sum(axis=-1, keepdims=True)
    output = np.clip(output, 1e-7, 1 - 1e-7)
    return np.sum(target * -np.log(output), axis=-1, keepdims=False)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_seed004_categorical_cross_entropy(dtype):
    y_hat = np.array([[0.920, 0.080], [0.020, 0.80]])
    y_true = np.array([[1, 0], [0, 1]])
    want = _keras_categorical_crossentropy(y_true, y_hat)
    x = torch.tensor(y_hat, dtype=dtype)
    t = torch.tensor(y_true, dtype=dtype)
    got = LF.categorical_cross_entropy(x, t, reduction="none")
    assert got.dtype == dtype
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(got.double().numpy(), want, rtol=rtol)
    assert [round(v, 4) for v in got.tolist()] == [0.0834, 0.0247]
    assert LF.categorical_cross_entropy(x, t).item() == pytest.approx(want.mean(), rel=rtol)
    # the input is not rescaled in place
    assert x.tolist() == torch.tensor(y_hat, dtype=dtype).tolist()


def test_categorical_cross_entropy_matches_keras_on_random_rows():
    g = _gen(4)
    y_hat = torch.rand(6, 5, generator=g, dtype=torch.float64) + 1e-3
    y_hat[0, 2] = 0.0  # clipped at 1e-7
    q = torch.softmax(torch.randn(6, 5, generator=g, dtype=torch.float64), -1)
    want = _keras_categorical_crossentropy(q.numpy(), y_hat.numpy())
    got = LF.categorical_cross_entropy(y_hat, q, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    want = _keras_categorical_crossentropy(q.numpy(), logits.numpy(), from_logits=True)
    got = LF.categorical_cross_entropy(logits, q, from_logits=True, reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 5)], ids=str)
def test_categorical_from_logits_is_cross_entropy_along_last_dim(shape):
    x = _logits(shape)
    q = torch.softmax(_logits(shape, seed=3), dim=-1)
    for reduction in REDUCTIONS:
        got, g_got = _value_and_grad(
            LF.categorical_cross_entropy, x, q, from_logits=True, reduction=reduction
        )
        want, g_want = _value_and_grad(
            lambda t, r=reduction: LF.cross_entropy(
                t.movedim(-1, 1), q.movedim(-1, 1), reduction=r
            ),
            x,
        )
        assert_close(got, want, msg=reduction)
        assert_close(g_got, g_want, msg=reduction)


def test_categorical_dim1_on_a_sequence_input():
    shape = (2, 4, 6)  # (N, C, L)
    p = torch.softmax(_logits(shape), dim=1)
    q = _onehot(torch.randint(0, 4, (2, 6), generator=_gen(8)), 4)
    got = LF.categorical_cross_entropy(p, q, dim=1, reduction="none")
    assert got.shape == (2, 6)
    want = LF.categorical_cross_entropy(p.movedim(1, -1), q.movedim(1, -1), reduction="none")
    assert_close(got, want)
    assert_close(got, -(q * p.log()).sum(1))
    logits = _logits(shape)
    assert_close(
        LF.categorical_cross_entropy(logits, q, dim=1, from_logits=True),
        LF.cross_entropy(logits, q),
    )


def test_categorical_probabilities_outside_unit_interval_hint_from_logits():
    msg = _raises(
        losskit.LossInputError,
        LF.categorical_cross_entropy,
        torch.tensor([[2.0, -1.0], [0.5, 0.5]]),
        torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
    )
    assert msg.startswith("categorical_cross_entropy:")
    assert "[0, 1]" in msg and "max 2" in msg and "from_logits=True" in msg


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_label_smoothing(from_logits):
    shape = (5, 4)
    x = _logits(shape) if from_logits else torch.softmax(_logits(shape), -1)
    q = TF.one_hot(torch.randint(0, 4, (5,), generator=_gen(6)), 4).double()
    s = 0.2
    smoothed = q * (1 - s) + s / 4
    for reduction in REDUCTIONS:
        got = LF.categorical_cross_entropy(
            x, q, from_logits=from_logits, label_smoothing=s, reduction=reduction
        )
        want = LF.categorical_cross_entropy(
            x, smoothed, from_logits=from_logits, reduction=reduction
        )
        assert_close(got, want)
    logp = torch.log_softmax(x, -1) if from_logits else torch.log(x)
    assert_close(
        LF.categorical_cross_entropy(x, q, from_logits=from_logits, label_smoothing=s),
        -(smoothed * logp).sum(-1).mean(),
    )


@pytest.mark.parametrize("ignore_index", [-100, 0, 2, 4, 5])
def test_ignore_index_inside_or_outside_the_targets_range(ignore_index):
    """The mask of ignored targets is skipped only where no target can equal
    ignore_index (outside the targets' least..largest): the same values and gradients
    as the masked form, for ignore_index below, at, inside and above the range."""
    x = torch.randn(6, 5, dtype=torch.float64)
    y = torch.tensor([1, 2, 3, 2, 1, 3])
    keep = y != ignore_index
    for fn, inp in ((LF.cross_entropy, x), (LF.nll_loss, x.log_softmax(1))):
        for reduction in REDUCTIONS:
            leaf = _leaf(inp)
            got = fn(leaf, y, ignore_index=ignore_index, reduction=reduction)
            (g_got,) = torch.autograd.grad(got.sum(), leaf)
            ref = torch.where(keep, fn(leaf, y, reduction="none"), 0.0)
            if reduction == "mean":
                ref = ref.sum() / keep.sum()
            elif reduction == "sum":
                ref = ref.sum()
            (g_ref,) = torch.autograd.grad(ref.sum(), leaf)
            assert_close(got.detach(), ref.detach())
            assert_close(g_got, g_ref)


@pytest.mark.parametrize(
    "loss, kw",
    [(LF.cross_entropy, {"weight": torch.tensor([0.3, 1.7])}), (LF.softmax_focal_loss, {})],
    ids=["weighted_cross_entropy", "softmax_focal_loss"],
)
def test_mean_over_many_rows_keeps_float32_precision(loss, kw):
    # a million rows: the closed forms' sums over rows must not lose digits to float32
    # accumulation (torch.dot's is 1e-5 off here)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1 << 20, 2, generator=g)
    t = torch.randint(0, 2, (1 << 20,), generator=g)
    exact = loss(x.double(), t, **{k: v.double() for k, v in kw.items()})
    got = loss(x.requires_grad_(True), t, **kw)
    assert abs(float(got) / float(exact) - 1) < 1e-6
