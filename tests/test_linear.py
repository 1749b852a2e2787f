"""linear_cross_entropy: values and gradients against the materialised computation
(``cross_entropy(softcap(x @ W.T + b), y)``) over every option, reduction and chunking
(chunks that do not divide N or V, with and without vocabulary blocks), upstream gradients
that are not 1, the empty mean, half precision, (B, T, D) input, the NumPy reference,
torch's own ``linear_cross_entropy``, the error messages, and a memory proxy: no tensor
larger than one tile of logits is ever created."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF
from torch.utils._python_dispatch import TorchDispatchMode

import losskit
import losskit.functional as LF
from losskit.functional import linear as linear_module
from losskit.functional.linear import linear_cross_entropy
from losskit.reference.linear import linear_cross_entropy as reference_linear_cross_entropy

N, D, V = 37, 6, 101
REDUCTIONS = ("none", "mean", "sum")
# None: the default (one chunk here); 16 rows (does not divide 37); 16 x 16 and 7 x 50
# tiles (vocabulary blocks with an online log-sum-exp, not dividing 101); one row.
CHUNKS = (None, 16, (16, 16), (7, 50), 1)
F64 = {"rtol": 1e-9, "atol": 1e-12}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The problems here are small: with pytest-xdist's workers on a 2-core machine, two
    OpenMP threads per worker oversubscribe the cores and make each test ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- helpers
def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _problem(n=N, d=D, v=V, *, dtype=torch.float64, seed=0, bias=True, shape=None, ignore=-100):
    """Leaves ``x (n, d)`` (or ``shape + (d,)``), ``W (v, d)``, ``b (v,)`` and targets with
    every fifth one set to ``ignore``."""
    g = _gen(seed)
    lead = shape or (n,)
    x = torch.randn(*lead, d, generator=g, dtype=torch.float64)
    w = torch.randn(v, d, generator=g, dtype=torch.float64) * 0.7
    b = torch.randn(v, generator=g, dtype=torch.float64) if bias else None
    y = torch.randint(0, v, lead, generator=g)
    if ignore is not None:
        y.view(-1)[::5] = ignore
    leaf = lambda t: None if t is None else t.to(dtype).requires_grad_(True)  # noqa: E731
    return leaf(x), leaf(w), leaf(b), y


def _class_weight(v=V, seed=3, dtype=torch.float64):
    return (torch.rand(v, generator=_gen(seed), dtype=torch.float64) + 0.25).to(dtype)


def _materialised(x, w, y, b=None, softcap=None, **options):
    """The loss with every logit in memory: what linear_cross_entropy must equal."""
    logits = x @ w.T
    if b is not None:
        logits = logits + b
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    out = LF.cross_entropy(logits.reshape(-1, w.shape[0]), y.reshape(-1), **options)
    return out.reshape(y.shape) if options.get("reduction") == "none" else out


def _upstream(out, seed=5):
    """A random upstream gradient for "none", 1.7 for a scalar."""
    if out.dim() == 0:
        return torch.tensor(1.7, dtype=out.dtype)
    return torch.randn(out.shape, generator=_gen(seed), dtype=torch.float64).to(out.dtype)


def _value_and_grads(fn, params, **kwargs):
    x, w, b, y = params
    out = fn(x, w, y, **({"linear_bias": b} if b is not None else {}), **kwargs)
    wrt = [t for t in (x, w, b) if t is not None]
    grads = torch.autograd.grad(out, wrt, _upstream(out))
    return out, grads


def _ours(x, w, y, linear_bias=None, **kwargs):
    return linear_cross_entropy(x, w, y, linear_bias=linear_bias, **kwargs)


def _theirs(x, w, y, linear_bias=None, chunk_size=None, **kwargs):
    return _materialised(x, w, y, linear_bias, **kwargs)


def _compare(params, rtol, atol, **kwargs):
    out, grads = _value_and_grads(_ours, params, **kwargs)
    exp, exp_grads = _value_and_grads(_theirs, params, **kwargs)
    torch.testing.assert_close(out, exp, rtol=rtol, atol=atol, check_dtype=False)
    for name, got, want in zip(
        ("input", "linear_weight", "linear_bias"), grads, exp_grads, strict=False
    ):
        torch.testing.assert_close(
            got, want, rtol=rtol, atol=atol, msg=lambda m, name=name: f"gradient of {name}: {m}"
        )
    return out, grads


# --------------------------------------------------------------------------- exactness
OPTION_GRID = [
    pytest.param(
        dict(
            weight=weight,
            label_smoothing=ls,
            z_loss=z,
            softcap=cap,
        ),
        id=f"w{int(weight)}-ls{ls}-z{z}-cap{cap}",
    )
    for weight, ls, z, cap in itertools.product((False, True), (0.0, 0.1), (0.0, 1e-2), (None, 3.0))
]


@pytest.mark.parametrize("chunk", [16, (7, 50)], ids=["rows16", "tile7x50"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", OPTION_GRID)
def test_matches_materialised_float64_every_option(options, reduction, chunk):
    options = dict(options)
    if options.pop("weight"):
        options["weight"] = _class_weight()
    _compare(_problem(), **F64, reduction=reduction, chunk_size=chunk, **options)


@pytest.mark.parametrize("chunk", CHUNKS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_matches_materialised_every_chunking(chunk, reduction, bias):
    options = dict(weight=_class_weight(), label_smoothing=0.2, z_loss=1e-3, softcap=2.5)
    _compare(_problem(bias=bias), **F64, reduction=reduction, chunk_size=chunk, **options)
    _compare(_problem(bias=bias, seed=1), **F64, reduction=reduction, chunk_size=chunk)


@pytest.mark.parametrize("chunk", [None, (16, 16)], ids=str)
def test_ignore_index_in_range_and_none(chunk):
    # ignore_index may be a real class; None means -100, as in torch
    params = _problem(ignore=7)
    _compare(params, **F64, ignore_index=7, chunk_size=chunk, label_smoothing=0.1)
    params = _problem()
    got = linear_cross_entropy(params[0], params[1], params[3], ignore_index=None)
    torch.testing.assert_close(got, _materialised(params[0], params[1], params[3]), **F64)


@pytest.mark.parametrize("normalizer", [5.5, torch.tensor(12.0, dtype=torch.float64)], ids=str)
@pytest.mark.parametrize("chunk", [None, (16, 16)], ids=str)
def test_normalizer(normalizer, chunk):
    _compare(_problem(), **F64, normalizer=normalizer, chunk_size=chunk, weight=_class_weight())
    x, w, _, y = _problem()
    total = linear_cross_entropy(x, w, y, reduction="sum", chunk_size=chunk)
    mean = linear_cross_entropy(x, w, y, normalizer=normalizer, chunk_size=chunk)
    torch.testing.assert_close(mean, total / float(normalizer), **F64)


@pytest.mark.parametrize("chunk", [None, 16, (16, 16)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_gives_zero_and_zero_gradients(reduction, chunk):
    x, w, b, y = _problem()
    y = torch.full_like(y, -100)
    out = linear_cross_entropy(
        x,
        w,
        y,
        linear_bias=b,
        reduction=reduction,
        chunk_size=chunk,
        z_loss=0.1,
        label_smoothing=0.1,
    )
    assert not torch.isnan(out).any()
    assert (out == 0).all()
    grads = torch.autograd.grad(out, (x, w, b), _upstream(out))
    for g in grads:
        assert (g == 0).all()


def test_empty_batch():
    x, w, b, _ = _problem(n=0)
    y = torch.zeros(0, dtype=torch.long)
    out = linear_cross_entropy(x, w, y, linear_bias=b)
    assert out.item() == 0.0
    gx, gw, gb = torch.autograd.grad(out, (x, w, b))
    assert gx.shape == (0, D) and (gw == 0).all() and (gb == 0).all()


def test_gradcheck_float64():
    """torch's finite-difference check of the hand-written backward, both sweeps."""
    x, w, b, y = _problem(n=5, d=3, v=7)
    opts = dict(weight=_class_weight(7), label_smoothing=0.1, z_loss=0.05, softcap=2.0)
    for reduction, chunk in (("none", (2, 3)), ("mean", (2, 3)), ("sum", None)):
        fn = lambda x, w, b, r=reduction, c=chunk: linear_cross_entropy(  # noqa: E731
            x, w, y, linear_bias=b, reduction=r, chunk_size=c, **opts
        )
        assert torch.autograd.gradcheck(fn, (x, w, b))


# --------------------------------------------------------------------------- shapes, dtypes
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_batch_time_input(reduction):
    params = _problem(shape=(3, 11))
    out, grads = _compare(params, **F64, reduction=reduction, chunk_size=(8, 40), softcap=4.0)
    assert grads[0].shape == (3, 11, D)
    if reduction == "none":
        assert out.shape == (3, 11)


def test_unbatched_input():
    x, w, b, y = _problem()
    out = linear_cross_entropy(x[3], w, y[3], linear_bias=b, reduction="none")
    assert out.shape == ()
    torch.testing.assert_close(out, _materialised(x, w, y, b, reduction="none")[3], **F64)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_inputs_against_float32(dtype, reduction):
    x, w, b, y = _problem(dtype=dtype, seed=2)
    weight = _class_weight(dtype=torch.float32)
    opts = dict(reduction=reduction, weight=weight, label_smoothing=0.1, z_loss=1e-3)
    out = linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=16, **opts)
    assert out.dtype == torch.float32
    grads = torch.autograd.grad(out, (x, w, b), _upstream(out))
    assert [g.dtype for g in grads] == [dtype] * 3
    # the float32 computation of the same (rounded) values, logits in memory
    ref = [t.detach().float().requires_grad_(True) for t in (x, w, b)]
    exp = _materialised(ref[0], ref[1], y, ref[2], **opts)
    exp_grads = torch.autograd.grad(exp, ref, _upstream(exp))
    torch.testing.assert_close(out, exp, rtol=5e-2, atol=5e-3)
    for got, want in zip(grads, exp_grads, strict=True):
        torch.testing.assert_close(got.float(), want, rtol=5e-2, atol=5e-3)


def test_float32_close_to_float64():
    params64 = _problem()
    params32 = [
        t.detach().float().requires_grad_(True) if t.is_floating_point() else t for t in params64
    ]
    out32, g32 = _value_and_grads(_ours, params32, label_smoothing=0.1, chunk_size=16)
    out64, g64 = _value_and_grads(_theirs, params64, label_smoothing=0.1)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-5, atol=1e-6)
    for got, want in zip(g32, g64, strict=True):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)


def test_integer_target_dtypes():
    x, w, b, y = _problem(ignore=None)
    expected = linear_cross_entropy(x, w, y)
    for dtype in (torch.int32, torch.int16, torch.uint8):
        y_small = (y % 100).to(dtype)
        torch.testing.assert_close(
            linear_cross_entropy(x, w, y_small), linear_cross_entropy(x, w, y_small.long())
        )
    assert expected.dtype == torch.float64


# --------------------------------------------------------------------------- autograd
def test_only_some_parameters_need_gradients():
    x, w, b, y = _problem()
    w.requires_grad_(False)
    for reduction in REDUCTIONS:
        out = linear_cross_entropy(x, w, y, linear_bias=b.detach(), reduction=reduction)
        (gx,) = torch.autograd.grad(out, (x,), _upstream(out))
        exp = _materialised(x, w, y, b.detach(), reduction=reduction)
        (ex,) = torch.autograd.grad(exp, (x,), _upstream(exp))
        torch.testing.assert_close(gx, ex, **F64)


def test_backward_twice_with_retain_graph():
    x, w, b, y = _problem()
    out = linear_cross_entropy(x, w, y, linear_bias=b)
    out.backward(retain_graph=True)
    first = [t.grad.clone() for t in (x, w, b)]
    out.backward()
    for t, g in zip((x, w, b), first, strict=True):
        torch.testing.assert_close(t.grad, 2 * g, **F64)


def test_no_grad_matches():
    x, w, b, y = _problem()
    with torch.no_grad():
        got = linear_cross_entropy(x, w, y, linear_bias=b, softcap=3.0)
    assert not got.requires_grad
    torch.testing.assert_close(got, _materialised(x, w, y, b, softcap=3.0), **F64)


# --------------------------------------------------------------------------- autograd rules
SECOND_ORDER = (
    "linear_cross_entropy: second derivatives are not supported on this path "
    "(create_graph=True, or nested torch.func transforms): its gradient is computed by hand "
    "and is not itself differentiable. Hint: for second derivatives (e.g. a gradient "
    "penalty), hold the logits and use losskit.functional.cross_entropy(input @ "
    "linear_weight.T + linear_bias, target, ...), which is twice differentiable."
)
# both sweeps (gradients in the forward for "mean"/"sum", a backward sweep for "none"),
# with and without vocabulary blocks
AUTOGRAD_CASES = [
    pytest.param("mean", None, id="mean"),
    pytest.param("sum", (16, 16), id="sum-blocks"),
    pytest.param("none", 16, id="none"),
    pytest.param("none", (7, 50), id="none-blocks"),
]
AUTOGRAD_OPTIONS = dict(label_smoothing=0.1, z_loss=1e-2, softcap=3.0)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("reduction, chunk", AUTOGRAD_CASES)
def test_create_graph_raises(reduction, chunk):
    """A gradient penalty needs the gradient's own graph, which the hand-written backward
    does not make: it raises instead of returning a gradient that silently has none."""
    x, w, b, y = _problem()
    opts = dict(AUTOGRAD_OPTIONS, weight=_class_weight(), reduction=reduction, chunk_size=chunk)
    loss = linear_cross_entropy(x, w, y, linear_bias=b, **opts).sum()
    with pytest.raises(losskit.LossInputError) as info:
        torch.autograd.grad(loss, x, create_graph=True)
    assert str(info.value) == SECOND_ORDER
    with pytest.raises(losskit.LossInputError, match="second derivatives are not supported"):
        loss.backward(create_graph=True, inputs=[w])
    # the first derivative is still there, from the same graph
    torch.testing.assert_close(
        torch.autograd.grad(loss, w)[0],
        torch.autograd.grad(_materialised(x, w, y, b, **_no_chunk(opts)).sum(), w)[0],
        **F64,
    )


def _no_chunk(opts):
    return {k: v for k, v in opts.items() if k != "chunk_size"}


@pytest.mark.parametrize("reduction, chunk", AUTOGRAD_CASES)
def test_torch_func_grad_equals_autograd(reduction, chunk):
    x, w, b, y = (t.detach() if t.is_floating_point() else t for t in _problem())
    opts = dict(AUTOGRAD_OPTIONS, weight=_class_weight(), reduction=reduction, chunk_size=chunk)

    def f(x, w, b):
        return linear_cross_entropy(x, w, y, linear_bias=b, **opts).sum()

    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    want = torch.autograd.grad(f(*leaves), leaves)
    with losskit.set_checks(False):  # value checks read the data
        got = torch.func.grad(f, argnums=(0, 1, 2))(x, w, b)
    for g, e in zip(got, want, strict=True):
        torch.testing.assert_close(g, e, **F64)
    with (
        losskit.set_checks(False),
        pytest.raises(losskit.LossInputError, match="second derivatives are not supported"),
    ):
        torch.func.grad(lambda x: torch.func.grad(f)(x, w, b).sum())(x)


@pytest.mark.parametrize("reduction, chunk", AUTOGRAD_CASES)
def test_vmap_and_per_sample_gradients(reduction, chunk):
    """vmap over a batch of hidden states equals the loop, and vmap(grad) gives each
    element's own weight gradient (per-sample gradients); both equal the materialised loss."""
    x, w, b, y = (t.detach() if t.is_floating_point() else t for t in _problem())
    opts = dict(AUTOGRAD_OPTIONS, weight=_class_weight(), reduction=reduction)
    batch = torch.stack([x, x * 0.5 - 0.3, x.flip(0)])

    def f(x, w):
        return linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=chunk, **opts).sum()

    def materialised(x, w):
        return _materialised(x, w, y, b, **opts).sum()

    with losskit.set_checks(False):
        torch.testing.assert_close(
            torch.func.vmap(f, in_dims=(0, None))(batch, w),
            torch.stack([materialised(h, w) for h in batch]),
            **F64,
        )
        per_sample = torch.func.vmap(torch.func.grad(f, argnums=1), in_dims=(0, None))(batch, w)
    leaf = w.clone().requires_grad_()
    want = [torch.autograd.grad(materialised(h, leaf), leaf)[0] for h in batch]
    torch.testing.assert_close(per_sample, torch.stack(want), **F64)


def test_jacrev_of_the_per_row_loss():
    x, w, b, y = (t.detach() if t.is_floating_point() else t for t in _problem(n=9))
    opts = dict(AUTOGRAD_OPTIONS, weight=_class_weight(), reduction="none")
    with losskit.set_checks(False):
        jac = torch.func.jacrev(
            lambda x: linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=4, **opts)
        )(x)
    want = torch.autograd.functional.jacobian(lambda x: _materialised(x, w, y, b, **opts), x)
    assert jac.shape == (9, 9, D)
    torch.testing.assert_close(jac, want, **F64)


# --------------------------------------------------------------------------- peers
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reference_agrees(reduction):
    x, w, b, y = _problem(shape=(3, 7))
    opts = dict(
        weight=_class_weight(), label_smoothing=0.1, z_loss=1e-2, softcap=3.0, reduction=reduction
    )
    got = linear_cross_entropy(x, w, y, linear_bias=b, chunk_size=(5, 30), **opts)
    exp = reference_linear_cross_entropy(x, w, y, linear_bias=b, **opts)
    torch.testing.assert_close(got, torch.as_tensor(exp), rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(
    not hasattr(TF, "linear_cross_entropy"), reason="torch has no linear_cross_entropy"
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch_linear_cross_entropy(reduction):
    """torch >= 2.13's own function (the options it has: weight, smoothing, ignore)."""
    x, w, b, y = (t.detach().float() if t.is_floating_point() else t for t in _problem())
    opts = dict(weight=_class_weight(dtype=torch.float32), label_smoothing=0.1)
    opts["reduction"] = reduction
    got = linear_cross_entropy(x, w, y, linear_bias=b, **opts)
    exp = TF.linear_cross_entropy(x, w, y, linear_bias=b, ignore_index=-100, **opts)
    torch.testing.assert_close(got, exp, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- memory proxy
class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any aten op returns (every intermediate, both passes)."""

    def __init__(self):
        super().__init__()
        self.largest = (0, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor) and t.numel() > self.largest[0]:
                self.largest = (t.numel(), (str(func), tuple(t.shape)))
        return out


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("chunk", [None, 32, (64, 1000)], ids=str)
def test_never_materialises_the_logits(chunk, reduction):
    """With N x V = 2048 x 8192 (16.8M logits) and D = 4, no tensor beyond one tile (or
    the (V, D) weight and its gradient) may appear, forward or backward: this fails as
    soon as anything holds the full logits, their softmax or their gradient."""
    n, d, v = 2048, 4, 8192
    x, w, b, y = _problem(n, d, v, dtype=torch.float32)
    with _LargestTensor() as probe:
        out = linear_cross_entropy(
            x,
            w,
            y,
            linear_bias=b,
            chunk_size=chunk,
            reduction=reduction,
            softcap=5.0,
            label_smoothing=0.1,
        )
        out.backward(torch.ones_like(out))
    if chunk is None:
        tile = linear_module.DEFAULT_TILE
    elif isinstance(chunk, int):
        tile = chunk * v
    else:
        tile = chunk[0] * chunk[1]
    assert tile < n * v
    assert probe.largest[0] <= max(tile, v * d, n * d), probe.largest


def test_default_chunking_of_a_huge_vocabulary():
    """Above 2**20 classes the default also blocks the vocabulary (online log-sum-exp)."""
    rows, block = linear_module._check_chunk_size(None, 4096, 2**21)
    assert rows * block <= linear_module.MAX_TILE and block < 2**21
    rows, block = linear_module._check_chunk_size(None, 4096, 50_000)
    assert (rows, block) == (80, 50_000)


# --------------------------------------------------------------------------- errors
def _message(cls, *args, **kwargs):
    with pytest.raises(cls) as info:
        linear_cross_entropy(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith("linear_cross_entropy: "), msg
    return msg


def _args():
    x, w, b, y = _problem(ignore=None)
    return x.detach(), w.detach(), b.detach(), y


def test_error_feature_mismatch():
    x, w, _, y = _args()
    msg = _message(losskit.LossInputError, x[:, :4], w, y)
    assert "linear_weight of shape (101, 6) takes 6 features" in msg
    assert "input of shape (37, 4) has 4" in msg
    square = torch.randn(D, 9, dtype=torch.float64)  # (D, V): the transpose of the weight
    msg = _message(
        losskit.LossInputError,
        torch.randn(4, D, dtype=torch.float64),
        square,
        torch.zeros(4, dtype=torch.long),
    )
    assert "Hint: linear_weight is (classes, features)" in msg


@pytest.mark.parametrize(
    "change, cls, expected",
    [
        (
            {"linear_bias": torch.zeros(100)},
            losskit.LossInputError,
            "linear_bias must hold one value per class, shape (101,), got (100,)",
        ),
        (
            {"weight": torch.ones(5)},
            losskit.LossInputError,
            "weight must hold one value per class, shape (101,), got (5,)",
        ),
        (
            {"label_smoothing": 1.5},
            losskit.LossInputError,
            "label_smoothing must be >= 0 and <= 1, got 1.5",
        ),
        ({"z_loss": -1.0}, losskit.LossInputError, "z_loss must be >= 0, got -1.0"),
        ({"softcap": 0.0}, losskit.LossInputError, "softcap must be > 0, got 0.0"),
        ({"reduction": "avg"}, losskit.LossInputError, "reduction must be one of"),
        (
            {"reduction": "sum", "normalizer": 4.0},
            losskit.LossInputError,
            "normalizer is used only with reduction='mean'",
        ),
        ({"chunk_size": 0}, losskit.LossInputError, "chunk_size must be a positive int, got 0"),
        ({"chunk_size": 2.5}, losskit.LossTypeError, "chunk_size must be a positive int"),
        ({"chunk_size": (4, 0)}, losskit.LossInputError, "chunk_size[1] (classes)"),
        ({"chunk_size": (1, 2, 3)}, losskit.LossInputError, "an int or a pair (rows, classes)"),
        ({"ignore_index": 1.5}, losskit.LossTypeError, "ignore_index must be an int"),
    ],
)
def test_error_options(change, cls, expected):
    x, w, b, y = _args()
    kwargs = {"linear_bias": b, **change}
    if "linear_bias" in change or "weight" in change:
        kwargs = {k: v.double() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    assert expected in _message(cls, x, w, y, **kwargs)


def test_error_shapes_and_dtypes():
    x, w, b, y = _args()
    msg = _message(losskit.LossInputError, x, w, y[:-1])
    assert "target must have shape (37,)" in msg and "got (36,)" in msg
    msg = _message(losskit.LossTypeError, x, w, y.double())
    assert "target must hold integer class indices" in msg and "target.long()" in msg
    msg = _message(losskit.LossTypeError, x.long(), w, y)
    assert "input must be a floating-point tensor" in msg
    msg = _message(losskit.LossTypeError, x, w.float(), y)
    assert "linear_weight must have the input's dtype (float64)" in msg and "float32" in msg
    msg = _message(losskit.LossInputError, x, w[None], y)  # torch 2.13's K-dim layer
    assert "a K-dimensional layer" in msg and "(1, 101, 6)" in msg and "(37, 101)" in msg
    msg = _message(losskit.LossInputError, x, w[0], y)
    assert "linear_weight must be (V, D)" in msg
    msg = _message(losskit.LossTypeError, x.numpy(), w, y)
    assert "input must be a torch.Tensor" in msg


def test_error_class_index_out_of_range():
    x, w, _, y = _args()
    y = y.clone()
    y[4] = V
    msg = _message(losskit.LossInputError, x, w, y)
    assert f"target has class index {V}, but linear_weight has {V} classes" in msg
    assert f"(valid 0..{V - 1}, or ignore_index=-100); 1 value out of range" in msg
    msg = _message(losskit.LossInputError, x, w, y.clamp(0, V - 1) + 1)
    assert "labels look 1-based" in msg
    with losskit.set_checks(False):  # a value check: off on request
        linear_cross_entropy(x, w, y.clamp(0, V - 1))


# ----------------------------------------------------------------------------- module
def test_module_equals_functional_and_trains_its_linear_layer():
    torch.manual_seed(3)
    head = losskit.nn.LinearCrossEntropyLoss(
        6, 40, bias=True, dtype=torch.float64, label_smoothing=0.1, z_loss=1e-3, softcap=5.0
    )
    h = torch.randn(3, 5, 6, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 40, (3, 5))
    y[0, 0] = -100
    loss = head(h, y)
    w = head.linear.weight.detach().clone().requires_grad_(True)
    b = head.linear.bias.detach().clone().requires_grad_(True)
    h2 = h.detach().clone().requires_grad_(True)
    expected = linear_cross_entropy(
        h2, w, y, linear_bias=b, label_smoothing=0.1, z_loss=1e-3, softcap=5.0
    )
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(head.linear.weight.grad, w.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(head.linear.bias.grad, b.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h.grad, h2.grad, rtol=1e-12, atol=1e-12)
    # the per-batch normalizer of the gradient-accumulation recipe
    summed = linear_cross_entropy(
        h2, w, y, linear_bias=b, label_smoothing=0.1, z_loss=1e-3, softcap=5.0, reduction="sum"
    )
    torch.testing.assert_close(head(h, y, normalizer=7.0) * 7.0, summed, rtol=1e-12, atol=1e-12)


def test_module_class_weight_is_a_buffer_and_options_are_checked():
    head = losskit.nn.LinearCrossEntropyLoss(4, 3, weight=torch.tensor([1.0, 2.0, 3.0]))
    assert "weight" in dict(head.named_buffers())
    assert set(dict(head.named_parameters())) == {"linear.weight"}
    with pytest.raises(losskit.LossInputError, match="reduction"):
        losskit.nn.LinearCrossEntropyLoss(4, 3, reduction="avg")
    with pytest.raises(losskit.LossTypeError, match="num_classes must be a positive int"):
        losskit.nn.LinearCrossEntropyLoss(4, 0)
