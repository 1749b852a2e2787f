"""Trust at the edges (issue 11): saturated logits, weighted means whose weights cancel,
kernels on empty maps and out-of-range targets, and paths without a double backward.

Each class of edge runs over every registry row it applies to, selected by what the row
declares (its kinds, its signature), so new losses inherit the test."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

import losskit
import losskit.functional as LF
from conftest import (
    SPECS,
    WEIGHTED_SPECS,
    assert_close,
    batched,
    options_for,
    spec_variants,
)
from losskit import kernels
from losskit._kinds import LOGITS
from losskit.functional import _rowstats

INF = float("inf")
# the kernel path: Triton's interpreter on CPU (conftest sets it), CUDA where there is one
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
REDUCTIONS = ("none", "mean", "sum")


@pytest.fixture(autouse=True)
def _quiet_interpreter():
    # Triton's interpreter evaluates both sides of tl.where; inf * 0 there is harmless
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _takes(spec, option):
    return option in inspect.signature(inspect.unwrap(spec.functional)).parameters


# --------------------------------------------------------------------------- saturated logits
def _elementwise_logit_rows():
    """Rows of the sigmoid family: logits with a target of the input's shape and one loss
    per element (``reduction="none"`` keeps the input's shape)."""
    rows = []
    for spec in SPECS:
        if spec.input_kind is not LOGITS:
            continue
        x, y = spec.sample((3, 4), extreme=True)[:2]
        if y.shape == x.shape and y.is_floating_point() and spec.none_shape(x.shape) == x.shape:
            rows.append(spec)
    return rows


SIGMOID_ROWS = _elementwise_logit_rows()


def _saturated(spec, variant, dtype, scale):
    """Hard targets, and logits of ``scale`` times the sign that agrees with each target
    (+ for 1, - for 0): ``scale = inf`` saturates them."""
    options, args = options_for(spec, variant, spec.sample((3, 4), dtype, extreme=True))
    y = args[1]
    args[0] = (torch.where(y > 0.5, 1.0, -1.0) * scale).to(dtype).requires_grad_(True)
    return options, args


def test_the_sigmoid_family_is_found():
    names = {s.name for s in SIGMOID_ROWS}
    assert {"binary_cross_entropy_with_logits", "sigmoid_focal_loss"} <= names
    assert "detection_focal_loss" in names and "cross_entropy" not in names


@pytest.mark.parametrize("spec, variant", spec_variants(SIGMOID_ROWS))
def test_saturated_logits_give_their_limit(spec, variant, dtype=torch.float32):
    """Logits of +-inf give the loss's limit: 0 with a zero gradient where the logit agrees
    with its target (x = +inf, y = 1; x = -inf, y = 0), never NaN; +inf where the target is
    not hard (label smoothing), still with a finite gradient."""
    for reduction in REDUCTIONS:
        options, (x, *rest) = _saturated(spec, variant, dtype, INF)
        out = spec.functional(x, *rest, reduction=reduction, **options)
        (grad,) = torch.autograd.grad(out.sum(), x)
        options, (x_big, *_) = _saturated(spec, variant, dtype, 1e4)
        limit = spec.functional(x_big, *rest, reduction=reduction, **options)
        assert not out.isnan().any(), (reduction, out)
        assert torch.isfinite(grad).all(), (reduction, grad)
        want = torch.where(limit.detach() == 0, 0.0, INF).to(out.dtype)
        assert torch.equal(out.detach(), want), (reduction, out, limit)
        if (limit == 0).all():
            assert torch.equal(grad, torch.zeros_like(grad)), reduction


@pytest.mark.parametrize("fn", [LF.binary_cross_entropy_with_logits, LF.sigmoid_focal_loss])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_an_infinite_logit_against_its_target_is_an_infinite_loss(fn, dtype):
    """x = -inf with y = 1 (or +inf with y = 0, or any soft target) is an infinite loss,
    not NaN and not a large finite number; the other elements keep their gradients."""
    x = torch.tensor([-INF, INF, INF, 1.0], dtype=dtype, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.5, 1.0], dtype=dtype)
    none = fn(x, y, reduction="none")
    assert torch.equal(torch.isinf(none), torch.tensor([True, True, True, False]))
    for reduction in ("mean", "sum"):
        out = fn(x, y, reduction=reduction)
        assert out.item() == INF
        (grad,) = torch.autograd.grad(out, x)
        (want,) = torch.autograd.grad(fn(x[3:], y[3:], reduction="sum"), x)
        assert grad[3] == want[3] * (0.25 if reduction == "mean" else 1.0)
        assert torch.equal(grad[:3], torch.zeros(3, dtype=dtype))


KERNEL_SIGMOID_ROWS = [s for s in SIGMOID_ROWS if _takes(s, "backend")]


@pytest.mark.skipif(not kernels.triton_importable(), reason="needs Triton")
@pytest.mark.parametrize("spec, variant", spec_variants(KERNEL_SIGMOID_ROWS))
def test_saturated_logits_on_the_kernel_path(spec, variant):
    """The sigmoid kernel gives the torch path's limits at +-inf: values and gradients."""
    x0 = torch.tensor([[INF, -INF, INF, -INF, 2.0], [INF, -INF, 0.5, -3.0, -INF]])
    y0 = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.3, 0.0, 0.0]])
    options, (x0, y0) = options_for(spec, variant, (x0, y0))
    for reduction in REDUCTIONS:
        got, want = [], []
        for backend, into in (("triton", got), ("torch", want)):
            x = x0.to(DEVICE).clone().requires_grad_(True)
            out = spec.functional(x, y0.to(DEVICE), backend=backend, reduction=reduction, **options)
            (grad,) = torch.autograd.grad(out.sum(), x)
            into += [out.detach(), grad]
        assert not got[0].isnan().any() and torch.isfinite(got[1]).all()
        assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
        assert_close(got[1], want[1], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- weighted means
def _cancelling(spec, shape=(4, 6)):
    """Inputs and a weight of the row's kind whose counted sum is exactly 0 while it is not
    all 0: +-1 alternating for element and sample weights (an even number of them); class
    weights ``[1, -1, 0, ...]``, with index targets alternating between classes 0 and 1 so
    that both are counted equally often."""
    args = list(spec.sample(shape))
    like = spec.sample_weight(args[0].shape)
    if spec.weight_kind == "class":
        w = torch.zeros_like(like)
        w[0], w[1] = 1.0, -1.0
        if spec.target_kind.integer:
            y = torch.arange(args[1].numel()) % 2
            args[1] = y.view(args[1].shape).to(args[1].dtype)
        return args, w
    assert like.numel() % 2 == 0
    pattern = torch.tensor([1.0, -1.0], dtype=like.dtype).repeat(like.numel() // 2)
    return args, pattern.view(like.shape)


@pytest.mark.parametrize("spec", WEIGHTED_SPECS, ids=[s.name for s in WEIGHTED_SPECS])
def test_weights_that_cancel_have_no_mean(spec):
    """Weights whose counted sum is 0 while some are not 0: the weighted mean has no value,
    a LossInputError under value checks naming the loss (negative weights are allowed, as
    in torch, as long as they do not cancel)."""
    args, w = _cancelling(spec)
    with pytest.raises(losskit.LossInputError, match="sum to 0 while some are not 0") as info:
        spec.functional(*args, weight=w)
    assert str(info.value).startswith(f"{spec.name}:")
    assert spec.functional(*args, weight=w.abs()).isfinite()  # the same weights, >= 0


@pytest.mark.parametrize("fn", [LF.mse_loss, LF.cross_entropy, LF.binary_cross_entropy])
def test_weights_that_cancel_with_checks_off_are_not_a_number(fn):
    """The issue's case: mse_loss with weight [1, -1] returned -8.0, the sum."""
    x, y = torch.tensor([0.2, 0.9]), torch.tensor([0.0, 1.0])
    if fn is LF.cross_entropy:
        x, y = torch.tensor([[1.0, 2.0], [0.5, -1.0]]), torch.tensor([0, 1])
    with losskit.set_checks(False):
        out = fn(x, y, weight=torch.tensor([1.0, -1.0]))
    assert not torch.isfinite(out), out


@pytest.mark.parametrize("spec", WEIGHTED_SPECS, ids=[s.name for s in WEIGHTED_SPECS])
def test_negative_weights_that_do_not_cancel_are_a_mean(spec):
    """Negative weights are allowed (torch takes them): the mean is sum(w l) / sum(w), as
    the reference computes it."""
    args = spec.sample((4, 6))
    w = spec.sample_weight(args[0].shape)
    w.view(-1)[0] = -0.1  # one negative weight; the sum stays positive
    got = spec.functional(*args, weight=w)
    want = spec.reference(*args, weight=w)
    assert torch.isfinite(got)
    torch.testing.assert_close(
        got.double(), torch.tensor(float(want), dtype=torch.float64), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_a_tensor_normalizer_of_zero_with_elements_counted(spec):
    """A tensor normalizer of 0 while elements are counted is a LossInputError under
    value checks, as the float 0 is; with them off the mean is not a number (not the
    sum). Where nothing is counted (an empty batch) it is the empty mean, 0."""
    args = spec.sample((4, 6))
    zero = torch.zeros((), dtype=torch.float64)
    with pytest.raises(losskit.LossInputError, match="normalizer is 0 while elements") as info:
        spec.functional(*args, normalizer=zero)
    assert str(info.value).startswith(f"{spec.name}:")
    with losskit.set_checks(False):
        assert not torch.isfinite(spec.functional(*args, normalizer=zero))
    empty = [
        t.narrow(spec.target_kind.batch_dim(i), 0, 0) if b else t
        for i, (t, b) in enumerate(zip(args, batched(spec, args), strict=True))
    ]
    assert spec.functional(*empty, normalizer=zero).item() == 0.0


# --------------------------------------------------------------------------- kernels
# rows with a kernel of their own (linear cross entropy has its tests in test_linear*.py)
KERNEL_ROWS = [s for s in SPECS if _takes(s, "backend") and not s.extra_inputs]
needs_triton = pytest.mark.skipif(not kernels.triton_importable(), reason="needs Triton")


def _run(spec, x, y, backend, **options):
    """Value and input gradient (a random upstream gradient) on one path."""
    leaf = x.detach().to(DEVICE).clone().requires_grad_(True)
    value = spec.functional(leaf, y.to(DEVICE), backend=backend, **options)
    g = torch.rand(value.shape, generator=torch.Generator().manual_seed(0)) + 1.0
    (grad,) = torch.autograd.grad((value * g.to(DEVICE)).sum(), leaf, allow_unused=True)
    return value.detach().cpu(), None if grad is None else grad.cpu()


def _both(spec, x, y, **options):
    return _run(spec, x, y, "triton", **options), _run(spec, x, y, "torch", **options)


@needs_triton
@pytest.mark.parametrize("spec", KERNEL_ROWS, ids=[s.name for s in KERNEL_ROWS])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kernel_on_a_map_with_an_empty_spatial_dimension(spec, reduction):
    """Input (2, 3, 0): the kernel launches nothing and returns what the torch path does."""
    x = torch.randn(2, 3, 0)
    y = torch.zeros(2, 0, dtype=torch.long) if spec.target_kind.integer else torch.zeros(2, 3, 0)
    (got, g_got), (want, g_want) = _both(spec, x, y, reduction=reduction)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got, want)
    assert g_got is None or g_got.shape == x.shape


INDEX_KERNEL_ROWS = [s for s in KERNEL_ROWS if s.target_kind.integer]


@needs_triton
@pytest.mark.parametrize("spec", INDEX_KERNEL_ROWS, ids=[s.name for s in INDEX_KERNEL_ROWS])
def test_kernel_out_of_range_class_reads_nothing_out_of_bounds(spec):
    """With value checks off, a class out of range is never gathered out of bounds: its
    row's loss and gradient are NaN, the other rows are the torch path's."""
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([1, 5, -3, 10**6])
    with losskit.set_checks(False):  # the torch path raises torch's IndexError here
        got, grad = _run(spec, x, y, "triton", reduction="none")
    want, g_want = _run(spec, x[:1], y[:1], "torch", reduction="none")
    assert torch.isnan(got[1:]).all() and torch.isnan(grad[1:]).all()
    assert_close(got[:1], want, rtol=1e-5, atol=1e-6)
    assert_close(grad[:1], g_want, rtol=1e-5, atol=1e-6)


IGNORING_SIGMOID_KERNEL_ROWS = [
    s for s in KERNEL_ROWS if not s.target_kind.integer and _takes(s, "ignore_index")
]


@needs_triton
@pytest.mark.parametrize(
    "spec", IGNORING_SIGMOID_KERNEL_ROWS, ids=[s.name for s in IGNORING_SIGMOID_KERNEL_ROWS]
)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("ignore", [0.1, 2.2])
def test_half_precision_target_and_ignore_index_one_mask_on_both_paths(spec, dtype, ignore):
    """A 16-bit target equals ignore_index as torch compares it, in the target's dtype:
    target [0.1, 1, 0] in float16 with ignore_index=0.1 ignores the first element on both
    paths (and 2.2 no longer gives a negative loss on the kernel)."""
    x = torch.tensor([0.3, -1.2, 2.0], dtype=dtype)
    y = torch.tensor([ignore, 1.0, 0.0], dtype=dtype)
    for reduction in REDUCTIONS:
        (got, g_got), (want, g_want) = _both(spec, x, y, ignore_index=ignore, reduction=reduction)
        assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert_close(g_got.float(), g_want.float(), torch.float32, rtol=1e-2, atol=1e-3)
    none = _both(spec, x, y, ignore_index=ignore, reduction="none")[0][0]
    assert none[0] == 0 and (none >= 0).all()


# --------------------------------------------------------------------------- second derivatives
def _kernel_problem(spec):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, generator=g)
    if spec.target_kind.integer:
        return x.to(DEVICE), torch.tensor([0, 3, 1], device=DEVICE)
    return x.to(DEVICE), (torch.rand(3, 4, generator=g) > 0.5).float().to(DEVICE)


@needs_triton
@pytest.mark.parametrize("spec", KERNEL_ROWS, ids=[s.name for s in KERNEL_ROWS])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_kernel_create_graph_is_a_clear_error(spec, reduction):
    """The kernels' gradients are computed by hand, with no double backward: a gradient
    penalty gets a losskit error naming the loss, never a gradient without a graph; the
    first derivative is still there, from the same graph."""
    x, y = _kernel_problem(spec)
    x.requires_grad_(True)
    out = spec.functional(x, y, backend="triton", reduction=reduction).sum()
    with pytest.raises(losskit.LossInputError, match="second derivatives are not supported") as e:
        torch.autograd.grad(out, x, create_graph=True)
    assert str(e.value).startswith(f"{spec.name}:") and "backend='torch'" in str(e.value)
    (grad,) = torch.autograd.grad(out, x)
    assert torch.isfinite(grad).all()
    with losskit.set_checks(False), pytest.raises(losskit.LossInputError, match="second"):
        torch.func.grad(torch.func.grad(lambda a: spec.functional(a, y, backend="triton").sum()))(
            x.detach()
        )


@needs_triton
@pytest.mark.parametrize("spec", KERNEL_ROWS, ids=[s.name for s in KERNEL_ROWS])
def test_kernel_under_torch_func_transforms(spec):
    """grad, vmap, vmap(grad) and jacrev on the kernel path equal the torch path's (the
    Functions define setup_context and a vmap rule: each element of a batch is launched on
    its own)."""
    x, y = _kernel_problem(spec)
    batch = torch.stack([x, x.flip(0)])

    def f(backend, reduction="mean"):
        return lambda a: spec.functional(a, y, backend=backend, reduction=reduction)

    func = torch.func
    with losskit.set_checks(False):  # value checks read the data
        for transform, arg in [
            (func.grad, x),
            (func.vmap, batch),
            (lambda g: func.vmap(func.grad(g)), batch),
        ]:
            assert_close(
                transform(f("triton"))(arg), transform(f("torch"))(arg), rtol=1e-5, atol=1e-6
            )
        got = func.jacrev(f("triton", "none"))(x)
        want = func.jacrev(f("torch", "none"))(x)
    assert_close(got, want, rtol=1e-5, atol=1e-6)


def _autograd_functions():
    import importlib
    import pkgutil

    import losskit.functional
    import losskit.kernels

    names = ["losskit.distributed"]
    for package in (losskit.functional, losskit.kernels):
        if package is losskit.kernels and not kernels.triton_importable():
            continue
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    found = {}
    for name in names:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, torch.autograd.Function)
                and obj.__module__ == name
                and obj is not _rowstats.Function  # the base of those below
            ):
                found[f"{name}.{obj.__qualname__}"] = obj
    return found


def test_every_autograd_function_has_setup_context():
    """Every custom autograd Function of losskit separates forward and setup_context, the
    form torch.func (grad, vmap, jacrev) requires."""
    found = _autograd_functions()
    assert "losskit.kernels.softmax._SoftmaxLoss" in found or not kernels.triton_importable()
    missing = [
        name
        for name, fn in found.items()
        if fn.setup_context is torch.autograd.Function.setup_context
        and not getattr(fn, "EAGER_ONLY", False)
    ]
    assert not missing, missing


def test_every_function_with_setup_context_binds_its_arguments_without_inspect():
    """torch's Function.apply binds each call's arguments to inspect.signature(forward)
    for a Function with a setup_context (about 25 us a call): every such losskit Function
    derives from _rowstats.Function, which computes that signature once."""
    import inspect

    found = _autograd_functions()
    assert "losskit.functional.ctc._CTC" in found
    with_context = {
        name: fn
        for name, fn in found.items()
        if fn.setup_context is not torch.autograd.Function.setup_context
    }
    assert len(with_context) >= 4
    for name, fn in with_context.items():
        assert issubclass(fn, _rowstats.Function), name
        forward = inspect.getattr_static(fn, "forward")
        forward = forward.__func__ if isinstance(forward, staticmethod) else forward
        kept = vars(forward).pop("__signature__")
        try:  # the kept signature is the forward's own, computed afresh
            assert kept == inspect.signature(forward), name
        finally:
            forward.__signature__ = kept


def test_eager_only_functions_are_not_applied_under_torch_func(monkeypatch):
    """A Function declared ``EAGER_ONLY`` (the closed-form gradients of the torch path)
    is never applied inside a torch.func transform or torch.compile: there the plain
    autograd path runs, so grad and vmap work without its setup_context."""
    from losskit.functional import _fused

    def refuse(*args, **kwargs):
        raise AssertionError("_Fused.apply under a transform")

    rows = [s for s in SPECS if s.name in ("log_cosh_loss", "pseudo_huber_loss", "kl_div")]
    assert len(rows) == 3
    for spec in rows:
        x, *rest = spec.sample((3, 4))
        leaf = x.clone().requires_grad_()
        (want,) = torch.autograd.grad(spec.functional(leaf, *rest), leaf)
        monkeypatch.setattr(_fused._Fused, "apply", refuse)
        with pytest.raises(AssertionError, match="under a transform"):  # eager applies it
            spec.functional(x.clone().requires_grad_(), *rest)
        got = torch.func.grad(lambda t, spec=spec, rest=rest: spec.functional(t, *rest))(x)
        monkeypatch.undo()
        torch.testing.assert_close(got, want)
