"""LinearCrossEntropyLoss takes torch 2.13's constructor and forward: out_features
(K-dimensional losses), ignore_index=None, probability targets, options; values and
gradients equal torch's own module (float64), and the errors torch raises are named."""

from __future__ import annotations

import itertools

import pytest
import torch

import losskit
import losskit.functional as LF

D = torch.float64
TorchLCE = torch.nn.LinearCrossEntropyLoss
Options = torch.nn.LinearCrossEntropyOptions


def _pair(*args, **kwargs):
    """torch's module and losskit's, built from the same arguments, sharing parameters."""
    theirs = TorchLCE(*args, **kwargs)
    ours = losskit.nn.LinearCrossEntropyLoss(*args, **kwargs)
    with torch.no_grad():
        ours.linear.weight.copy_(theirs.linear.weight)
        if theirs.linear.bias is not None:
            ours.linear.bias.copy_(theirs.linear.bias)
    return ours, theirs


def _run(module, x, y):
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad()
    out = module(x, y)
    out.sum().backward()
    grads = [x.grad] + [p.grad for p in module.linear.parameters()]
    return out.detach(), grads


def _assert_same(ours, theirs, x, y, msg=""):
    (a, ga), (b, gb) = _run(ours, x, y), _run(theirs, x, y)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"{msg}\n{m}")
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-12, msg=lambda m: f"{msg}\n{m}")


def _cases():
    # torch's module_db samples (common_modules.module_inputs_torch_nn_LinearCrossEntropyLoss),
    # a reduced grid: sizes, reduction, ignore_index, smoothing, class weight, out_features
    for (n, d, c), reduction, ii, (ls, weighted), of in itertools.product(
        [(8, 5, 4), (None, 8, 4)],
        ["sum", "mean", "none"],
        [None, 1, 9],
        [(0.0, False), (0.1, True), (0.0, True)],
        [(), (3, 2, 4)],
    ):
        if n is None and of:
            continue  # a K-dimensional loss needs a batch (torch's rule too)
        yield (n, d, c), reduction, ii, ls, weighted, of


@pytest.mark.parametrize("bias", [False, True])
def test_index_targets_match_torch_module(bias):
    g = torch.Generator().manual_seed(0)
    compared = 0
    for (n, d, c), reduction, ii, ls, weighted, of in _cases():
        batch = () if n is None else (n,)
        w = torch.rand(c, generator=g, dtype=D) + 0.5 if weighted else None
        kw = dict(out_features=of, bias=bias, dtype=D, reduction=reduction, weight=w)
        ours, theirs = _pair(d, c, ignore_index=ii, label_smoothing=ls, **kw)
        x = torch.randn(*batch, d, generator=g, dtype=D)
        y = torch.randint(0, c, (*batch, *of), generator=g)
        if ii is not None and y.dim():
            y.view(-1)[::3] = ii  # some ignored positions, never all
        elif ii is not None and int(y) == ii:
            y = torch.tensor((ii + 1) % c)  # as torch's samples: a mean over one target
        _assert_same(ours, theirs, x, y, msg=f"{(n, d, c)} {reduction} {ii} {ls} {weighted} {of}")
        compared += 1
    assert compared > 40


@pytest.mark.parametrize("of", [(), (3, 2)], ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_probability_targets_match_torch_module(of, reduction):
    g = torch.Generator().manual_seed(1)
    for ls, bias in itertools.product([0.0, 0.1], [False, True]):
        ours, theirs = _pair(
            5, 4, out_features=of, bias=bias, dtype=D, reduction=reduction, label_smoothing=ls
        )
        x = torch.randn(8, 5, generator=g, dtype=D)
        q = torch.rand(8, 4, *of, generator=g, dtype=D).softmax(1)
        _assert_same(ours, theirs, x, q, msg=f"{of} {reduction} {ls} {bias}")
    ours, theirs = _pair(8, 4, dtype=D, reduction=reduction)  # unbatched: (D,) and (C,)
    _assert_same(ours, theirs, torch.randn(8, dtype=D), torch.rand(4, dtype=D).softmax(0))
    _assert_same(ours, theirs, torch.randn(8, dtype=D), torch.tensor(2))


def test_weighted_mean_of_probability_targets_is_losskits_rule():
    """torch divides a class-weighted mean of probability targets by N; losskit by
    sum_n sum_c w_c q_nc (so a one-hot target gives its index's loss exactly)."""
    w = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=D)
    ours, theirs = _pair(5, 4, dtype=D, weight=w)
    x = torch.randn(6, 5, dtype=D)
    q = torch.rand(6, 4, dtype=D).softmax(1)
    per = losskit.nn.LinearCrossEntropyLoss(5, 4, dtype=D, weight=w, reduction="sum")
    per.linear.weight.data.copy_(ours.linear.weight)
    want = per(x, q) / (q * w).sum()
    torch.testing.assert_close(ours(x, q), want)
    torch.testing.assert_close(theirs(x, q), per(x, q) / 6)
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 1, 0]), 4).to(D)
    torch.testing.assert_close(ours(x, onehot), ours(x, onehot.argmax(1)))


@pytest.mark.parametrize(
    "options", [Options(), Options(batch_chunk_size=2), Options(chunking_method="aspect_ratio:2")]
)
def test_options_give_torch_values(options):
    g = torch.Generator().manual_seed(2)
    for of, bias in [((), False), ((), True), ((3, 2, 4), False)]:
        ours, theirs = _pair(5, 4, out_features=of, bias=bias, dtype=D, options=options)
        x = torch.randn(8, 5, generator=g, dtype=D)
        y = torch.randint(0, 4, (8, *of), generator=g)
        _assert_same(ours, theirs, x, y)
    assert ours.options is options and "options=" in repr(ours)


def test_losskit_options_on_torch_constructor():
    ours = losskit.nn.LinearCrossEntropyLoss(
        3, 4, out_features=(2,), dtype=D, z_loss=1e-3, softcap=5.0, label_smoothing=0.1
    )
    x = torch.randn(2, 3, dtype=D)
    y = torch.randint(0, 4, (2, 2))
    logits = (x @ ours.linear.weight.T).reshape(2, 4, 2)
    want = LF.cross_entropy(5.0 * torch.tanh(logits / 5.0), y, z_loss=1e-3, label_smoothing=0.1)
    torch.testing.assert_close(ours(x, y), want)
    # a K-dimensional (or probability) loss holds the logits: twice differentiable
    xg = x.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: ours(t, y), (xg,))
    assert "out_features=(2,)" in repr(ours) and "z_loss" in repr(ours)


def test_torch_errors_are_named_losskit_errors():
    with pytest.raises(
        losskit.LossInputError,
        match=r"weight must hold one value per class, shape \(2,\), got \(3,\)",
    ):
        losskit.nn.LinearCrossEntropyLoss(3, 2, weight=torch.ones(3))
    with pytest.raises(
        losskit.LossInputError, match=r"label_smoothing must be >= 0 and <= 1, got 2.0"
    ):
        losskit.nn.LinearCrossEntropyLoss(3, 2, label_smoothing=2.0)
    with pytest.raises(
        losskit.LossTypeError, match="out_features must be a tuple of positive ints"
    ):
        losskit.nn.LinearCrossEntropyLoss(3, 2, out_features=(0,))
    m = losskit.nn.LinearCrossEntropyLoss(3, 2)
    with pytest.raises(losskit.LossInputError, match=r"must have shape \(4,\)") as info:
        m(torch.randn(4, 3), torch.zeros(4, 2, dtype=torch.long))  # torch: a RuntimeError
    assert "target.float()" in str(info.value)
    with pytest.raises(losskit.LossInputError, match=r"must have shape \(4, 2\) .* got \(5, 2\)"):
        m(torch.randn(4, 3), torch.zeros(5, 2))
    with pytest.raises(losskit.LossInputError, match="takes 3 features, but input"):
        m(torch.randn(4, 5), torch.zeros(4, 2))
    with pytest.raises(losskit.LossInputError, match="ignore_index=-1 applies to class-index"):
        losskit.nn.LinearCrossEntropyLoss(3, 2, ignore_index=-1)(
            torch.randn(4, 3), torch.rand(4, 2)
        )
    with pytest.raises(losskit.LossInputError, match="chunk_size=4 applies to class-index targets"):
        losskit.nn.LinearCrossEntropyLoss(3, 2, chunk_size=4)(torch.randn(4, 3), torch.rand(4, 2))
    with pytest.raises(
        losskit.LossTypeError, match="options must be a torch.nn.LinearCrossEntropyOptions"
    ):
        losskit.nn.LinearCrossEntropyLoss(3, 2, options={"batch_chunk_size": 2})(
            torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
        )
    with pytest.raises(losskit.LossInputError, match=r"needs input \(N, D\)"):
        losskit.nn.LinearCrossEntropyLoss(3, 2, out_features=(2,))(
            torch.randn(3), torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(losskit.LossTypeError, match="target must hold integer class indices"):
        m(torch.randn(4, 3), torch.zeros(4))


def test_ignore_index_none_counts_every_class_and_ignores_minus_100():
    ours, theirs = _pair(5, 4, dtype=D)
    assert ours.ignore_index is None
    x = torch.randn(6, 5, dtype=D)
    y = torch.tensor([0, 1, -100, 3, 2, -100])
    _assert_same(ours, theirs, x, y)
    with pytest.raises(losskit.LossInputError, match="class index 7"):
        ours(x, torch.tensor([0, 1, 7, 3, 2, 1]))
