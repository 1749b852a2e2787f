"""Binary losses: the seed articles' worked examples, focal-loss identities and stability,
torch parity over every option combination, label smoothing, ignore_index, autocast,
integer targets and the error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from conftest import TOL, assert_close

REDUCTIONS = ("none", "mean", "sum")
DTYPES = (torch.float32, torch.float64)
SHAPES = ((6,), (4, 5), (2, 3, 4))
GAMMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 5.0)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _logits(shape, dtype=torch.float64, seed=0, scale=3.0):
    return (torch.randn(shape, generator=_gen(seed), dtype=torch.float64) * scale).to(dtype)


def _probs(shape, dtype=torch.float64, seed=0):
    return (torch.rand(shape, generator=_gen(seed), dtype=torch.float64) * 0.96 + 0.02).to(dtype)


def _targets(shape, dtype=torch.float64, seed=1, soft=True):
    """Mostly hard 0/1 targets, with some soft ones when ``soft``."""
    g = _gen(seed)
    y = (torch.rand(shape, generator=g) > 0.5).double()
    if soft:
        y = torch.where(
            torch.rand(shape, generator=g) > 0.7,
            torch.rand(shape, generator=g, dtype=torch.float64),
            y,
        )
    return y.to(dtype)


def _weight(shape, dtype=torch.float64, seed=7):
    return (torch.rand(shape, generator=_gen(seed), dtype=torch.float64) + 0.25).to(dtype)


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


def _torchvision_focal(x, y, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss, reduction="none", written out."""
    p = torch.sigmoid(x)
    ce = TF.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * y + (1 - alpha) * (1 - y)
        loss = alpha_t * loss
    return loss


def _reduce(unreduced, reduction):
    if reduction == "none":
        return unreduced
    return unreduced.sum() if reduction == "sum" else unreduced.mean()


# --------------------------------------------------------------------------- seed 000
SEED000_LOGITS = [[-1.0, 1.0], [1.0, 2.0]]


def _seed000_by_hand():
    # target = eye(2)[[0, 1]] = [[1, 0], [0, 1]]; -y log p - (1 - y) log(1 - p), then mean.
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    terms = [
        -math.log(sig(-1.0)),  # y = 1, logit -1
        -math.log(1 - sig(1.0)),  # y = 0, logit 1
        -math.log(1 - sig(1.0)),  # y = 0, logit 1
        -math.log(sig(2.0)),
    ]  # y = 1, logit 2
    return sum(terms) / 4


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed000_bce_and_bce_with_logits(dtype):
    logits = torch.tensor(SEED000_LOGITS, dtype=dtype)
    target = torch.eye(2, dtype=dtype)[torch.tensor([0, 1]).long(), :]
    assert target.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    by_hand = _seed000_by_hand()
    assert round(by_hand, 4) == 1.0167  # the article's printed value
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    probs = LF.binary_cross_entropy(logits.sigmoid(), target)
    from_logits = LF.binary_cross_entropy_with_logits(logits, target)
    for got in (probs, from_logits):
        assert got.dtype == dtype
        assert got.item() == pytest.approx(by_hand, rel=rtol)
        assert round(got.item(), 4) == 1.0167
    # the article's module forms
    assert losskit.nn.BCELoss()(logits.sigmoid(), target).item() == pytest.approx(by_hand, rel=rtol)
    assert losskit.nn.BCEWithLogitsLoss()(logits, target).item() == pytest.approx(by_hand, rel=rtol)


# --------------------------------------------------------------------------- seed 003
def test_seed003_bce_target_out_of_range():
    sample = torch.ones(2, 2)
    target = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    # torch computes -13.8155 here; losskit refuses a target outside [0, 1].
    with pytest.raises(losskit.LossInputError) as info:
        LF.binary_cross_entropy(sample, target)
    msg = str(info.value)
    assert msg.startswith("binary_cross_entropy:")
    assert "target" in msg and "[0, 1]" in msg
    assert "max 3" in msg and "min 0" in msg
    assert "2 of 4" in msg  # two values outside
    with pytest.raises(losskit.LossInputError, match="max 3"):
        losskit.nn.BCELoss()(sample, target)


# --------------------------------------------------------------------------- seed 004
def _keras_binary_crossentropy(target, output):
    """The article's Keras-style function (from_logits=False), as printed."""
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    output = np.clip(output, 1e-7, 1 - 1e-7)
    output = np.log(output / (1 - output))
    return (target * -np.log(sigmoid(output)) + (1 - target) * -np.log(1 - sigmoid(output))).mean()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed004_keras_binary_crossentropy(dtype):
    y_hat = np.array([0.920, 0.976, 0.003])
    y_true = np.array([0, 0, 1])
    want = float(_keras_binary_crossentropy(y_true, y_hat))
    got = LF.binary_cross_entropy(
        torch.tensor(y_hat, dtype=dtype), torch.tensor(y_true, dtype=dtype)
    )
    rtol = 1e-10 if dtype == torch.float64 else 1e-6
    assert got.item() == pytest.approx(want, rel=rtol)
    # the same numbers as logits, in the logits form
    logits = torch.tensor(np.log(y_hat / (1 - y_hat)), dtype=dtype)
    got_logits = LF.binary_cross_entropy_with_logits(logits, torch.tensor(y_true, dtype=dtype))
    assert got_logits.item() == pytest.approx(want, rel=rtol)


def _article_focal_weights(alpha, gamma, y_true, y_pred):
    """The article's loop (its ``pt`` holds (1 - p_t)^gamma)."""
    alpha_weights = [alpha if y == 1 else 1 - alpha for y in y_true]
    pt = np.zeros(len(y_true))
    index1 = np.argwhere(y_true == 1)
    index0 = np.argwhere(y_true == 0)
    pt[index1] = (1 - y_pred[index1]) ** gamma
    pt[index0] = (y_pred[index0]) ** gamma
    return pt * alpha_weights


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_seed004_focal_weights(dtype):
    y_true = np.array([1, 0, 1, 0])
    y_pred = np.array([0.95, 0.05, 0.5, 0.5])
    article = _article_focal_weights(0.25, 2, y_true, y_pred)
    np.testing.assert_allclose(article, [0.000625, 0.001875, 0.0625, 0.1875], rtol=1e-12)
    logits = torch.tensor(y_pred, dtype=dtype).logit()
    target = torch.tensor(y_true, dtype=dtype)
    focal = LF.sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="none")
    bce = LF.binary_cross_entropy_with_logits(logits, target, reduction="none")
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose((focal / bce).double().numpy(), article, rtol=rtol)
    # and the summed focal loss is those weights times the BCE terms
    bce_by_hand = [
        -math.log(p) if y == 1 else -math.log(1 - p) for p, y in zip(y_pred, y_true, strict=True)
    ]
    want_sum = float(np.dot(article, bce_by_hand))
    got_sum = LF.sigmoid_focal_loss(logits, target, reduction="sum").item()
    assert got_sum == pytest.approx(want_sum, rel=rtol)


# --------------------------------------------------------------------------- focal identities
OPTION_SETS = [
    pytest.param({}, id="plain"),
    pytest.param({"weight": "element"}, id="weight"),
    pytest.param({"pos_weight": "class"}, id="pos_weight"),
    pytest.param({"ignore_index": -1.0}, id="ignore_index"),
    pytest.param({"weight": "class", "pos_weight": "class", "ignore_index": -1.0}, id="all"),
]


def _materialise(options, shape, dtype, y):
    options = dict(options)
    if options.get("weight") == "element":
        options["weight"] = _weight(shape, dtype)
    elif options.get("weight") == "class":
        options["weight"] = _weight(shape[-1:], dtype)
    if options.get("pos_weight") == "class":
        options["pos_weight"] = _weight(shape[-1:], dtype, seed=9) * 3
    if options.get("ignore_index") is not None:
        y = y.clone()
        y.view(-1)[::3] = options["ignore_index"]
    return options, y


@pytest.mark.parametrize("options", OPTION_SETS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_focal_gamma0_alpha_none_is_bce_with_logits_exactly(options, reduction, dtype):
    shape = (5, 4)
    x = _logits(shape, dtype)
    options, y = _materialise(options, shape, dtype, _targets(shape, dtype))
    x1, x2 = _leaf(x), _leaf(x)
    focal = LF.sigmoid_focal_loss(x1, y, gamma=0.0, alpha=None, reduction=reduction, **options)
    bce = LF.binary_cross_entropy_with_logits(x2, y, reduction=reduction, **options)
    assert torch.equal(focal, bce)
    upstream = _logits(focal.shape, dtype, seed=4)
    focal.backward(upstream)
    bce.backward(upstream)
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("alpha", [-1.0, -0.25])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_negative_alpha_disables_alpha(alpha, gamma):
    x, y = _logits((4, 5)), _targets((4, 5))
    for reduction in REDUCTIONS:
        assert torch.equal(
            LF.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction=reduction),
            LF.sigmoid_focal_loss(x, y, alpha=None, gamma=gamma, reduction=reduction),
        )
    # and alpha really does something when it is set
    assert not torch.equal(
        LF.sigmoid_focal_loss(x, y, alpha=0.25, gamma=gamma),
        LF.sigmoid_focal_loss(x, y, alpha=None, gamma=gamma),
    )


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [0.25, 0.9, -1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_focal_matches_torchvision_formula(gamma, alpha, reduction, soft):
    x, y = _logits((6, 5), scale=2.5), _targets((6, 5), soft=soft)
    x1, x2 = _leaf(x), _leaf(x)
    got = LF.sigmoid_focal_loss(x1, y, alpha=alpha, gamma=gamma, reduction=reduction)
    want = _reduce(_torchvision_focal(x2, y, alpha, gamma), reduction)
    assert_close(got, want)
    upstream = _logits(got.shape, seed=4)
    got.backward(upstream)
    want.backward(upstream)
    assert_close(x1.grad, x2.grad)


# --------------------------------------------------------------------------- stability
EXTREMES = (1e4, 100.0, 88.0)


def _extreme_batch(dtype):
    """Every extreme logit, both signs, against both targets."""
    xs, ys = [], []
    for v in EXTREMES:
        for sign in (1.0, -1.0):
            for t in (0.0, 1.0):
                xs.append(sign * v)
                ys.append(t)
    return torch.tensor(xs, dtype=dtype), torch.tensor(ys, dtype=dtype)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [0.25, None])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_focal_extreme_logits_are_finite_and_right(gamma, alpha, dtype):
    x, y = _extreme_batch(dtype)
    xl = _leaf(x)
    out = LF.sigmoid_focal_loss(xl, y, alpha=alpha, gamma=gamma, reduction="none")
    assert torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(out.sum(), xl)
    assert torch.isfinite(grad).all()
    # Wrong with confidence |x|: p_t ~ 0, so the loss is alpha_t |x| and its slope alpha_t;
    # right with confidence: loss and slope vanish.
    if alpha is None:
        alpha_t = torch.ones(y.shape, dtype=torch.float64)
    else:
        alpha_t = torch.where(y == 1, alpha, 1 - alpha).double()
    wrong = (x > 0) != (y == 1)
    want = torch.where(wrong, alpha_t * x.double().abs(), torch.zeros_like(alpha_t))
    torch.testing.assert_close(out.double(), want, rtol=1e-6, atol=1e-6)
    want_grad = torch.where(
        wrong, alpha_t * torch.where(y == 1, -1.0, 1.0).double(), torch.zeros_like(alpha_t)
    )
    torch.testing.assert_close(grad.double(), want_grad, rtol=1e-6, atol=1e-6)
    for reduction in ("mean", "sum"):
        xr = _leaf(x)
        red = LF.sigmoid_focal_loss(xr, y, alpha=alpha, gamma=gamma, reduction=reduction)
        red.backward()
        assert torch.isfinite(red) and torch.isfinite(xr.grad).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_extreme_logits_are_finite(dtype, reduction):
    x, y = _extreme_batch(dtype)
    x1, x2 = _leaf(x), _leaf(x)
    out = LF.binary_cross_entropy_with_logits(x1, y, reduction=reduction)
    want = TF.binary_cross_entropy_with_logits(x2, y, reduction=reduction)
    assert torch.isfinite(out).all()
    assert_close(out, want)
    out.sum().backward()
    want.sum().backward()
    assert torch.isfinite(x1.grad).all()
    assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_on_exact_zero_and_one_probabilities(dtype, reduction):
    x = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=dtype)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.3, 0.7], dtype=dtype)
    x1, x2 = _leaf(x), _leaf(x)
    got = LF.binary_cross_entropy(x1, y, reduction=reduction)
    want = TF.binary_cross_entropy(x2, y, reduction=reduction)
    assert torch.isfinite(got).all()
    assert_close(got, want)
    if reduction == "none":  # log clamped at -100: a confident wrong answer costs 100
        assert got[2].item() == 100.0 and got[3].item() == 100.0
        assert got[0].item() == 0.0 and got[1].item() == 0.0
    got.sum().backward()
    want.sum().backward()
    assert torch.isfinite(x1.grad).all()
    assert_close(x1.grad, x2.grad)


# --------------------------------------------------------------------------- torch parity
def _combine(unreduced, weight, reduction):
    """torch's reduction="none" output, weighted and reduced by losskit's documented rule."""
    if weight is not None:
        unreduced = weight * unreduced
    if reduction == "none":
        return unreduced
    if reduction == "sum":
        return unreduced.sum()
    den = unreduced.numel() if weight is None else torch.broadcast_to(weight, unreduced.shape).sum()
    return unreduced.sum() / den


def _weight_for(kind, shape, dtype):
    if kind == "element":
        return _weight(shape, dtype)
    if kind == "class":
        return _weight(shape[-1:], dtype)
    return None


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_kind", [None, "element", "class"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bce_torch_parity(reduction, weight_kind, shape, dtype):
    x, y = _probs(shape, dtype), _targets(shape, dtype)
    w = _weight_for(weight_kind, shape, dtype)
    x1, y1, x2, y2 = _leaf(x), _leaf(y), _leaf(x), _leaf(y)
    got = LF.binary_cross_entropy(x1, y1, weight=w, reduction=reduction)
    if w is not None and reduction == "mean":
        # losskit's weighted mean: torch's weighted sum over the broadcast weight's sum
        want = (
            TF.binary_cross_entropy(x2, y2, weight=w, reduction="sum")
            / torch.broadcast_to(w, shape).sum()
        )
    else:
        want = TF.binary_cross_entropy(x2, y2, weight=w, reduction=reduction)
    assert got.dtype == dtype and got.shape == want.shape
    assert_close(got, want)
    upstream = _logits(got.shape, dtype, seed=4) if reduction == "none" else None
    got.backward(upstream)
    want.backward(upstream)
    assert_close(x1.grad, x2.grad)
    assert_close(y1.grad, y2.grad)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_kind", [None, "element", "class"])
@pytest.mark.parametrize("pos_weight_kind", [None, "class"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bce_with_logits_torch_parity(reduction, weight_kind, pos_weight_kind, shape, dtype):
    x, y = _logits(shape, dtype), _targets(shape, dtype)
    w = _weight_for(weight_kind, shape, dtype)
    pw = _weight(shape[-1:], dtype, seed=9) * 3 if pos_weight_kind else None
    x1, y1, x2, y2 = _leaf(x), _leaf(y), _leaf(x), _leaf(y)
    got = LF.binary_cross_entropy_with_logits(x1, y1, weight=w, pos_weight=pw, reduction=reduction)
    if w is not None and reduction == "mean":
        # pos_weight is not part of the denominator: only the broadcast weight is
        want = (
            TF.binary_cross_entropy_with_logits(x2, y2, weight=w, pos_weight=pw, reduction="sum")
            / torch.broadcast_to(w, shape).sum()
        )
    else:
        want = TF.binary_cross_entropy_with_logits(
            x2, y2, weight=w, pos_weight=pw, reduction=reduction
        )
    assert got.dtype == dtype and got.shape == want.shape
    assert_close(got, want)
    upstream = _logits(got.shape, dtype, seed=4) if reduction == "none" else None
    got.backward(upstream)
    want.backward(upstream)
    assert_close(x1.grad, x2.grad)
    assert_close(y1.grad, y2.grad)


def test_weighted_mean_differs_from_torch_as_documented():
    x, y, w = _probs((4, 5)), _targets((4, 5)), _weight((5,))
    torch_mean = TF.binary_cross_entropy(x, y, weight=w)
    torch_sum = TF.binary_cross_entropy(x, y, weight=w, reduction="sum")
    assert_close(torch_mean, torch_sum / 20)  # torch: element count
    assert_close(LF.binary_cross_entropy(x, y, weight=w), torch_sum / (4 * w.sum()))
    assert not torch.allclose(LF.binary_cross_entropy(x, y, weight=w), torch_mean)


# --------------------------------------------------------------------------- smoothing
@pytest.mark.parametrize("ls", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_label_smoothing_is_a_smoothed_target(ls, reduction, weighted):
    x, y = _logits((4, 5)), _targets((4, 5))
    w = _weight((5,)) if weighted else None
    x1, x2 = _leaf(x), _leaf(x)
    got = LF.binary_cross_entropy_with_logits(
        x1, y, label_smoothing=ls, weight=w, reduction=reduction
    )
    smoothed = y * (1 - ls) + ls / 2
    want = _combine(
        TF.binary_cross_entropy_with_logits(x2, smoothed, reduction="none"), w, reduction
    )
    assert_close(got, want)
    got.sum().backward()
    want.sum().backward()
    assert_close(x1.grad, x2.grad)
    if ls == 1.0:  # every target becomes 0.5
        assert_close(
            got,
            _combine(
                TF.binary_cross_entropy_with_logits(x, torch.full_like(y, 0.5), reduction="none"),
                w,
                reduction,
            ),
        )


def test_label_smoothing_moves_hard_targets():
    x = torch.tensor([5.0, -5.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    plain = LF.binary_cross_entropy_with_logits(x, y, reduction="none")
    smooth = LF.binary_cross_entropy_with_logits(x, y, label_smoothing=0.2, reduction="none")
    # target 1 -> 0.9, 0 -> 0.1: a confident right answer now costs more
    assert (smooth > plain).all()
    by_hand = -(0.9 * math.log(1 / (1 + math.exp(-5.0))) + 0.1 * math.log(1 / (1 + math.exp(5.0))))
    assert smooth[0].item() == pytest.approx(by_hand, rel=1e-12)


# --------------------------------------------------------------------------- ignore_index
IGNORING = [
    pytest.param("bce_logits", id="bce_with_logits"),
    pytest.param("focal", id="sigmoid_focal_loss"),
]


def _ignoring_call(which, x, y, **kw):
    if which == "bce_logits":
        return LF.binary_cross_entropy_with_logits(x, y, **kw)
    return LF.sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, **kw)


def _ignoring_oracle(which, x, y, pos_weight):
    if which == "bce_logits":
        return TF.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight, reduction="none")
    return _torchvision_focal(x, y, 0.25, 2.0)


@pytest.mark.parametrize("which", IGNORING)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ignore_index", [-1.0, -100])
def test_ignore_index(which, reduction, weighted, ignore_index):
    shape = (5, 4)
    x, y = _logits(shape), _targets(shape)
    ignored = torch.zeros(shape, dtype=torch.bool)
    ignored.view(-1)[::3] = True
    y_ign = torch.where(ignored, torch.tensor(float(ignore_index), dtype=y.dtype), y)
    w = _weight((4,)) if weighted else None
    pw = _weight((4,), seed=9) * 2 if which == "bce_logits" else None
    x1, x2 = _leaf(x), _leaf(x)
    got = _ignoring_call(
        which, x1, y_ign, weight=w, pos_weight=pw, ignore_index=ignore_index, reduction=reduction
    )
    # oracle: the counted elements only, with the count (or weight sum) of counted elements
    counted = ~ignored
    per_elem = _ignoring_oracle(which, x2, torch.where(ignored, 0.0, y), pw)
    wb = torch.ones(shape, dtype=x.dtype) if w is None else torch.broadcast_to(w, shape)
    per_elem = torch.where(counted, wb * per_elem, 0.0)
    if reduction == "none":
        want = per_elem
    elif reduction == "sum":
        want = per_elem.sum()
    else:
        want = per_elem.sum() / wb[counted].sum()
    assert_close(got, want)
    if reduction == "none":
        assert torch.equal(got[ignored], torch.zeros(int(ignored.sum()), dtype=got.dtype))
    got.sum().backward()
    want.sum().backward()
    assert torch.equal(x1.grad[ignored], torch.zeros(int(ignored.sum()), dtype=x.dtype))
    assert_close(x1.grad, x2.grad)
    # the ignored logits really do not matter
    x3 = torch.where(ignored, 1e4, x)
    assert_close(
        _ignoring_call(
            which,
            x3,
            y_ign,
            weight=w,
            pos_weight=pw,
            ignore_index=ignore_index,
            reduction=reduction,
        ),
        got.detach(),
    )


@pytest.mark.parametrize("which", IGNORING)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_is_zero_with_zero_gradient(which, reduction):
    x = _leaf(_logits((3, 4)))
    y = torch.full((3, 4), -1.0, dtype=torch.float64)
    out = _ignoring_call(which, x, y, ignore_index=-1, reduction=reduction)
    assert not torch.isnan(out).any()
    assert torch.equal(out, torch.zeros_like(out))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


# --------------------------------------------------------------------------- autocast
def test_bce_under_cpu_autocast_bfloat16():
    g = _gen(0)
    features = torch.randn(8, 4, generator=g)
    target = _targets((8, 3), torch.float32, soft=False)
    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(3, 4, generator=g))
        layer.bias.copy_(torch.randn(3, generator=g))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        probs = torch.sigmoid(layer(features))
        assert probs.dtype == torch.bfloat16  # autocast really is on
        got = LF.binary_cross_entropy(probs, target)
        got_module = losskit.nn.BCELoss()(probs, target)
        got_f32_input = LF.binary_cross_entropy(probs.float(), target)
    assert got.dtype == torch.float32 and got_module.dtype == torch.float32
    want = LF.binary_cross_entropy(torch.sigmoid(layer(features)), target)
    rtol, atol = TOL[torch.bfloat16]
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    assert torch.equal(got, got_module)
    # on float32 inputs autocast changes nothing: computed in float32
    assert torch.equal(got_f32_input, LF.binary_cross_entropy(probs.float(), target))
    got.backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=str)
def test_bce_under_cuda_autocast(half):
    # torch refuses binary_cross_entropy under CUDA autocast; losskit computes in float32.
    g = _gen(0)
    features = torch.randn(8, 4, generator=g).cuda()
    target = _targets((8, 3), torch.float32, soft=False).cuda()
    layer = torch.nn.Linear(4, 3).cuda()
    with torch.autocast(device_type="cuda", dtype=half):
        probs = torch.sigmoid(layer(features))
        assert probs.dtype == half
        got = LF.binary_cross_entropy(probs, target)
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            TF.binary_cross_entropy(probs, target)
    assert got.dtype == torch.float32
    want = LF.binary_cross_entropy(torch.sigmoid(layer(features)), target)
    rtol, atol = TOL[half]
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    got.backward()
    assert torch.isfinite(layer.weight.grad).all()


# --------------------------------------------------------------------------- target dtypes
BINARY_FNS = [
    pytest.param(lambda x, y, **kw: LF.binary_cross_entropy(x.sigmoid(), y, **kw), id="bce"),
    pytest.param(LF.binary_cross_entropy_with_logits, id="bce_with_logits"),
    pytest.param(LF.sigmoid_focal_loss, id="sigmoid_focal_loss"),
]


@pytest.mark.parametrize("fn", BINARY_FNS)
@pytest.mark.parametrize(
    "target_dtype", [torch.int64, torch.int32, torch.uint8, torch.bool], ids=str
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_integer_and_bool_targets_are_accepted(fn, target_dtype, reduction):
    # Documented behaviour: a 0/1 integer or bool target equals the float target.
    x = _logits((4, 5), torch.float32)
    y = _targets((4, 5), torch.float32, soft=False)
    x1, x2 = _leaf(x), _leaf(x)
    got = fn(x1, y.to(target_dtype), reduction=reduction)
    want = fn(x2, y, reduction=reduction)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)
    got.sum().backward()
    want.sum().backward()
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("which", IGNORING)
def test_integer_target_with_ignore_index(which):
    x = _logits((4, 5))
    y = _targets((4, 5), soft=False).long()
    y.view(-1)[::4] = -1
    got = _ignoring_call(which, x, y, ignore_index=-1)
    assert_close(got, _ignoring_call(which, x, y.double(), ignore_index=-1.0))


# --------------------------------------------------------------------------- in place
@pytest.mark.parametrize("fn", BINARY_FNS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_inputs_not_modified_in_place(fn, reduction):
    x, y, w = _logits((4, 5)), _targets((4, 5)), _weight((4, 5))
    kw = {}
    if fn is not BINARY_FNS[0].values[0]:
        kw["pos_weight"] = _weight((5,), seed=9)
    before = [t.clone() for t in (x, y, w, *kw.values())]
    x.requires_grad_(True)
    w.requires_grad_(True)
    fn(x, y, weight=w, reduction=reduction, **kw).sum().backward()
    for after, orig in zip((x, y, w, *kw.values()), before, strict=True):
        assert torch.equal(after.detach(), orig)


# --------------------------------------------------------------------------- error messages
def test_bce_input_outside_unit_interval_message():
    x = torch.tensor([-0.5, 0.2, 1.5, 0.7])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    with pytest.raises(losskit.LossInputError) as info:
        LF.binary_cross_entropy(x, y)
    msg = str(info.value)
    assert msg.startswith("binary_cross_entropy: input")
    assert "[0, 1]" in msg
    assert "min -0.5" in msg and "max 1.5" in msg
    assert "2 of 4" in msg
    assert "binary_cross_entropy_with_logits" in msg.split("Hint:", 1)[1]


@pytest.mark.parametrize(
    "name, fn",
    [
        ("binary_cross_entropy", lambda x, y: LF.binary_cross_entropy(x.sigmoid(), y)),
        ("binary_cross_entropy_with_logits", LF.binary_cross_entropy_with_logits),
        ("sigmoid_focal_loss", LF.sigmoid_focal_loss),
    ],
)
def test_target_shape_mismatch_message(name, fn):
    x = _logits((4, 3), torch.float32)
    with pytest.raises(losskit.LossInputError) as info:
        fn(x, torch.ones(4, 5))
    msg = str(info.value)
    assert msg.startswith(f"{name}:") and "target" in msg
    assert "(4, 3)" in msg and "(4, 5)" in msg
    # class indices (one dim fewer, integer): hint at cross_entropy / one_hot
    with pytest.raises(losskit.LossInputError, match="one_hot") as info:
        fn(x, torch.zeros(4, dtype=torch.long))
    assert "(4,)" in str(info.value) and "cross_entropy" in str(info.value)
    # same number of elements: hint at a reshape
    with pytest.raises(losskit.LossInputError, match=r"target\.view\(\(4, 3\)\)"):
        fn(x, torch.ones(12))


def test_gamma_negative_message():
    with pytest.raises(losskit.LossInputError) as info:
        LF.sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), gamma=-0.5)
    msg = str(info.value)
    assert msg.startswith("sigmoid_focal_loss:")
    assert "gamma" in msg and ">= 0" in msg and "-0.5" in msg


def test_alpha_above_one_message():
    with pytest.raises(losskit.LossInputError) as info:
        LF.sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), alpha=1.5)
    msg = str(info.value)
    assert msg.startswith("sigmoid_focal_loss:")
    assert "alpha" in msg and "<= 1" in msg and "1.5" in msg


def test_label_smoothing_out_of_range_message():
    for bad in (1.5, -0.1):
        with pytest.raises(losskit.LossInputError) as info:
            LF.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3), label_smoothing=bad)
        msg = str(info.value)
        assert msg.startswith("binary_cross_entropy_with_logits:")
        assert "label_smoothing" in msg and str(bad) in msg
        assert ">= 0" in msg and "<= 1" in msg


@pytest.mark.parametrize(
    "name, fn",
    [
        ("binary_cross_entropy", lambda x, y, **kw: LF.binary_cross_entropy(x.sigmoid(), y, **kw)),
        ("binary_cross_entropy_with_logits", LF.binary_cross_entropy_with_logits),
        ("sigmoid_focal_loss", LF.sigmoid_focal_loss),
    ],
)
def test_weight_not_broadcastable_message(name, fn):
    with pytest.raises(losskit.LossInputError) as info:
        fn(torch.zeros(4, 3), torch.zeros(4, 3), weight=torch.ones(4))
    msg = str(info.value)
    assert msg.startswith(f"{name}:") and "weight" in msg
    assert "(4,)" in msg and "(4, 3)" in msg
    # a weight that broadcasts but would enlarge the loss is refused too
    with pytest.raises(losskit.LossInputError, match="weight"):
        fn(torch.zeros(4, 3), torch.zeros(4, 3), weight=torch.ones(2, 4, 3))


def test_pos_weight_not_broadcastable_message():
    with pytest.raises(losskit.LossInputError) as info:
        LF.binary_cross_entropy_with_logits(
            torch.zeros(4, 3), torch.zeros(4, 3), pos_weight=torch.ones(4)
        )
    msg = str(info.value)
    assert "pos_weight" in msg and "(4,)" in msg and "(4, 3)" in msg


@pytest.mark.parametrize(
    "name, fn",
    [
        pytest.param(
            "binary_cross_entropy_with_logits",
            LF.binary_cross_entropy_with_logits,
            id="binary_cross_entropy_with_logits",
        ),
        pytest.param("sigmoid_focal_loss", LF.sigmoid_focal_loss, id="sigmoid_focal_loss"),
    ],
)
def test_set_checks_false_disables_value_checks(name, fn):
    x = torch.zeros(2, 2)
    y = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    with pytest.raises(losskit.LossInputError, match="max 2"):
        fn(x, y)
    assert losskit.checks_enabled()
    with losskit.set_checks(False):
        assert not losskit.checks_enabled()
        out = fn(x, y)  # no error: computed as written (the value is the caller's problem)
        assert isinstance(out, torch.Tensor) and out.shape == ()
    assert losskit.checks_enabled()  # restored on exit
    with pytest.raises(losskit.LossInputError, match=name):
        fn(x, y)


@pytest.mark.parametrize(
    "arg, x, y",
    [
        ("target", torch.full((2, 2), 0.5), torch.tensor([[0.0, 1.0], [2.0, 1.0]])),
        ("input", torch.tensor([[1.5, 0.5], [0.2, 0.1]]), torch.zeros(2, 2)),
    ],
)
def test_set_checks_false_bce_out_of_range_is_a_losskit_error(arg, x, y):
    # torch's own kernel refuses values outside [0, 1] for the probability form, so with
    # value checks off losskit reports that as its own error, not a RuntimeError from torch.
    with pytest.raises(losskit.LossInputError, match="found min"):
        LF.binary_cross_entropy(x, y)
    with losskit.set_checks(False):
        assert not losskit.checks_enabled()
        with pytest.raises(losskit.LossInputError) as info:
            LF.binary_cross_entropy(x, y)
    msg = str(info.value)
    assert msg.startswith(f"binary_cross_entropy: {arg} must hold values in [0, 1]")
    assert "value checks are off" in msg
    assert losskit.checks_enabled()


def test_set_checks_false_bce_with_logits_value():
    x = torch.tensor([0.3, -1.2])
    y = torch.tensor([2.0, -0.5])
    with losskit.set_checks(False):
        got = LF.binary_cross_entropy_with_logits(x, y)
    assert_close(got, TF.binary_cross_entropy_with_logits(x, y))


def test_set_checks_false_keeps_shape_checks():
    with losskit.set_checks(False), pytest.raises(losskit.LossInputError, match="shape"):
        LF.binary_cross_entropy_with_logits(torch.zeros(4, 3), torch.zeros(4, 5))


@pytest.mark.parametrize("fn", [LF.sigmoid_focal_loss, LF.poly1_focal_loss])
def test_focal_second_derivative_of_soft_targets_at_large_logits(fn):
    """Soft targets with logits of +-100 in float32: ``log(1 - p_t)`` is a log-sum of two
    terms 100 apart, past float32's ``exp`` range, where ``torch.logaddexp``'s double
    backward is NaN. losskit's log-sum (``_math.log_add_exp``) keeps the second
    derivative, equal to float64's."""
    x = torch.tensor([100.0, -100.0, 3.0, -30.0])
    y = torch.tensor([0.3, 0.9, 0.5, 0.2])
    hessians = []
    for dtype in (torch.float32, torch.float64):
        xi = x.to(dtype).requires_grad_(True)
        (g,) = torch.autograd.grad(fn(xi, y.to(dtype), reduction="sum"), xi, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), xi)
        assert torch.isfinite(h).all(), (dtype, h)
        hessians.append(h)
    assert_close(hessians[0], hessians[1], rtol=1e-4, atol=1e-6)


def test_focal_paths_keep_the_loss_of_agreeing_logits():
    """Where a logit agrees with a hard target the loss is tiny and exact on every path:
    the closed form, and the autograd path (a target that requires a gradient) whose
    ``-log p_t`` is ``softplus`` of the agreeing side, not torch's ``(1 - y) x -
    log_sigmoid(x)``, which cancels to 0 there (3e-7 at x = -15 in float32)."""
    x = torch.tensor([-15.0, 15.0, -30.0, 30.0, 2.0])
    y = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    for gamma in (0.5, 2.0):
        want = LF.sigmoid_focal_loss(x.double(), y.double(), gamma=gamma, reduction="none")
        fast = LF.sigmoid_focal_loss(x, y, gamma=gamma, reduction="none")
        slow = LF.sigmoid_focal_loss(
            x, y.clone().requires_grad_(True), gamma=gamma, reduction="none"
        )
        for got in (fast, slow):
            assert_close(got.double(), want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_keeps_the_precision_of_agreeing_logits_on_small_inputs(reduction):
    """At the default settings (small inputs included, where some losses take torch's
    kernel), a logit that agrees with its target keeps its loss ``log1p(exp(-|x|))``
    to a few ulps in a mean or sum: torch's ``(1 - y) x - log_sigmoid(x)`` rounds ``x =
    -30, y = 0`` to 0 (``reduction="none"`` is torch's kernel, bit for bit)."""
    x = torch.tensor([-30.0, 30.0, -17.0, 17.0, -80.0])
    y = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])
    want = torch.log1p(torch.exp(-x.double().abs()))
    want = want.mean() if reduction == "mean" else want.sum()
    got = LF.binary_cross_entropy_with_logits(x, y, reduction=reduction)
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=0)
