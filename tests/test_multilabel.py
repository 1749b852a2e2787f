"""Multi-label and noise-robust losses: the identities (asymmetric with no focusing and no
clip is BCE, poly-1 with epsilon 0 is CE / sigmoid focal, GCE at q -> 0 is CE, at 1 is
1 - p_y), the formulas written out, the log-space edges, errors. (The contract suite runs
the generic checks.)"""

from __future__ import annotations

import importlib.util
import math
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as TF

import losskit
from conftest import peer_wheel
from losskit import functional as F


def _logits(shape=(6, 5), seed=0, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def _labels(shape=(6, 5), seed=0, soft=False):
    g = torch.Generator().manual_seed(seed + 100)
    y = (torch.rand(shape, generator=g, dtype=torch.float64) > 0.6).double()
    if soft:
        y = torch.where(
            torch.rand(shape, generator=g) > 0.5, torch.rand(shape, generator=g).double(), y
        )
    return y


def _indices(n=6, c=5, seed=0):
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- asymmetric
def test_asymmetric_without_focusing_or_clip_is_bce_with_logits():
    x, y = _logits(seed=1), _labels(seed=1, soft=True)
    w = torch.rand(5, dtype=torch.float64) + 0.5
    for reduction in ("none", "mean", "sum"):
        got = F.asymmetric_loss(x, y, gamma_pos=0, gamma_neg=0, clip=0, reduction=reduction)
        want = TF.binary_cross_entropy_with_logits(x, y, reduction=reduction)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    got = F.asymmetric_loss(x, y, gamma_pos=0, gamma_neg=0, clip=0, weight=w)
    torch.testing.assert_close(got, F.binary_cross_entropy_with_logits(x, y, weight=w))


@pytest.mark.parametrize(
    "gamma_pos, gamma_neg, clip", [(0, 4, 0.05), (1, 4, 0.05), (2, 1, 0), (0.5, 2.5, 0.3)]
)
def test_asymmetric_is_the_papers_formula(gamma_pos, gamma_neg, clip):
    x, y = _logits(seed=2, scale=2.0), _labels(seed=2, soft=True)
    p = torch.sigmoid(x)
    p_m = (p - clip).clamp_min(0)
    want = -(
        y * (1 - p) ** gamma_pos * torch.log(p) + (1 - y) * p_m**gamma_neg * torch.log(1 - p_m)
    )
    got = F.asymmetric_loss(
        x, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="none"
    )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-14)


def test_asymmetric_clip_discards_easy_negatives():
    x = torch.tensor([-5.0, -3.0, -2.9, 0.0, 4.0], dtype=torch.float64, requires_grad=True)
    y = torch.zeros(5, dtype=torch.float64)
    out = F.asymmetric_loss(x, y, clip=0.05, reduction="none")  # p < 0.05: loss and gradient 0
    (grad,) = torch.autograd.grad(out.sum(), x)
    easy = torch.sigmoid(x) < 0.05
    assert easy.tolist() == [True, True, False, False, False]
    assert (out[easy] == 0).all() and (grad[easy] == 0).all()
    assert (out[~easy] > 0).all() and (grad[~easy] > 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_asymmetric_is_finite_and_exact_at_logits_of_1e4(dtype):
    x = torch.tensor([-1e4, 1e4, 1e4, -1e4], dtype=dtype, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    out = F.asymmetric_loss(x, y, gamma_pos=1.0, gamma_neg=0.5, clip=0.05, reduction="none")
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()
    # a missed positive costs its logit (1e4, 9984 in bfloat16); a confident negative
    # 0.95^0.5 * -log(0.05)
    want = [-float(x[0].detach()), math.sqrt(0.95) * -math.log(0.05), 0.0, 0.0]
    torch.testing.assert_close(
        out.double(), torch.tensor(want, dtype=torch.float64), rtol=1e-6, atol=1e-6
    )


def test_asymmetric_negative_focusing_below_one_has_a_finite_gradient_at_the_margin():
    # p_m^gamma with gamma < 1: infinite slope as p_m -> 0+, but 0 (not NaN) at p_m = 0
    clip = 0.05
    at = math.log(clip / (1 - clip))
    x = torch.tensor([at - 1e-3, at, at + 1e-3], dtype=torch.float64, requires_grad=True)
    out = F.asymmetric_loss(
        x, torch.zeros(3, dtype=torch.float64), gamma_neg=0.5, clip=clip, reduction="sum"
    )
    (grad,) = torch.autograd.grad(out, x)
    assert torch.isfinite(grad).all()


def test_asymmetric_ignore_index_and_weight():
    x, y = _logits(seed=3), _labels(seed=3)
    y[0, 1] = y[3, 4] = -1.0
    w = torch.rand(6, 5, dtype=torch.float64) + 0.1
    per = F.asymmetric_loss(x, y.clamp_min(0), reduction="none")
    counted = y != -1
    want = (per * w)[counted].sum() / w[counted].sum()
    torch.testing.assert_close(F.asymmetric_loss(x, y, weight=w, ignore_index=-1.0), want)


# --------------------------------------------------------------------------- poly-1 focal
def test_poly1_focal_with_epsilon_zero_is_sigmoid_focal():
    x, y = _logits(seed=4), _labels(seed=4, soft=True)
    w = torch.rand(6, 5, dtype=torch.float64) + 0.1
    for options in ({}, {"alpha": None, "gamma": 0.5}, {"alpha": 0.75, "gamma": 0.0}):
        for reduction in ("none", "mean", "sum"):
            got = F.poly1_focal_loss(x, y, epsilon=0.0, weight=w, reduction=reduction, **options)
            want = F.sigmoid_focal_loss(x, y, weight=w, reduction=reduction, **options)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "epsilon, alpha, gamma", [(1.0, 0.25, 2.0), (-1.0, None, 2.0), (2.0, 0.5, 0.0)]
)
def test_poly1_focal_is_focal_plus_epsilon_times_the_next_power(epsilon, alpha, gamma):
    x, y = _logits(seed=5, scale=2.0), _labels(seed=5, soft=True)
    p = torch.sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    ce = TF.binary_cross_entropy_with_logits(x, y, reduction="none")
    a_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    want = a_t * (1 - p_t) ** gamma * ce + epsilon * (1 - p_t) ** (gamma + 1)
    got = F.poly1_focal_loss(x, y, epsilon=epsilon, alpha=alpha, gamma=gamma, reduction="none")
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-14)
    # alpha weights the focal term only: the poly term is the same for every alpha
    other = F.poly1_focal_loss(x, y, epsilon=epsilon, alpha=0.9, gamma=gamma, reduction="none")
    focal_other = F.sigmoid_focal_loss(x, y, alpha=0.9, gamma=gamma, reduction="none")
    torch.testing.assert_close(other - focal_other, epsilon * (1 - p_t) ** (gamma + 1))


def test_poly1_focal_is_finite_at_logits_of_1e4():
    x = torch.tensor([-1e4, 1e4, 1e4, -1e4], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    for gamma in (0.0, 0.5, 2.0):
        out = F.poly1_focal_loss(x, y, gamma=gamma, reduction="none")
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
        # wrong by 1e4: 0.25 * 1e4 + 1 (1 - p_t = 1); right: 0
        torch.testing.assert_close(out, torch.tensor([0.25 * 1e4 + 1, 0.75 * 1e4 + 1, 0.0, 0.0]))


# --------------------------------------------------------------------------- poly-1 CE
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.2},
        {"ignore_index": 1},
        {"ignore_index": 0, "label_smoothing": 0.1},
    ],
    ids=str,
)
@pytest.mark.parametrize("weighted", [False, True])
def test_poly1_ce_with_epsilon_zero_is_cross_entropy(options, weighted):
    x, y = (
        _logits((6, 5, 3), seed=6),
        torch.randint(0, 5, (6, 3), generator=torch.Generator().manual_seed(6)),
    )
    if weighted:
        options = {**options, "weight": torch.rand(5, dtype=torch.float64) + 0.2}
    for reduction in ("none", "mean", "sum"):
        got = F.poly1_cross_entropy(x, y, epsilon=0.0, reduction=reduction, **options)
        want = TF.cross_entropy(x, y, reduction=reduction, **options)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_poly1_ce_z_loss_is_cross_entropys():
    x, y = _logits((6, 5), seed=17), _indices(seed=17)
    w = torch.rand(5, dtype=torch.float64) + 0.2
    for options in ({"z_loss": 0.1}, {"z_loss": 0.1, "weight": w, "ignore_index": 2}):
        for reduction in ("none", "mean", "sum"):
            got = F.poly1_cross_entropy(x, y, epsilon=0.0, reduction=reduction, **options)
            want = F.cross_entropy(x, y, reduction=reduction, **options)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    plain = F.poly1_cross_entropy(x, y, reduction="none")
    lse2 = torch.logsumexp(x, 1) ** 2
    torch.testing.assert_close(
        F.poly1_cross_entropy(x, y, z_loss=0.5, reduction="none"), plain + 0.5 * lse2
    )


@pytest.mark.parametrize("epsilon", [1.0, -1.0, 3.0])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_poly1_ce_is_ce_plus_epsilon_one_minus_pt(epsilon, ls):
    x, y = _logits(seed=7), _indices(seed=7)
    w = torch.rand(5, dtype=torch.float64) + 0.2
    p = torch.softmax(x, 1)
    q = TF.one_hot(y, 5).double() * (1 - ls) + ls / 5
    ce = TF.cross_entropy(x, y, weight=w, label_smoothing=ls, reduction="none")
    per = ce + epsilon * w[y] * (1 - (q * p).sum(1))
    got = F.poly1_cross_entropy(
        x, y, epsilon=epsilon, weight=w, label_smoothing=ls, reduction="none"
    )
    torch.testing.assert_close(got, per, rtol=1e-12, atol=1e-14)
    mean = F.poly1_cross_entropy(x, y, epsilon=epsilon, weight=w, label_smoothing=ls)
    torch.testing.assert_close(mean, per.sum() / w[y].sum(), rtol=1e-12, atol=0)


def test_poly1_ce_one_hot_probabilities_equal_indices():
    x, y = _logits(seed=8), _indices(seed=8)
    w = torch.rand(5, dtype=torch.float64) + 0.2
    for options in ({}, {"weight": w}, {"label_smoothing": 0.3, "weight": w}):
        probs = F.poly1_cross_entropy(x, TF.one_hot(y, 5).double(), **options)
        torch.testing.assert_close(probs, F.poly1_cross_entropy(x, y, **options))


def test_poly1_ce_one_minus_pt_is_accurate_for_confident_rows():
    x = torch.tensor([[30.0, 0.0, 0.0]], requires_grad=True)  # 1 - p_y = 2e-13 in float32
    out = F.poly1_cross_entropy(x, torch.tensor([0]), epsilon=1.0)
    exact = 2 * math.exp(-30) / (1 + 2 * math.exp(-30))
    assert out.item() == pytest.approx(2 * exact, rel=1e-5)  # CE = -log p_y ~ 1 - p_y here


# --------------------------------------------------------------------------- GCE
def test_gce_q_zero_is_cross_entropy_and_tends_to_it():
    x, y = (
        _logits((6, 5, 2), seed=9),
        torch.randint(0, 5, (6, 2), generator=torch.Generator().manual_seed(9)),
    )
    w = torch.rand(5, dtype=torch.float64) + 0.2
    for options in ({}, {"weight": w}, {"ignore_index": 3}):
        ce = TF.cross_entropy(x, y, **options)
        torch.testing.assert_close(
            F.generalized_cross_entropy(x, y, q=0.0, **options), ce, rtol=1e-12, atol=0
        )
        for q, tol in ((1e-4, 1e-3), (1e-8, 1e-7)):  # (1 - p^q) / q = CE - q CE^2 / 2 + ...
            got = F.generalized_cross_entropy(x, y, q=q, **options)
            assert abs(got.item() - ce.item()) <= tol * ce.item()
            assert got.item() < ce.item()


def test_gce_q_zero_gradient_is_the_cross_entropy_gradient():
    x, y = _logits(seed=10).requires_grad_(True), _indices(seed=10)
    (g,) = torch.autograd.grad(F.generalized_cross_entropy(x, y, q=0.0), x)
    (want,) = torch.autograd.grad(TF.cross_entropy(x, y), x)
    torch.testing.assert_close(g, want)
    (g_small,) = torch.autograd.grad(F.generalized_cross_entropy(x, y, q=1e-9), x)
    torch.testing.assert_close(g_small, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("q", [0.3, 0.7, 1.0])
def test_gce_is_the_box_cox_of_p_y(q):
    x, y = _logits(seed=11), _indices(seed=11)
    w = torch.rand(5, dtype=torch.float64) + 0.2
    p_y = torch.softmax(x, 1).gather(1, y[:, None])[:, 0]
    per = w[y] * (1 - p_y**q) / q
    got = F.generalized_cross_entropy(x, y, q=q, weight=w, reduction="none")
    torch.testing.assert_close(got, per, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(
        F.generalized_cross_entropy(x, y, q=q, weight=w), per.sum() / w[y].sum()
    )
    if q == 1.0:  # the mean absolute error of the softmax against the one-hot target, halved
        mae = (torch.softmax(x, 1) - TF.one_hot(y, 5)).abs().sum(1) / 2
        torch.testing.assert_close(F.generalized_cross_entropy(x, y, q=1.0, reduction="none"), mae)


def test_gce_is_bounded_by_one_over_q_at_logits_of_1e4():
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], requires_grad=True)
    out = F.generalized_cross_entropy(x, torch.tensor([1, 0]), q=0.5, reduction="none")
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(out, torch.tensor([2.0, 2.0]))
    assert torch.isfinite(grad).all()


# --------------------------------------------------------------------------- precision, errors
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_inputs_are_computed_in_float32(dtype):
    x = _logits((8, 5), seed=12, dtype=dtype)
    y, t = _labels((8, 5), seed=12).to(dtype), _indices(8, 5, seed=12)
    for fn, target in (
        (F.asymmetric_loss, y),
        (F.poly1_focal_loss, y),
        (F.poly1_cross_entropy, t),
        (F.generalized_cross_entropy, t),
    ):
        xh = x.clone().requires_grad_(True)
        out = fn(xh, target)
        want = fn(x.float(), target.float() if target.is_floating_point() else target)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-7)
        (grad,) = torch.autograd.grad(out, xh)
        assert grad.dtype == dtype


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y, t: F.asymmetric_loss(x, y, clip=1.5), "clip must be >= 0 and <= 1"),
        (lambda x, y, t: F.asymmetric_loss(x, y, gamma_neg=-1.0), "gamma_neg must be >= 0"),
        (lambda x, y, t: F.asymmetric_loss(x, y * 2), r"target must hold values in \[0, 1\]"),
        (lambda x, y, t: F.asymmetric_loss(x, t), "target must have the input's shape"),
        (lambda x, y, t: F.poly1_focal_loss(x, y, epsilon=-2.0), "epsilon must be >= -1"),
        (lambda x, y, t: F.poly1_cross_entropy(x, t, epsilon=-1.5), "epsilon must be >= -1"),
        (
            lambda x, y, t: F.poly1_cross_entropy(x, y.softmax(1), ignore_index=0),
            "class-index targets only",
        ),
        (lambda x, y, t: F.generalized_cross_entropy(x, t, q=1.5), "q must be >= 0 and <= 1"),
        (lambda x, y, t: F.generalized_cross_entropy(x, y), "class indices"),
        (lambda x, y, t: F.generalized_cross_entropy(x, t + 5), "but input has 5 classes"),
    ],
)
def test_errors_name_the_loss_and_the_argument(call, message):
    x, y, t = _logits(seed=13).float(), _labels(seed=13).float(), _indices(seed=13)
    with pytest.raises((losskit.LossInputError, losskit.LossTypeError), match=message) as info:
        call(x, y, t)
    assert str(info.value).split(":")[0] in {
        "asymmetric_loss",
        "poly1_focal_loss",
        "poly1_cross_entropy",
        "generalized_cross_entropy",
    }


def test_modules():
    x, y, t = _logits(seed=14), _labels(seed=14), _indices(seed=14)
    assert torch.equal(
        losskit.nn.AsymmetricLoss(gamma_pos=1.0)(x, y), F.asymmetric_loss(x, y, gamma_pos=1.0)
    )
    assert torch.equal(
        losskit.nn.Poly1FocalLoss(epsilon=2.0)(x, y), F.poly1_focal_loss(x, y, epsilon=2.0)
    )
    assert torch.equal(losskit.nn.Poly1CrossEntropyLoss()(x, t), F.poly1_cross_entropy(x, t))
    gce = losskit.nn.GeneralizedCrossEntropyLoss(q=0.5)
    assert torch.equal(gce(x, t), F.generalized_cross_entropy(x, t, q=0.5))
    assert type(losskit.get("generalized_cross_entropy")) is type(gce)


# --------------------------------------------------------------------------- parity: timm
ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "peers"
TIMM_VERSION = "1.0.22"


@pytest.fixture(scope="module")
def timm_asl():
    """timm's asymmetric_loss.py, loaded by path from the downloaded wheel (timm imports
    torchvision, whose wheel's compiled ops do not load against the CPU torch; the loss
    file needs torch alone)."""
    wheel = peer_wheel("timm", TIMM_VERSION)
    path = CACHE / f"timm-{TIMM_VERSION}-asymmetric_loss.py"
    with zipfile.ZipFile(wheel) as z:
        path.write_bytes(z.read("timm/loss/asymmetric_loss.py"))
    spec = importlib.util.spec_from_file_location("_timm_asymmetric_loss", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "gamma_pos, gamma_neg, clip", [(1, 4, 0.05), (0, 4, 0.05), (0, 0, 0), (2, 1, 0.2), (1, 2, 0)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_asymmetric_sum_equals_timm_for_hard_targets(timm_asl, gamma_pos, gamma_neg, clip, dtype):
    x = _logits((16, 20), seed=15, dtype=dtype).requires_grad_(True)  # |x| < 15: eps inactive
    y = _labels((16, 20), seed=15).to(dtype)
    timm_loss = timm_asl.AsymmetricLossMultiLabel(
        gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip
    )
    xt = x.detach().clone().requires_grad_(True)
    theirs = timm_loss(xt, y)
    ours = F.asymmetric_loss(
        x, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="sum"
    )
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=0)
    (g_ours,), (g_theirs,) = torch.autograd.grad(ours, x), torch.autograd.grad(theirs, xt)
    torch.testing.assert_close(
        g_ours, g_theirs, rtol=rtol, atol=1e-12 if dtype == torch.float64 else 1e-6
    )


def test_asymmetric_differs_from_timm_where_the_semantics_do(timm_asl):
    timm_loss = timm_asl.AsymmetricLossMultiLabel(gamma_neg=4, gamma_pos=1, clip=0.05)
    # soft targets: timm weighs both terms by one (1 - p_t)^gamma of the target's p_t
    x, y = _logits((4, 6), seed=16), _labels((4, 6), seed=16, soft=True)
    ours = F.asymmetric_loss(x, y, gamma_pos=1, gamma_neg=4, clip=0.05, reduction="sum")
    assert abs(float(ours - timm_loss(x, y))) > 1e-3
    # a missed positive at a logit of -1e4: timm's eps clamp gives -log(1e-8), ours 1e4
    x, y = torch.tensor([[-1e4]], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    assert float(timm_loss(x, y)) == pytest.approx(-math.log(1e-8))
    assert float(F.asymmetric_loss(x, y, gamma_pos=1, reduction="sum")) == pytest.approx(1e4)
