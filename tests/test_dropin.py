"""A drop-in that never surprises (issue 12): the call forms a torch, torchvision, Keras or
smp user already writes, one rule for each argument, explain's honesty, the command line
and the installed package, each tested across the registry."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as TF

import losskit
from conftest import SPEC_IDS, SPECS

DEPRECATED = {"size_average", "reduce"}


def _options(spec):
    """The keyword options of the row's public function."""
    fn = inspect.unwrap(spec.functional)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }


def _public_name(spec):
    return inspect.unwrap(spec.functional).__name__


# --------------------------------------------------------------------------- call forms
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_positional_order_names_options_of_the_loss(spec):
    """Every name in the row's declared order is an option of the loss, or one of torch's
    deprecated placeholders; where torch has the loss, the order is torch's own."""
    options = _options(spec)
    assert set(spec.positional) <= set(options) | DEPRECATED
    assert len(set(spec.positional)) == len(spec.positional)
    torch_fn = getattr(TF, _public_name(spec), None)
    if torch_fn is not None and spec.extra_inputs == ():
        params = list(inspect.signature(torch_fn).parameters.values())[2:]
        torch_order = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        assert spec.positional == torch_order
    torch_module = getattr(torch.nn, spec.module_name, None)
    if torch_module is not None and issubclass(spec.module, losskit.nn.Loss):
        params = list(inspect.signature(torch_module).parameters.values())
        module_order = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        assert spec.positional[: len(module_order)] == module_order


def _positional_call(spec):
    """Values for the row's positional order (defaults; ``reduction="sum"``; ``None`` for
    torch's deprecated slots) and the same options by keyword."""
    options = _options(spec)
    args, kw = [], {}
    for name in spec.positional:
        value = None if name in DEPRECATED else options[name]
        if name == "reduction":
            value = "sum"
        args.append(value)
        if name not in DEPRECATED:
            kw[name] = value
    return args, kw


@pytest.mark.parametrize("spec", [s for s in SPECS if s.positional], ids=lambda s: s.name)
def test_torch_positional_order_works_for_function_and_module(spec):
    inputs = spec.sample((3, 4), seed=0)
    args, kw = _positional_call(spec)
    expected = spec.functional(*inputs, **kw)
    torch.testing.assert_close(spec.functional(*inputs, *args), expected)
    if issubclass(spec.module, losskit.nn.Loss):
        module = spec.module(*args)
        assert module.options() == spec.module(**kw).options()
        torch.testing.assert_close(module(*inputs), expected)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_an_option_beyond_the_order_names_the_loss_and_the_keyword(spec):
    inputs = spec.sample((3, 4), seed=0)
    too_many = ["sum"] * (len(spec.positional) + 1)
    with pytest.raises(losskit.LossTypeError, match="keyword") as info:
        spec.functional(*inputs, *too_many)
    assert str(info.value).startswith(f"{_public_name(spec)}:")
    if issubclass(spec.module, losskit.nn.Loss):
        with pytest.raises(losskit.LossTypeError, match="keyword") as info:
            spec.module(*too_many)
        assert str(info.value).startswith(f"{spec.module_name}:")


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_unknown_keyword_to_the_function_gets_did_you_mean(spec):
    inputs = spec.sample((3, 4), seed=0)
    with pytest.raises(
        losskit.LossTypeError, match="unknown option 'reductoin'.*did you mean reduction"
    ):
        spec.functional(*inputs, reductoin="sum")


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if "reduce" in s.positional], ids=lambda s: s.name
)
def test_deprecated_size_average_and_reduce_name_the_reduction(spec):
    order = spec.positional
    args = [None] * (order.index("reduce") + 1)
    args[order.index("reduce")] = False
    inputs = spec.sample((3, 4), seed=0)
    with pytest.raises(losskit.LossTypeError, match="reduction='none'"):
        spec.functional(*inputs, *args)
    with pytest.raises(losskit.LossTypeError, match="deprecated"):
        spec.functional(*inputs, size_average=False)


def test_the_forms_of_the_issue():
    x, y, w = torch.randn(3, 2), torch.tensor([0, 1, 0]), torch.tensor([1.0, 2.0])
    F = losskit.F
    torch.testing.assert_close(F.cross_entropy(x, y, w), TF.cross_entropy(x, y, w))
    torch.testing.assert_close(
        losskit.nn.CrossEntropyLoss(w)(x, y), torch.nn.CrossEntropyLoss(w)(x, y)
    )
    r = torch.randn(5) * 3
    torch.testing.assert_close(
        losskit.nn.HuberLoss("sum", 0.5)(r, torch.zeros(5)),
        torch.nn.HuberLoss("sum", 0.5)(r, torch.zeros(5)),
    )
    logits, t = torch.randn(6), torch.tensor([1.0, 0, 1, 0, 0, 1])
    torch.testing.assert_close(
        F.sigmoid_focal_loss(logits, t, 0.25, 2, "none"),
        F.sigmoid_focal_loss(logits, t, alpha=0.25, gamma=2, reduction="none"),
    )
    with pytest.raises(losskit.LossTypeError, match="both positionally and by keyword"):
        F.cross_entropy(x, y, w, weight=w)


HABITS = [
    ("softmax_focal_loss", {"alpha": 0.25}, "weight="),
    ("categorical_cross_entropy", {"axis": -1}, "dim="),
    ("cross_entropy", {"from_logits": True}, "takes logits"),
    ("binary_cross_entropy", {"from_logits": False}, "probabilities"),
    ("cross_entropy", {"mode": "multiclass"}, "one function per form"),
    ("cross_entropy", {"class_weight": None}, "weight="),
    ("mean_absolute_percentage_error", {"sample_weight": None}, "weight="),
    ("smooth_l1_loss", {"delta": 1.0}, "beta"),
    ("huber_loss", {"beta": 1.0}, "delta"),
    ("cross_entropy", {"gamma": 2.0}, "softmax_focal_loss"),
    ("softmax_focal_loss", {"smooth_factor": 0.1}, "label_smoothing"),
    ("mse_loss", {"size_average": False}, "reduction="),
]


@pytest.mark.parametrize(
    "name, option, phrase", HABITS, ids=[f"{n}-{next(iter(o))}" for n, o, _ in HABITS]
)
def test_habits_from_torch_keras_and_smp_name_losskits_argument(name, option, phrase):
    spec = losskit.spec(name)
    inputs = spec.sample((3, 4), seed=0)
    for call in (lambda: spec.functional(*inputs, **option), lambda: spec.module(**option)):
        with pytest.raises(losskit.LossTypeError, match="unknown option") as info:
            call()
        assert phrase in str(info.value).split("Hint:")[1]
