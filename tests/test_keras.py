"""Keras 3's loss forms (``losskit.functional.keras``) against the real Keras 3 on its torch
backend: values and gradients in float32, every reduction, ``sample_weight`` both ways Keras
reduces it, the worked examples, identities, edge cases and errors.

The float64 oracle is losskit's NumPy reference, not Keras: asked for float64, Keras' torch
backend still rounds some steps to float32 (``ops.maximum(x, 0.0)`` returns float32, and
``backend.epsilon()`` becomes a float32 tensor).

Keras comes from the ``parity`` extra (``make test`` installs it); without it this module
is skipped.
"""

from __future__ import annotations

import math
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is first imported
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")  # the tensors the tests make are on CPU

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402

import losskit  # noqa: E402
import losskit.functional as LF  # noqa: E402
from conftest import assert_close  # noqa: E402
from losskit import reference as R  # noqa: E402

keras = pytest.importorskip(
    "keras",
    minversion="3",
    reason="the Keras parity tests need keras>=3: pip install -e '.[parity]' (make test does)",
)
if keras.backend.backend() != "torch":  # pragma: no cover - keras imported elsewhere first
    pytest.skip("keras was imported with another backend", allow_module_level=True)

# losskit's name -> Keras 3's loss class (reduction and dtype are its constructor's)
KERAS = {
    "mean_absolute_percentage_error": keras.losses.MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": keras.losses.MeanSquaredLogarithmicError,
    "hinge": keras.losses.Hinge,
    "squared_hinge": keras.losses.SquaredHinge,
    "categorical_hinge": keras.losses.CategoricalHinge,
    "cosine_similarity_loss": keras.losses.CosineSimilarity,
    "poisson_loss": keras.losses.Poisson,
}
NAMES = list(KERAS)
SPECS = [losskit.spec(n) for n in NAMES]
MODULES = {
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "hinge": "Hinge",
    "squared_hinge": "SquaredHinge",
    "categorical_hinge": "CategoricalHinge",
    "cosine_similarity_loss": "CosineSimilarityLoss",
    "poisson_loss": "PoissonLoss",
}
# losskit's reduction -> Keras' (without a weight; with one, see the weighted test)
REDUCTIONS = {"none": "none", "sum": "sum", "mean": "sum_over_batch_size"}
SHAPES = [(6, 5), (2, 3, 4), (7,)]


def _keras(name, x, y, reduction, dtype="float32", sample_weight=None, **kw):
    loss = KERAS[name](reduction=reduction, dtype=dtype, **kw)
    return loss(y, x, sample_weight=sample_weight)  # Keras: (y_true, y_pred)


def _inputs(spec, shape, dtype, seed=0):
    x, y = spec.sample(shape, dtype, seed=seed)[:2]
    return x, y


def _tol(name):
    """float32: 1e-6 relative, with an absolute floor of 1e-7 for values near 0 (a cosine
    near 0 is a sum of signed products that cancels)."""
    return {"rtol": 1e-6, "atol": 1e-7}


# ----------------------------------------------------------------------------- parity
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", list(REDUCTIONS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_values_and_gradients_match_keras(name, reduction, shape):
    spec = losskit.spec(name)
    dtype = torch.float32
    x, y = _inputs(spec, shape, dtype)
    ours_x = x.clone().requires_grad_(True)
    theirs_x = x.clone().requires_grad_(True)
    ours = spec.functional(ours_x, y, reduction=reduction)
    theirs = _keras(name, theirs_x, y, REDUCTIONS[reduction])
    assert ours.dtype == theirs.dtype == dtype
    want_shape = spec.none_shape(shape) if reduction == "none" else ()
    assert tuple(ours.shape) == tuple(theirs.shape) == want_shape
    assert_close(ours, theirs, **_tol(name))
    ours.sum().backward()
    theirs.sum().backward()
    assert_close(ours_x.grad, theirs_x.grad, **_tol(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", list(REDUCTIONS))
def test_reference_float64(name, reduction):
    spec = losskit.spec(name)
    x, y = _inputs(spec, (4, 6), torch.float64, seed=3)
    w = spec.sample_weight((4, 6))
    for weight in (None, w):
        got = spec.functional(x, y, reduction=reduction, weight=weight)
        want = spec.reference(x, y, reduction=reduction, weight=weight)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_sample_weight_both_ways_keras_reduces_it(name):
    """losskit's weighted mean ``sum(w L) / sum(w)`` is Keras'
    ``"mean_with_sample_weight"``; Keras' default ``"sum_over_batch_size"`` divides by the
    number of samples, which is losskit's ``normalizer=N``; "sum" and "none" agree."""
    spec = losskit.spec(name)
    x, y = _inputs(spec, (2, 3, 4), torch.float32, seed=5)
    w = spec.sample_weight((2, 3, 4), torch.float32, seed=2) * 3.0
    tol = _tol(name)
    n = math.prod(spec.none_shape(x.shape))
    pairs = [
        ({"reduction": "mean"}, "mean_with_sample_weight"),
        ({"reduction": "mean", "normalizer": n}, "sum_over_batch_size"),
        ({"reduction": "sum"}, "sum"),
        ({"reduction": "none"}, "none"),
    ]
    for ours_options, keras_reduction in pairs:
        xo, xk = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ours = spec.functional(xo, y, weight=w, **ours_options)
        theirs = _keras(name, xk, y, keras_reduction, sample_weight=w)
        assert_close(ours, theirs, **tol, msg=keras_reduction)
        ours.sum().backward()
        theirs.sum().backward()
        assert_close(xo.grad, xk.grad, **tol, msg=keras_reduction)
    # the two means differ unless the weights sum to the sample count
    mean = spec.functional(x, y, weight=w)
    over_batch = _keras(name, x, y, "sum_over_batch_size", sample_weight=w)
    assert not torch.allclose(mean, over_batch)
    ones = torch.ones_like(w)
    assert_close(
        spec.functional(x, y, weight=ones),
        _keras(name, x, y, "sum_over_batch_size", sample_weight=ones),
        **tol,
    )


def test_hinge_zero_one_targets_match_keras():
    """0/1 targets: converted to -1/1 (Keras' rule, over the whole target)."""
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    y01 = (torch.rand(5, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    for name in ("hinge", "squared_hinge"):
        fn = getattr(LF, name)
        assert_close(fn(x, y01, reduction="none"), _keras(name, x, y01, "none"))
        assert_close(fn(x, y01), fn(x, 2 * y01 - 1))
        # a target of only 1s is the same in both forms; of only 0s, all negatives
        ones, zeros = torch.ones(5, 4), torch.zeros(5, 4)
        assert_close(fn(x, ones), _keras(name, x, ones, "sum_over_batch_size"))
        assert_close(fn(x, zeros), fn(x, -ones))
        assert_close(fn(x, zeros), _keras(name, x, zeros, "sum_over_batch_size"))
    # integer labels work as Keras casts them
    assert_close(LF.hinge(x, y01.long()), LF.hinge(x, y01))


@pytest.mark.parametrize("dim", [0, 1, -2])
def test_cosine_dim_matches_keras_axis(dim):
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(3, 4, 5, generator=g), torch.randn(3, 4, 5, generator=g)
    for reduction in REDUCTIONS:
        ours = LF.cosine_similarity_loss(x, y, dim=dim, reduction=reduction)
        theirs = _keras("cosine_similarity_loss", x, y, REDUCTIONS[reduction], axis=dim)
        assert_close(ours, theirs)
    w = torch.rand(LF.cosine_similarity_loss(x, y, dim=dim, reduction="none").shape) + 0.5
    assert_close(
        LF.cosine_similarity_loss(x, y, dim=dim, weight=w),
        _keras(
            "cosine_similarity_loss", x, y, "mean_with_sample_weight", sample_weight=w, axis=dim
        ),
    )
    np.testing.assert_allclose(
        LF.cosine_similarity_loss(x.double(), y.double(), dim=dim, reduction="none").numpy(),
        R.cosine_similarity_loss(x, y, dim=dim, reduction="none"),
        rtol=1e-12,
    )


# the forms with an epsilon (the hinge losses have none)
EPS_NAMES = [n for n in NAMES if "eps" in getattr(LF, n).__kwdefaults__]


@pytest.mark.parametrize("name", EPS_NAMES)
@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_epsilon_is_keras_backend_epsilon(name, eps):
    """``eps=`` is ``keras.backend.epsilon()``: with Keras' set to the same value the two
    agree, on inputs where the epsilon matters (zeros, tiny values)."""
    x = torch.tensor([[0.0, 1e-4, 2.0, 0.3], [0.0, 0.0, 0.0, 0.0], [1e-6, -2e-6, 3.0, 1.0]])
    y = torch.tensor([[0.0, 2.0, 1e-5, 1.0], [1.0, 2.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    if name != "cosine_similarity_loss":
        x = x.abs()  # rates and counts (MSLE clips negatives anyway)
    old = keras.backend.epsilon()
    keras.backend.set_epsilon(eps)
    try:
        theirs = _keras(name, x, y, "none")
    finally:
        keras.backend.set_epsilon(old)
    assert_close(getattr(LF, name)(x, y, eps=eps, reduction="none"), theirs, **_tol(name))
    assert_close(getattr(LF, name)(x, y, reduction="none"), _keras(name, x, y, "none"))
    np.testing.assert_allclose(
        getattr(LF, name)(x.double(), y.double(), eps=eps, reduction="none").numpy(),
        getattr(R, name)(x, y, eps=eps, reduction="none"),
        rtol=1e-12,
    )


# ----------------------------------------------------------------------------- examples
@pytest.mark.parametrize("spec", SPECS, ids=NAMES)
def test_worked_examples_equal_keras(spec):
    """The registry's examples take Keras' docstring inputs; their values are computed,
    here by losskit's torch path, its NumPy reference and Keras itself."""
    for example in spec.examples:
        x, y = example.tensors(torch.float32)
        options = example.call_options(torch.float32)
        w = options.pop("weight", None)
        keras_reduction = "sum_over_batch_size" if w is None else "mean_with_sample_weight"
        theirs = _keras(spec.name, x, y, keras_reduction, sample_weight=w, **options)
        assert_close(spec.functional(x, y, weight=w, **options), theirs, **_tol(spec.name))
        explained = losskit.explain(spec.name, example.input, example.target, **example.options)
        assert explained.result == pytest.approx(float(theirs), rel=1e-6, abs=1e-7)
        want = spec.reference(example.input, example.target, **example.options)
        assert explained.result == pytest.approx(float(want), rel=1e-12)
        assert any("per sample" in s.formula for s in explained.steps)


def test_explain_shows_the_keras_steps():
    e = losskit.explain("hinge")
    names = [s.name for s in e.steps]
    assert names[:3] == ["prediction", "target", "labels in {-1, 1}"]
    np.testing.assert_array_equal(e.steps[2].value, [[-1, 1], [-1, -1]])
    assert "mean over the last axis" in names
    e = losskit.explain("cosine_similarity_loss", reduction="none")
    assert e.result == pytest.approx([0.0, -1.0, 1.0])
    e = losskit.explain("mean_absolute_percentage_error")
    assert [s.name for s in e.steps][2] == "floored |target|"


def test_names_and_modules():
    for name, module in MODULES.items():
        assert losskit.spec(name).module is getattr(losskit.nn, module)
        assert type(losskit.get(module)) is getattr(losskit.nn, module)
    assert losskit.spec("mape").name == "mean_absolute_percentage_error"
    assert losskit.spec("MAPELoss").name == "mean_absolute_percentage_error"
    assert losskit.spec("msle").name == "mean_squared_logarithmic_error"
    assert LF.mape_loss is LF.mean_absolute_percentage_error
    assert LF.msle_loss is LF.mean_squared_logarithmic_error
    # torch's PoissonNLLLoss stays torch's: losskit's Keras form has its own name
    assert losskit.spec("PoissonLoss").name == "poisson_loss"
    x, y = losskit.spec("poisson_loss").sample((3, 4), torch.float32)[:2]
    module = losskit.nn.PoissonLoss(eps=1e-3, reduction="sum")
    assert torch.equal(module(x, y), LF.poisson_loss(x, y, eps=1e-3, reduction="sum"))


# ----------------------------------------------------------------------------- identities
def test_squared_hinge_is_hinge_squared_per_element():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    for y in (torch.where(torch.randn(6, 5, generator=g) > 0, 1.0, -1.0).double(), None):
        y = y if y is not None else (torch.rand(6, 5, generator=g) > 0.5).double()  # 0/1
        per_element = torch.stack(
            [LF.hinge(x[:, j : j + 1], y[:, j : j + 1], reduction="none") for j in range(5)], -1
        )
        assert_close(LF.squared_hinge(x, y, reduction="none"), per_element.square().mean(-1))
        assert_close(LF.hinge(x, y, reduction="none"), per_element.mean(-1))
        # Jensen: the mean of squares is at least the square of the mean
        assert (
            LF.squared_hinge(x, y, reduction="none") >= LF.hinge(x, y, reduction="none") ** 2
        ).all()


def test_cosine_identities():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    y = torch.randn(5, 6, generator=g, dtype=torch.float64)
    none = dict(reduction="none")
    assert_close(LF.cosine_similarity_loss(x, x, **none), -torch.ones(5, dtype=torch.float64))
    assert_close(LF.cosine_similarity_loss(-x, x, **none), torch.ones(5, dtype=torch.float64))
    # invariant to the vectors' lengths; the negative of torch's cosine similarity
    scale = torch.rand(5, 1, generator=g, dtype=torch.float64) * 100 + 0.01
    assert_close(
        LF.cosine_similarity_loss(scale * x, y / scale, **none),
        LF.cosine_similarity_loss(x, y, **none),
    )
    assert_close(LF.cosine_similarity_loss(x, y, **none), -TF.cosine_similarity(x, y, dim=-1))
    # orthogonal vectors: 0; every value in [-1, 1]
    e0, e1 = torch.eye(6, dtype=torch.float64)[:2]
    assert LF.cosine_similarity_loss(e0[None], e1[None]).item() == 0.0
    out = LF.cosine_similarity_loss(x, y, **none)
    assert ((out >= -1) & (out <= 1)).all()
    # vectors whose squares overflow float32 give the true cosine (Keras' torch backend: 0),
    # and tiny ones the value of a norm floored at eps
    x32, y32 = x.float(), y.float()
    want = LF.cosine_similarity_loss(x32, y32, **none)
    assert_close(LF.cosine_similarity_loss(x32 * 1e20, y32, **none), want)
    assert_close(LF.cosine_similarity_loss(x32 * 1e20, y32 * 1e20, **none), want)
    tiny = R.cosine_similarity_loss(x * 1e-25, y, reduction="none")
    assert_close(LF.cosine_similarity_loss(x32 * 1e-25, y32, **none), torch.from_numpy(tiny))


def test_regression_identities():
    g = torch.Generator().manual_seed(9)
    x = torch.rand(4, 5, generator=g, dtype=torch.float64) * 3 + 0.1
    y = torch.rand(4, 5, generator=g, dtype=torch.float64) * 3 + 0.1
    # MAPE: 100 |x - y| / |y| (no target below eps), invariant to a common scale
    assert_close(LF.mean_absolute_percentage_error(x, y), 100 * ((x - y).abs() / y).mean())
    assert_close(
        LF.mean_absolute_percentage_error(7 * x, 7 * y), LF.mean_absolute_percentage_error(x, y)
    )
    # MSLE: the MSE of log1p of positive values
    assert_close(LF.mean_squared_logarithmic_error(x, y), LF.mse_loss(x.log1p(), y.log1p()))
    # Poisson: torch's poisson_nll_loss(log_input=False) with Keras' eps, per sample
    counts = torch.poisson(y, generator=g)
    torch_none = TF.poisson_nll_loss(x, counts, log_input=False, eps=1e-7, reduction="none")
    assert_close(LF.poisson_loss(x, counts, reduction="none"), torch_none.mean(-1))
    assert_close(
        LF.poisson_loss(x, counts),
        TF.poisson_nll_loss(x, counts, log_input=False, eps=1e-7),
    )


def test_categorical_hinge_of_one_hot_rows():
    g = torch.Generator().manual_seed(10)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = torch.randint(0, 4, (6,), generator=g)
    y = TF.one_hot(t, 4).double()
    true = x.gather(1, t[:, None]).squeeze(1)
    others = x.masked_fill(y.bool(), -math.inf).amax(1)
    # the true class's term in Keras' max is 0: max(0, best other score)
    want = torch.relu(1 + others.clamp_min(0) - true)
    assert_close(LF.categorical_hinge(x, y, reduction="none"), want)
    assert_close(
        LF.categorical_hinge(x, y, reduction="none"),
        _keras("categorical_hinge", x.float(), y.float(), "none").double(),
        **_tol("categorical_hinge"),
    )


@pytest.mark.parametrize("name", NAMES)
def test_weighted_mean_is_sum_over_sum_of_weights(name):
    spec = losskit.spec(name)
    x, y = _inputs(spec, (5, 3), torch.float64, seed=11)
    w = spec.sample_weight((5, 3), seed=4)
    none = spec.functional(x, y, reduction="none")
    assert_close(spec.functional(x, y, weight=w), (w * none).sum() / w.sum())
    assert_close(spec.functional(x, y, weight=w, reduction="none"), w * none)
    assert_close(spec.functional(x, y, weight=w, reduction="sum"), (w * none).sum())


# ----------------------------------------------------------------------------- edge cases
def test_cosine_zero_vectors_are_finite():
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0], [0.0, 0.0, 0.0]], requires_grad=True)
    y = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    out = LF.cosine_similarity_loss(x, y, reduction="none")
    assert torch.equal(out, torch.zeros(3))
    assert_close(out, _keras("cosine_similarity_loss", x.detach(), y, "none"))
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all()
    # at x = 0 the gradient is -y / (eps ||y||), where Keras' torch backend gives NaN
    assert_close(grad[0], -y[0] / 3.0 / 1e-7)
    assert torch.equal(grad[1:], torch.zeros(2, 3))
    xk = x.detach().clone().requires_grad_(True)
    _keras("cosine_similarity_loss", xk, y, "none").sum().backward()
    keras_finite = torch.isfinite(xk.grad).all(dim=-1)
    assert_close(grad[keras_finite], xk.grad[keras_finite])


def test_msle_and_poisson_at_zero_under_their_eps():
    dtype = torch.float32
    x = torch.tensor([[0.0, 0.0, 2.0], [0.0, -1.0, 1e-9]], dtype=dtype)
    y = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]], dtype=dtype)
    for name, inputs in (
        ("mean_squared_logarithmic_error", x),
        ("poisson_loss", x.clamp_min(0)),
    ):
        xo = inputs.clone().requires_grad_(True)
        xk = inputs.clone().requires_grad_(True)
        out = getattr(LF, name)(xo, y, reduction="none")
        theirs = _keras(name, xk, y, "none")
        assert torch.isfinite(out).all()
        assert_close(out, theirs, **_tol(name))
        want = getattr(R, name)(inputs, y, reduction="none")
        np.testing.assert_allclose(
            getattr(LF, name)(inputs.double(), y.double(), reduction="none").numpy(),
            want,
            rtol=1e-12,
        )
        out.sum().backward()
        theirs.sum().backward()
        assert torch.isfinite(xo.grad).all()
        assert_close(xo.grad, xk.grad, **_tol(name))
    # MSLE: values below eps are eps, so their gradient is 0
    xo = x.clone().requires_grad_(True)
    LF.mean_squared_logarithmic_error(xo, y).backward()
    assert torch.equal(xo.grad[x < 1e-7], torch.zeros_like(xo.grad[x < 1e-7]))
    # Poisson at rate 0: -y log(eps), gradient 1 - y / eps
    got = LF.poisson_loss(torch.zeros(1, 1, dtype=dtype), torch.full((1, 1), 2.0, dtype=dtype))
    assert got.item() == pytest.approx(-2.0 * math.log(1e-7), rel=1e-6)


def test_mape_of_a_zero_target_divides_by_eps():
    x, y = torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]])
    got = LF.mean_absolute_percentage_error(x, y)
    assert got.item() == pytest.approx(100 * (1 / 1e-7 + 0) / 2, rel=1e-6)
    assert_close(got, _keras("mean_absolute_percentage_error", x, y, "sum_over_batch_size"))


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_and_no_features(name):
    spec = losskit.spec(name)
    x, y = _inputs(spec, (0, 4), torch.float32)
    x.requires_grad_(True)
    out = spec.functional(x, y)
    assert out.item() == 0.0
    out.backward()
    assert spec.functional(x, y, reduction="none").shape == (0,)
    if name == "categorical_hinge":
        return  # no classes is an error (below)
    # no features: the empty mean is 0 (Keras' mean over an empty axis is NaN)
    x, y = torch.ones(3, 0), torch.ones(3, 0)
    assert torch.equal(spec.functional(x, y, reduction="none"), torch.zeros(3))


# ----------------------------------------------------------------------------- errors
def _raises(match, fn, *args, cls=losskit.LossInputError, **kw):
    with pytest.raises(cls, match=match) as info:
        fn(*args, **kw)
    return str(info.value)


def test_hinge_labels_are_checked():
    x = torch.randn(2, 3)
    msg = _raises("labels -1 and 1, or 0 and 1", LF.hinge, x, torch.full((2, 3), 0.3))
    assert msg.startswith("hinge:") and "threshold soft ones" in msg
    msg = _raises("found 2.0, 3.0", LF.squared_hinge, x, torch.tensor([[0.0, 2.0, 3.0], [1, 1, 1]]))
    assert "one_hot" in msg
    mixed = torch.tensor([[-1.0, 0.0, 1.0], [1.0, 1.0, -1.0]])
    msg = _raises("mixes the labels -1 and 0", LF.hinge, x, mixed)
    assert "set_checks(False)" in msg
    with losskit.set_checks(False):  # Keras' unconverted form
        assert_close(LF.hinge(x, mixed), _keras("hinge", x, mixed, "sum_over_batch_size"))
        soft = torch.full((2, 3), 0.3)
        assert_close(LF.hinge(x, soft), _keras("hinge", x, soft, "sum_over_batch_size"))


def test_poisson_rates_and_counts_are_checked():
    y = torch.ones(2, 3)
    msg = _raises("input must hold values >= 0", LF.poisson_loss, torch.full((2, 3), -0.5), y)
    assert msg.startswith("poisson_loss:") and "input.exp()" in msg and "6 of 6" in msg
    _raises("target must hold values >= 0", LF.poisson_loss, torch.ones(2, 3), -y)
    _raises("1 NaN", LF.poisson_loss, torch.tensor([[1.0, math.nan]]), torch.ones(1, 2))


def test_categorical_hinge_targets_are_checked():
    x = torch.randn(4, 3)
    msg = _raises("looks like class indices", LF.categorical_hinge, x, torch.tensor([0, 2, 1, 1]))
    assert "one_hot(target, 3)" in msg
    _raises(
        r"target must hold values in \[0, 1\]", LF.categorical_hinge, x, torch.full((4, 3), 2.0)
    )
    _raises("has 0 classes", LF.categorical_hinge, torch.ones(4, 0), torch.ones(4, 0))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_weights_and_options_are_checked(name):
    spec = losskit.spec(name)
    x, y = _inputs(spec, (4, 3), torch.float32)
    msg = _raises("weight is per sample", spec.functional, x, y, weight=torch.ones(4, 3) * 2)
    assert msg.startswith(f"{name}:") and "(4,)" in msg
    _raises("does not match input shape", spec.functional, x, y[:, :1])
    _raises("0-dim", spec.functional, x[0, 0], y[0, 0])
    _raises(
        "must be a floating-point tensor", spec.functional, x.long(), y, cls=losskit.LossTypeError
    )
    _raises("'none', 'mean', 'sum'", spec.functional, x, y, reduction="sum_over_batch_size")
    if name in EPS_NAMES:
        _raises("eps must be", spec.functional, x, y, eps=-1.0)
    if name == "cosine_similarity_loss":
        _raises("dim=2 is out of range", spec.functional, x, y, dim=2)
        _raises("eps must be > 0", spec.functional, x, y, eps=0.0)
