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
    Options may also come positionally in torch's order, which the row declares
    (``LossSpec.positional``, passed here as ``positional=``): ``CrossEntropyLoss(w)``,
    ``HuberLoss("sum", 0.5)``.
    """

    functional: Callable[..., torch.Tensor]
    _defaults: dict[str, object] = {}
    _positional: tuple[str, ...] = ()
    _inputs: tuple[str, ...] = ("input", "target")

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
        cls._inputs = tuple(
            p.name for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
        )
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

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, *args: torch.Tensor, **overrides: object
    ) -> torch.Tensor:
        if overrides:
            check_options(type(self).__name__, overrides, self._defaults)
        if 2 + len(args) > len(self._inputs):
            name = type(self).__name__
            fail(
                name,
                f"forward takes the inputs ({', '.join(self._inputs)}), got "
                f"{2 + len(args)} positional arguments.",
                f"options go to the constructor, {name}(reduction='sum'), or by keyword "
                "to forward.",
                cls=LossTypeError,
            )
        options = {**self.options(), **overrides}
        if getattr(input, "is_meta", False):  # shapes only: no value checks
            return on_meta(self.functional, (input, target, *args), options)
        return self.functional(input, target, *args, **options)

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
