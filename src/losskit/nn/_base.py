"""The module base: hyperparameters in ``__init__``, a one-line ``forward``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from .._checks import check_options, check_reduction, fail, on_meta, positional_options
from .._errors import LossTypeError

__all__ = ["Loss"]


class Loss(nn.Module):
    """Base of every losskit module.

    A subclass names its functional, ``class HuberLoss(Loss, functional=F.huber_loss)``,
    and takes that function's keyword-only arguments (hyperparameters, ``reduction``,
    ``normalizer``...) in ``__init__``. Tensor hyperparameters become buffers, so
    ``.to(device)`` moves them. ``forward(input, target, **overrides)`` calls the
    functional; an override (e.g. ``normalizer=`` per batch) wins over the stored value.
    The inputs may also come by name, as torch's modules take them:
    ``MarginRankingLoss()(input1=a, input2=b, target=y)``.
    Options may also come positionally in torch's order, which the row declares
    (``LossSpec.positional``, passed here as ``positional=``): ``CrossEntropyLoss(w)``,
    ``HuberLoss("sum", 0.5)``.
    """

    functional: Callable[..., torch.Tensor]
    _defaults: dict[str, object] = {}
    _positional: tuple[str, ...] = ()
    _inputs: tuple[str, ...] = ("input", "target")
    _required: int = 2

    def __init_subclass__(
        cls,
        functional: Callable[..., torch.Tensor] | None = None,
        positional: tuple[str, ...] = (),
        **kwargs: object,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if functional is None:
            return
        functional = inspect.unwrap(functional)
        cls.functional = staticmethod(functional)
        cls._positional = tuple(positional)
        sig = inspect.signature(functional)
        inputs = [p for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        cls._inputs = tuple(p.name for p in inputs)
        cls._required = sum(p.default is p.empty for p in inputs)
        params = [p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
        cls._defaults = {p.name: p.default for p in params}
        cls.__signature__ = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *params]
        )
        if not cls.__doc__:
            cls.__doc__ = f"Module form of :func:`losskit.functional.{functional.__name__}`."

    def __init__(self, *args: object, **options: object) -> None:
        super().__init__()
        name = type(self).__name__
        check_options(name, options, self._defaults)
        if args:  # torch's positional order (LossSpec.positional): CrossEntropyLoss(w)
            named = positional_options(
                name, args, self._positional, options, module=True, valid=self._defaults
            )
            options.update(named)
        self._options: dict[str, object] = {}
        self._buffers_named: list[str] = []
        for name, default in self._defaults.items():
            value = options.get(name, default)
            if isinstance(value, torch.Tensor):
                self.register_buffer(name, value)
                self._buffers_named.append(name)
            elif isinstance(value, torch.nn.Module):  # a learned distance: its parameters
                self.add_module(name, value)  # follow .to() and .parameters(), as in torch
                self._buffers_named.append(name)
            else:
                self._options[name] = value
        # A bad reduction is caught at construction; the other hyperparameters are checked
        # by the functional at the first forward.
        if "reduction" in self._defaults:
            valid = getattr(self.functional, "reductions", None)  # kl_div's "batchmean"
            check_reduction(type(self).__name__, self._options["reduction"], valid)

    def options(self) -> dict[str, object]:
        """The stored hyperparameters, buffers included."""
        return {**self._options, **{n: getattr(self, n) for n in self._buffers_named}}

    def forward(self, *inputs: torch.Tensor, **overrides: object) -> torch.Tensor:
        if overrides:
            inputs = self._bind_inputs(inputs, overrides)
            if overrides:
                check_options(type(self).__name__, overrides, self._defaults)
        name = type(self).__name__
        if len(inputs) > len(self._inputs):
            fail(
                name,
                f"forward takes the inputs ({', '.join(self._inputs)}), got "
                f"{len(inputs)} positional arguments.",
                f"options go to the constructor, {name}(reduction='sum'), or by keyword "
                "to forward.",
                cls=LossTypeError,
            )
        if len(inputs) < self._required:
            missing = ", ".join(self._inputs[len(inputs) : self._required])
            fail(
                name,
                f"forward takes the inputs ({', '.join(self._inputs)}); {missing} missing.",
                "pass them in that order, or by those names.",
                cls=LossTypeError,
            )
        options = {**self.options(), **overrides}
        if getattr(inputs[0], "is_meta", False):  # shapes only: no value checks
            return on_meta(self.functional, inputs, options)
        return self.functional(*inputs, **options)

    def _bind_inputs(self, inputs: tuple, overrides: dict) -> tuple:
        """Inputs given by name, as torch's modules take them
        (``MarginRankingLoss()(input1=a, input2=b, target=y)``), moved from ``overrides``
        into their places after the positional ones."""
        names = self._inputs
        given = {n: overrides.pop(n) for n in names if n in overrides}
        if not given:
            return inputs
        name = type(self).__name__
        twice = [n for n in names[: len(inputs)] if n in given]
        if twice:
            fail(
                name,
                f"got {twice[0]} both positionally and by keyword.",
                f"pass {twice[0]} once.",
                cls=LossTypeError,
            )
        bound = list(inputs)
        for n in names[len(inputs) :]:
            if n not in given:
                break
            bound.append(given.pop(n))
        if given:
            gap = names[len(bound)]
            fail(
                name,
                f"got {', '.join(given)} by keyword, but not {gap}, which comes before.",
                f"pass {gap} too (the inputs are {', '.join(names)}).",
                cls=LossTypeError,
            )
        return tuple(bound)

    def extra_repr(self) -> str:
        parts = []
        for name, value in self.options().items():
            default = self._defaults[name]
            if isinstance(value, torch.Tensor):
                parts.append(f"{name}=tensor{tuple(value.shape)}")
            elif isinstance(value, torch.nn.Module):
                continue  # printed as a submodule
            elif value != default:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)
