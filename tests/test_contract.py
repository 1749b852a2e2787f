"""Generic checks run over every registered loss: the fixed set of checks each row gets."""

from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import pytest
import torch

import losskit
from conftest import (
    SPEC_IDS,
    SPECS,
    WEIGHTED_SPECS,
    assert_close,
    batched,
    make_inputs,
    make_module,
    make_weight,
    options_for,
    spec_variants,
    variants,
)
from losskit._kinds import PLOT_AXES
from losskit._rows import FAMILIES

REDUCTIONS = ("none", "mean", "sum")
SHAPES = [(5, 7), (2, 3, 4), (6,)]


def _differentiable(args):
    """Positions of the inputs a loss is differentiated by: the input, and any floating
    input after the target (a linear layer's weight)."""
    return [0, *(i for i in range(2, len(args)) if args[i].is_floating_point())]


def _skip_detached(spec):
    """A row whose definition holds a term constant in its gradient (``detached``) has
    no numerical-gradient check here; its family's tests check that gradient instead."""
    if spec.detached:
        pytest.skip(f"gradient by definition: {spec.detached}")


def _with(args, positions, values):
    args = list(args)
    for i, v in zip(positions, values, strict=True):
        args[i] = v
    return args


def _weighted_params():
    return [pytest.param(False, id="unweighted"), pytest.param(True, id="weighted")]


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", _weighted_params())
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_functional_matches_reference_float64(spec, variant, reduction, weighted, shape):
    if weighted and spec.weight_kind is None:
        pytest.skip(f"{spec.name} takes no weight")
    options, args = options_for(spec, variant, make_inputs(spec, shape))
    if weighted:
        options["weight"] = make_weight(spec, shape)
    got = spec.functional(*args, reduction=reduction, **options)
    want = spec.reference(*args, reduction=reduction, **options)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


BUILTIN_SPECS = [s for s in SPECS if s.torch_builtin is not None]


@pytest.mark.parametrize("spec", BUILTIN_SPECS, ids=[s.name for s in BUILTIN_SPECS])
def test_torch_builtin_matches_where_torch_has_the_options(spec):
    """The row's ``torch_builtin`` (shown beside losskit by explain and the demo) gives
    losskit's value for every variant, reduction and weighting torch has; ``None``
    where it lacks an option."""
    compared = 0
    for variant in variants(spec):
        for reduction in REDUCTIONS:
            for weighted in (False, True) if spec.weight_kind else (False,):
                options, args = options_for(spec, variant, make_inputs(spec, (5, 7)))
                if weighted:
                    options["weight"] = make_weight(spec, args[0].shape)
                theirs = spec.torch_builtin(*args, reduction=reduction, **options)
                if theirs is None:
                    continue
                ours = spec.functional(*args, reduction=reduction, **options)
                assert_close(ours, theirs, msg=f"{variant}, {reduction}, weighted={weighted}")
                compared += 1
    assert compared >= len(REDUCTIONS)  # at least the default options


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_normalizer_divides_the_summed_loss(spec):
    args = make_inputs(spec)
    options = {"weight": make_weight(spec, args[0].shape)} if spec.weight_kind else {}
    got = spec.functional(*args, normalizer=3.5, **options)
    want = spec.reference(*args, normalizer=3.5, **options)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    assert_close(spec.functional(*args, normalizer=torch.tensor(3.5), **options), got)
    ref_total = spec.reference(*args, reduction="sum", **options)
    if np.isclose(want, ref_total / 3.5, rtol=1e-10):  # not RMSE: its root comes after
        total = spec.functional(*args, reduction="sum", **options)
        assert_close(got, total / 3.5)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_examples_match_reference_and_printed_value(spec):
    for example in spec.examples:
        tensors = example.tensors(torch.float64)
        got = float(spec.functional(*tensors, **example.call_options(torch.float64)))
        want = float(
            spec.reference(example.input, example.target, *example.extra, **example.options)
        )
        assert got == pytest.approx(want, rel=1e-12)
        if example.printed_value is not None:
            assert round(got, 4) == pytest.approx(example.printed_value, abs=1e-4)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_module_equals_functional(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=torch.float32))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    module, inputs = make_module(spec, args, options)
    assert isinstance(module, torch.nn.Module)
    want = spec.functional(*args, **options)
    assert torch.equal(module(*inputs), want)
    by_name, inputs = make_module(spec, args, options, functools.partial(losskit.get, spec.name))
    assert torch.equal(by_name(*inputs), want)
    if hasattr(module, "linear"):  # the module trains its own layer, with this gradient
        w = args[2].clone().requires_grad_(True)
        spec.functional(args[0], args[1], w, **options).backward()
        module(*inputs).backward()
        assert torch.equal(module.linear.weight.grad, w.grad)
    if "weight" in options:  # tensor hyperparameters are buffers: they follow .to()
        assert "weight" in dict(module.named_buffers())
        assert module.to(torch.float64).weight.dtype == torch.float64
    for alias in spec.aliases:
        assert type(losskit.get(alias)) is spec.module


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_output_shape_per_reduction(spec, shape):
    args = make_inputs(spec, shape, torch.float32)
    none = spec.functional(*args, reduction="none")
    assert none.shape == spec.none_shape(args[0].shape)
    assert spec.functional(*args, reduction="mean").shape == ()
    assert spec.functional(*args, reduction="sum").shape == ()


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("bad", ["avg", "elementwise_mean", None, "MEAN"])
def test_invalid_reduction_raises(spec, bad):
    args = make_inputs(spec, dtype=torch.float32)
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'") as info:
        spec.functional(*args, reduction=bad)
    assert str(info.value).startswith(f"{spec.name}:")
    assert isinstance(info.value, losskit.LossInputError)
    with pytest.raises(ValueError, match="'none', 'mean', 'sum'"):
        make_module(spec, args, {"reduction": bad})


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_gradcheck_float64(spec, variant):
    _skip_detached(spec)
    options, args = options_for(spec, variant, make_inputs(spec, (3, 4)))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape)
    wrt = _differentiable(args)
    params = tuple(args[i].requires_grad_(True) for i in wrt)

    def fn(*ts, **more):
        return spec.functional(*_with(args, wrt, ts), **options, **more)

    assert torch.autograd.gradcheck(fn, params)
    assert torch.autograd.gradcheck(functools.partial(fn, reduction="none"), params)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_torch_compile_parity(spec):
    torch._dynamo.reset()
    args = make_inputs(spec, dtype=torch.float32)
    wrt = _differentiable(args)
    p1 = [args[i].clone().requires_grad_(True) for i in wrt]
    p2 = [args[i].clone().requires_grad_(True) for i in wrt]
    compiled = torch.compile(spec.functional, fullgraph=True)
    got = compiled(*_with(args, wrt, p1))
    want = spec.functional(*_with(args, wrt, p2))
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    got.backward()
    want.backward()
    for a, b in zip(p1, p2, strict=True):
        assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_extreme_inputs_are_finite(spec, variant, dtype):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=dtype, extreme=True))
    params = [args[i].requires_grad_(True) for i in _differentiable(args)]
    for reduction in REDUCTIONS:
        out = spec.functional(*args, reduction=reduction, **options)
        assert torch.isfinite(out).all(), (reduction, out)
        for grad in torch.autograd.grad(out.sum(), params):
            assert torch.isfinite(grad).all(), reduction


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_extreme_inputs_have_finite_second_derivatives(spec, variant, dtype):
    """At the extreme inputs (logits of +-1e4, hard targets) the second derivative is
    finite too: the gradient taken with ``create_graph=True`` (the path a double backward
    differentiates) and its own gradient. A path without a double backward raises its
    clear error instead (``test_gradgradcheck_float64``)."""
    options, args = options_for(spec, variant, make_inputs(spec, dtype=dtype, extreme=True))
    params = [args[i].requires_grad_(True) for i in _differentiable(args)]
    for reduction in REDUCTIONS:
        out = spec.functional(*args, reduction=reduction, **options)
        try:
            grads = torch.autograd.grad(out.sum(), params, create_graph=True)
        except losskit.LossInputError as err:
            assert "second derivative" in str(err)
            return
        assert all(torch.isfinite(g).all() for g in grads), reduction
        linked = [g.sum() for g in grads if g.requires_grad]
        if not linked:  # a gradient constant in the inputs (a linear loss)
            continue
        second = torch.autograd.grad(sum(linked), params, allow_unused=True)
        assert all(h is None or torch.isfinite(h).all() for h in second), (reduction, second)


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_close_to_float32(spec, variant, dtype):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=torch.float32))
    wrt = _differentiable(args)  # the input and a linear layer's weight: in the half dtype
    floats = [args[i].to(dtype).float() for i in wrt]  # the same values in both precisions
    half = [t.to(dtype).requires_grad_(True) for t in floats]
    full = [t.clone().requires_grad_(True) for t in floats]
    y = args[1]
    half_args = _with(args, wrt, half)
    full_args = _with(args, wrt, full)
    if y.is_floating_point():  # the target too: the same values in both precisions ...
        half_args[1] = y.to(dtype)
        full_args[1] = half_args[1].float()
    got = spec.functional(*half_args, **options)
    try:
        want = spec.functional(*full_args, **options)
    except losskit.LossInputError:
        # ... unless rounding made them invalid at float32's precision (probability rows
        # that sum to 1 only within the half dtype's): then the float32 target itself
        full_args[1] = y
        want = spec.functional(*full_args, **options)
    assert got.dtype == torch.float32
    assert_close(got, want, dtype)
    got.backward()
    want.backward()
    for h, f in zip(half, full, strict=True):
        assert h.grad.dtype == dtype
        assert_close(h.grad.float(), f.grad, dtype)


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_inputs_not_modified(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, dtype=torch.float32))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    before = [a.clone() for a in args] + [options.get("weight")]
    args[0].requires_grad_(True)
    spec.functional(*args, **options).backward()
    after = [a.detach() for a in args] + [options.get("weight")]
    for a, b in zip(after, before, strict=True):
        assert a is None or torch.equal(a, b)


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("weighted", _weighted_params())
def test_retained_graph_gives_the_same_gradient_twice(
    spec, variant, reduction, weighted, monkeypatch
):
    """A closed form that turns its forward's buffer into the gradient recomputes it for
    a retained graph's second backward (every closed form, small inputs included)."""
    from losskit.functional import _fused

    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", False)
    if weighted and not spec.weight_kind:
        pytest.skip("no weight")
    options, args = options_for(spec, variant, make_inputs(spec, (4, 5), dtype=torch.float32))
    if weighted:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    wrt = _differentiable(args)
    params = [args[i].requires_grad_(True) for i in wrt]
    out = spec.functional(*args, **options, reduction=reduction)
    upstream = torch.rand(out.shape, generator=torch.Generator().manual_seed(0)) + 0.5
    first = torch.autograd.grad(out, params, upstream, retain_graph=True, allow_unused=True)
    first = [None if g is None else g.clone() for g in first]  # (a buffer reused would alias)
    second = torch.autograd.grad(out, params, upstream, allow_unused=True)
    for a, b in zip(first, second, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_vectorized_jacobian_equals_the_loop(spec, variant, reduction, monkeypatch):
    """A batched backward (``jacobian(..., vectorize=True)``, ``hessian`` too: vmap over the
    upstream gradients) gives the loop's rows: a closed form whose backward writes into its
    buffer in place cannot take a batched gradient, and takes its plain path there."""
    from losskit.functional import _fused

    monkeypatch.setattr(_fused, "KERNELS_FOR_SMALL", False)
    options, args = options_for(spec, variant, make_inputs(spec, (3, 4)))
    wrt = _differentiable(args)

    def fn(*ts):
        return spec.functional(*_with(args, wrt, ts), **options, reduction=reduction)

    params = tuple(args[i] for i in wrt)
    loop = torch.autograd.functional.jacobian(fn, params)
    if spec.name == "linear_cross_entropy" and reduction == "none":
        # its backward sweep takes one upstream gradient at a time
        with pytest.raises(losskit.LossInputError, match="vectorize=False, or torch.func"):
            torch.autograd.functional.jacobian(fn, params, vectorize=True)
        return
    vectorized = torch.autograd.functional.jacobian(fn, params, vectorize=True)
    for a, b in zip(loop, vectorized, strict=True):
        assert_close(b, a)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_empty_batch_mean_is_zero_with_zero_gradient(spec):
    args = make_inputs(spec, (4, 3))
    # a linear layer's weight is not sliced; each input along its batch dimension
    empty = [
        t.narrow(spec.target_kind.batch_dim(i), 0, 0) if b else t
        for i, (t, b) in enumerate(zip(args, batched(spec, args), strict=True))
    ]
    empty[0].requires_grad_(True)
    out = spec.functional(*empty)
    assert out.item() == 0.0
    out.backward()
    assert empty[0].grad is None or empty[0].grad.numel() == 0


@pytest.mark.parametrize("spec", WEIGHTED_SPECS, ids=[s.name for s in WEIGHTED_SPECS])
def test_all_zero_weight_mean_is_zero_with_zero_gradient(spec):
    x, *rest = make_inputs(spec, dtype=torch.float32)
    x.requires_grad_(True)
    out = spec.functional(x, *rest, weight=torch.zeros_like(make_weight(spec, x.shape)))
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_registry_row_is_complete(spec):
    assert spec.summary and spec.when_to_use and spec.examples
    assert spec.family in FAMILIES
    assert spec.plot_axis in PLOT_AXES
    assert spec.paper is None or spec.paper.startswith("https://")  # a link on its page
    # the public functions (behind the call-forms wrapper of losskit.functional), or the
    # registry's adapters around them: the same implementation underneath
    assert inspect.unwrap(getattr(losskit.functional, spec.name)) is inspect.unwrap(spec.functional)
    assert getattr(losskit.reference, spec.name) is inspect.unwrap(spec.reference)
    assert spec.functional.__doc__ and "Example" in spec.functional.__doc__
    assert losskit.spec(spec.name) is spec


@pytest.mark.parametrize("spec", WEIGHTED_SPECS, ids=[s.name for s in WEIGHTED_SPECS])
@pytest.mark.parametrize("scale", [1e38, 1e-40], ids=["huge", "subnormal"])
def test_weighted_mean_is_invariant_to_the_weights_scale(spec, scale):
    """The weighted mean ``sum(w l) / sum(w)`` does not change when every weight is
    multiplied by one number, even where ``sum(w)`` overflows or ``w`` is subnormal."""
    x, *rest = make_inputs(spec, dtype=torch.float32)
    scaled = make_weight(spec, x.shape, torch.float32) * scale
    # the same (rounded) weights at scale 1: subnormal ones carry fewer digits
    want = spec.functional(x, *rest, weight=(scaled.double() / scale).float())
    xg = x.clone().requires_grad_(True)
    got = spec.functional(xg, *rest, weight=scaled)
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(got, xg)
    assert torch.isfinite(grad).all()


def _hard(spec, shape):
    """Hard targets, with logits (residuals) of +-100; inputs bounded to a domain
    (probabilities) stay inside it, where their derivatives are defined."""
    args = list(make_inputs(spec, shape, extreme=True))
    if spec.input_kind.scalable:
        # a loss that sorts its errors has a kink at ties: off them, it stays hard
        args[0] = spec.target_kind.untie(args[0].sign() * 100.0)
    else:
        args[0] = make_inputs(spec, shape)[0]
    return args


@pytest.mark.parametrize("spec, variant", spec_variants())
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_gradgradcheck_float64(spec, variant, hard):
    """Second derivatives: float64 gradgradcheck of every row and variant; a path without
    a double backward raises a clear losskit error instead of a silent graph-less one."""
    _skip_detached(spec)
    sample = _hard(spec, (3, 4)) if hard else make_inputs(spec, (3, 4))
    options, args = options_for(spec, variant, sample)
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape)
    wrt = _differentiable(args)
    params = tuple(args[i].requires_grad_(True) for i in wrt)

    def fn(*ts):
        return spec.functional(*_with(args, wrt, ts), **options)

    out = fn(*params)
    try:
        torch.autograd.grad(out, params, create_graph=True)
    except losskit.LossInputError as err:
        assert "second derivative" in str(err) and str(err).startswith(f"{spec.name}:")
        return
    assert torch.autograd.gradgradcheck(fn, params)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_torch_func_vmap_and_grad_with_checks_on(spec):
    """torch.func transforms work with value checks on: vmap over a batch of calls equals
    the calls one by one, and grad equals autograd's gradient."""
    args = make_inputs(spec, (3, 4))
    options = {"weight": make_weight(spec, args[0].shape)} if spec.weight_kind else {}
    assert losskit.checks_enabled()

    def loss(x, *rest):
        return spec.functional(x, *rest, **options)

    x = args[0].requires_grad_(True)
    (want,) = torch.autograd.grad(loss(x, *args[1:]), x)
    got = torch.func.grad(loss)(args[0].detach(), *args[1:])
    assert_close(got, want)
    stacked = [
        torch.stack([a, a]) if b else a for a, b in zip(args, batched(spec, args), strict=True)
    ]
    dims = [0 if b else None for b in batched(spec, args)]
    values = torch.func.vmap(loss, in_dims=tuple(dims))(*stacked)
    assert_close(values, torch.stack([loss(*args).detach()] * 2))


_INF = float("inf")
# (logits, probability target, the loss's cross entropy part): 0 log 0 = 0
_MASKED_ROWS = [
    ([[-_INF, 0.0, 0.0]], [[0.0, 0.5, 0.5]], math.log(2.0)),
    ([[-_INF, 0.0, -_INF]], [[0.0, 1.0, 0.0]], 0.0),
    ([[-_INF, 1.0, -2.0]], [[0.0, 0.3, 0.7]], None),
]
_LOGIT_ROWS = [s for s in SPECS if s.input_kind is losskit._kinds.LOGITS and s.target_kind.integer]
_LOGIT_ROWS += [s for s in SPECS if s.target_kind is losskit._kinds.ROWS]


@pytest.mark.parametrize("spec", _LOGIT_ROWS, ids=[s.name for s in _LOGIT_ROWS])
@pytest.mark.parametrize("row", range(len(_MASKED_ROWS)))
def test_zero_probability_of_a_masked_class_is_inert(spec, row):
    """A class of target probability 0 whose logit is -inf (a masked vocabulary) adds
    nothing: finite value and gradient, 0 log 0 = 0, and cross entropy's value exact."""
    logits, q, want = _MASKED_ROWS[row]
    options = (
        {"from_logits": True}
        if "from_logits" in inspect.signature(spec.functional).parameters
        else {}
    )
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    target = torch.tensor(q, dtype=torch.float64)
    try:
        out = spec.functional(x, target, **options)
    except losskit.LossInputError as err:
        assert "class indices" in str(err)  # this loss takes index targets only
        pytest.skip(f"{spec.name} takes no probability targets")
    (grad,) = torch.autograd.grad(out, x)
    assert torch.isfinite(out) and torch.isfinite(grad).all(), (out, grad)
    if want is not None and spec.name in ("cross_entropy", "categorical_cross_entropy"):
        assert out.item() == pytest.approx(want, abs=1e-12)


def _ignored_positions(spec, args, options):
    """Where the input is not counted, for rows whose input and target share a shape
    (``ignore_index`` targets) or that take anchor states (-1: ignored); ``None`` else."""
    x, y = args[0], args[1]
    if spec.extra_inputs and spec.extra_inputs[0].name == "anchor_state":
        return (args[2] == -1).unsqueeze(-1).expand_as(x)
    ignore = options.get("ignore_index")
    if ignore is None:
        return None
    if y.shape == x.shape:
        return y == ignore
    rows = y == ignore  # one target per row of classes (dim 1) or of features (last dim)
    return (rows.unsqueeze(-1) if y.shape == x.shape[:-1] else rows.unsqueeze(1)).expand_as(x)


_IGNORING = [
    pytest.param(s, v, id=f"{s.name}-{i}")
    for s in SPECS
    for i, v in enumerate(variants(s))
    if "ignore_index" in v or s.extra_inputs[:1] and s.extra_inputs[0].name == "anchor_state"
]


@pytest.mark.parametrize("spec, variant", _IGNORING)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=str)
def test_ignored_positions_are_inert(spec, variant, bad):
    """A NaN or inf where nothing is counted reaches neither the value nor the gradient."""
    options, args = options_for(spec, variant, make_inputs(spec, (4, 5)))
    where = _ignored_positions(spec, args, options)
    assert where is not None and where.any()
    clean = args[0].clone().requires_grad_(True)
    dirty = args[0].masked_fill(where, bad).requires_grad_(True)
    for reduction in REDUCTIONS:
        want = spec.functional(clean, *args[1:], reduction=reduction, **options)
        got = spec.functional(dirty, *args[1:], reduction=reduction, **options)
        assert_close(got, want)
        (g_want,) = torch.autograd.grad(want.sum(), clean)
        (g_got,) = torch.autograd.grad(got.sum(), dirty)
        assert_close(g_got, g_want)
