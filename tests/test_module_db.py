"""torch's own ModuleInfo samples as the parity test (SPEC section 11).

``torch.testing._internal.common_modules.module_db`` holds, for each torch.nn module, the
constructor and forward arguments torch tests it with. Every entry whose module lives in
``torch.nn.modules.loss`` is run here through losskit's module of the same name: values,
and gradients with respect to every input that requires one, in float64, against torch's.
A sample that meets one of losskit's documented deviations (:data:`DEVIATIONS`) is checked
against what losskit promises instead. At most :data:`MAX_SAMPLES` samples per module are
run, evenly spread over its list (torch ships 857 for ``LinearCrossEntropyLoss``; the
others have at most 105, all of which run).

A torch loss module without a losskit twin fails :func:`test_every_torch_loss_module_has_a_twin`,
so a loss that a future torch adds is noticed.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import pytest
import torch
import torch.nn.modules.loss as torch_losses
from torch.testing._internal.common_modules import module_db

import losskit
from conftest import TOL

DTYPE = torch.float64
MAX_SAMPLES = 120

LOSS_INFOS = [m for m in module_db if m.module_cls.__module__ == torch_losses.__name__]

# Torch loss modules whose losskit twin is still being built. Issue 17's part A named its
# five here (KLDivLoss, PoissonNLLLoss, GaussianNLLLoss, CTCLoss, and LinearCrossEntropyLoss's
# torch 2.13 constructor); all have landed. A module named here is expected to fail; one
# whose samples all pass fails the test, so that the set is emptied as twins land.
AWAITING_PART_A: set[str] = set()


# --------------------------------------------------------------------------- deviations
@dataclasses.dataclass(frozen=True)
class Sample:
    """One module_db sample: the module classes, options and forward inputs."""

    name: str
    torch_cls: type
    losskit_cls: type
    args: tuple
    kwargs: dict
    options: dict
    desc: str

    def build(self, cls, **override):
        # a module with parameters (LinearCrossEntropyLoss's layer) starts from the same
        # ones in torch and in losskit: each is initialised from one seed
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return cls(*self.args, **{**self.kwargs, **override})


def _value_and_grads(module, inputs):
    leaves = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    out = module(*inputs)
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True) if leaves else ()
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves, strict=True)]
    return out, grads


def _assert_same(actual, expected, msg, equal_nan=False):
    rtol, atol = TOL[DTYPE]
    (value, grads), (want, want_grads) = actual, expected
    torch.testing.assert_close(
        value, want, rtol=rtol, atol=atol, check_dtype=False, equal_nan=equal_nan,
        msg=lambda m: f"{msg}: value\n{m}",
    )  # fmt: skip
    for i, (g, w) in enumerate(zip(grads, want_grads, strict=True)):
        torch.testing.assert_close(
            g, w, rtol=rtol, atol=atol, equal_nan=equal_nan,
            msg=lambda m, i=i: f"{msg}: gradient of input {i}\n{m}",
        )  # fmt: skip


def _check_raises(s: Sample, inputs) -> None:
    """losskit raises a LossInputError that names the loss and its target."""
    with pytest.raises(losskit.LossInputError, match="target") as info:
        s.build(s.losskit_cls)(*inputs)
    assert str(info.value).startswith(f"{_public_name(s)}:"), str(info.value)


def _check_values_outside_the_domain(s: Sample, inputs) -> None:
    """losskit raises a named LossInputError; with value checks off it computes torch's
    formula, values and gradients (NaN where torch's is NaN)."""
    _check_raises(s, inputs)
    with losskit.set_checks(False):
        ours = _value_and_grads(s.build(s.losskit_cls), inputs)
    theirs = _value_and_grads(s.build(s.torch_cls), inputs)
    _assert_same(ours, theirs, f"{s.name} {s.desc}, value checks off", equal_nan=True)


def _public_name(s: Sample) -> str:
    return inspect.unwrap(losskit.spec(s.name).functional).__name__


def _weight_mass(s: Sample, inputs) -> torch.Tensor:
    """The denominator of losskit's weighted mean ``sum(w l) / sum(w)`` for the sample."""
    w = s.options["weight"].to(DTYPE)
    x, y = inputs[0], inputs[1]
    if s.name in ("BCELoss", "BCEWithLogitsLoss"):  # a weight per element
        return torch.broadcast_to(w, x.shape).sum()
    if s.name == "MultiMarginLoss":  # the class weight of each sample's class
        return w[y].sum()
    if s.name == "MultiLabelSoftMarginLoss":  # per sample: the mean weight of its classes
        return torch.broadcast_to(w, x.shape).sum() / x.shape[-1]
    if s.name in ("CrossEntropyLoss", "LinearCrossEntropyLoss"):  # sum_c w_c q_c per sample
        dim = 0 if y.dim() == 1 else 1  # the classes of a probability target
        shape = [1] * x.dim()
        shape[dim] = -1
        return (w.view(shape) * y).sum()
    raise AssertionError(f"no weighted-mean rule for {s.name}")


def _check_weighted_mean(s: Sample, inputs) -> None:
    """losskit's weighted mean is sum(w l) / sum(w) (torch divides by the count): the
    sum is torch's, divided by the weights' mass, and so is its gradient; "none" and "sum"
    equal torch's."""
    for reduction in ("none", "sum"):
        ours = _value_and_grads(s.build(s.losskit_cls, reduction=reduction), inputs)
        theirs = _value_and_grads(s.build(s.torch_cls, reduction=reduction), inputs)
        _assert_same(ours, theirs, f"{s.name} {s.desc}, reduction={reduction!r}")
    # the promise as a function of the inputs (the mass depends on a probability target)
    promised = _Promised(s.build(s.torch_cls, reduction="sum"), lambda x: _weight_mass(s, x))
    want = _value_and_grads(promised, inputs)
    _assert_same(_value_and_grads(s.build(s.losskit_cls), inputs), want, f"{s.name} {s.desc}")


class _Promised(torch.nn.Module):
    """torch's summed loss divided by the weights' mass."""

    def __init__(self, summed, mass):
        super().__init__()
        self.summed, self.mass = summed, mass

    def forward(self, *inputs):
        return self.summed(*inputs) / self.mass(inputs)


@dataclasses.dataclass(frozen=True)
class Deviation:
    reason: str
    modules: frozenset[str]
    applies: Callable[[Sample, tuple], bool]
    check: Callable[[Sample, tuple], None]


def _labels_not_signs(s, inputs):
    y = inputs[-1]
    return bool(((y != 1) & (y != -1)).any())


def _negative_or_nan_target(s, inputs):
    y = inputs[1]
    if s.options.get("log_target"):
        return bool(torch.isnan(y).any())
    return bool((~(y >= 0)).any())


def _ctc_gradient(s, inputs):
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in inputs)


def _check_ctc_gradient(s: Sample, inputs) -> None:
    """losskit's CTC gradient is the derivative with respect to log_probs, -g gamma; torch's
    kernel returns g (p - gamma) on the counted frames (the gradient with respect to the
    logits of a log_softmax): the values are torch's, the gradients differ by g p there,
    ``g`` each sample's upstream gradient."""
    lp, _, il, tl = inputs
    ours = _value_and_grads(s.build(s.losskit_cls), inputs)
    value, (grad,) = _value_and_grads(s.build(s.torch_cls), inputs)
    frames = torch.arange(lp.shape[0])[:, None] < torch.as_tensor(il)[None, :]  # (T, N)
    g = torch.ones(lp.shape[1], dtype=DTYPE)
    if s.options.get("reduction", "mean") == "mean":  # torch's mean: over N of l_n / S_n
        g = 1.0 / (torch.as_tensor(tl, dtype=DTYPE).clamp(min=1) * lp.shape[1])
    promised = grad - lp.detach().exp() * (frames * g)[..., None]
    _assert_same(ours, (value, [promised]), f"{s.name} {s.desc}")


def _unnormalised_probabilities(s, inputs):
    y = inputs[1]
    if not y.is_floating_point():
        return False
    dim = 0 if y.dim() == 1 else 1
    return bool(((y.sum(dim) - 1).abs() > 1e-6).any())


def _check_unnormalised_probabilities(s: Sample, inputs) -> None:
    """losskit raises; with value checks off it computes torch's formula, the weighted
    mean over sum_c w_c q_c (losskit's rule)."""
    _check_raises(s, inputs)
    with losskit.set_checks(False):
        if _weighted_mean(s, inputs):
            _check_weighted_mean(s, inputs)
            return
        ours = _value_and_grads(s.build(s.losskit_cls), inputs)
    theirs = _value_and_grads(s.build(s.torch_cls), inputs)
    _assert_same(ours, theirs, f"{s.name} {s.desc}, value checks off")


def _weighted_mean(s, inputs):
    if s.options.get("weight") is None or s.options.get("reduction", "mean") != "mean":
        return False
    if s.name in ("CrossEntropyLoss", "LinearCrossEntropyLoss"):
        return inputs[1].is_floating_point()  # index targets: torch divides by sum(w[y]) too
    return True


def _nothing_counted(s, inputs):
    """Every class-index target equals ignore_index and the mean is asked for."""
    if s.options.get("reduction", "mean") != "mean" or len(inputs) < 2:
        return False
    y = inputs[1]
    ignore = s.options.get("ignore_index", -100)
    ignore = -100 if ignore is None else ignore  # LinearCrossEntropyLoss's None
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.numel() == 0:
        return False
    return bool((y == ignore).all())


def _check_empty_mean(s, inputs) -> None:
    """The empty mean: 0 with an exactly zero gradient (torch: NaN)."""
    value, grads = _value_and_grads(s.build(s.losskit_cls), inputs)
    assert value.item() == 0.0, value
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)


# losskit's documented deviations from torch (README, "Semantics"), each with what losskit
# promises instead; a sample they do not cover must equal torch's.
DEVIATIONS = (
    Deviation(
        "the empty mean (every target ignored) is 0 with a zero gradient; torch gives NaN "
        "(torch's random 2d_ignore_index samples can draw only the ignored class)",
        frozenset({"CrossEntropyLoss", "NLLLoss", "LinearCrossEntropyLoss"}),
        _nothing_counted,
        _check_empty_mean,
    ),
    Deviation(
        "labels must be 1 or -1 (a value check): torch's MarginRankingLoss samples draw "
        "sign() of random integers, whose 0s are neither label",
        frozenset({"MarginRankingLoss"}),
        _labels_not_signs,
        _check_values_outside_the_domain,
    ),
    Deviation(
        "targets must be probabilities >= 0 (log-probabilities not NaN with log_target): "
        "torch's KLDivLoss samples draw random reals, negative ones included",
        frozenset({"KLDivLoss"}),
        _negative_or_nan_target,
        _check_raises,
    ),
    Deviation(
        "a weighted mean is sum(w l) / sum(w); torch divides by the element count (BCE), by "
        "N (multi-margin, multi-label soft margin, probability-target cross entropy)",
        frozenset(
            {
                "BCELoss",
                "BCEWithLogitsLoss",
                "MultiMarginLoss",
                "MultiLabelSoftMarginLoss",
                "CrossEntropyLoss",
            }
        ),
        _weighted_mean,
        _check_weighted_mean,
    ),
    Deviation(
        "probability targets must sum to 1 over the classes (a value check): torch's "
        "LinearCrossEntropyLoss samples draw uniform values in [0, 1] per class",
        frozenset({"LinearCrossEntropyLoss"}),
        _unnormalised_probabilities,
        _check_unnormalised_probabilities,
    ),
    Deviation(
        "the CTC gradient is the derivative with respect to log_probs (-gamma); torch's "
        "kernel returns p - gamma, the gradient of the logits before a log_softmax (the two "
        "agree through one; torch's samples differentiate at the log_softmax's output)",
        frozenset({"CTCLoss"}),
        _ctc_gradient,
        _check_ctc_gradient,
    ),
)


def _deviation(s: Sample, inputs) -> Deviation | None:
    for d in DEVIATIONS:
        if s.name in d.modules and d.applies(s, inputs):
            return d
    return None


# --------------------------------------------------------------------------- samples
def _samples(info):
    torch.manual_seed(0)  # torch's samples are random: the same ones on every run
    samples = info.module_inputs_func(
        info, device="cpu", dtype=DTYPE, requires_grad=True, training=True
    )
    if len(samples) > MAX_SAMPLES:  # evenly spread, the first and the last included
        step = (len(samples) - 1) / (MAX_SAMPLES - 1)
        samples = [samples[round(i * step)] for i in range(MAX_SAMPLES)]
    return samples


def _iter_samples(info, losskit_cls):
    """``(Sample, forward inputs)`` for each of the module's samples."""
    name = info.module_cls.__name__
    for sample in _samples(info):
        ctor, fwd = sample.constructor_input, sample.forward_input
        assert not fwd.kwargs, f"{name}: keyword forward inputs are not handled here"
        bound = inspect.signature(info.module_cls).bind(*ctor.args, **ctor.kwargs)
        yield Sample(
            name, info.module_cls, losskit_cls, ctor.args, ctor.kwargs,
            options=dict(bound.arguments), desc=sample.desc or "default",
        ), tuple(fwd.args)  # fmt: skip


def _run(info, losskit_cls) -> tuple[int, list[str]]:
    """(samples run, failures) for one torch loss module."""
    failures, n = [], 0
    for s, inputs in _iter_samples(info, losskit_cls):
        n += 1
        try:
            deviation = _deviation(s, inputs)
            if deviation is not None:
                deviation.check(s, inputs)
                continue
            ours = _value_and_grads(s.build(losskit_cls), inputs)
            theirs = _value_and_grads(s.build(info.module_cls), inputs)
            _assert_same(ours, theirs, f"{s.name} {s.desc}")
        except (Exception, pytest.fail.Exception) as err:  # every failure, with its sample
            failures.append(f"{s.desc}: {type(err).__name__}: {str(err)[:400]}")
    return n, failures


@pytest.mark.parametrize("info", LOSS_INFOS, ids=[m.module_cls.__name__ for m in LOSS_INFOS])
def test_torch_module_db_samples(info):
    name = info.module_cls.__name__
    losskit_cls = getattr(losskit.nn, name, None)
    if losskit_cls is None:
        assert name in AWAITING_PART_A, f"losskit.nn has no {name}"
        pytest.xfail(f"{name}: awaiting issue 17's part A")
    n, failures = _run(info, losskit_cls)
    if name in AWAITING_PART_A:
        if not failures:
            pytest.fail(f"{name}: all {n} samples pass; remove it from AWAITING_PART_A")
        pytest.xfail(f"{name}: {len(failures)} of {n} samples fail, awaiting issue 17's part A")
    assert not failures, f"{name}: {len(failures)} of {n} samples fail:\n" + "\n".join(failures)


def test_every_deviation_is_met_by_a_sample():
    """Each deviation in the table covers at least one of torch's samples (a stale entry
    fails), and the modules it names are torch's."""
    names = {m.module_cls.__name__ for m in LOSS_INFOS}
    met = set()
    for info in LOSS_INFOS:
        name = info.module_cls.__name__
        cls = getattr(losskit.nn, name, None)
        if cls is None or not any(name in d.modules for d in DEVIATIONS):
            continue
        met |= {d.reason for s, x in _iter_samples(info, cls) if (d := _deviation(s, x))}
    for d in DEVIATIONS:
        assert d.modules <= names, d.reason
        if d.modules & AWAITING_PART_A or not all(hasattr(losskit.nn, m) for m in d.modules):
            continue
        assert d.reason in met, f"no sample meets: {d.reason}"


def _torch_loss_modules():
    return [
        getattr(torch_losses, n)
        for n in torch_losses.__all__
        if isinstance(getattr(torch_losses, n), type)
        and issubclass(getattr(torch_losses, n), torch.nn.Module)
    ]


def _twin_name(cls) -> str:
    """losskit's twin of a torch loss module: the one of its name, or for a deprecated
    torch subclass of another exported loss (``NLLLoss2d`` of ``NLLLoss``) that loss's."""
    if hasattr(losskit.nn, cls.__name__):
        return cls.__name__
    for base in cls.__mro__[1:]:
        if base.__name__ in torch_losses.__all__:
            return base.__name__
    return cls.__name__


def test_every_torch_loss_module_has_a_twin():
    """Every loss module torch exports (module_db lists 20; torch.nn has more, e.g. the
    triplet losses) has a losskit module: of its name, or its torch base's."""
    modules = _torch_loss_modules()
    assert len(modules) >= 20
    missing = {
        cls.__name__ for cls in modules if not hasattr(losskit.nn, _twin_name(cls))
    } - AWAITING_PART_A
    assert not missing, f"torch loss modules without a losskit twin: {sorted(missing)}"
    stale = {n for n in AWAITING_PART_A if n not in {m.__name__ for m in modules}}
    assert not stale, f"not torch loss modules: {sorted(stale)}"
