"""Distillation losses: KL direction and the T² factor against torch's F.kl_div, GJSD's
endpoints and symmetry, total variation, masked (-inf) classes, ignored positions, half
precision, the teacher's gradient, errors. (The contract suite runs the generic checks.)"""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as TF

import losskit
from losskit import functional as F
from losskit import nn

INF = float("inf")


def _logits(shape=(6, 5), seed=0, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


def _kl_div(x, z, t=1.0, dim=1):
    """KL(teacher || student) per position, as torch users write it with F.kl_div
    (student first, teacher as the target)."""
    return TF.kl_div(
        TF.log_softmax(x / t, dim=dim),
        TF.log_softmax(z / t, dim=dim),
        reduction="none",
        log_target=True,
    ).sum(dim)


# --------------------------------------------------------------------------- KD
def test_kd_is_kl_teacher_to_student_as_f_kl_div_batchmean():
    x, z = _logits(seed=0), _logits(seed=1)
    want = TF.kl_div(
        TF.log_softmax(x, 1), TF.log_softmax(z, 1), reduction="batchmean", log_target=True
    )
    torch.testing.assert_close(F.distillation_loss(x, z), want, rtol=1e-12, atol=0)
    # the other direction (pytorch #57459: arguments swapped) is a different number
    reverse = TF.kl_div(
        TF.log_softmax(z, 1), TF.log_softmax(x, 1), reduction="batchmean", log_target=True
    )
    assert abs(float(F.distillation_loss(x, z) - reverse)) > 1e-3
    torch.testing.assert_close(F.distillation_loss(z, x), reverse, rtol=1e-12, atol=0)


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0, 8.0])
def test_temperature_squared_factor_and_gradient_scale(t):
    x, z = _logits(seed=2).requires_grad_(True), _logits(seed=3)
    out = F.distillation_loss(x, z, temperature=t, reduction="sum")
    torch.testing.assert_close(out, t * t * _kl_div(x, z, t).sum(), rtol=1e-12, atol=0)
    # d/dx T^2 KL(q || softmax(x / T)) = T (p - q): the T^2 keeps the gradient's scale
    (grad,) = torch.autograd.grad(out, x)
    want = t * (torch.softmax(x / t, 1) - torch.softmax(z / t, 1))
    torch.testing.assert_close(grad, want.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("t", [1.0, 3.0])
def test_with_target_mixes_cross_entropy_and_kd_over_counted_positions(alpha, t):
    x, z = _logits((4, 5, 3), seed=4), _logits((4, 5, 3), seed=5)  # K-dim: (N, C, L)
    y = torch.randint(0, 5, (4, 3), generator=torch.Generator().manual_seed(0))
    y[0, 0] = y[2, 1] = y[3, 2] = -100
    counted = y != -100
    ce = TF.cross_entropy(x, y, reduction="none")
    kd = t * t * _kl_div(x, z, t)
    per = torch.where(counted, (1 - alpha) * ce + alpha * kd, 0.0)
    got = F.distillation_loss(x, z, y, temperature=t, alpha=alpha, reduction="none")
    torch.testing.assert_close(got, per, rtol=1e-12, atol=1e-14)
    mean = F.distillation_loss(x, z, y, temperature=t, alpha=alpha)
    torch.testing.assert_close(mean, per.sum() / counted.sum(), rtol=1e-12, atol=0)
    if alpha == 0.0:  # the cross entropy alone, exactly
        torch.testing.assert_close(mean, F.cross_entropy(x, y), rtol=1e-12, atol=0)


def test_without_target_every_position_counts_and_normalizer_divides_the_sum():
    x, z = _logits((3, 4, 2), seed=6), _logits((3, 4, 2), seed=7)
    per = _kl_div(x, z)
    torch.testing.assert_close(F.distillation_loss(x, z, reduction="none"), per, rtol=1e-12, atol=0)
    torch.testing.assert_close(F.distillation_loss(x, z), per.mean(), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        F.distillation_loss(x, z, normalizer=10.0), per.sum() / 10, rtol=1e-12, atol=0
    )


def test_all_ignored_is_zero_with_zero_gradient():
    x, z = _logits(seed=8).requires_grad_(True), _logits(seed=9).requires_grad_(True)
    y = torch.full((6,), -100)
    for fn in (F.distillation_loss, F.generalized_jsd_loss, F.total_variation_loss):
        out = fn(x, z, y)
        assert out.item() == 0.0
        gx, gz = torch.autograd.grad(out, (x, z))
        assert not gx.any() and not gz.any()


# --------------------------------------------------------------------------- GJSD
def _trl_gjsd(x, z, labels=None, beta=0.5, t=1.0):
    """TRL's generalized_jsd_loss as its documentation defines it (GKD, Agarwal et al.):
    log-probabilities at temperature t, the endpoints as the two KLs, the mixture
    M = (1 - beta) p + beta q by logsumexp, KLs through F.kl_div (input = log M); the sum
    over classes, then the mean over non-ignored labels (or the rows)."""
    log_p = TF.log_softmax(x / t, dim=-1)
    log_q = TF.log_softmax(z / t, dim=-1)
    if beta == 0:
        jsd = TF.kl_div(log_p, log_q, reduction="none", log_target=True)
    elif beta == 1:
        jsd = TF.kl_div(log_q, log_p, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=log_p.dtype)
        log_m = torch.logsumexp(torch.stack([log_p + torch.log1p(-b), log_q + torch.log(b)]), 0)
        kl_teacher = TF.kl_div(log_m, log_q, reduction="none", log_target=True)
        kl_student = TF.kl_div(log_m, log_p, reduction="none", log_target=True)
        jsd = beta * kl_teacher + (1 - beta) * kl_student
    if labels is not None:
        mask = labels != -100
        return jsd[mask].sum() / mask.sum()
    return jsd.sum() / jsd.size(0)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("t", [1.0, 2.0])
def test_gjsd_equals_trl_form(beta, t):
    x, z = _logits((10, 7), seed=10), _logits((10, 7), seed=11)
    labels = torch.randint(0, 7, (10,), generator=torch.Generator().manual_seed(1))
    labels[::4] = -100
    got = F.generalized_jsd_loss(x, z, labels, beta=beta, temperature=t)
    torch.testing.assert_close(got, _trl_gjsd(x, z, labels, beta, t), rtol=1e-12, atol=1e-15)
    got = F.generalized_jsd_loss(x, z, beta=beta, temperature=t)
    torch.testing.assert_close(got, _trl_gjsd(x, z, None, beta, t), rtol=1e-12, atol=1e-15)


def test_gjsd_endpoints_are_the_two_kls_and_the_interior_tends_to_zero():
    x, z = _logits(seed=12), _logits(seed=13)
    forward, reverse = _kl_div(x, z).mean(), _kl_div(z, x).mean()  # KL(q || p), KL(p || q)
    torch.testing.assert_close(F.generalized_jsd_loss(x, z, beta=0.0), forward, rtol=1e-12, atol=0)
    torch.testing.assert_close(F.generalized_jsd_loss(x, z, beta=1.0), reverse, rtol=1e-12, atol=0)
    torch.testing.assert_close(F.generalized_jsd_loss(x, z, beta=0.0), F.distillation_loss(x, z))
    # next to an endpoint the mixture formula is near 0, not near the KL (as in GKD)
    for b in (1e-9, 1 - 1e-9):
        assert F.generalized_jsd_loss(x, z, beta=b) < 1e-6 < forward.item()


def test_gjsd_symmetry_and_jsd_bound():
    x, z = _logits(seed=14, scale=4.0), _logits(seed=15, scale=4.0)
    for b in (0.2, 0.5, 0.7):  # swapping student and teacher is beta -> 1 - beta
        torch.testing.assert_close(
            F.generalized_jsd_loss(x, z, beta=b), F.generalized_jsd_loss(z, x, beta=1 - b)
        )
    # disjoint distributions: the JSD is log 2 at its largest
    big = torch.tensor([[0.0, -INF], [-INF, 0.0]], dtype=torch.float64)
    jsd = F.generalized_jsd_loss(big, big.flip(1), beta=0.5, reduction="none")
    torch.testing.assert_close(jsd, torch.full((2,), math.log(2.0), dtype=torch.float64))
    assert (F.generalized_jsd_loss(x, z, beta=0.5, reduction="none") <= math.log(2.0)).all()


# --------------------------------------------------------------------------- TV
def test_total_variation_values_bounds_and_symmetry():
    x, z = _logits(seed=16), _logits(seed=17)
    want = 0.5 * (torch.softmax(x / 2, 1) - torch.softmax(z / 2, 1)).abs().sum(1)
    got = F.total_variation_loss(x, z, temperature=2.0, reduction="none")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(F.total_variation_loss(z, x), F.total_variation_loss(x, z))
    assert ((got >= 0) & (got <= 1)).all()
    assert F.total_variation_loss(x, x).item() == 0.0
    one_hot = torch.tensor([[0.0, -INF, -INF]], dtype=torch.float64)
    assert F.total_variation_loss(one_hot, one_hot.roll(1, 1)).item() == 1.0


# --------------------------------------------------------------------------- -inf, NaN
LOSSES = [
    ("distillation_loss", {"temperature": 2.0}),
    ("generalized_jsd_loss", {"beta": 0.0}),
    ("generalized_jsd_loss", {"beta": 0.4}),
    ("generalized_jsd_loss", {"beta": 1.0}),
    ("total_variation_loss", {}),
]


@pytest.mark.parametrize("name, options", LOSSES, ids=lambda v: str(v))
def test_a_class_both_distributions_vanish_from_adds_nothing(name, options):
    """-inf logits in student and teacher (a masked vocabulary): 0 log 0 = 0, so the loss
    and its gradients are those of the other classes alone, finite."""
    fn = getattr(F, name)
    x, z = _logits((5, 4), seed=18), _logits((5, 4), seed=19)
    x_masked = torch.cat([torch.full((5, 2), -INF, dtype=x.dtype), x], 1).requires_grad_(True)
    z_masked = torch.cat([torch.full((5, 2), -INF, dtype=z.dtype), z], 1).requires_grad_(True)
    xs, zs = x.clone().requires_grad_(True), z.clone().requires_grad_(True)
    got, want = fn(x_masked, z_masked, **options), fn(xs, zs, **options)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    gx, gz = torch.autograd.grad(got, (x_masked, z_masked))
    wx, wz = torch.autograd.grad(want, (xs, zs))
    assert torch.isfinite(gx).all() and torch.isfinite(gz).all()
    torch.testing.assert_close(gx[:, 2:], wx, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(gz[:, 2:], wz, rtol=1e-10, atol=1e-14)
    assert not gx[:, :2].any() and not gz[:, :2].any()


@pytest.mark.parametrize("name, options", LOSSES, ids=lambda v: str(v))
def test_nan_in_ignored_positions_of_the_teacher_is_inert(name, options):
    fn = getattr(F, name)
    x, z = _logits((6, 4), seed=20), _logits((6, 4), seed=21)
    y = torch.tensor([0, -100, 2, 3, -100, 1])
    dirty = z.clone()
    dirty[y == -100] = float("nan")
    zc, zd = z.clone().requires_grad_(True), dirty.requires_grad_(True)
    want, got = fn(x, zc, y, **options), fn(x, zd, y, **options)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, zd)[0], torch.autograd.grad(want, zc)[0])


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name, options", LOSSES, ids=lambda v: str(v))
def test_half_inputs_are_computed_in_float32(dtype, name, options):
    fn = getattr(F, name)
    x, z = _logits((8, 50), seed=22, dtype=dtype), _logits((8, 50), seed=23, dtype=dtype)
    xh, xf = x.clone().requires_grad_(True), x.float().requires_grad_(True)
    got, want = fn(xh, z, **options), fn(xf, z.float(), **options)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)  # the same float32 math
    (gh,), (gf,) = torch.autograd.grad(got, xh), torch.autograd.grad(want, xf)
    assert gh.dtype == dtype
    torch.testing.assert_close(gh.float(), gf.to(dtype).float(), rtol=0, atol=0)
    # a float32 teacher with a half student: float32, the teacher's values unrounded
    torch.testing.assert_close(fn(xh, z.float(), **options), want, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- teacher grad
def test_teacher_gets_the_gradient_f_kl_div_gives_its_target():
    x = _logits(seed=24).requires_grad_(True)
    z = _logits(seed=25).requires_grad_(True)
    (gx, gz) = torch.autograd.grad(F.distillation_loss(x, z, temperature=2.0), (x, z))
    x2, z2 = x.detach().clone().requires_grad_(True), z.detach().clone().requires_grad_(True)
    want = 4.0 * _kl_div(x2, z2, 2.0).mean()
    wx, wz = torch.autograd.grad(want, (x2, z2))
    torch.testing.assert_close(gx, wx)
    torch.testing.assert_close(gz, wz)
    assert gz.abs().sum() > 0
    # a detached (or no_grad) teacher takes no part in the graph
    out = F.distillation_loss(x, z.detach(), temperature=2.0)
    out.backward()
    assert z.grad is None and x.grad is not None


# --------------------------------------------------------------------------- module, errors
def test_modules_take_input_teacher_target():
    x, z = _logits(seed=26), _logits(seed=27)
    y = torch.tensor([0, 1, 2, -100, 4, 0])
    module = nn.DistillationLoss(temperature=3.0, alpha=0.2)
    assert torch.equal(module(x, z, y), F.distillation_loss(x, z, y, temperature=3.0, alpha=0.2))
    assert torch.equal(module(x, z), F.distillation_loss(x, z, temperature=3.0, alpha=0.2))
    assert torch.equal(
        nn.GeneralizedJSDLoss(beta=0.2)(x, z), F.generalized_jsd_loss(x, z, beta=0.2)
    )
    assert torch.equal(losskit.get("total_variation")(x, z, y), F.total_variation_loss(x, z, y))


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda x, z, y: F.distillation_loss(x, z[:, :3]),
            "teacher must hold logits of the input's shape",
        ),
        (
            lambda x, z, y: F.distillation_loss(x, z.long()),
            "teacher must be a floating-point tensor",
        ),
        (lambda x, z, y: F.distillation_loss(x, None), "teacher must be a torch.Tensor"),
        (lambda x, z, y: F.distillation_loss(x, z, temperature=0.0), "temperature must be > 0"),
        (lambda x, z, y: F.distillation_loss(x, z, alpha=1.5), "alpha must be >= 0 and <= 1"),
        (lambda x, z, y: F.generalized_jsd_loss(x, z, beta=-0.1), "beta must be >= 0 and <= 1"),
        (lambda x, z, y: F.total_variation_loss(x, z, y + 5), "but input has 5 classes"),
        (lambda x, z, y: F.distillation_loss(x, z, y.float()), "class indices"),
        (lambda x, z, y: F.distillation_loss(x[0, 0], z[0, 0]), "class dimension"),
        (lambda x, z, y: F.generalized_jsd_loss(x, z, reduction="avg"), "'none', 'mean', 'sum'"),
    ],
)
def test_errors_name_the_loss_and_the_argument(call, message):
    x, z = _logits(seed=28).float(), _logits(seed=29).float()
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    with pytest.raises((losskit.LossInputError, losskit.LossTypeError), match=message) as info:
        call(x, z, y)
    assert str(info.value).split(":")[0] in {
        "distillation_loss",
        "generalized_jsd_loss",
        "total_variation_loss",
    }


# --------------------------------------------------------------------------- parity: Keras
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
    os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")
    k = pytest.importorskip("keras", minversion="3", reason="Keras parity needs the parity extra")
    if k.backend.backend() != "torch":  # pragma: no cover - keras imported elsewhere first
        pytest.skip("keras was imported with another backend")
    return k


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_kd_equals_keras_kl_divergence(keras, t):
    """Keras 3's KLDivergence(y_true=teacher probabilities, y_pred=student probabilities),
    times T²: distillation_loss without a target. Keras clips both to [1e-7, 1]: the
    logits here keep every probability above that, where the clip is inactive."""
    x, z = _logits((8, 6), seed=30, scale=1.0).float(), _logits((8, 6), seed=31, scale=1.0).float()
    p, q = torch.softmax(x / t, 1), torch.softmax(z / t, 1)
    assert p.min() > 1e-7 and q.min() > 1e-7
    theirs = t * t * torch.as_tensor(keras.losses.KLDivergence()(q, p)).cpu()
    torch.testing.assert_close(
        F.distillation_loss(x, z, temperature=t), theirs, rtol=1e-5, atol=1e-7
    )
    per = keras.losses.KLDivergence(reduction=None)(q, p)
    torch.testing.assert_close(
        F.distillation_loss(x, z, temperature=t, reduction="none"),
        t * t * torch.as_tensor(per).cpu(),
        rtol=1e-5,
        atol=1e-7,
    )
