"""The fused linear cross entropy kernel (``backend="triton"``): under Triton's CPU
interpreter here, and on CUDA with ``pytest -m gpu``. Shapes cross the kernel's tiles
(64 rows x 128 classes x 64 features) so that partial tiles and the loops over tiles
and features are all exercised."""

from __future__ import annotations

import pytest
import torch

import losskit
import losskit.functional as LF
from losskit.functional.linear import linear_cross_entropy
from losskit.kernels import linear as K
from test_linear import (  # noqa: F401  (_one_thread: an autouse fixture)
    _class_weight,
    _LargestTensor,
    _materialised,
    _one_thread,
    _problem,
    _upstream,
)

pytest.importorskip("triton")

# 130 rows (3 row tiles, the last partial), 300 classes (3 class tiles), 100 features
# (2 steps of the feature loop, the last partial)
N, D, V = 130, 100, 300
REDUCTIONS = ("none", "mean", "sum")
CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    ],
)
DEVICES = [pytest.param("cpu", id="interpreter"), CUDA]

OPTIONS = [
    pytest.param({}, id="plain"),
    pytest.param({"ignore_index": 7}, id="ignore_real_class"),
    pytest.param({"label_smoothing": 0.15}, id="smoothing"),
    pytest.param({"label_smoothing": 0.15, "weight": "class"}, id="smoothing_weight"),
    pytest.param({"weight": "class", "z_loss": 1e-3}, id="weight_zloss"),
    pytest.param({"softcap": 4.0, "label_smoothing": 0.1}, id="softcap_smoothing"),
]


def _options(options, device):
    return {
        k: (_class_weight(V, dtype=torch.float32).to(device) if v == "class" else v)
        for k, v in options.items()
    }


def _leaves(params, dtype, device):
    return [
        None if t is None else t.detach().to(device, dtype).requires_grad_(True) for t in params[:3]
    ] + [params[3].to(device)]


def _value_and_grads(fn, x, w, b, y, upstream=None, **options):
    out = fn(x, w, y, b, **options)
    wrt = [t for t in (x, w, b) if t is not None]
    up = _upstream(out) if upstream is None else upstream
    return out, torch.autograd.grad(out, wrt, up.to(out.device, out.dtype))


def _kernel(x, w, y, b, **options):
    return linear_cross_entropy(x, w, y, linear_bias=b, backend="triton", **options)


def _oracle(x, w, y, b, **options):
    return _materialised(x, w, y, b, **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", OPTIONS)
def test_float32_matches_the_float64_materialised_loss(options, reduction, bias, device):
    params = _problem(N, D, V, seed=11, bias=bias, ignore=options.get("ignore_index", -100))
    opts = dict(_options(options, device), reduction=reduction)
    x, w, b, y = _leaves(params, torch.float32, device)
    out, grads = _value_and_grads(_kernel, x, w, b, y, **opts)
    assert out.dtype == torch.float32
    assert [g.dtype for g in grads] == [torch.float32] * len(grads)
    x64, w64, b64, y64 = _leaves(params, torch.float64, device)
    opts64 = {k: v.double() if torch.is_tensor(v) else v for k, v in opts.items()}
    exp, exp_grads = _value_and_grads(_oracle, x64, w64, b64, y64, **opts64)
    torch.testing.assert_close(out.double(), exp, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, exp_grads, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bfloat16_against_float32(reduction, device):
    params = _problem(N, D, V, seed=12)
    opts = dict(weight=_class_weight(V, dtype=torch.float32).to(device), label_smoothing=0.1)
    x, w, b, y = _leaves(params, torch.bfloat16, device)
    out, grads = _value_and_grads(_kernel, x, w, b, y, reduction=reduction, **opts)
    assert out.dtype == torch.float32
    assert [g.dtype for g in grads] == [torch.bfloat16] * 3
    # float32 with every logit in memory, from the same (rounded) values
    xf, wf, bf = (t.detach().float() for t in (x, w, b))
    logits = (xf @ wf.T + bf).requires_grad_(True)
    exp = _oracle_logits(logits, y, reduction=reduction, **opts)
    torch.testing.assert_close(out, exp, rtol=5e-2, atol=5e-3)
    # The kernel's documented arithmetic: the gradient of the logits G in float32, rounded
    # to bfloat16 (the tensor cores' operand) for the two products G W and G^T x, summed in
    # float32 and stored in bfloat16; the bias gradient sums G before the rounding. The
    # store rounds within half an ulp (2^-8 relative, bfloat16 keeps 8 significant bits);
    # G itself differs from the oracle's by float32 noise, which can move the rounding of a
    # term to the neighbouring value, one ulp (at most 2^-7 relative). So each entry is
    # bounded by 2^-8 of the result plus 2^-7 of the sum of its terms' sizes, |G| |W|.
    (g,) = torch.autograd.grad(exp, logits, _upstream(exp).to(device))
    g16 = g.bfloat16().float()
    for got, want, terms in zip(
        grads,
        (g16 @ wf, g16.T @ xf, g.sum(0)),
        (g.abs() @ wf.abs(), g.abs().T @ xf.abs(), g.abs().sum(0)),
        strict=True,
    ):
        error = (got.float() - want).abs()
        bound = 2.0**-8 * want.abs() + 2.0**-7 * terms + 1e-6
        assert (error <= bound).all(), (error / bound).max()


def _oracle_logits(logits, y, **options):
    return LF.cross_entropy(logits, y, **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_is_zero_with_zero_gradients(reduction, device):
    x, w, b, y = _leaves(_problem(N, D, V, seed=13), torch.float32, device)
    y = torch.full_like(y, -100)
    out = _kernel(x, w, y, b, reduction=reduction)
    assert torch.all(out == 0)
    for g in torch.autograd.grad(out.sum(), (x, w, b)):
        assert torch.all(g == 0)


def test_extreme_logits_stay_finite():
    x, w, b, y = _leaves(_problem(N, D, V, seed=14), torch.float32, "cpu")
    with torch.no_grad():
        x.mul_(1e3)  # logits of order 1e4
    for options in ({}, {"label_smoothing": 0.1, "z_loss": 1e-4}, {"softcap": 30.0}):
        out, grads = _value_and_grads(_kernel, x, w, b, y, **options)
        exp, exp_grads = _value_and_grads(_oracle, x, w, b, y, **options)
        assert torch.isfinite(out)
        torch.testing.assert_close(out, exp, rtol=1e-5, atol=1e-3)
        for got, want in zip(grads, exp_grads, strict=True):
            assert torch.isfinite(got).all()
            # p is nearly one-hot, so each gradient is a sum of O(1) terms that cancel to a
            # small result: float32 leaves an absolute error of about eps * the terms' size,
            # not of the result's (the largest entry stands in for the terms' size)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3 * want.abs().max())


def test_only_some_parameters_need_gradients():
    x, w, b, y = _leaves(_problem(N, D, V, seed=15), torch.float32, "cpu")
    w.requires_grad_(False)
    out = _kernel(x, w, y, b)
    gx, gb = torch.autograd.grad(out, (x, b))
    ex, eb = torch.autograd.grad(_oracle(x, w, y, b), (x, b))
    torch.testing.assert_close(gx, ex, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gb, eb, rtol=1e-4, atol=1e-6)


def test_batch_time_input_and_normalizer():
    x, w, b, y = _leaves(_problem(seed=16, shape=(3, 29), d=D, v=V), torch.float32, "cpu")
    got = _kernel(x, w, y, b, normalizer=50.0)
    exp = _oracle(x, w, y, b, reduction="sum") / 50.0
    torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-6)
    assert _kernel(x, w, y, b, reduction="none").shape == (3, 29)


class _LargestOutsideTheKernel(_LargestTensor):
    """Triton's CPU interpreter copies each argument's storage to and from the host as raw
    bytes (uint8 tensors); on a GPU those copies do not exist, so they are not counted."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.dtype != torch.uint8:
                if t.numel() > self.largest[0]:
                    self.largest = (t.numel(), (str(func), tuple(t.shape)))
        return out


def test_never_materialises_the_logits():
    """2048 x 1024 logits (2M), D = 8: nothing beyond the inputs, their gradients and the
    per-tile partials (N x V / 128 floats) may be allocated by torch around the kernel."""
    n, d, v = 2048, 8, 1024
    x, w, b, y = _leaves(_problem(n, d, v, seed=17), torch.float32, "cpu")
    with _LargestOutsideTheKernel() as probe:
        out = _kernel(x, w, y, b, label_smoothing=0.1, reduction="none")
        out.backward(torch.ones_like(out))
    assert probe.largest[0] <= max(n * d, v * d, n * v // K.BLOCK_V), probe.largest


def test_auto_is_the_torch_path_on_cpu():
    x, w, b, y = _leaves(_problem(seed=18), torch.float32, "cpu")
    auto = linear_cross_entropy(x, w, y, linear_bias=b)
    torch_path = linear_cross_entropy(x, w, y, linear_bias=b, backend="torch")
    assert torch.equal(auto, torch_path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"dtype": torch.float64}, "does not support float64 inputs"),
        ({"backend": "cuda"}, "backend must be one of 'auto', 'torch', 'triton'"),
    ],
    ids=["float64", "bad_backend"],
)
def test_errors(change, expected):
    change = dict(change)
    dtype = change.pop("dtype", torch.float32)
    x, w, b, y = _leaves(_problem(seed=19), dtype, "cpu")
    options = {"backend": "triton", **change}
    with pytest.raises(losskit.LossInputError, match=expected) as info:
        linear_cross_entropy(x, w, y, linear_bias=b, **options)
    assert "linear_cross_entropy" in str(info.value)


def test_module_passes_its_backend():
    x, w, b, y = _leaves(_problem(seed=20), torch.float32, "cpu")
    head = losskit.nn.LinearCrossEntropyLoss(w.shape[1], w.shape[0], bias=True, backend="triton")
    with torch.no_grad():
        head.linear.weight.copy_(w)
        head.linear.bias.copy_(b)
    torch.testing.assert_close(head(x, y), _kernel(x, w, y, b), rtol=0, atol=0)
    with pytest.raises(losskit.LossInputError, match="does not support softcap with chunk_size"):
        losskit.nn.LinearCrossEntropyLoss(4, 3, backend="triton", chunk_size=8, softcap=2.0)(
            torch.randn(2, 4), torch.tensor([0, 1])
        )


# --------------------------------------------------------------------------- autograd rules
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_create_graph_raises(reduction):
    """No double backward: a gradient penalty gets the losskit error, not a gradient
    without a graph."""
    x, w, b, y = _leaves(_problem(N, D, V, seed=21), torch.float32, "cpu")
    loss = _kernel(x, w, y, b, label_smoothing=0.1, reduction=reduction).sum()
    with pytest.raises(losskit.LossInputError) as info:
        torch.autograd.grad(loss, x, create_graph=True)
    message = str(info.value)
    assert message.startswith("linear_cross_entropy: second derivatives are not supported")
    assert "losskit.functional.cross_entropy(input @ linear_weight.T" in message
    gx, gw = torch.autograd.grad(loss, (x, w))  # the first derivative, from the same graph
    assert torch.isfinite(gx).all() and torch.isfinite(gw).all()


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_torch_func_grad_and_vmap(reduction):
    """torch.func.grad equals autograd's gradient (the kernels get plain tensors), and
    vmap(grad) launches each element of the batch on its own: per-sample gradients."""
    params = _problem(N, D, V, seed=22)
    x, w, b, y = (t.detach() if t is not None and t.is_floating_point() else t for t in params)
    x, w, b = x.float(), w.float(), b.float()
    opts = dict(label_smoothing=0.1, weight=_class_weight(V, dtype=torch.float32))

    def f(x, w):
        return _kernel(x, w, y, b, reduction=reduction, **opts).sum()

    leaves = [t.clone().requires_grad_() for t in (x, w)]
    want = torch.autograd.grad(f(*leaves), leaves)
    batch = torch.stack([x, x.flip(0)])
    with losskit.set_checks(False):  # value checks read the data
        got = torch.func.grad(f, argnums=(0, 1))(x, w)
        per_sample = torch.func.vmap(torch.func.grad(f, argnums=1), in_dims=(0, None))(batch, w)
    for g, e in zip(got, want, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)
    leaf = w.clone().requires_grad_()
    loop = [torch.autograd.grad(f(h, leaf), leaf)[0] for h in batch]
    torch.testing.assert_close(per_sample, torch.stack(loop), rtol=1e-6, atol=1e-7)
