"""Segmentation overlap losses: identities between them, modes and target forms against the
NumPy reference, the edges (empty masks, extreme logits, ignored images, one pixel), second
derivatives and the errors. The registry-wide contract tests cover the default options."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import torch

import losskit
import losskit.functional as LF
from losskit import reference as R
from losskit.plot import curve

OVERLAP = ["dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss"]
ALL = [*OVERLAP, "generalized_dice_loss"]
F64 = torch.float64


def _logits(shape, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=F64) * scale


def _labels(shape, classes, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, shape, generator=g)


def _masks(shape, seed=2):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=F64) > 0.5).double()


def _fn(name):
    return getattr(LF, name)


# ----------------------------------------------------------------------------- identities
def test_tversky_with_halves_is_dice_and_with_ones_is_jaccard():
    x, y = _logits((2, 4, 3, 5)), _labels((2, 3, 5), 4)
    for per_image in (True, False):
        for smooth in (0.0, 1.0):
            o = {"per_image": per_image, "smooth": smooth, "reduction": "none"}
            dice = LF.dice_loss(x, y, **o)
            # (I + s/2) / (I + FP/2 + FN/2 + s/2) = (2I + s) / (P + G + s)
            half = {**o, "smooth": smooth / 2}
            torch.testing.assert_close(LF.tversky_loss(x, y, alpha=0.5, beta=0.5, **half), dice)
            torch.testing.assert_close(
                LF.tversky_loss(x, y, alpha=1.0, beta=1.0, **o), LF.jaccard_loss(x, y, **o)
            )
            assert not torch.allclose(dice, LF.jaccard_loss(x, y, **o))


def test_focal_tversky_with_gamma_one_is_tversky():
    x, y = _logits((2, 3, 7)), _labels((2, 7), 3)
    o = {"alpha": 0.3, "beta": 0.7, "reduction": "none"}
    want = LF.tversky_loss(x, y, **o)
    torch.testing.assert_close(LF.focal_tversky_loss(x, y, gamma=1.0, **o), want)
    torch.testing.assert_close(LF.focal_tversky_loss(x, y, gamma=2.0, **o), want**2)


def test_jaccard_is_dice_through_j_equals_d_over_2_minus_d():
    x, y = _logits((2, 3, 9)), _labels((2, 9), 3)
    d = 1 - LF.dice_loss(x, y, reduction="none")
    j = 1 - LF.jaccard_loss(x, y, reduction="none")
    torch.testing.assert_close(j, d / (2 - d))


@pytest.mark.parametrize("name", ALL)
def test_one_hot_probability_targets_equal_index_targets(name):
    x, y = _logits((3, 4, 5)), _labels((3, 5), 4)
    y[0, :2] = 255
    onehot = torch.nn.functional.one_hot(y.clamp_max(3), 4).movedim(-1, 1).double()
    fn = _fn(name)
    # ignored pixels dropped by hand: zero prediction and target there
    kept = y[0] != 255
    got = fn(x[:, :, 2:], y[:, 2:], reduction="none")
    want = fn(x[:, :, 2:], onehot[:, :, 2:], reduction="none")
    torch.testing.assert_close(got, want)
    # ignore_index equals cropping the ignored pixels away
    cropped = fn(x[:1][..., kept], y[:1][..., kept], reduction="none")
    torch.testing.assert_close(fn(x, y, ignore_index=255, reduction="none")[:1], cropped)


@pytest.mark.parametrize("name", ALL)
def test_binary_mode_is_multilabel_with_one_channel(name):
    x, y = _logits((3, 5, 4)), _masks((3, 5, 4))
    fn = _fn(name)
    want = fn(x.unsqueeze(1), y.unsqueeze(1), mode="multilabel", reduction="none")
    got = fn(x, y, mode="binary", reduction="none")
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(fn(x.unsqueeze(1), y, mode="binary", reduction="none"), got)
    torch.testing.assert_close(
        fn(x.unsqueeze(1), y.unsqueeze(1), mode="binary", reduction="none"), got
    )


@pytest.mark.parametrize("name", ALL)
def test_from_logits_false_takes_the_probabilities(name):
    x, y = _logits((2, 3, 6)), _labels((2, 6), 3)
    fn = _fn(name)
    want = fn(x, y, reduction="none")
    torch.testing.assert_close(fn(x.softmax(1), y, from_logits=False, reduction="none"), want)
    m = _masks((2, 3, 6))
    want = fn(x, m, mode="multilabel", reduction="none")
    got = fn(x.sigmoid(), m, mode="multilabel", from_logits=False, reduction="none")
    torch.testing.assert_close(got, want)


def test_integer_and_bool_masks_are_zero_one_masks():
    x, m = _logits((2, 3, 6)), _masks((2, 3, 6))
    want = LF.dice_loss(x, m, mode="multilabel")
    assert LF.dice_loss(x, m.long(), mode="multilabel") == want
    assert LF.dice_loss(x, m.bool(), mode="multilabel") == want


def test_batch_sums_pool_the_images():
    x, y = _logits((3, 4, 5)), _labels((3, 5), 4)
    flat_x = x.movedim(0, 1).reshape(1, 4, 15)
    flat_y = y.reshape(1, 15)
    for name in ALL:
        fn = _fn(name)
        got = fn(x, y, per_image=False, reduction="none")
        torch.testing.assert_close(got, fn(flat_x, flat_y, reduction="none")[0])


def test_class_weight_and_background_and_reductions():
    x, y = _logits((2, 4, 5)), _labels((2, 5), 4)
    w = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)
    per = LF.dice_loss(x, y, reduction="none")
    torch.testing.assert_close(LF.dice_loss(x, y, weight=w, reduction="none"), per * w)
    torch.testing.assert_close(LF.dice_loss(x, y, weight=w), (per * w).sum() / (2 * w.sum()))
    torch.testing.assert_close(LF.dice_loss(x, y, weight=w, reduction="sum"), (per * w).sum())
    fg = LF.dice_loss(x, y, include_background=False, weight=w, reduction="none")
    torch.testing.assert_close(fg, per[:, 1:] * w[1:])  # softmax over all 4 classes first
    torch.testing.assert_close(LF.dice_loss(x, y, normalizer=4.0), per.sum() / 4.0)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "mode, options",
    [
        ("multiclass", {"per_image": False, "smooth": 0.5}),
        ("multiclass", {"ignore_index": 0}),  # an ignored class leaves every sum
        ("multilabel", {}),
        ("multilabel", {"ignore_index": -1, "include_background": False}),
        ("binary", {"per_image": False, "ignore_index": 255}),
        ("probs", {"smooth": 1e-3}),
    ],
)
def test_modes_match_the_reference(name, mode, options):
    x = _logits((3, 3, 4, 2))
    if mode == "multiclass":
        y = _labels((3, 4, 2), 3)
    elif mode == "probs":
        y, mode = torch.softmax(_logits((3, 3, 4, 2), seed=5), 1), "multiclass"
    elif mode == "multilabel":
        y = _masks((3, 3, 4, 2))
    else:
        x, y = x[:, 0], _masks((3, 4, 2))
    if "ignore_index" in options:
        y = y.clone()
        y.view(-1)[::4] = options["ignore_index"]
    for reduction in ("none", "mean", "sum"):
        got = _fn(name)(x, y, mode=mode, reduction=reduction, **options)
        want = getattr(R, name)(x, y, mode=mode, reduction=reduction, **options)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("option", [{"squared": True}, {"log_loss": True}, {"smooth": 2.0}])
def test_options_match_the_reference(name, option):
    if name in ("tversky_loss", "focal_tversky_loss") and "squared" in option:
        pytest.skip("Tversky takes no squared")
    if name == "focal_tversky_loss" and "log_loss" in option:
        pytest.skip("focal Tversky takes no log_loss")
    x, y = _logits((2, 3, 8)), _labels((2, 8), 3)
    got = _fn(name)(x, y, reduction="none", **option)
    want = getattr(R, name)(x, y, reduction="none", **option)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_squared_dice_is_milletaris_form():
    x, y = _logits((2, 3, 8)), _labels((2, 8), 3)
    p, g = x.softmax(1), torch.nn.functional.one_hot(y, 3).movedim(-1, 1).double()
    want = 1 - 2 * (p * g).sum(-1) / ((p * p).sum(-1) + (g * g).sum(-1))
    torch.testing.assert_close(LF.dice_loss(x, y, squared=True, reduction="none"), want)


# ----------------------------------------------------------------------------- edges
def _value_and_grad(fn, x, *args, **options):
    x = x.clone().requires_grad_(True)
    out = fn(x, *args, **options)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edges_give_finite_values_and_gradients(name, dtype):
    fn = _fn(name)
    big = torch.where(_logits((2, 3, 4, 4)) > 0, 1e4, -1e4).to(dtype)
    labels = _labels((2, 4, 4), 3)
    empty = torch.zeros(2, 4, 4, dtype=torch.long)  # classes 1, 2 absent: empty targets
    void = torch.full((2, 4, 4), 255)  # every pixel of every image ignored
    void[1, 0, 0] = 1
    cases = [
        (big, labels, {}),
        (big, empty, {}),
        (_logits((2, 3, 4, 4)).to(dtype), empty, {"include_background": False}),
        (big, void, {"ignore_index": 255}),
        (_logits((2, 3, 4, 4)).to(dtype), void, {"ignore_index": 255, "per_image": False}),
        (_logits((5, 3)).to(dtype), _labels((5,), 3), {}),  # one-pixel images
        (_logits((1, 3, 1, 1)).to(dtype) * 1e4, torch.tensor([[[2]]]), {}),
        # subnormal probabilities: logits 100 apart in float32
        (torch.tensor([[[0.0, 0.0], [-100.0, -100.0]]], dtype=dtype), torch.tensor([[0, 0]]), {}),
    ]
    for x, y, options in cases:
        for extra in ({}, {"smooth": 1.0}, {"log_loss": True} if name in OVERLAP[:3] else {}):
            out, grad = _value_and_grad(fn, x, y, reduction="none", **options, **extra)
            assert torch.isfinite(out).all(), (options, extra, out)
            assert torch.isfinite(grad).all(), (options, extra, grad)
            assert (out >= 0).all()


@pytest.mark.parametrize("name", ALL)
def test_an_all_zero_class_scores_one(name):
    """Empty target and empty prediction: loss 0 with a finite (zero) gradient."""
    x = torch.tensor([[[1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]]], dtype=F64)  # nothing of class 1
    y = torch.tensor([[0, 0, 0]])
    out, grad = _value_and_grad(_fn(name), x, y, reduction="none")
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(grad, torch.zeros_like(grad))
    # multilabel: an empty mask predicted empty
    m = torch.zeros(1, 2, 3, dtype=F64)
    out, grad = _value_and_grad(_fn(name), x.clone().fill_(-1e4), m, mode="multilabel")
    assert out.item() == 0.0 and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ALL)
def test_an_image_with_every_pixel_ignored_scores_one(name):
    x, y = _logits((2, 3, 4)), _labels((2, 4), 3)
    y[1] = 255
    out, grad = _value_and_grad(_fn(name), x, y, ignore_index=255, reduction="none")
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.equal(grad[1], torch.zeros_like(grad[1]))
    assert (out[0] > 0).all()


def test_an_absent_class_predicted_costs_one_without_smoothing_and_less_with():
    x = torch.zeros(1, 2, 4, dtype=F64)  # p = 1/2 everywhere
    y = torch.zeros(1, 4, dtype=torch.long)  # class 1 absent
    out = LF.dice_loss(x, y, reduction="none")
    torch.testing.assert_close(out, torch.tensor([[1 - 4 / 6, 1.0]], dtype=F64))
    assert LF.dice_loss(x, y, smooth=1.0, reduction="none")[0, 1] < 1.0


def test_focal_tversky_gradient_at_a_perfect_match_is_finite():
    x = torch.tensor([[[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4]]], dtype=F64)
    y = torch.tensor([[0, 1, 0]])
    out, grad = _value_and_grad(LF.focal_tversky_loss, x, y, gamma=0.5)
    assert out.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))
    # near it, the exponent below 1 steepens the gradient, finite
    soft = torch.tensor([[[9.0, -9.0, 9.0], [-9.0, 9.0, -9.0]]], dtype=F64)
    _, g_focal = _value_and_grad(LF.focal_tversky_loss, soft, y, gamma=0.5)
    _, g_plain = _value_and_grad(LF.tversky_loss, soft, y)
    assert torch.isfinite(g_focal).all() and g_focal.abs().max() > g_plain.abs().max()


def test_log_loss_stays_finite_at_a_zero_score():
    x = torch.tensor([[[1e4, 1e4], [-1e4, -1e4]]], dtype=torch.float32)
    y = torch.tensor([[1, 1]])  # class 1 everywhere, predicted nowhere: score 0
    out, grad = _value_and_grad(LF.dice_loss, x, y, log_loss=True, reduction="none")
    eps = torch.finfo(torch.float32).eps
    torch.testing.assert_close(out, -torch.log(torch.tensor([[eps, eps]])))
    assert torch.isfinite(grad).all()


def test_generalized_dice_absent_class_takes_the_largest_weight():
    x = _logits((1, 3, 6))
    y = torch.tensor([[0, 0, 0, 0, 1, 1]])  # class 2 absent: weight 1 / 2^2 = max(1/16, 1/4)
    p = x.softmax(1)[0]
    g = torch.nn.functional.one_hot(y[0], 3).T.double()
    w = torch.tensor([1 / 16, 1 / 4, 1 / 4], dtype=F64)
    i, s = (p * g).sum(-1), (p + g).sum(-1)
    want = 1 - 2 * (w * i).sum() / (w * s).sum()
    torch.testing.assert_close(LF.generalized_dice_loss(x, y), want)
    for wt, ww in (("simple", [1 / 4, 1 / 2, 1 / 2]), ("uniform", [1.0, 1.0, 1.0])):
        ww = torch.tensor(ww, dtype=F64)
        want = 1 - 2 * (ww * i).sum() / (ww * s).sum()
        torch.testing.assert_close(LF.generalized_dice_loss(x, y, weight_type=wt), want)


def test_generalized_dice_with_every_class_absent_scores_one():
    x = _logits((2, 2, 3))
    m = torch.zeros(2, 2, 3, dtype=F64)
    out, grad = _value_and_grad(LF.generalized_dice_loss, x, m, mode="multilabel", reduction="none")
    assert torch.equal(out, torch.zeros(2, dtype=F64)) and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ALL)
def test_empty_images_and_batches(name):
    fn = _fn(name)
    for x, y in [
        (torch.zeros(0, 3, 4, dtype=F64), torch.zeros(0, 4, dtype=torch.long)),
        (torch.zeros(2, 3, 0, dtype=F64), torch.zeros(2, 0, dtype=torch.long)),
    ]:
        for per_image in (True, False):
            out, grad = _value_and_grad(fn, x, y, per_image=per_image)
            assert out.item() == 0.0 and grad.shape == x.shape


# ----------------------------------------------------------------------------- derivatives
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "mode, options",
    [
        ("multilabel", {"smooth": 0.5}),
        ("binary", {"per_image": False}),
        ("probs", {}),
        ("multiclass", {"ignore_index": 255, "per_image": False}),
    ],
)
def test_gradcheck_and_gradgradcheck_float64(name, mode, options):
    x = _logits((2, 3, 4), scale=1.0)
    if mode == "multilabel":
        y = _masks((2, 3, 4))
    elif mode == "binary":
        x, y = x[:, 0], _masks((2, 4))
    elif mode == "probs":
        y, mode = torch.softmax(_logits((2, 3, 4), seed=4), 1), "multiclass"
    else:
        y = _labels((2, 4), 3)
        y[0, ::2] = 255
    x.requires_grad_(True)

    def fn(t):
        return _fn(name)(t, y, mode=mode, reduction="none", **options)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_second_derivatives_at_the_edges_are_finite(name, dtype):
    """Saturated logits leave absent classes with sums of about exp(-200) (float64) or 0:
    the Hessian stays finite, the squared sums (exp(-400)) included."""
    y = torch.tensor([[2, 0], [1, 1]])
    options = [{}, {"per_image": False}, {"ignore_index": 1}]
    if name in ("dice_loss", "jaccard_loss"):
        options.append({"squared": True})
    for scale in (100.0, 1e4):
        # each pixel's class at +scale, the others at -scale; image 0's pixel 1 wrong
        x = torch.full((2, 3, 2), -scale, dtype=dtype)
        x[0, 2, 0] = x[0, 1, 1] = x[1, 1, 0] = x[1, 1, 1] = scale
        for o in options:
            fn = functools.partial(_fn(name), target=y, **o)
            hessian = torch.autograd.functional.hessian(fn, x, vectorize=True)
            assert torch.isfinite(hessian).all(), (scale, o)


# ----------------------------------------------------------------------------- plots
def test_plot_of_dice_on_the_toy_mask():
    p, loss, grad, label = curve("dice_loss")
    # each pixel right with probability p: I = p, P = 1, G = 1 for both classes
    torch.testing.assert_close(loss, 1 - p)
    torch.testing.assert_close(grad, -p * (1 - p))  # d(1 - p) / dz, p = sigmoid(z)
    assert "true class" in label
    _, gdl, _, _ = curve("generalized_dice_loss")
    torch.testing.assert_close(gdl, 1 - p)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y: LF.dice_loss(x, y, mode="softmax"), "mode must be one of"),
        (lambda x, y: LF.dice_loss(x[:, 0, 0, 0], y[:, 0, 0]), "input must be"),
        (lambda x, y: LF.dice_loss(x, y.unsqueeze(1)), "target.squeeze"),
        (lambda x, y: LF.dice_loss(x, y.double()), "cast with target.long"),
        (lambda x, y: LF.dice_loss(x, y + 3), "class indices 3, 4, 5"),
        (lambda x, y: LF.dice_loss(x, y.masked_fill(y == 0, 255)), "ignore_index=255"),
        (lambda x, y: LF.dice_loss(x, x.softmax(1), ignore_index=255), "class-index targets"),
        (lambda x, y: LF.dice_loss(x, x, mode="multilabel"), r"values in \[0, 1\]"),
        (lambda x, y: LF.dice_loss(x, y, mode="multilabel"), "one mask per channel"),
        (lambda x, y: LF.dice_loss(x, y, mode="binary"), "mode='binary'"),
        (
            lambda x, y: LF.dice_loss(x[:, :1], y, mode="binary", include_background=False),
            "the only class",
        ),
        (lambda x, y: LF.dice_loss(x, y, from_logits=False), "from_logits=False"),
        (lambda x, y: LF.dice_loss(x, y, weight=torch.ones(2)), r"shape \(3,\)"),
        (lambda x, y: LF.dice_loss(x, y, smooth=-1.0), "smooth must be >= 0"),
        (lambda x, y: LF.dice_loss(x, y, squared=1), "squared must be True or False"),
        (lambda x, y: LF.tversky_loss(x, y, alpha=-0.1), "alpha must be >= 0"),
        (lambda x, y: LF.focal_tversky_loss(x, y, gamma=-1.0), "gamma must be >= 0"),
        (lambda x, y: LF.generalized_dice_loss(x, y, weight_type="log"), "weight_type"),
        (lambda x, y: LF.dice_loss(x, y, group=object()), "per_image=False"),
        (lambda x, y: LF.dice_loss(x, y, group=object(), per_image=False), "not initialised"),
    ],
)
def test_errors_are_named(call, message):
    x, y = _logits((2, 3, 4, 4)), _labels((2, 4, 4), 3)
    with pytest.raises((losskit.LossInputError, losskit.LossTypeError), match=message):
        call(x, y)


def test_module_forms():
    x, y = _logits((2, 3, 4)), _labels((2, 4), 3)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    module = losskit.nn.DiceLoss(weight=w, include_background=False, smooth=1.0)
    assert module(x, y) == LF.dice_loss(x, y, weight=w, include_background=False, smooth=1.0)
    assert type(losskit.get("iou")) is losskit.nn.JaccardLoss
    assert losskit.nn.IoULoss is losskit.nn.JaccardLoss
    gd = losskit.nn.GeneralizedDiceLoss(weight_type="simple")
    assert gd(x, y) == LF.generalized_dice_loss(x, y, weight_type="simple")


# ----------------------------------------------------------------------------- distributed
# Each rank holds some images of one global batch (rank r: r + 1 of them; in a world of 4
# the last rank holds none); with per_image=False and group=, every rank's loss is the loss
# of the whole batch and its gradient that of its own images.
DIST_CASES = [
    ("dice_loss", "multiclass", {}),
    (
        "dice_loss",
        "multiclass",
        {"weight": [0.5, 1.0, 2.0], "ignore_index": 255, "include_background": False},
    ),
    ("dice_loss", "multilabel", {"squared": True, "log_loss": True, "reduction": "none"}),
    ("jaccard_loss", "multiclass", {"smooth": 1.0, "reduction": "sum"}),
    ("tversky_loss", "binary", {"alpha": 0.3, "beta": 0.7}),
    ("focal_tversky_loss", "multiclass", {"alpha": 0.7, "beta": 0.3, "gamma": 1.5}),
    ("generalized_dice_loss", "multiclass", {"ignore_index": 255}),
]


def _images(world):
    return [r + 1 for r in range(world)] if world < 4 else [2, 1, 3, 0]


def _global_batch(case, world):
    name, mode, _ = case
    n = sum(_images(world))
    g = torch.Generator().manual_seed(len(name) * 7 + world)
    x = torch.randn(n, 3, 4, 5, generator=g, dtype=F64) * 2
    if mode == "multiclass":
        y = torch.randint(0, 3, (n, 4, 5), generator=g)
        y[::2, 0] = 255 if "ignore_index" in case[2] else 0
    elif mode == "multilabel":
        y = (torch.rand(n, 3, 4, 5, generator=g) > 0.5).double()
    else:
        x, y = x[:, 0], (torch.rand(n, 4, 5, generator=g) > 0.5).double()
    return x, y


def _dist_options(case):
    options = dict(case[2])
    if "weight" in options:
        options["weight"] = torch.tensor(options["weight"], dtype=F64)
    return {"mode": case[1], "per_image": False, **options}


def _dist_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    calls = []
    all_reduce = dist.all_reduce

    def counting_all_reduce(tensor, *args, **kwargs):
        calls.append(tuple(tensor.shape))
        return all_reduce(tensor, *args, **kwargs)

    dist.all_reduce = counting_all_reduce
    out = []
    try:
        start = sum(_images(world)[:rank])
        mine = slice(start, start + _images(world)[rank])
        for case in DIST_CASES:
            x, y = _global_batch(case, world)
            xr = x[mine].clone().requires_grad_(True)
            before = len(calls)
            loss = _fn(case[0])(xr, y[mine], group=dist.group.WORLD, **_dist_options(case))
            (grad,) = torch.autograd.grad(loss.sum(), xr)
            out.append({"loss": loss.detach(), "grad": grad, "calls": calls[before:]})
    finally:
        dist.all_reduce = all_reduce
        dist.destroy_process_group()
    torch.save(out, f"{out_dir}/rank{rank}.pt")
    os._exit(0)


@pytest.mark.parametrize("world", [2, 4])
def test_distributed_batch_sums_equal_one_process_on_the_whole_batch(world, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_dist_worker, args=(world, str(tmp_path / "store"), str(tmp_path)), nprocs=world)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    for i, case in enumerate(DIST_CASES):
        x, y = _global_batch(case, world)
        want, grad = _value_and_grad(_fn(case[0]), x, y, **_dist_options(case))
        start = 0
        for r, results in enumerate(ranks):
            got = results[i]
            n = _images(world)[r]
            torch.testing.assert_close(got["loss"], want, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(got["grad"], grad[start : start + n], rtol=1e-10, atol=1e-14)
            assert len(got["calls"]) == 1, got["calls"]  # one all-reduce of the sums
            start += n


def test_group_none_is_local_and_one_process_is_the_same_loss():
    x, y = _logits((3, 3, 4)), _labels((3, 4), 3)
    assert LF.dice_loss(x, y, per_image=False, group=None) == LF.dice_loss(x, y, per_image=False)


@pytest.mark.parametrize("classes", [3, 19], ids=lambda c: f"C{c}")
@pytest.mark.parametrize("squared", [False, True], ids=["plain", "squared"])
@pytest.mark.parametrize("ignore", [None, 1], ids=["all", "ignore"])
def test_index_closed_form_equals_the_one_hot_path(classes, squared, ignore, monkeypatch):
    """Class indices take the closed form (the one-hot times the softmax kept, the
    backward written into it in place); the same targets as float one-hot probabilities
    take the autograd path of p and g."""
    from losskit.functional import _fused

    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", False)
    g = torch.Generator().manual_seed(classes)
    x = (3 * torch.randn(2, classes, 5, 7, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.randint(0, classes, (2, 5, 7), generator=g)
    one_hot = torch.nn.functional.one_hot(y, classes).movedim(-1, 1).double()
    upstream = torch.rand(2, classes, generator=g, dtype=torch.float64) + 0.5
    if ignore is not None:  # class 1's pixels ignored: the float path zeroes them by hand
        one_hot = one_hot * (y != ignore).unsqueeze(1)
    for fn in (LF.dice_loss, LF.tversky_loss):
        opts = {"squared": squared} if fn is LF.dice_loss else {}
        if fn is LF.tversky_loss and squared:
            continue
        got = fn(x, y, ignore_index=ignore, reduction="none", **opts)
        (g_got,) = torch.autograd.grad(got, x, upstream)
        if ignore is None:
            want = fn(x, one_hot, reduction="none", **opts)
        else:  # ignored pixels leave every sum, p included: the reference's p is zeroed
            p = torch.softmax(x, 1) * (y != ignore).unsqueeze(1)
            want = fn(p, one_hot, from_logits=False, reduction="none", **opts)
        (g_want,) = torch.autograd.grad(want, x, upstream)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g_got, g_want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)], ids=["rows", "map"])
def test_one_hot_is_torchs_in_every_layout_and_under_vmap(dtype, shape):
    """``_math.one_hot`` compares the indices as floats into the output buffer; it is
    torch's one-hot moved to dim 1, in eager and under ``torch.func.vmap`` (the bool form)."""
    from losskit.functional import _math

    classes = 7
    t = torch.randint(0, classes, shape, generator=torch.Generator().manual_seed(0))
    want = torch.nn.functional.one_hot(t, classes).movedim(-1, 1).to(dtype)
    got = _math.one_hot(t, classes, dtype)
    assert got.dtype == dtype and got.shape == want.shape
    assert torch.equal(got, want)
    batched = torch.func.vmap(lambda u: _math.one_hot(u, classes, dtype))(t.unsqueeze(0))
    assert torch.equal(batched[0], want)
