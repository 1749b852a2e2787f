"""kl_div, poisson_nll_loss and gaussian_nll_loss: torch parity (values and gradients in
float64, every option), the variance's shapes, and the edges where torch gives NaN."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from losskit import reference as R

D = torch.float64


def _grads(fn, *leaves):
    leaves = [t.detach().clone().requires_grad_(True) for t in leaves]
    out = fn(*leaves)
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    return out.detach(), grads


def _assert_same(ours, theirs, *leaves):
    (a, ga), (b, gb) = _grads(ours, *leaves), _grads(theirs, *leaves)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def _torch_kl(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TF.kl_div(*args, **kw)


# ----------------------------------------------------------------------------- kl_div
@pytest.mark.parametrize(
    "reduction, log_target",
    list(itertools.product(["none", "mean", "sum", "batchmean"], [False, True])),
)
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2), (6,), ()])
def test_kl_div_matches_torch_values_and_gradients(reduction, log_target, shape):
    g = torch.Generator().manual_seed(0)
    x = (
        torch.randn(shape, generator=g, dtype=D).log_softmax(-1)
        if shape
        else torch.tensor(-0.3, dtype=D)
    )
    q = torch.rand(shape, generator=g, dtype=D)
    y = q.log() if log_target else q
    _assert_same(
        lambda a, b: LF.kl_div(a, b, reduction=reduction, log_target=log_target),
        lambda a, b: _torch_kl(a, b, reduction=reduction, log_target=log_target),
        x,
        y,  # the target's gradient too, as torch's
    )


def _node_names(out):
    """The names of the autograd nodes behind ``out``."""
    seen, todo = set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(n for n, _ in node.next_functions)
    return {n.name() for n in seen}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_kl_div_log_target_closed_form_is_torch(reduction, dtype):
    """A log-target that needs no gradient takes the closed form (``d/dx = -q``, no masks):
    torch's value and input gradient; a log-target of ``-inf`` (``q = 0``) is computed
    again with the masks (0, where torch's is NaN)."""
    from losskit.functional import distributions

    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 9, generator=g, dtype=dtype).log_softmax(-1)
    ly = torch.randn(6, 9, generator=g, dtype=dtype).log_softmax(-1)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    got = LF.kl_div(a, ly, reduction=reduction, log_target=True)
    assert "_FusedBackward" in _node_names(got)  # the closed form, not the masks
    want = _torch_kl(b, ly, reduction=reduction, log_target=True)
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else {}
    torch.testing.assert_close(got, want, **tol)
    torch.testing.assert_close(
        torch.autograd.grad(got.sum(), a)[0], torch.autograd.grad(want.sum(), b)[0], **tol
    )
    ly[0, 0] = -math.inf
    out = LF.kl_div(x, ly, reduction=reduction, log_target=True)
    masked = distributions._kl_log_plain(x, ly)
    assert torch.isfinite(out).all()
    if reduction == "none":
        torch.testing.assert_close(out, masked)


def test_kl_div_log_target_of_both_infinities_is_no_nan():
    """+inf and -inf in a log-target sum to NaN: the NaN check then counts, and finds none."""
    x = torch.full((1, 3), -1.0)
    LF.kl_div(x, torch.tensor([[math.inf, -math.inf, -1.0]]), log_target=True)


def test_kl_div_batchmean_is_the_mean_kl_of_the_rows():
    p = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=D)
    q = torch.tensor([[0.1, 0.1, 0.8], [0.5, 0.25, 0.25]], dtype=D)
    kl_rows = (q * (q / p).log()).sum(1)  # KL(q || p) by its definition
    assert LF.kl_div(p.log(), q, reduction="batchmean").item() == pytest.approx(
        kl_rows.mean().item(), rel=1e-14
    )
    assert LF.kl_div(p.log(), q.log(), reduction="batchmean", log_target=True).item() == (
        pytest.approx(kl_rows.mean().item(), rel=1e-14)
    )
    # "mean" divides by the elements: the batch mean over the classes too
    assert LF.kl_div(p.log(), q).item() == pytest.approx(kl_rows.mean().item() / 3, rel=1e-14)
    np.testing.assert_allclose(R.kl_div(p.log(), q, reduction="batchmean"), kl_rows.mean())


def test_kl_div_zero_target_is_inert_against_minus_inf_input():
    """0 log 0 = 0: a masked class (log p = -inf) of target 0 adds nothing; torch: NaN."""
    x = torch.tensor([[-math.inf, math.log(0.5), math.log(0.5)]], dtype=D, requires_grad=True)
    q = torch.tensor([[0.0, 0.5, 0.5]], dtype=D)
    out = LF.kl_div(x, q, reduction="batchmean")
    assert out.item() == 0.0
    assert _torch_kl(x, q, reduction="batchmean").isnan()
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(g).all() and g[0, 0] == 0
    lq = q.log()  # log target of -inf: also inert
    out = LF.kl_div(x, lq, reduction="sum", log_target=True)
    assert out.item() == 0.0
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(g).all()


def test_kl_div_empty_and_scalar():
    x = torch.zeros(0, 3, dtype=D, requires_grad=True)
    for reduction in ("mean", "batchmean", "sum"):
        out = LF.kl_div(x, torch.zeros(0, 3, dtype=D), reduction=reduction)
        assert out.item() == 0.0  # torch: NaN for mean and batchmean
        out.backward()
    # a 0-dim input: batchmean is the sum, as torch
    s = torch.tensor(-0.5, dtype=D)
    t = torch.tensor(0.25, dtype=D)
    torch.testing.assert_close(
        LF.kl_div(s, t, reduction="batchmean"), _torch_kl(s, t, reduction="batchmean")
    )


def test_kl_div_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(losskit.LossInputError, match="target must hold values >= 0") as info:
        LF.kl_div(x, torch.tensor([[0.5, -0.5, 1.0], [0.2, 0.3, 0.5]]))
    assert "log_target=True" in str(info.value)
    with pytest.raises(losskit.LossInputError, match="1 NaN"):
        LF.kl_div(x, torch.tensor([[0.5, math.nan, 0.5], [0.2, 0.3, 0.5]]))
    with pytest.raises(losskit.LossInputError, match="target must not hold NaN, found 1"):
        LF.kl_div(x, torch.tensor([[-0.5, math.nan, -1.0], [-2.0, -1.0, -1.0]]), log_target=True)
    with pytest.raises(losskit.LossInputError, match="'batchmean', got 'batch_mean'"):
        LF.kl_div(x, x.softmax(1), reduction="batch_mean")
    with pytest.raises(losskit.LossInputError, match="does not match input shape"):
        LF.kl_div(x, torch.zeros(3))
    with pytest.raises(losskit.LossInputError, match="only with reduction='mean'"):
        LF.kl_div(x, x.softmax(1), reduction="batchmean", normalizer=2.0)
    with pytest.raises(losskit.LossTypeError, match="target must be a floating-point"):
        LF.kl_div(x, torch.zeros(2, 3, dtype=torch.long))
    with losskit.set_checks(False):  # off: torch's value
        bad = torch.tensor([[0.5, -0.5, 1.0], [0.2, 0.3, 0.5]])
        got = LF.kl_div(x, bad, reduction="sum")
        assert torch.isfinite(got)


def test_kl_div_module_takes_torch_forms():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 4, generator=g, dtype=D).log_softmax(1)
    q = torch.randn(3, 4, generator=g, dtype=D).softmax(1)
    ours = losskit.nn.KLDivLoss(reduction="batchmean")(x, q)
    torch.testing.assert_close(ours, _torch_kl(x, q, reduction="batchmean"))
    # torch's positional order: size_average, reduce, reduction, log_target
    m = losskit.nn.KLDivLoss(None, None, "sum", True)
    want = torch.nn.KLDivLoss(None, None, "sum", True)(x, q.log())
    torch.testing.assert_close(m(x, q.log()), want)
    with pytest.raises(losskit.LossInputError, match="'batchmean'"):
        losskit.nn.KLDivLoss(reduction="elementwise_mean")
    assert type(losskit.get("KLDivLoss")) is losskit.nn.KLDivLoss


# ----------------------------------------------------------------------------- Poisson
@pytest.mark.parametrize(
    "log_input, full, eps, reduction",
    list(itertools.product([True, False], [False, True], [1e-8, 0.1], ["none", "mean", "sum"])),
)
def test_poisson_nll_matches_torch(log_input, full, eps, reduction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, generator=g, dtype=D)
    if not log_input:
        x = x.abs()
    y = torch.randint(0, 7, (5, 4), generator=g).to(D)
    y[0, 0] = 1.0  # the Stirling term's edge: y <= 1 adds nothing
    kw = dict(log_input=log_input, full=full, eps=eps, reduction=reduction)
    _assert_same(
        lambda a, b: LF.poisson_nll_loss(a, b, **kw),
        lambda a, b: TF.poisson_nll_loss(a, b, **kw),
        x,
        y,
    )


def test_poisson_nll_torch_forms_and_weight():
    x = torch.randn(3, 4, dtype=D)
    y = torch.randint(0, 5, (3, 4)).to(D)
    # torch's positional order: log_input, full, size_average, eps, reduce, reduction
    m = losskit.nn.PoissonNLLLoss(True, True, None, 1e-8, None, "sum")
    torch.testing.assert_close(
        m(x, y), torch.nn.PoissonNLLLoss(True, True, None, 1e-8, None, "sum")(x, y)
    )
    torch.testing.assert_close(
        LF.poisson_nll_loss(x, y, True, True), TF.poisson_nll_loss(x, y, True, True)
    )
    w = torch.rand(3, 4, dtype=D) + 0.5
    per = LF.poisson_nll_loss(x, y, reduction="none")
    got = LF.poisson_nll_loss(x, y, weight=w)
    assert got.item() == pytest.approx(((w * per).sum() / w.sum()).item(), rel=1e-14)


def test_poisson_nll_negative_rate_is_an_error():
    with pytest.raises(losskit.LossInputError, match="input must hold values >= 0") as info:
        LF.poisson_nll_loss(torch.tensor([0.5, -1.0]), torch.tensor([1.0, 2.0]), log_input=False)
    assert "log_input=True" in str(info.value)
    assert TF.poisson_nll_loss(
        torch.tensor([0.5, -1.0]), torch.tensor([1.0, 2.0]), log_input=False
    ).isnan()
    with pytest.raises(losskit.LossInputError, match="eps must be > 0"):
        LF.poisson_nll_loss(torch.ones(2), torch.ones(2), eps=0.0)
    # a rate of 0 with a count of 0 is finite (log(0 + eps) times 0)
    x = torch.zeros(2, dtype=D, requires_grad=True)
    out = LF.poisson_nll_loss(x, torch.tensor([0.0, 3.0], dtype=D), log_input=False)
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(out) and torch.isfinite(g).all()


# ----------------------------------------------------------------------------- Gaussian
_VAR_SHAPES = [(4, 3), (4,), (4, 1), (1, 3)]


@pytest.mark.parametrize("var_shape", _VAR_SHAPES, ids=str)
@pytest.mark.parametrize(
    "full, reduction", list(itertools.product([False, True], ["none", "mean", "sum"]))
)
def test_gaussian_nll_matches_torch_every_variance_shape(var_shape, full, reduction):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, generator=g, dtype=D)
    y = torch.randn(4, 3, generator=g, dtype=D)
    v = torch.rand(var_shape, generator=g, dtype=D) + 0.1
    kw = dict(full=full, reduction=reduction)
    _assert_same(
        lambda a, b, c: LF.gaussian_nll_loss(a, b, c, **kw),
        lambda a, b, c: TF.gaussian_nll_loss(a, b, c, **kw),
        x,
        y,
        v,
    )


def test_gaussian_nll_clamp_passes_the_gradient_as_torch():
    """Below eps the value is that of eps, and the variance's gradient passes through the
    clamp (torch clamps a copy under no_grad): the same gradient as torch's."""
    x = torch.tensor([1.0, 0.0, 2.0], dtype=D)
    y = torch.zeros(3, dtype=D)
    v = torch.tensor([1e-9, 0.0, 0.5], dtype=D)
    _assert_same(
        lambda a, c: LF.gaussian_nll_loss(a, y, c, eps=1e-3),
        lambda a, c: TF.gaussian_nll_loss(a, y, c, eps=1e-3),
        x,
        v,
    )
    _, (gx, gv) = _grads(lambda a, c: LF.gaussian_nll_loss(a, y, c, eps=1e-3), x, v)
    assert gv[0] != 0  # straight through


def test_gaussian_nll_number_variance_and_gradcheck():
    x = torch.randn(3, 2, dtype=D, requires_grad=True)
    y = torch.randn(3, 2, dtype=D)
    torch.testing.assert_close(LF.gaussian_nll_loss(x, y, 0.5), TF.gaussian_nll_loss(x, y, 0.5))
    torch.testing.assert_close(LF.gaussian_nll_loss(x, y, 2), TF.gaussian_nll_loss(x, y, 2.0))
    v = (torch.rand(3, dtype=D) + 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, c: LF.gaussian_nll_loss(a, y, c), (x, v))
    assert torch.autograd.gradgradcheck(lambda a, c: LF.gaussian_nll_loss(a, y, c), (x, v))


@pytest.mark.parametrize("var_shape", [(3,), (4, 2), (2, 3), (1, 1), (4, 3, 1)], ids=str)
def test_gaussian_nll_bad_variance_shape_lists_the_accepted_ones(var_shape):
    x = torch.zeros(4, 3)
    with pytest.raises(losskit.LossInputError, match="does not fit the input") as info:
        LF.gaussian_nll_loss(x, x, torch.ones(var_shape))
    text = str(info.value)
    assert text.startswith("gaussian_nll_loss:") and "(4,)" in text and "a number" in text


def test_gaussian_nll_negative_or_nan_variance_is_an_error():
    x = torch.zeros(2, 2)
    with pytest.raises(losskit.LossInputError, match="var must hold values >= 0"):
        LF.gaussian_nll_loss(x, x, torch.tensor([[1.0, -1.0], [1.0, 1.0]]))
    with pytest.raises(losskit.LossInputError, match="1 NaN"):
        LF.gaussian_nll_loss(x, x, torch.tensor([[1.0, math.nan], [1.0, 1.0]]))
    with pytest.raises(losskit.LossInputError, match="var must be >= 0"):
        LF.gaussian_nll_loss(x, x, -1.0)
    with pytest.raises(losskit.LossTypeError, match="var must be a floating-point"):
        LF.gaussian_nll_loss(x, x, torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(losskit.LossInputError, match="eps must be > 0"):
        LF.gaussian_nll_loss(x, x, torch.ones(2, 2), eps=0.0)


def test_gaussian_nll_module_and_empty_batch():
    x = torch.randn(4, 3, dtype=D)
    y = torch.randn(4, 3, dtype=D)
    v = torch.rand(4, 1, dtype=D) + 0.1
    m = losskit.nn.GaussianNLLLoss(full=True, eps=1e-6, reduction="sum")
    torch.testing.assert_close(
        m(x, y, v), torch.nn.GaussianNLLLoss(full=True, reduction="sum")(x, y, v)
    )
    e = torch.zeros(0, 3, dtype=D, requires_grad=True)
    out = LF.gaussian_nll_loss(e, e.detach(), torch.ones(0, 3, dtype=D))
    assert out.item() == 0.0  # torch: NaN
    out.backward()


def test_functionals_take_torch_positional_order():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 4, generator=g, dtype=D)
    y = torch.randn(3, 4, generator=g, dtype=D)
    v = torch.rand(3, 4, generator=g, dtype=D) + 0.1
    counts = y.abs().round()
    torch.testing.assert_close(
        LF.gaussian_nll_loss(x, y, v, True, 1e-6, "sum"),
        TF.gaussian_nll_loss(x, y, v, True, 1e-6, "sum"),
    )
    torch.testing.assert_close(
        LF.poisson_nll_loss(x, counts, True, True, None, 1e-8, None, "sum"),
        TF.poisson_nll_loss(x, counts, True, True, None, 1e-8, None, "sum"),
    )
    lp, q = x.log_softmax(1), v.softmax(1)
    torch.testing.assert_close(
        LF.kl_div(lp, q, None, None, "sum"), _torch_kl(lp, q, None, None, "sum")
    )
    with pytest.raises(losskit.LossTypeError, match="pass reduction='mean' by keyword"):
        LF.kl_div(lp, q, True)  # torch's deprecated size_average slot holds a value
