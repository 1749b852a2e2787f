"""losskit.nn.CombinedLoss: a weighted sum of loss modules that reports each term."""

from __future__ import annotations

import pytest
import torch

import losskit
from losskit import LossInputError, LossTypeError
from losskit import functional as LF
from losskit.nn import CombinedLoss, CrossEntropyLoss, DiceLoss, LovaszSoftmaxLoss


def _maps(seed=0, shape=(4, 3, 5, 6), ignore=255):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    y.view(shape[0], -1)[:, ::7] = ignore
    return x, y


def test_dice_ce_is_the_weighted_sum_and_reports_each_term():
    x, y = _maps()
    loss = CombinedLoss(
        {"dice": DiceLoss(ignore_index=255), "ce": CrossEntropyLoss(ignore_index=255)},
        weights={"ce": 0.25},
    )
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    out = loss(xa, y)
    dice = LF.dice_loss(xb, y, ignore_index=255)
    ce = LF.cross_entropy(xb, y, ignore_index=255)
    want = dice + 0.25 * ce
    torch.testing.assert_close(out, want, rtol=1e-14, atol=0)
    assert set(loss.last) == {"dice", "ce"}
    torch.testing.assert_close(loss.last["dice"], dice.detach())
    torch.testing.assert_close(loss.last["ce"], ce.detach())
    assert not any(v.requires_grad for v in loss.last.values())
    out.backward()
    want.backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-14, atol=1e-16)
    # the next call replaces the report
    loss(x[:2], y[:2])
    torch.testing.assert_close(loss.last["ce"], LF.cross_entropy(x[:2], y[:2], ignore_index=255))


def test_default_weights_are_one_and_terms_are_submodules():
    w = torch.tensor([1.0, 2.0, 0.5])
    loss = CombinedLoss({"ce": CrossEntropyLoss(weight=w), "lovasz": LovaszSoftmaxLoss()})
    assert loss.weights == {"ce": 1.0, "lovasz": 1.0}
    x, y = _maps(1, ignore=0)
    torch.testing.assert_close(
        loss(x, y), LF.cross_entropy(x, y, weight=w.double()) + LF.lovasz_softmax_loss(x, y)
    )
    assert "terms.ce.weight" in loss.state_dict()
    assert loss.to(torch.float64).terms["ce"].weight.dtype == torch.float64
    assert "weights" not in repr(loss)
    assert "weights={'ce': 1.0, 'lovasz': 2.0}" in repr(CombinedLoss(loss.terms, {"lovasz": 2}))


def test_a_torch_module_term_takes_no_options():
    x, y = _maps(2, ignore=-100)
    loss = CombinedLoss({"ce": torch.nn.CrossEntropyLoss(), "lovasz": LovaszSoftmaxLoss()})
    want = torch.nn.functional.cross_entropy(x, y) + LF.lovasz_softmax_loss(x, y, ignore_index=-100)
    assert torch.allclose(loss(x, y, ignore_index={"lovasz": -100}), want)
    with pytest.raises(LossTypeError, match="'ce' .*not a losskit module.*normalizer"):
        loss(x, y, normalizer=3.0)


def test_normalizer_goes_to_every_term_or_to_the_named_ones():
    x, y = _maps(3)
    terms = {"dice": DiceLoss(ignore_index=255), "ce": CrossEntropyLoss(ignore_index=255)}
    loss = CombinedLoss(terms, weights={"dice": 2.0})
    got = loss(x, y, normalizer=7.0)
    want = 2 * LF.dice_loss(x, y, ignore_index=255, normalizer=7.0) + LF.cross_entropy(
        x, y, ignore_index=255, normalizer=7.0
    )
    torch.testing.assert_close(got, want)
    got = loss(x, y, normalizer={"ce": torch.tensor(11.0)})
    want = 2 * LF.dice_loss(x, y, ignore_index=255) + LF.cross_entropy(
        x, y, ignore_index=255, normalizer=11.0
    )
    torch.testing.assert_close(got, want)


def test_normalizer_makes_gradient_accumulation_exact():
    """Micro-batches with the global counts as normalizers add up to the full batch:
    Dice's (image, class) pairs and cross entropy's counted pixels."""
    x, y = _maps(4)
    loss = CombinedLoss(
        {"dice": DiceLoss(ignore_index=255), "ce": CrossEntropyLoss(ignore_index=255)},
        weights={"ce": 0.5},
    )
    full = loss(x, y)
    norm = {"dice": float(x.shape[0] * x.shape[1]), "ce": (y != 255).sum()}
    parts = [loss(x[i : i + 2], y[i : i + 2], normalizer=norm) for i in (0, 2)]
    torch.testing.assert_close(sum(parts), full, rtol=1e-13, atol=0)


def test_works_under_torch_compile():
    torch._dynamo.reset()
    x, y = _maps(5, shape=(2, 3, 4, 4))
    x = x.float()
    loss = CombinedLoss(
        {"dice": DiceLoss(ignore_index=255), "ce": CrossEntropyLoss(ignore_index=255)},
        weights={"ce": 0.5},
    )
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    got = compiled(xa, y, normalizer={"ce": 20.0})
    compiled_last = dict(loss.last)
    want = loss(xb, y, normalizer={"ce": 20.0})
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for name in ("dice", "ce"):
        torch.testing.assert_close(compiled_last[name], loss.last[name], rtol=1e-5, atol=1e-6)
    got.backward()
    want.backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: CombinedLoss([DiceLoss()]), LossTypeError, "terms must map names"),
        (lambda: CombinedLoss({}), LossInputError, "at least one"),
        (lambda: CombinedLoss({"a.b": DiceLoss()}), LossInputError, "without '.'"),
        (lambda: CombinedLoss({"training": DiceLoss()}), LossInputError, "attributes"),
        (lambda: CombinedLoss({3: DiceLoss()}), LossTypeError, "non-empty strings"),
        (lambda: CombinedLoss({"dice": LF.dice_loss}), LossTypeError, "must be a loss module"),
        (lambda: CombinedLoss({"dice": DiceLoss()}, {"ce": 1.0}), LossInputError, "'ce'"),
        (lambda: CombinedLoss({"dice": DiceLoss()}, [1.0]), LossTypeError, "weights must map"),
        (
            lambda: CombinedLoss({"dice": DiceLoss()}, {"dice": float("inf")}),
            LossInputError,
            "finite",
        ),
        (lambda: CombinedLoss({"dice": DiceLoss()}, {"dice": "2"}), LossTypeError, "real number"),
    ],
)
def test_bad_construction_raises(make, error, match):
    with pytest.raises(error, match=match) as info:
        make()
    assert str(info.value).startswith("CombinedLoss:")


def test_bad_calls_raise():
    x, y = _maps(6)
    loss = CombinedLoss({"dice": DiceLoss(ignore_index=255), "ce": CrossEntropyLoss()})
    with pytest.raises(LossInputError, match="normalizer= names 'cee'"):
        loss(x, y, normalizer={"cee": 2.0})
    with pytest.raises(LossTypeError, match="unknown option"):  # the term's own check
        loss(x, y, gamma=2.0)
    mixed = CombinedLoss(
        {"dice": DiceLoss(reduction="none"), "ce": CrossEntropyLoss(reduction="mean")}
    )
    with pytest.raises(LossInputError, match="term 'ce' returned shape"):
        mixed(x, y % 3)


def test_found_by_the_package():
    assert losskit.nn.CombinedLoss is CombinedLoss
    assert "CombinedLoss" in losskit.nn.__all__
