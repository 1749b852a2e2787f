"""Detection focal loss (the Keras RetinaNet form of seed 004: ignored anchors, background
anchors, the positive-count normaliser) and the top-k metrics (seed 004's ``in_top_k``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losskit
import losskit.functional as LF
from conftest import assert_close

REDUCTIONS = ("none", "mean", "sum")
FOCAL_PARAMS = [(0.25, 2.0), (0.5, 0.5), (0.75, 0.0), (0.1, 5.0)]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _leaf(t):
    return t.detach().clone().requires_grad_(True)


def _anchors(b=2, a=9, k=4, seed=0, states=(-1, 0, 1), scale=2.0):
    """Logits (B, A, K), one-hot targets on object anchors (zeros elsewhere, as the Keras
    anchor encoder writes them) and an anchor state (B, A) drawn from ``states``."""
    g = _gen(seed)
    logits = torch.randn(b, a, k, generator=g, dtype=torch.float64) * scale
    s = torch.tensor(states)[torch.randint(0, len(states), (b, a), generator=g)]
    if 1 in states:
        s[0, 0] = 1
    if 0 in states:
        s[-1, -1] = 0
    if -1 in states:
        s[0, -1] = -1
    onehot = torch.nn.functional.one_hot(torch.randint(0, k, (b, a), generator=g), k).double()
    target = onehot * (s == 1).unsqueeze(-1)
    return logits, target, s


def _grad(fn, x, *args, **kwargs):
    leaf = _leaf(x)
    out = fn(leaf, *args, **kwargs)
    (grad,) = torch.autograd.grad(out.sum() * 1.7, leaf)
    return out.detach(), grad


# --------------------------------------------------------------------------- detection focal
@pytest.mark.parametrize("alpha, gamma", FOCAL_PARAMS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_no_ignored_anchors_is_summed_sigmoid_focal_over_positives(alpha, gamma, dtype):
    x, y, s = _anchors(states=(0, 1))
    x = x.to(dtype)
    y = y.to(dtype)
    y_any = y.clone()
    y_any[s == 0] = 1.0  # whatever target holds on background anchors is taken as 0
    positives = max(1, int((s == 1).sum()))

    def want_fn(t):
        yy = y * (s == 1).unsqueeze(-1).to(dtype)
        return LF.sigmoid_focal_loss(t, yy, alpha=alpha, gamma=gamma, reduction="sum") / positives

    want, g_want = _grad(want_fn, x)
    for target in (y, y_any):
        got, g_got = _grad(LF.detection_focal_loss, x, target, s, alpha=alpha, gamma=gamma)
        assert got.dtype == dtype
        assert_close(got, want)
        assert_close(g_got, g_want)


@pytest.mark.parametrize("alpha, gamma", FOCAL_PARAMS)
def test_ignored_anchors_contribute_nothing_and_get_zero_gradient(alpha, gamma):
    x, y, s = _anchors(b=3, a=11, k=3, seed=1)
    ignored = s == -1
    assert ignored.any() and (s == 0).any() and (s == 1).any()
    y_garbage = y.clone()
    y_garbage[ignored] = 1.0  # targets on ignored anchors are never read
    x_garbage = x.clone()
    x_garbage[ignored] = 1e4  # nor are their logits
    kept = ~ignored
    positives = max(1, int((s == 1).sum()))
    want = (
        LF.sigmoid_focal_loss(x[kept], y[kept], alpha=alpha, gamma=gamma, reduction="sum")
        / positives
    )
    for xx, yy in ((x, y), (x_garbage, y_garbage)):
        leaf = _leaf(xx)
        got = LF.detection_focal_loss(leaf, yy, s, alpha=alpha, gamma=gamma)
        assert_close(got, want)
        got.backward()
        assert torch.isfinite(leaf.grad).all()
        assert torch.equal(leaf.grad[ignored], torch.zeros_like(leaf.grad[ignored]))
        assert (leaf.grad[kept] != 0).any()


def test_zero_positives_divides_by_one():
    x, y, s = _anchors(states=(-1, 0))
    assert not (s == 1).any()
    got = LF.detection_focal_loss(x, y, s)
    want = LF.sigmoid_focal_loss(x[s == 0], y[s == 0], reduction="sum")
    assert_close(got, want)
    assert_close(LF.detection_focal_loss(x, y, s, reduction="sum"), want)
    # and all ignored: 0.0, finite, zero gradient
    leaf = _leaf(x)
    out = LF.detection_focal_loss(leaf, y, torch.full_like(s, -1))
    out.backward()
    assert out.item() == 0.0
    assert torch.equal(leaf.grad, torch.zeros_like(x))


def test_reduction_none_shape_and_zeros_on_ignored_anchors():
    x, y, s = _anchors(b=2, a=7, k=5, seed=3)
    none = LF.detection_focal_loss(x, y, s, reduction="none")
    assert none.shape == x.shape
    assert torch.equal(none[s == -1], torch.zeros_like(none[s == -1]))
    kept = s != -1
    assert_close(none[kept], LF.sigmoid_focal_loss(x[kept], y[kept], reduction="none"))
    assert_close(LF.detection_focal_loss(x, y, s, reduction="sum"), none.sum())
    positives = max(1, int((s == 1).sum()))
    assert_close(LF.detection_focal_loss(x, y, s), none.sum() / positives)


def _keras_binary_crossentropy(target, output):
    """Elementwise Keras binary cross entropy on probabilities (the seed article's form)."""
    output = np.clip(output, 1e-7, 1 - 1e-7)
    logits = np.log(output / (1 - output))
    sigmoid = 1.0 / (1.0 + np.exp(-logits))
    return target * -np.log(sigmoid) + (1 - target) * -np.log(1 - sigmoid)


def _keras_focal(y_true, y_pred, alpha=0.25, gamma=2.0):
    """seed 004's Keras ``_focal``, in NumPy. ``y_true`` (B, A, K + 1) with the anchor state
    in the last channel; ``y_pred`` (B, A, K) probabilities."""
    labels = y_true[:, :, :-1]
    anchor_state = y_true[:, :, -1]
    classification = y_pred

    # object anchors
    indices_for_object = anchor_state == 1
    labels_for_object = labels[indices_for_object]
    classification_for_object = classification[indices_for_object]
    alpha_factor_for_object = np.ones_like(labels_for_object) * alpha
    alpha_factor_for_object = np.where(
        labels_for_object == 1, alpha_factor_for_object, 1 - alpha_factor_for_object
    )
    focal_weight_for_object = np.where(
        labels_for_object == 1, 1 - classification_for_object, classification_for_object
    )
    focal_weight_for_object = alpha_factor_for_object * focal_weight_for_object**gamma
    cls_loss_for_object = focal_weight_for_object * _keras_binary_crossentropy(
        labels_for_object, classification_for_object
    )

    # background anchors
    indices_for_back = anchor_state == 0
    labels_for_back = labels[indices_for_back]
    classification_for_back = classification[indices_for_back]
    alpha_factor_for_back = np.ones_like(labels_for_back) * (1 - alpha)
    focal_weight_for_back = alpha_factor_for_back * classification_for_back**gamma
    cls_loss_for_back = focal_weight_for_back * _keras_binary_crossentropy(
        labels_for_back, classification_for_back
    )

    # normalise by the number of object anchors
    normalizer = max(1.0, float(indices_for_object.sum()))
    return (cls_loss_for_object.sum() + cls_loss_for_back.sum()) / normalizer


@pytest.mark.parametrize("alpha, gamma", FOCAL_PARAMS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_seed004_keras_focal(alpha, gamma, seed):
    x, y, s = _anchors(b=2, a=13, k=3, seed=seed)
    y_true = torch.cat([y, s.unsqueeze(-1).double()], dim=-1).numpy()
    want = _keras_focal(y_true, torch.sigmoid(x).numpy(), alpha=alpha, gamma=gamma)
    got = LF.detection_focal_loss(x, y, s, alpha=alpha, gamma=gamma)
    np.testing.assert_allclose(got.item(), want, rtol=1e-9)
    # the Keras port's own layout: the state as the float last channel of y_true
    y_true_t = torch.from_numpy(y_true)
    got_float_state = LF.detection_focal_loss(
        x, y_true_t[..., :-1], y_true_t[..., -1], alpha=alpha, gamma=gamma
    )
    assert_close(got_float_state, got)


def test_module_form():
    x, y, s = _anchors(seed=4)
    module = losskit.nn.DetectionFocalLoss(alpha=0.3, gamma=1.5)
    assert torch.equal(module(x, y, s), LF.detection_focal_loss(x, y, s, alpha=0.3, gamma=1.5))


@pytest.mark.parametrize("bad", [2, -2, 5])
def test_bad_anchor_state_value_raises(bad):
    x, y, s = _anchors()
    s = s.clone()
    s[1, 2] = bad
    with pytest.raises(losskit.LossInputError) as info:
        LF.detection_focal_loss(x, y, s)
    msg = str(info.value)
    assert msg.startswith("detection_focal_loss:")
    assert "anchor_state" in msg and "-1, 0 or 1" in msg and str(bad) in msg


def test_anchor_state_wrong_shape_hints_last_channel():
    x, y, s = _anchors(b=2, a=5, k=3)
    y_true = torch.cat([y, s.unsqueeze(-1).double()], dim=-1)
    for state in (y_true, s.unsqueeze(-1), s[:, :4]):
        with pytest.raises(losskit.LossInputError) as info:
            LF.detection_focal_loss(x, y, state)
        msg = str(info.value)
        assert "anchor_state" in msg and "(2, 5)" in msg and str(tuple(state.shape)) in msg
        assert "y_true[..., -1]" in msg


def test_detection_input_and_target_shapes_are_checked():
    x, y, s = _anchors(b=2, a=5, k=3)
    with pytest.raises(losskit.LossInputError, match=r"\(B, A, K\)"):
        LF.detection_focal_loss(x[0], y[0], s[0])
    with pytest.raises(losskit.LossInputError, match="target"):
        LF.detection_focal_loss(x, y[..., :2], s)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_detection_extreme_logits_are_finite(dtype):
    x, y, s = _anchors(b=2, a=8, k=3, seed=6)
    x = torch.where(x > 0, 1e4, -1e4).to(dtype)
    for reduction in REDUCTIONS:
        out, grad = _grad(LF.detection_focal_loss, x, y.to(dtype), s, reduction=reduction)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()


# --------------------------------------------------------------------------- in_top_k
def _numpy_in_top_k(predictions, targets, k):
    """seed 004's in_top_k, as printed."""
    top_k = np.argsort(-predictions)[:, :k]
    targets = targets.reshape(-1, 1)
    return np.any(targets == top_k, axis=-1)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("c", [1, 2, 5, 10])
def test_in_top_k_matches_seed004_numpy(c, seed):
    g = _gen(seed)
    x = torch.randn(40, c, generator=g, dtype=torch.float64)  # no ties
    y = torch.randint(0, c, (40,), generator=g)
    for k in range(1, c + 1):
        got = LF.in_top_k(x, y, k)
        assert got.dtype == torch.bool and got.shape == (40,)
        np.testing.assert_array_equal(got.numpy(), _numpy_in_top_k(x.numpy(), y.numpy(), k))
        # float32 scores give the same answer
        assert torch.equal(LF.in_top_k(x.float(), y, k), got)
    assert LF.in_top_k(x, y, c).all()  # k = C: every target is in the top C


def test_in_top_k_k_dim_input():
    g = _gen(2)
    x = torch.randn(3, 6, 4, 5, generator=g)
    y = torch.randint(0, 6, (3, 4, 5), generator=g)
    for k in (1, 3, 6):
        got = LF.in_top_k(x, y, k)
        assert got.shape == y.shape
        flat_x = x.movedim(1, -1).reshape(-1, 6).numpy()
        want = _numpy_in_top_k(flat_x, y.reshape(-1).numpy(), k).reshape(y.shape)
        np.testing.assert_array_equal(got.numpy(), want)


def test_in_top_k_seed004_example_and_errors():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    assert LF.in_top_k(scores, torch.tensor([2, 0]), k=1).tolist() == [False, True]
    assert LF.in_top_k(scores, torch.tensor([2, 0]), k=2).tolist() == [True, True]
    with pytest.raises(losskit.LossInputError, match="k=4"):
        LF.in_top_k(scores, torch.tensor([2, 0]), k=4)
    with pytest.raises(losskit.LossInputError, match="k must be >= 1"):
        LF.in_top_k(scores, torch.tensor([2, 0]), k=0)
    with pytest.raises(losskit.LossInputError, match="class index 3"):
        LF.in_top_k(scores, torch.tensor([3, 0]), k=1)


# --------------------------------------------------------------------------- top_k_accuracy
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_accuracy_is_the_fraction_of_hits(k):
    g = _gen(k)
    x = torch.randn(50, 5, generator=g)
    y = torch.randint(0, 5, (50,), generator=g)
    hits = _numpy_in_top_k(x.numpy(), y.numpy(), k)
    got = LF.top_k_accuracy(x, y, k=k)
    assert got.shape == () and got.dtype == torch.float32
    assert got.item() == pytest.approx(hits.mean(), abs=1e-7)
    assert LF.top_k_accuracy(x.double(), y, k=k).item() == pytest.approx(hits.mean(), abs=1e-7)


@pytest.mark.parametrize("ignore_index", [-100, 2, 255])
def test_top_k_accuracy_ignores_ignore_index(ignore_index):
    g = _gen(7)
    x = torch.randn(40, 5, generator=g)
    y = torch.randint(0, 5, (40,), generator=g)
    y[::3] = ignore_index
    counted = (y != ignore_index).numpy()
    hits = _numpy_in_top_k(x.numpy(), y.numpy(), 2)[counted]
    got = LF.top_k_accuracy(x, y, k=2, ignore_index=ignore_index)
    assert got.item() == pytest.approx(hits.mean(), abs=1e-7)


def test_top_k_accuracy_all_ignored_is_zero():
    x = torch.randn(6, 3, generator=_gen(0))
    got = LF.top_k_accuracy(x, torch.full((6,), -100), k=1)
    assert got.item() == 0.0 and not torch.isnan(got)
    assert LF.top_k_accuracy(x, torch.full((6,), 1), k=1, ignore_index=1).item() == 0.0


def test_top_k_accuracy_k_dim_input():
    g = _gen(9)
    x = torch.randn(2, 4, 3, 5, generator=g)  # (N, C, H, W)
    y = torch.randint(0, 4, (2, 3, 5), generator=g)
    y[0, 0] = -100
    flat_x = x.movedim(1, -1).reshape(-1, 4).numpy()
    flat_y = y.reshape(-1).numpy()
    counted = flat_y != -100
    for k in (1, 2, 4):
        hits = _numpy_in_top_k(flat_x, flat_y, k)[counted]
        assert LF.top_k_accuracy(x, y, k=k).item() == pytest.approx(hits.mean(), abs=1e-7)
    assert LF.top_k_accuracy(x, y, k=4).item() == 1.0


def test_top_k_accuracy_seed_style_example():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    assert LF.top_k_accuracy(scores, torch.tensor([1, 2, -100]), k=1).item() == 0.5
    assert LF.top_k_accuracy(scores, torch.tensor([1, 2, -100]), k=3).item() == 1.0


@pytest.mark.parametrize("k", [4, 10])
def test_top_k_accuracy_k_larger_than_classes_raises(k):
    with pytest.raises(losskit.LossInputError) as info:
        LF.top_k_accuracy(torch.randn(5, 3), torch.zeros(5, dtype=torch.long), k=k)
    msg = str(info.value)
    assert msg.startswith("top_k_accuracy:") and f"k={k}" in msg and "3" in msg


@pytest.mark.parametrize("fn", [LF.top_k_accuracy, LF.in_top_k], ids=lambda f: f.__name__)
def test_non_integer_k_raises(fn):
    with pytest.raises(losskit.LossInputError, match="k"):
        fn(torch.randn(5, 4), torch.zeros(5, dtype=torch.long), k=2.5)


def test_nan_scores_rank_last_and_never_hit():
    nan = float("nan")
    scores = torch.tensor([[0.1, nan, 0.5], [0.3, 0.2, nan], [nan, nan, 0.5]])
    target = torch.tensor([1, 1, 2])
    # row 0: the target's score is NaN, not a hit at any k; row 1: NaN ranks below 0.2
    assert losskit.functional.in_top_k(scores, target, k=1).tolist() == [False, False, True]
    assert losskit.functional.in_top_k(scores, target, k=2).tolist() == [False, True, True]
    assert losskit.functional.in_top_k(scores, target, k=3).tolist() == [False, True, True]
    got = losskit.functional.top_k_accuracy(scores[:1], target[:1], k=1)
    assert got.item() == 0.0
