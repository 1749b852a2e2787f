"""Linear cross entropy by chunks (``backend="triton"`` with ``chunk_size``): tensor-core
matmuls around the softmax kernel, run in place on each chunk's logits. Under Triton's
CPU interpreter here, on CUDA with ``pytest -m gpu``. 130 rows in chunks of 48 (the last
partial), 300 classes (the kernel's class loop in blocks), 100 features."""

from __future__ import annotations

import pytest
import torch

import losskit
import losskit.functional as LF
from losskit.functional.linear import linear_cross_entropy
from test_linear import _class_weight, _materialised, _one_thread, _problem  # noqa: F401
from test_linear_kernel import (  # the kernel tests' problem, devices and helpers
    DEVICES,
    REDUCTIONS,
    D,
    N,
    V,
    _LargestOutsideTheKernel,
    _leaves,
    _options,
    _value_and_grads,
)

pytest.importorskip("triton")

ROWS = 48  # 130 rows in three chunks, the last partial
OPTIONS = {
    "plain": {},
    "ignore_real_class": {"ignore_index": 7},
    "smoothing_weight": {"label_smoothing": 0.15, "weight": "class"},
    "weight_zloss": {"weight": "class", "z_loss": 1e-3},
}


def _chunked(x, w, y, b, **options):
    options = {"chunk_size": ROWS, **options}
    return linear_cross_entropy(x, w, y, linear_bias=b, backend="triton", **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("options", "bias"),
    [
        *(pytest.param(o, True, id=name) for name, o in OPTIONS.items()),
        pytest.param({}, False, id="no_bias"),
    ],
)
def test_float32_matches_the_float64_materialised_loss(options, reduction, bias, device):
    params = _problem(N, D, V, seed=31, bias=bias, ignore=options.get("ignore_index", -100))
    opts = dict(_options(options, device), reduction=reduction)
    x, w, b, y = _leaves(params, torch.float32, device)
    out, grads = _value_and_grads(_chunked, x, w, b, y, **opts)
    assert out.dtype == torch.float32
    assert [g.dtype for g in grads] == [torch.float32] * len(grads)
    x64, w64, b64, y64 = _leaves(params, torch.float64, device)
    opts64 = {k: v.double() if torch.is_tensor(v) else v for k, v in opts.items()}
    exp, exp_grads = _value_and_grads(_materialised, x64, w64, b64, y64, **opts64)
    torch.testing.assert_close(out.double(), exp, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, exp_grads, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bfloat16_within_the_rounding_of_its_logits(reduction, device):
    """bfloat16: the logits are rounded to bfloat16 before the softmax, and the gradient
    of the logits before the two products; the result stays within bfloat16's tolerance of
    the float32 loss on the same (rounded) inputs."""
    params = _problem(N, D, V, seed=32)
    opts = dict(weight=_class_weight(V, dtype=torch.float32).to(device), label_smoothing=0.1)
    x, w, b, y = _leaves(params, torch.bfloat16, device)
    out, grads = _value_and_grads(_chunked, x, w, b, y, reduction=reduction, **opts)
    assert out.dtype == torch.float32
    assert [g.dtype for g in grads] == [torch.bfloat16] * 3
    xf, wf, bf = (t.detach().float().requires_grad_(True) for t in (x, w, b))
    exp, exp_grads = _value_and_grads(_materialised, xf, wf, bf, y, reduction=reduction, **opts)
    torch.testing.assert_close(out, exp, rtol=2e-2, atol=2e-2)
    for got, want in zip(grads, exp_grads, strict=True):
        scale = want.abs().max()
        torch.testing.assert_close(got.float(), want, rtol=5e-2, atol=2e-2 * scale)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_is_zero_with_zero_gradients(reduction):
    x, w, b, y = _leaves(_problem(N, D, V, seed=33), torch.float32, "cpu")
    y = torch.full_like(y, -100)
    out = _chunked(x, w, y, b, reduction=reduction)
    assert torch.all(out == 0)
    for g in torch.autograd.grad(out.sum(), (x, w, b)):
        assert torch.all(g == 0)


def test_extreme_logits_stay_finite():
    x, w, b, y = _leaves(_problem(N, D, V, seed=34), torch.float32, "cpu")
    with torch.no_grad():
        x.mul_(1e3)  # logits of order 1e4
    for options in ({}, {"label_smoothing": 0.1, "z_loss": 1e-4}):
        out, grads = _value_and_grads(_chunked, x, w, b, y, **options)
        exp, exp_grads = _value_and_grads(_materialised, x, w, b, y, **options)
        torch.testing.assert_close(out, exp, rtol=1e-5, atol=1e-3)
        for got, want in zip(grads, exp_grads, strict=True):
            assert torch.isfinite(got).all()
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3 * want.abs().max())


def test_only_some_parameters_need_gradients_and_normalizer():
    x, w, b, y = _leaves(_problem(N, D, V, seed=35), torch.float32, "cpu")
    w.requires_grad_(False)
    out = _chunked(x, w, y, b, normalizer=50.0)
    gx, gb = torch.autograd.grad(out, (x, b))
    want = _materialised(x, w, y, b, reduction="sum") / 50.0
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
    ex, eb = torch.autograd.grad(want, (x, b))
    torch.testing.assert_close(gx, ex, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gb, eb, rtol=1e-4, atol=1e-6)


def test_memory_is_one_chunk_of_logits():
    """128 x 256 logits in chunks of 16 rows, D = 8: nothing larger than one chunk's
    (16, 256) logits, the inputs and their gradients is allocated, in either pass."""
    n, d, v, rows = 128, 8, 256, 16
    x, w, b, y = _leaves(_problem(n, d, v, seed=36), torch.float32, "cpu")
    for reduction in ("mean", "none"):
        with _LargestOutsideTheKernel() as probe:
            out = linear_cross_entropy(
                x, w, y, linear_bias=b, backend="triton", chunk_size=rows, reduction=reduction
            )
            out.backward(torch.ones_like(out))
        assert probe.largest[0] <= max(n * d, v * d, rows * v), probe.largest


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_create_graph_raises_and_torch_func_works(reduction):
    x, w, b, y = _leaves(_problem(40, 16, 50, seed=37), torch.float32, "cpu")
    loss = _chunked(x, w, y, b, reduction=reduction).sum()
    with pytest.raises(losskit.LossInputError, match="second derivatives are not supported"):
        torch.autograd.grad(loss, x, create_graph=True)
    xd, wd = x.detach(), w.detach()

    def f(x, w):
        return _chunked(x, w, y, b.detach(), reduction=reduction).sum()

    leaves = [t.clone().requires_grad_() for t in (xd, wd)]
    want = torch.autograd.grad(f(*leaves), leaves)
    batch = torch.stack([xd, xd.flip(0)])
    with losskit.set_checks(False):
        got = torch.func.grad(f, argnums=(0, 1))(xd, wd)
        per_sample = torch.func.vmap(torch.func.grad(f, argnums=1), in_dims=(0, None))(batch, wd)
    for g, e in zip(got, want, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)
    loop = [
        torch.autograd.grad(f(h, leaf), leaf)[0]
        for h in batch
        for leaf in [wd.clone().requires_grad_()]
    ]
    torch.testing.assert_close(per_sample, torch.stack(loop), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"softcap": 30.0}, "does not support softcap with chunk_size"),
        ({"chunk_size": (16, 64)}, "does not support a vocabulary block in chunk_size"),
    ],
    ids=["softcap", "vocabulary_block"],
)
def test_errors(change, expected):
    x, w, b, y = _leaves(_problem(seed=38), torch.float32, "cpu")
    with pytest.raises(losskit.LossInputError, match=expected):
        _chunked(x, w, y, b, **change)


def test_equals_cross_entropy_of_the_logits_through_the_module():
    x, w, b, y = _leaves(_problem(seed=39), torch.float32, "cpu")
    head = losskit.nn.LinearCrossEntropyLoss(
        w.shape[1], w.shape[0], bias=True, backend="triton", chunk_size=8
    )
    with torch.no_grad():
        head.linear.weight.copy_(w)
        head.linear.bias.copy_(b)
    want = LF.cross_entropy(x @ w.T + b, y)
    torch.testing.assert_close(head(x, y), want, rtol=1e-5, atol=1e-6)
