"""ctc_loss: torch parity (values in float64; gradients through log_softmax, as torch's
kernel assumes), the forward algorithm against every alignment by brute force, the
gradient with respect to log_probs itself, impossible alignments, and named errors
where torch asserts or crashes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from losskit import reference as R

D = torch.float64


def _batch(t=12, n=4, c=6, s=4, blank=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(t, n, c, generator=g, dtype=D)
    labels = [v for v in range(c) if v != blank]
    y = torch.tensor(labels)[torch.randint(0, len(labels), (n, s), generator=g)]
    il = torch.randint(t // 2 + s, t + 1, (n,), generator=g)
    tl = torch.randint(0, s + 1, (n,), generator=g)
    tl[0] = s
    return logits, y, il, tl


def _concat(y, tl):
    return torch.cat([y[i, : tl[i]] for i in range(len(tl))])


# ----------------------------------------------------------------------------- torch parity
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("blank", [0, 3, 5])
@pytest.mark.parametrize("form", ["padded", "concatenated", "lists", "int32"])
def test_values_and_gradients_match_torch(reduction, blank, form):
    logits, y, il, tl = _batch(blank=blank)
    targets, lengths = y, (il, tl)
    if form == "concatenated":
        targets = _concat(y, tl)
    elif form == "lists":
        lengths = (tuple(il.tolist()), tuple(tl.tolist()))
    elif form == "int32":
        targets, lengths = y.int(), (il.int(), tl.int())
    kw = dict(blank=blank, reduction=reduction)

    def run(fn):
        x = logits.clone().requires_grad_(True)
        out = fn(x.log_softmax(2), targets, *lengths, **kw)
        (g,) = torch.autograd.grad(out.sum(), x)
        return out.detach(), g

    (a, ga), (b, gb) = run(LF.ctc_loss), run(TF.ctc_loss)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)  # through log_softmax
    want = R.ctc_loss(logits.log_softmax(2), targets, *lengths, **kw)
    np.testing.assert_allclose(a.numpy(), want, rtol=1e-10)


def test_unbatched_matches_torch():
    logits, y, il, tl = _batch(n=1)
    lp = logits[:, 0].log_softmax(1)
    want = TF.ctc_loss(lp, y[0], il[0], tl[0], reduction="none")
    for lengths in [(il[0], tl[0]), (int(il[0]), int(tl[0])), (il[:1], tl[:1])]:
        got = LF.ctc_loss(lp, y[0], *lengths, reduction="none")  # ints too (torch: tensors)
        assert got.shape == ()
        torch.testing.assert_close(got, want)


def test_mean_divides_by_the_target_lengths_then_the_batch():
    logits, y, il, tl = _batch()
    tl[1] = 0
    lp = logits.log_softmax(2)
    per = LF.ctc_loss(lp, y, il, tl, reduction="none")
    want = (per / tl.clamp(min=1)).mean()
    assert LF.ctc_loss(lp, y, il, tl).item() == pytest.approx(want.item(), rel=1e-14)
    got = LF.ctc_loss(lp, y, il, tl, normalizer=10.0)
    assert got.item() == pytest.approx((per / tl.clamp(min=1)).sum().item() / 10.0, rel=1e-14)


# ----------------------------------------------------------------------------- by hand
def _collapse(path, blank):
    out = [k for k, _ in itertools.groupby(path)]
    return [k for k in out if k != blank]


@pytest.mark.parametrize("labels", [[1], [1, 1], [1, 2], [2, 1, 2], []])
def test_forward_algorithm_is_the_sum_over_alignments(labels):
    """The reference's forward algorithm, and losskit, against every path of T frames."""
    t, c = 4, 3
    g = torch.Generator().manual_seed(3)
    lp = torch.randn(t, c, generator=g, dtype=D).log_softmax(1)
    total = 0.0
    for path in itertools.product(range(c), repeat=t):
        if _collapse(path, 0) == labels:
            total += math.exp(sum(lp[i, k].item() for i, k in enumerate(path)))
    want = -math.log(total)
    y = torch.tensor(labels, dtype=torch.long)
    assert float(R.ctc_loss(lp, y, t, len(labels), reduction="sum")) == pytest.approx(
        want, rel=1e-12
    )
    assert LF.ctc_loss(lp, y, t, len(labels), reduction="sum").item() == pytest.approx(
        want, rel=1e-12
    )


def test_gradient_is_the_derivative_with_respect_to_log_probs():
    """gradcheck on log_probs themselves (not normalised): the true derivative, -gamma.
    torch's kernel returns p - gamma, which is right only through a log_softmax."""
    logits, y, il, tl = _batch(t=6, n=2, c=4, s=2)
    lp = logits.log_softmax(2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: LF.ctc_loss(x, y, il, tl), (lp,))
    (ours,) = torch.autograd.grad(LF.ctc_loss(lp, y, il, tl, reduction="sum"), lp)
    (theirs,) = torch.autograd.grad(TF.ctc_loss(lp, y, il, tl, reduction="sum"), lp)
    frames = (torch.arange(6)[:, None] < il[None, :]).unsqueeze(-1)
    torch.testing.assert_close(ours, theirs - lp.detach().exp() * frames)
    # the posteriors of a counted frame sum to 1: -gamma sums to -1 over the classes
    torch.testing.assert_close(ours.sum(2)[frames[..., 0]], -torch.ones(int(il.sum()), dtype=D))


def test_second_derivative_raises():
    logits, y, il, tl = _batch(t=6, n=2, c=4, s=2)
    lp = logits.log_softmax(2).requires_grad_(True)
    with pytest.raises(losskit.LossInputError, match="second derivative"):
        torch.autograd.grad(LF.ctc_loss(lp, y, il, tl), lp, create_graph=True)


def test_impossible_alignment_is_inf_with_a_zero_gradient():
    lp = torch.randn(2, 2, 3, dtype=D).log_softmax(2).requires_grad_(True)
    y = torch.tensor([[1, 1], [1, 2]])  # "11" needs 3 frames (1, blank, 1)
    il, tl = torch.tensor([2, 2]), torch.tensor([2, 2])
    out = LF.ctc_loss(lp, y, il, tl, reduction="none")
    assert math.isinf(out[0].item()) and math.isfinite(out[1].item())
    assert TF.ctc_loss(lp, y, il, tl, reduction="none")[0].isinf()
    (g,) = torch.autograd.grad(out[torch.isfinite(out)].sum() + out[0] * 0, lp)
    assert torch.isfinite(g).all() and (g[:, 0] == 0).all()
    (g_torch,) = torch.autograd.grad(TF.ctc_loss(lp, y, il, tl, reduction="sum"), lp)
    assert g_torch[:, 0].isnan().all()  # torch's gradient of an infinite loss
    z = LF.ctc_loss(lp, y, il, tl, reduction="none", zero_infinity=True)
    torch.testing.assert_close(z, TF.ctc_loss(lp, y, il, tl, reduction="none", zero_infinity=True))
    (gz,) = torch.autograd.grad(z.sum(), lp)
    assert (gz[:, 0] == 0).all()


def test_empty_batch_and_empty_input():
    lp = torch.zeros(5, 0, 4, dtype=D, requires_grad=True)
    empty = torch.zeros(0, dtype=torch.long)
    out = LF.ctc_loss(lp, torch.zeros(0, 2, dtype=torch.long), empty, empty)
    assert out.item() == 0.0  # torch refuses an empty log_probs
    out.backward()
    lp = torch.zeros(0, 2, 4, dtype=D, requires_grad=True)
    none = LF.ctc_loss(lp, torch.ones(2, 1, dtype=torch.long), [0, 0], [0, 1], reduction="none")
    assert none[0].item() == 0.0 and math.isinf(none[1].item())


# ----------------------------------------------------------------------------- errors
def _err(match, *args, **kw):
    with pytest.raises((losskit.LossInputError, losskit.LossTypeError), match=match) as info:
        LF.ctc_loss(*args, **kw)
    assert str(info.value).startswith("ctc_loss:")
    return str(info.value)


def test_errors_where_torch_asserts_or_crashes():
    logits, y, il, tl = _batch(t=8, n=3, c=5, s=3)
    lp = logits.log_softmax(2)
    _err(r"input_lengths must lie in 0..8 .* found 9", lp, y, torch.tensor([8, 9, 8]), tl)
    _err(r"input_lengths must lie in 0..8 .* found -1", lp, y, torch.tensor([8, -1, 8]), tl)
    _err(r"target_lengths must be >= 0, found -2", lp, y, il, torch.tensor([3, -2, 1]))
    _err(r"target_lengths must be at most 3", lp, y, il, torch.tensor([3, 4, 1]))
    _err(
        r"hold 6 labels, but target_lengths sum to 7",
        lp,
        _concat(y, tl)[:6],
        il,
        torch.tensor([3, 3, 1]),
    )
    _err(r"blank=5 is not a class .* has 5 \(valid 0..4\)", lp, y, il, tl, blank=5)
    _err(r"blank=-1 is not a class", lp, y, il, tl, blank=-1)
    bad = y.clone()
    bad[0, 1] = 0
    text = _err(r"targets hold the blank label 0 \(1 of", lp, bad, il, tl)
    assert "blank=" in text
    bad[0, 1] = 7
    _err(r"targets hold label 7, but log_probs has 5 classes", lp, bad, il, tl)
    _err(r"one length per sample, shape \(3,\)", lp, y, il[:2], tl)
    _err(r"input_lengths must hold integer lengths", lp, y, il.double(), tl)
    _err(r"must be a tensor or a sequence of ints", lp, y, [8.0, 8.0, 8.0], tl)
    _err(r"padded targets \(N, S\) must have N = 3", lp, y[:2], il, tl)
    _err(r"targets must hold integer labels", lp, y.double(), il, tl)
    _err(r"log_probs must be \(T, N, C\)", lp[0, 0], y, il, tl)
    _err(r"zero_infinity must be True or False", lp, y, il, tl, zero_infinity=1)
    # padding after each length is not read: any value there is fine
    padded = y.clone()
    padded[2, tl[2] :] = -1
    torch.testing.assert_close(LF.ctc_loss(lp, padded, il, tl), LF.ctc_loss(lp, y, il, tl))


def test_value_checks_off_still_checks_shapes():
    logits, y, il, tl = _batch(t=8, n=3, c=5, s=3)
    with losskit.set_checks(False):
        _err(r"one length per sample", logits.log_softmax(2), y, il[:2], tl)
        _err(r"blank=9 is not a class", logits.log_softmax(2), y, il, tl, blank=9)


# ----------------------------------------------------------------------------- module
def test_module_takes_torch_forms():
    g = torch.Generator().manual_seed(5)
    lp = torch.randn(50, 3, 15, generator=g, dtype=D).log_softmax(2)
    y = torch.randint(0, 14, (3, 30), generator=g)  # blank=14: labels 0..13
    il, tl = (50, 50, 50), (30, 25, 20)
    ours = losskit.nn.CTCLoss(blank=14)(lp, y, il, tl)
    torch.testing.assert_close(ours, torch.nn.CTCLoss(blank=14)(lp, y, il, tl))
    y1 = y[:, :1].clamp(min=1)  # torch's positional order: blank, reduction, zero_infinity
    m = losskit.nn.CTCLoss(0, "sum", True)
    torch.testing.assert_close(
        m(lp, y1, il, (1, 1, 1)), torch.nn.CTCLoss(0, "sum", True)(lp, y1, il, (1, 1, 1))
    )
    assert type(losskit.get("CTCLoss")) is losskit.nn.CTCLoss


def test_functional_takes_torch_positional_order():
    logits, y, il, tl = _batch(t=6, n=2, c=4, s=2)
    lp = logits.log_softmax(2)
    torch.testing.assert_close(
        LF.ctc_loss(lp, y, il, tl, 0, "sum", True), TF.ctc_loss(lp, y, il, tl, 0, "sum", True)
    )


# ----------------------------------------------------------------------------- named classes
def _vocabulary_batch(c=80, used=(3, 9, 17, 40, 41, 77), blank=0, seed=1, t=10, n=5, s=4):
    """Targets that name a few of ``c`` classes: the CPU path that runs the kernel on
    those classes alone."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(t, n, c, generator=g, dtype=D)
    pool = torch.tensor([v for v in used if v != blank])
    y = pool[torch.randint(0, len(pool), (n, s), generator=g)]
    y[1, :2] = y[1, 0]  # a repeated label (needs a blank between)
    il = torch.randint(t // 2 + s, t + 1, (n,), generator=g)
    tl = torch.randint(0, s + 1, (n,), generator=g)
    tl[0], tl[1] = s, 2
    return logits, y, il, tl


def _all_classes(monkeypatch):
    from losskit.functional import ctc

    monkeypatch.setattr(ctc, "_classes", lambda *args: None)


def _named_path_taken(monkeypatch):
    from losskit.functional import ctc

    seen, real = [], ctc._classes

    def spy(*args):
        out = real(*args)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(ctc, "_classes", spy)
    return seen


@pytest.mark.parametrize("blank", [0, 41])
@pytest.mark.parametrize("form", ["padded", "concatenated"])
def test_named_classes_path_equals_the_kernel_on_every_class(monkeypatch, blank, form):
    logits, y, il, tl = _vocabulary_batch(blank=blank)
    targets = _concat(y, tl) if form == "concatenated" else y
    lp = logits.log_softmax(2)

    def run():
        x = lp.clone().requires_grad_(True)
        out = LF.ctc_loss(x, targets, il, tl, blank=blank, reduction="none")
        (g,) = torch.autograd.grad((out * torch.arange(1.0, 6.0, dtype=D)).sum(), x)
        return out.detach(), g

    with monkeypatch.context() as m:
        seen = _named_path_taken(m)
        named, g_named = run()
        assert seen and all(seen)  # forward and backward on the named classes
    with monkeypatch.context() as m:
        _all_classes(m)
        full, g_full = run()
    assert torch.equal(named, full)  # the kernel reads the same entries: same bits
    torch.testing.assert_close(g_named, g_full, rtol=1e-12, atol=1e-14)
    want = TF.ctc_loss(lp, targets, il, tl, blank=blank, reduction="none")
    torch.testing.assert_close(named, want, rtol=1e-12, atol=1e-12)
    unnamed = torch.ones(80, dtype=torch.bool)
    unnamed[[blank, *y.unique().tolist()]] = False
    assert (g_named[..., unnamed] == 0).all()  # the derivative there is exactly 0


def test_named_classes_path_gradcheck_and_edges(monkeypatch):
    logits, y, il, tl = _vocabulary_batch(c=64, t=6, n=3, s=2, used=(5, 6, 30))
    lp = logits.log_softmax(2).requires_grad_(True)
    seen = _named_path_taken(monkeypatch)
    assert torch.autograd.gradcheck(lambda x: LF.ctc_loss(x, y, il, tl), (lp,))
    assert seen and all(seen)
    # an impossible alignment (2 frames for "55") and an empty input, on the same path
    y2 = torch.tensor([[5, 5], [6, 30], [30, 0]])
    il2, tl2 = torch.tensor([2, 4, 0]), torch.tensor([2, 2, 0])
    out = LF.ctc_loss(lp, y2, il2, tl2, reduction="none")
    assert math.isinf(out[0].item()) and out[2].item() == 0.0
    torch.testing.assert_close(out[1], TF.ctc_loss(lp, y2, il2, tl2, reduction="none")[1])
    (g,) = torch.autograd.grad(LF.ctc_loss(lp, y2, il2, tl2, zero_infinity=True), lp)
    assert torch.isfinite(g).all() and (g[:, 0] == 0).all() and (g[:, 2] == 0).all()


@pytest.mark.parametrize("case", ["63 classes", "one sample names 33 of 64"])
def test_named_classes_path_needs_64_classes_and_at_most_half_named(monkeypatch, case):
    if case == "63 classes":
        logits, y, il, tl = _vocabulary_batch(c=63, used=(3, 9))
    else:  # blank and the labels 1..32 of the first sample: 33 columns of 64
        logits, y, il, tl = _vocabulary_batch(c=64, used=(3, 9), s=32, t=70, n=2)
        y[0] = torch.arange(1, 33)
        tl[0] = 32
    seen = _named_path_taken(monkeypatch)
    lp = logits.log_softmax(2)
    got = LF.ctc_loss(lp, y, il, tl, reduction="none")
    torch.testing.assert_close(got, TF.ctc_loss(lp, y, il, tl, reduction="none"))
    assert seen and not any(seen)
