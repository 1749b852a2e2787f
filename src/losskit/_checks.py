"""Shape, dtype and range checks: the one place that writes losskit's error messages.

Two kinds of check live here (SPEC section 3):

* *Always-on* checks read only metadata (shapes, dtypes, devices, Python numbers). They
  are free and also run while ``torch.compile`` traces.
* *Value* checks read the data (probabilities in [0, 1], class indices in range). They
  need a device-to-host copy, so they can be switched off with :func:`set_checks` or the
  environment variable ``LOSSKIT_CHECKS=0``, and they are skipped while ``torch.compile``
  traces.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable

import torch

from ._errors import LossInputError, LossTypeError

__all__ = ["set_checks", "checks_enabled"]

REDUCTIONS = ("none", "mean", "sum")

_state = {
    "enabled": os.environ.get("LOSSKIT_CHECKS", "1").strip().lower()
    not in ("0", "false", "no", "off")
}


class set_checks:  # noqa: N801 - used like a function, as torch.set_grad_enabled is
    """Turn losskit's value checks on or off, globally or inside a ``with`` block.

    Value checks read the data (e.g. that probabilities lie in [0, 1]) and so cost a
    device-to-host synchronisation. Shape, dtype and hyperparameter checks always run.

    Example:
        >>> import losskit
        >>> _ = losskit.set_checks(False)   # off from here on
        >>> _ = losskit.set_checks(True)    # and on again
        >>> with losskit.set_checks(False):  # off only inside the block
        ...     pass
    """

    def __init__(self, enabled: bool) -> None:
        self.previous = _state["enabled"]
        _state["enabled"] = bool(enabled)

    def __enter__(self) -> set_checks:
        return self

    def __exit__(self, *exc: object) -> None:
        _state["enabled"] = self.previous

    def __repr__(self) -> str:
        return f"set_checks({_state['enabled']})"


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def checks_enabled() -> bool:
    """True when value checks run: switched on, and not inside ``torch.compile`` tracing."""
    return _state["enabled"] and not _is_compiling()


# --------------------------------------------------------------------------- messages
def fail(loss: str, message: str, hint: str | None = None, *, cls: type = LossInputError):
    """Raise ``cls`` with losskit's message layout: ``"<loss>: <message> Hint: <hint>"``."""
    text = f"{loss}: {message}"
    if hint:
        text += f" Hint: {hint}"
    raise cls(text)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def describe(t: torch.Tensor) -> str:
    return f"shape {tuple(t.shape)}, dtype {dtype_name(t.dtype)}"


def _fmt(v: float) -> str:
    return f"{v:.6g}"


# --------------------------------------------------------------------------- always on
def check_reduction(loss: str, reduction: object) -> None:
    if reduction not in REDUCTIONS:
        fail(loss, f"reduction must be one of 'none', 'mean', 'sum', got {reduction!r}.")


def check_tensor(loss: str, name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        fail(
            loss,
            f"{name} must be a torch.Tensor, got {type(x).__name__}.",
            f"wrap it with torch.as_tensor({name}).",
            cls=LossTypeError,
        )
    return x


def check_floating(loss: str, name: str, x: torch.Tensor, hint: str | None = None) -> None:
    if x.is_complex():
        fail(
            loss,
            f"{name} must be a real floating-point tensor, got {describe(x)}.",
            f"losses are real: pass {name}.real or {name}.abs() as you mean it.",
            cls=LossTypeError,
        )
    if not x.is_floating_point():
        fail(
            loss,
            f"{name} must be a floating-point tensor, got {describe(x)}.",
            hint or f"convert it with {name}.float().",
            cls=LossTypeError,
        )


def check_real(loss: str, name: str, x: torch.Tensor) -> None:
    """Floating, integer or bool: anything but complex."""
    if x.is_complex():
        fail(loss, f"{name} must be a real tensor, got {describe(x)}.", cls=LossTypeError)


def check_same_device(loss: str, **tensors: torch.Tensor | None) -> None:
    items = [(k, t) for k, t in tensors.items() if isinstance(t, torch.Tensor)]
    if not items:
        return
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.device != first.device:
            fail(
                loss,
                f"{name} is on {t.device} but {first_name} is on {first.device}.",
                f"move both to one device, e.g. {name}.to({first_name}.device).",
            )


def check_same_shape(
    loss: str, input: torch.Tensor, target: torch.Tensor, broadcast: bool = False
) -> torch.Size:
    """Input and target shapes must match; with ``broadcast=True`` they must broadcast."""
    if input.shape == target.shape:
        return input.shape
    if not broadcast:
        fail(
            loss,
            f"target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)}.",
            "torch would broadcast them silently, which is rarely intended; reshape one of "
            "them, or pass broadcast=True to broadcast on purpose.",
        )
    try:
        return torch.broadcast_shapes(input.shape, target.shape)
    except RuntimeError:
        fail(
            loss,
            f"target shape {tuple(target.shape)} cannot be broadcast with input "
            f"shape {tuple(input.shape)} (broadcast=True).",
        )


def check_broadcastable_to(
    loss: str, name: str, t: torch.Tensor, shape: torch.Size, hint: str | None = None
) -> None:
    """``t`` must broadcast to ``shape`` without enlarging it."""
    try:
        ok = torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        fail(
            loss,
            f"{name} of shape {tuple(t.shape)} cannot be broadcast to the loss "
            f"shape {tuple(shape)}.",
            hint,
        )


def check_same_shape_as(
    loss: str,
    name: str,
    t: torch.Tensor,
    other_name: str,
    shape: torch.Size,
    hint: str | None = None,
) -> None:
    if t.shape != shape:
        fail(
            loss,
            f"{name} must have the shape of {other_name} {tuple(shape)}, got {tuple(t.shape)}.",
            hint,
        )


def check_number(
    loss: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real Python number (or 0-dim tensor) inside the given bounds; returns a float."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(loss, f"{name} must be a real number, got {value!r}.", cls=LossTypeError)
    v = float(value)
    bad = math.isnan(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {_fmt(low)}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {_fmt(high)}")
        fail(loss, f"{name} must be {' and '.join(parts) or 'a number'}, got {value!r}.")
    return v


def check_normalizer(loss: str, normalizer: object, reduction: str) -> None:
    if normalizer is None:
        return
    if reduction != "mean":
        fail(
            loss,
            f"normalizer is used only with reduction='mean', got reduction={reduction!r}.",
            "drop normalizer, or use reduction='mean'.",
        )
    if isinstance(normalizer, torch.Tensor):
        if normalizer.dim() != 0:
            fail(
                loss,
                f"normalizer must be a float or a 0-dim tensor, got a tensor of "
                f"shape {tuple(normalizer.shape)}.",
            )
        # a value check (reads the data). A tensor count may be 0 (every token of a step
        # ignored, e.g. from losskit.distributed.global_count): the summed loss is then 0
        # and so is the mean, by the empty-mean rule.
        if checks_enabled() and not bool(normalizer >= 0):
            fail(loss, f"normalizer must be >= 0, got {float(normalizer):g}.")
        return
    check_number(loss, "normalizer", normalizer, low=0.0, low_open=True)


def check_weight_tensor(loss: str, weight: object) -> torch.Tensor | None:
    if weight is None:
        return None
    check_tensor(loss, "weight", weight)
    check_real(loss, "weight", weight)
    return weight


# --------------------------------------------------------------------------- value checks
def check_in_unit_interval(
    loss: str, name: str, t: torch.Tensor, mask: torch.Tensor | None = None, hint: str | None = None
) -> None:
    """Value check: every (counted) element of ``t`` lies in [0, 1] and is not NaN."""
    if not checks_enabled() or t.numel() == 0:
        return
    with torch.no_grad():
        values = t.detach()
        if mask is not None:
            values = torch.where(mask, values, 0.5)
        lo, hi = torch.aminmax(values)  # one pass; NaN propagates into both
        if bool((lo >= 0) & (hi <= 1)):
            return
        if mask is not None:
            values = t.detach()[mask]
        n_bad = int((~((values >= 0) & (values <= 1))).sum())
        finite = values[~torch.isnan(values)]
        lo = _fmt(float(finite.min())) if finite.numel() else "nan"
        hi = _fmt(float(finite.max())) if finite.numel() else "nan"
        n_nan = values.numel() - finite.numel()
    found = f"found min {lo}, max {hi}"
    if n_nan:
        found += f", {n_nan} NaN"
    fail(
        loss,
        f"{name} must hold values in [0, 1], {found} ({n_bad} of {values.numel()} values outside).",
        hint,
    )


def format_values(values: Iterable[int | float], limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")
