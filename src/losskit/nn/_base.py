"""The module base: hyperparameters in ``__init__``, a one-line ``forward``."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

import torch
from torch import nn

from .._checks import check_reduction, fail
from .._errors import LossTypeError

__all__ = ["Loss"]


def _check_known(name: str, options, defaults) -> None:
    """Every option is one the functional takes; else the did-you-mean error."""
    unknown = sorted(set(options) - set(defaults))
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], list(defaults), n=1)
    fail(
        name,
        f"unknown option {', '.join(map(repr, unknown))}; valid options are {', '.join(defaults)}.",
        f"did you mean {close[0]}?" if close else None,
        cls=LossTypeError,
    )


class Loss(nn.Module):
    """Base of every losskit module.

    A subclass names its functional, ``class HuberLoss(Loss, functional=F.huber_loss)``,
    and takes that function's keyword-only arguments (hyperparameters, ``reduction``,
    ``normalizer``...) in ``__init__``. Tensor hyperparameters become buffers, so
    ``.to(device)`` moves them. ``forward(input, target, **overrides)`` calls the
    functional; an override (e.g. ``normalizer=`` per batch) wins over the stored value.
    """

    functional: Callable[..., torch.Tensor]
    _defaults: dict[str, object] = {}

    def __init_subclass__(
        cls, functional: Callable[..., torch.Tensor] | None = None, **kwargs: object
    ) -> None:
        super().__init_subclass__(**kwargs)
        if functional is None:
            return
        cls.functional = staticmethod(functional)
        sig = inspect.signature(functional)
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
        if args:
            fail(
                name,
                f"takes its options as keyword arguments, got {len(args)} positional "
                f"({', '.join(map(repr, args))}).",
                f"name each one, e.g. {name}(reduction='sum'); the options are "
                f"{', '.join(self._defaults)}.",
                cls=LossTypeError,
            )
        _check_known(name, options, self._defaults)
        self._options: dict[str, object] = {}
        self._buffers_named: list[str] = []
        for name, default in self._defaults.items():
            value = options.get(name, default)
            if isinstance(value, torch.Tensor):
                self.register_buffer(name, value)
                self._buffers_named.append(name)
            else:
                self._options[name] = value
        # A bad reduction is caught at construction; the other hyperparameters are checked
        # by the functional at the first forward.
        if "reduction" in self._defaults:
            check_reduction(type(self).__name__, self._options["reduction"])

    def options(self) -> dict[str, object]:
        """The stored hyperparameters, buffers included."""
        return {**self._options, **{n: getattr(self, n) for n in self._buffers_named}}

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, *args: torch.Tensor, **overrides: object
    ) -> torch.Tensor:
        if overrides:
            _check_known(type(self).__name__, overrides, self._defaults)
        return self.functional(input, target, *args, **{**self.options(), **overrides})

    def extra_repr(self) -> str:
        parts = []
        for name, value in self.options().items():
            default = self._defaults[name]
            if isinstance(value, torch.Tensor):
                parts.append(f"{name}=tensor{tuple(value.shape)}")
            elif value != default:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)
