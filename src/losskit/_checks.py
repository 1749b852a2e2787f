"""Shape, dtype and range checks: the one place that writes losskit's error messages.

Two kinds of check live here (SPEC section 3):

* *Always-on* checks read only metadata (shapes, dtypes, devices, Python numbers). They
  are free and also run while ``torch.compile`` traces.
* *Value* checks read the data (probabilities in [0, 1], class indices in range). They
  need a device-to-host copy, so they can be switched off with :func:`set_checks` or the
  environment variable ``LOSSKIT_CHECKS=0``, and they are skipped while ``torch.compile``
  traces and inside ``torch.func`` transforms (``vmap``, ``grad``, ``jacrev``...).
"""

from __future__ import annotations

import contextvars
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


def _never() -> bool:  # pragma: no cover - a torch without the API asked about
    return False


#: Inside ``torch.compile``'s tracing: torch's own function, bound at import (a call of
#: it is what ``torch.compile`` reads as true while it traces).
is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", _never)

# functorch's interpreter stack: not None inside a torch.func transform
_peek_interpreter_stack = getattr(
    getattr(torch._C, "_functorch", None), "peek_interpreter_stack", lambda: None
)


def in_functorch_transform() -> bool:
    """Inside ``torch.func.vmap``/``grad``/``jacrev``...: data-dependent Python reads
    (``bool(t)``, ``.item()``) are not allowed there (vmap), so value checks are skipped."""
    return _peek_interpreter_stack() is not None


def eager() -> bool:
    """Plain eager mode: no ``torch.compile`` tracing and no ``torch.func`` transform,
    where a loss may read values on the host and run its hand-written gradients. Two
    calls of torch's functions, bound at import: every loss asks, and on a cache-cold
    step each Python frame costs microseconds."""
    return not is_compiling() and _peek_interpreter_stack() is None


def checks_enabled() -> bool:
    """True when value checks run: switched on, and not inside ``torch.compile`` tracing
    or a ``torch.func`` transform."""
    return _state["enabled"] and eager()


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
def check_reduction(loss: str, reduction: object, valid: tuple[str, ...] | None = None) -> None:
    """``reduction`` is one of ``valid`` (none/mean/sum; ``kl_div`` adds "batchmean")."""
    valid = valid or REDUCTIONS
    if not isinstance(reduction, str) or reduction not in valid:
        names = ", ".join(repr(r) for r in valid)
        fail(loss, f"reduction must be one of {names}, got {reduction!r}.")


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


def check_number(
    loss: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """A real Python number (or 0-dim tensor) inside the given bounds; returns a float.

    NaN is never valid, nor (unless ``finite=False``) an infinite value: an infinite
    gamma, z-loss or log-zero has no meaning and would only give NaN later."""
    if type(value) is not float and type(value) is not int:  # the usual two: no ABC test
        if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex():
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            fail(loss, f"{name} must be a real number, got {value!r}.", cls=LossTypeError)
    v = float(value)
    if finite and math.isinf(v):
        fail(loss, f"{name} must be finite, got {value!r}.")
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
        if normalizer.is_complex() or normalizer.dtype == torch.bool:
            fail(
                loss,
                f"normalizer must be a real number, got a tensor ({describe(normalizer)}).",
                cls=LossTypeError,
            )
        if normalizer.dim() != 0:
            fail(
                loss,
                f"normalizer must be a float or a 0-dim tensor, got a tensor of "
                f"shape {tuple(normalizer.shape)}.",
            )
        # a value check (reads the data). A tensor count may be 0 (every token of a step
        # ignored, e.g. from losskit.distributed.global_count): the summed loss is then 0
        # and so is the mean, by the empty-mean rule.
        if checks_enabled() and not normalizer.is_meta and not bool(normalizer >= 0):
            fail(loss, f"normalizer must be >= 0, got {float(normalizer):g}.")
        return
    check_number(loss, "normalizer", normalizer, low=0.0, low_open=True)


def check_weight_tensor(loss: str, weight: object, name: str = "weight") -> torch.Tensor | None:
    if weight is None:
        return None
    check_tensor(loss, name, weight)
    check_real(loss, name, weight)
    return weight


def check_call(
    loss: str,
    input: object,
    target: object,
    *,
    reduction: object = "mean",
    normalizer: object = None,
    input_name: str = "input",
    reductions: tuple[str, ...] = REDUCTIONS,
    **tensors: object,
) -> None:
    """The prologue every loss runs first (metadata only, always on): a valid
    ``reduction`` and ``normalizer``; ``input`` a real floating tensor; ``target`` a real
    tensor; each optional tensor argument in ``tensors`` (``weight=``, ``pos_weight=``,
    ``anchor_state=``...) ``None`` or a real tensor; all of them on one device."""
    # each check's test inline, its function (and message) only when it fails: this runs
    # on every call, where a few microseconds are a few percent of a small loss
    if not (isinstance(reduction, str) and reduction in reductions):
        check_reduction(loss, reduction, reductions)
    check_tensor(loss, input_name, input)
    check_tensor(loss, "target", target)
    if not input.is_floating_point():
        check_floating(loss, input_name, input)
    if target.is_complex():
        check_real(loss, "target", target)
    device = input.device
    moved = target.device != device
    for name, t in tensors.items():
        if t is not None:
            check_weight_tensor(loss, t, name)
            moved = moved or t.device != device
    if moved:
        check_same_device(loss, **{input_name: input, "target": target}, **tensors)
    if normalizer is not None:
        check_normalizer(loss, normalizer, reduction)


# The public loss being called (set by call_forms), named by check_mean_denominator.
_LOSS = contextvars.ContextVar("losskit_loss", default="losskit")


def current_loss() -> str:
    """The name of the public loss being called (for errors raised away from its code:
    a reduction's value check, a kernel's backward)."""
    return _LOSS.get()


def refuse_ignore_index_on_probabilities(
    loss: str,
    ignore_index: object,
    hint: str = "give ignored rows a zero weight through reduction='none', or pass indices.",
) -> None:
    """``ignore_index`` marks class indices; a probability target has none to mark."""
    fail(
        loss,
        f"ignore_index={ignore_index!r} applies to class-index targets only; this target "
        "holds probabilities.",
        hint,
    )


def check_mean_denominator(
    den: torch.Tensor, nonzero: torch.Tensor | bool, normalizer: object = None
) -> None:
    """Value check of a mean's denominator (called by :mod:`losskit._reduction`): the
    empty-mean rule (0) holds only when nothing is counted, or every counted weight is 0.

    ``den`` is ``sum(w)`` over the counted elements (any shape: one per reduced slice), or
    the tensor ``normalizer``; ``nonzero`` tells, alike, whether anything counts there
    (a counted element, or a counted weight that is not 0)."""
    if not checks_enabled() or den.is_meta:
        return
    if not bool(((den == 0) & nonzero).any()):
        return
    if normalizer is not None:
        fail(
            _LOSS.get(),
            "normalizer is 0 while elements are counted: sum(w * l) / normalizer has no value.",
            "the empty mean (0) is for a step where nothing is counted; pass the number "
            "(or summed weight) of the counted elements, e.g. losskit.distributed.global_count.",
        )
    fail(
        _LOSS.get(),
        "the weights of the counted elements sum to 0 while some are not 0: the weighted "
        "mean sum(w * l) / sum(w) has no value.",
        "weights are >= 0 in a weighted mean (negative ones are allowed, as in torch, but "
        "must not cancel); use reduction='sum', or pass a normalizer.",
    )


_INT64 = (-(2**63), 2**63 - 1)


def check_ignore_index(loss: str, ignore_index: object) -> int:
    """A class index not counted: an int (a Python or NumPy integer, or a 0-dim integer
    tensor; not a bool, a float or a string) that fits in int64. One rule for every
    class-index loss and metric."""
    value = ignore_index
    if isinstance(value, torch.Tensor):
        if (
            value.dim() != 0
            or value.dtype == torch.bool
            or value.is_floating_point()
            or (value.is_complex())
        ):
            fail(
                loss,
                f"ignore_index must be an int, got a tensor ({describe(value)}).",
                "pass a Python int, e.g. ignore_index=-100.",
                cls=LossTypeError,
            )
        if value.is_meta:
            fail(loss, "ignore_index must be an int, got a meta tensor.", cls=LossTypeError)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(
            loss,
            f"ignore_index must be an int, got {ignore_index!r} ({type(ignore_index).__name__}).",
            "pass a Python int, e.g. ignore_index=-100.",
            cls=LossTypeError,
        )
    value = int(value)
    if not _INT64[0] <= value <= _INT64[1]:
        fail(loss, f"ignore_index must fit in int64 (|value| < 2**63), got {value}.")
    return value


def check_ignore_value(loss: str, ignore_index: object) -> float | None:
    """An element target value not counted (binary losses, whose targets are floats): a
    finite real number or 0-dim real tensor, or ``None``; returned as a float (so that a
    large int such as 2**70 compares without overflow)."""
    if ignore_index is None:
        return None
    return check_number(loss, "ignore_index", ignore_index)


def check_bool(loss: str, name: str, value: object) -> bool:
    """A flag: ``True`` or ``False`` (``from_logits="no"`` is not a flag)."""
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        fail(loss, f"{name} must be True or False, got {value!r}.", cls=LossTypeError)
    return bool(value)


def check_dim(loss: str, name: str, dim: object, t: torch.Tensor) -> int:
    """A dimension of ``t``: an int in ``[-t.dim(), t.dim())``; returned non-negative."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        fail(loss, f"{name} must be an int, got {dim!r}.", cls=LossTypeError)
    if not -t.dim() <= dim < t.dim():
        fail(loss, f"{name}={dim} is out of range for input of shape {tuple(t.shape)}.")
    return int(dim) % t.dim()


def check_class_weight(loss: str, weight: torch.Tensor | None, num_classes: int) -> None:
    """A class weight holds one value per class: shape ``(C,)``."""
    if weight is not None and (weight.dim() != 1 or weight.shape[0] != num_classes):
        fail(
            loss,
            f"weight must hold one value per class, shape ({num_classes},), got "
            f"{tuple(weight.shape)}.",
            "weight is the class weight (C,); for a per-sample weight, use "
            "reduction='none' and weigh the result.",
        )


def check_integer(loss: str, name: str, t: torch.Tensor, what: str = "class indices") -> None:
    """``t`` holds integers (any integer dtype). A bool tensor is not class indices, in every
    class-index loss (as in torch): it is refused with the two casts that mean something."""
    if t.dtype == torch.bool:
        fail(
            loss,
            f"{name} must hold integer {what}, got {describe(t)}.",
            f"for classes 0 and 1 pass {name}.long(); for binary labels use "
            f"binary_cross_entropy_with_logits with {name}.float().",
            cls=LossTypeError,
        )
    if t.is_floating_point() or t.is_complex():
        fail(
            loss,
            f"{name} must hold integer {what}, got {describe(t)}.",
            f"{what} must be integers: cast with {name}.long().",
            cls=LossTypeError,
        )


# --------------------------------------------------------------------------- value checks
def host_bounds(t: torch.Tensor) -> tuple:
    """The least and the largest value of ``t`` (no grad is recorded for a detached or
    integer tensor), read as Python numbers: on CPU two cheap reads, on a device one
    synchronisation; NaN in ``t`` gives NaN for both, so ``lo >= a and hi <= b`` is then
    False. A value check's one read when all is well."""
    lo, hi = torch.aminmax(t)
    if t.device.type == "cpu":
        return lo.item(), hi.item()
    lo, hi = torch.stack((lo, hi)).tolist()
    return lo, hi


def check_in_unit_interval(
    loss: str, name: str, t: torch.Tensor, mask: torch.Tensor | None = None, hint: str | None = None
) -> None:
    """Value check: every (counted) element of ``t`` lies in [0, 1] and is not NaN."""
    if not checks_enabled() or t.numel() == 0:
        return
    values = t.detach()
    if mask is not None:
        values = torch.where(mask, values, 0.5)
    lo, hi = host_bounds(values)  # one pass; NaN propagates into both
    if lo >= 0 and hi <= 1:
        return
    with torch.no_grad():
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


# --------------------------------------------------------------------------- classes


def check_class_indices(
    loss: str,
    t: torch.Tensor,
    num_classes: int,
    ignore_index: int | None,
    classes_from: str = "input",
) -> bool:
    """Value check: class indices in ``0..num_classes-1`` or ``ignore_index``.

    ``classes_from`` names the argument that holds the classes, for the message ("but
    input has 4 classes"; ``linear_cross_entropy``'s classes are the rows of
    ``linear_weight``). Returns whether its one read showed every target a class and
    none equal to ``ignore_index``: then no mask of ignored targets is needed
    (``False`` when it does not know: an empty target, or checks off on a device).

    With checks off on CPU the read still runs, for that answer alone (it waits for no
    device, and it lets torch's own kernels run: the masked path it spares costs more
    than the read), and nothing is raised.
    """
    checking = checks_enabled()
    # not checking: off by request (read anyway on CPU, in eager mode), or inside
    # torch.compile / torch.func (no read)
    if t.numel() == 0 or not checking and (_state["enabled"] or not t.is_cpu or not eager()):
        return False
    # one pass and one read when every target is a class (integers: no autograd)
    lo, hi = host_bounds(t)
    if lo >= 0 and hi < num_classes:
        return ignore_index is None or not lo <= ignore_index <= hi
    if not checking:
        return False
    with torch.no_grad():
        if ignore_index is not None:
            lo, hi = host_bounds(torch.where(t == ignore_index, 0, t))
            if lo >= 0 and hi < num_classes:
                return False
        bad = (t < 0) | (t >= num_classes)
        if ignore_index is not None:
            bad &= t != ignore_index
        n_bad = int(bad.sum())
        if n_bad == 0:
            return False
        values = torch.unique(t[bad]).tolist()
        kept = t if ignore_index is None else t[t != ignore_index]
        t_min, t_max = int(kept.min()), int(kept.max())
    noun = "class index" if len(values) == 1 else "class indices"
    plural = "value" if n_bad == 1 else "values"
    ignore = f", or ignore_index={ignore_index}" if ignore_index is not None else ""
    hint = None
    if t_max == num_classes and t_min >= 1:
        hint = "labels look 1-based: subtract 1 (target - 1)."
    elif 255 in values:
        hint = "did you mean ignore_index=255? (255 marks void pixels in many segmentation sets)"
    elif len(values) == 1 and values[0] < 0:
        hint = f"did you mean ignore_index={values[0]}?"
    fail(
        loss,
        f"target has {noun} {format_values(values)}, but {classes_from} has "
        f"{num_classes} classes (valid 0..{num_classes - 1}{ignore}); {n_bad} {plural} out "
        "of range.",
        hint,
    )


# How far from 1 a probability row may sum, by the dtype the user passed it in.
_SUM_TOLERANCE = {
    torch.float64: 1e-6,
    torch.float32: 1e-3,
    torch.float16: 3e-2,
    torch.bfloat16: 3e-2,
}


def check_prob_rows(
    loss: str, t: torch.Tensor, class_dim: int, source_dtype: torch.dtype | None = None
) -> None:
    """Value check: probability targets in [0, 1] that sum to 1 over ``class_dim``
    (within a tolerance set by the dtype they were given in)."""
    check_in_unit_interval(
        loss,
        "target",
        t,
        hint="probability targets must lie in [0, 1]; for class indices pass an integer "
        "tensor (target.long()).",
    )
    if not checks_enabled() or t.numel() == 0:
        return
    with torch.no_grad():
        sums = t.sum(dim=class_dim)
        tol = _SUM_TOLERANCE.get(source_dtype or t.dtype, 1e-3)
        off = (sums - 1).abs() > tol
        n_off = int(off.sum())
        if n_off == 0:
            return
        worst = sums[off]
        lo, hi = float(worst.min()), float(worst.max())
    fail(
        loss,
        f"probability targets must sum to 1 over the class dimension {class_dim}; "
        f"{n_off} of {sums.numel()} rows do not (sums from {lo:.6g} to {hi:.6g}).",
        "normalise with target / target.sum(dim, keepdim=True), or pass class indices.",
    )


# --------------------------------------------------------------------------- call forms
# Habits from other libraries, for the unknown-option error (HABITS below).
_DEPRECATED = {"size_average", "reduce"}


def _from_logits_hint(loss: str) -> str:
    """What the loss's input is (its registry row's input kind), for ``from_logits=``."""
    from ._registry import REGISTRY

    row = REGISTRY.get(loss) or next((r for r in REGISTRY.values() if r.module_name == loss), None)
    kind = row.input_kind.name if row is not None else None
    if kind == "logits":
        return f"{loss} always takes logits (Keras' from_logits=True); drop the option."
    if kind in ("probs", "logprobs"):
        what = row.input_kind.description
        return (
            f"{loss} takes {what} (Keras' from_logits=False); for logits use the "
            "_with_logits form or cross_entropy."
        )
    return f"{loss} takes no from_logits; categorical_cross_entropy does, as in Keras."


_REDUCTION_HINT = (
    "size_average and reduce are torch's deprecated forms of reduction: pass "
    "reduction='mean', 'sum' or 'none'."
)
_SMP_MODE = (
    "smp's mode= chooses the form: losskit has one function per form (binary/multilabel: "
    "binary_cross_entropy_with_logits, sigmoid_focal_loss; multiclass: cross_entropy, "
    "softmax_focal_loss)."
)

# The habits table: (option typed elsewhere, an option the loss must take for the entry to
# apply or None, the hint naming losskit's argument; a callable hint gets the loss's name).
# The first entry that applies wins.
HABITS: tuple[tuple[str, str | None, object], ...] = (
    ("size_average", None, _REDUCTION_HINT),  # torch's deprecated pair
    ("reduce", None, _REDUCTION_HINT),
    ("axis", "dim", "losskit calls Keras' axis dim: pass dim=."),  # Keras
    (
        "axis",
        None,
        "the classes are dimension 1 here (torch's layout): move them with "
        "input.movedim(-1, 1), target.movedim(-1, 1).",
    ),
    ("from_logits", None, _from_logits_hint),  # Keras
    ("sample_weight", "weight", "Keras' sample_weight is weight= here."),
    ("y_true", None, "losskit takes (input, target) positionally, Keras (y_true, y_pred)."),
    ("y_pred", None, "losskit takes (input, target) positionally, Keras (y_true, y_pred)."),
    (
        "alpha",
        "weight",
        "the softmax focal loss balances classes with weight= (one value per class, "
        "(C,)), not a scalar alpha; sigmoid_focal_loss takes alpha.",
    ),
    ("class_weight", "weight", "class weights are weight= here (one value per class)."),
    ("class_weights", "weight", "class weights are weight= here (one value per class)."),
    ("mode", None, _SMP_MODE),  # smp
    ("smooth_factor", "label_smoothing", "losskit calls smp's smooth_factor label_smoothing."),
    ("smoothing", "label_smoothing", "losskit calls it label_smoothing."),
    ("ignore_label", "ignore_index", "losskit calls it ignore_index."),
    ("delta", "beta", "smooth_l1_loss's threshold is beta (huber_loss takes delta)."),
    ("beta", "delta", "huber_loss's threshold is delta (smooth_l1_loss takes beta)."),
    (
        "gamma",
        "label_smoothing",
        "cross_entropy has no gamma: the focal form is softmax_focal_loss(gamma=).",
    ),
)


def _habit(option: str, valid, loss: str = "") -> str | None:
    """The hint of the first entry of :data:`HABITS` that applies."""
    for typed, requires, hint in HABITS:
        if typed == option and (requires is None or requires in valid):
            return hint(loss) if callable(hint) else hint
    return None


def check_options(
    loss: str, options: Iterable[str], valid: Iterable[str], inputs: Iterable[str] = ()
) -> None:
    """Every option is one the loss takes; else the "unknown option ... did you mean"
    error, with a hint for a habit from torch, Keras or smp (``axis=``, ``from_logits=``,
    ``alpha=`` of a softmax focal loss, ``mode=``, ``size_average=``...)."""
    import difflib

    valid = list(valid)
    unknown = sorted(set(options) - set(valid) - set(inputs))
    if not unknown:
        return
    hint = _habit(unknown[0], valid, loss)
    if hint is None:
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f"did you mean {close[0]}?" if close else None
    takes = f"valid options are {', '.join(valid)}" if valid else "it takes no options"
    fail(loss, f"unknown option {', '.join(map(repr, unknown))}; {takes}.", hint, cls=LossTypeError)


def legacy_reduction(size_average: object, reduce: object) -> str:
    """torch's reading of its deprecated ``size_average``/``reduce`` pair."""
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def positional_options(
    loss: str,
    args: tuple,
    order: tuple[str, ...],
    given: Iterable[str],
    *,
    module: bool,
    valid: Iterable[str] = (),
) -> dict[str, object]:
    """Options given positionally, named by ``order``: torch's (or the peer's) positional
    order of the loss's options (``LossSpec.positional``). ``None`` in one of torch's
    deprecated ``size_average``/``reduce`` slots is a placeholder; a value there is an
    error that names the ``reduction`` to pass."""
    where = f"{loss}(...)" if module else f"{loss}(input, target, ...)"
    if len(args) > len(order):
        if not order:
            fail(
                loss,
                f"takes its options as keyword arguments, got {len(args)} positional "
                f"({', '.join(map(repr, args))}).",
                f"name each one, e.g. {where.replace('...', 'reduction=' + repr('sum'))}"
                + (f"; the options are {', '.join(valid)}." if valid else "."),
                cls=LossTypeError,
            )
        fail(
            loss,
            f"takes at most {len(order)} options positionally, in torch's order "
            f"({', '.join(order)}), got {len(args)} ({', '.join(map(repr, args))}).",
            "pass the others as keyword arguments.",
            cls=LossTypeError,
        )
    named = dict(zip(order, args, strict=False))  # len(args) <= len(order), checked above
    legacy = {k: named.pop(k) for k in _DEPRECATED & set(named)}
    if any(v is not None for v in legacy.values()):
        r = legacy_reduction(legacy.get("size_average"), legacy.get("reduce"))
        fail(
            loss,
            "size_average and reduce are torch's deprecated forms of reduction, got "
            f"{', '.join(f'{k}={v!r}' for k, v in sorted(legacy.items()))}.",
            f"pass reduction={r!r} by keyword.",
            cls=LossTypeError,
        )
    twice = sorted(set(named) & set(given))
    if twice:
        fail(
            loss,
            f"got {twice[0]} both positionally and by keyword.",
            f"pass {twice[0]} once, by keyword.",
            cls=LossTypeError,
        )
    return named


def on_meta(fn, args, kw):
    """``fn(*args, **kw)`` with the value checks off: a meta tensor has no data to read,
    only shapes and dtypes, which the always-on checks still see."""
    with set_checks(False):
        return fn(*args, **kw)


def call_forms(fn):
    """The public form of a loss function: the call forms a user already writes.

    On meta tensors (shapes without data) the value checks are skipped (:func:`on_meta`).
    Options given positionally after the inputs are named by torch's (or the peer's)
    positional order, which the loss's registry row declares (``LossSpec.positional``):
    ``cross_entropy(x, y, w)`` is ``cross_entropy(x, y, weight=w)``. Beyond that order, or
    with an unknown keyword, the call is a :class:`LossTypeError` naming the keyword to
    use (:func:`check_options`). The fast path (inputs positional, known keywords) costs
    one call; ``inspect.unwrap`` gives ``fn``, whose options stay keyword-only.
    """
    import functools
    import inspect

    params = inspect.signature(fn).parameters.values()
    inputs = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    valid = frozenset(p.name for p in params)
    options = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    n = len(inputs)
    name = fn.__name__

    def slow(args, kw):
        order = ()
        if len(args) > n:
            from ._registry import REGISTRY

            row = REGISTRY.get(name)
            order = row.positional if row is not None else ()
        check_options(name, kw, options, inputs)
        named = positional_options(name, args[n:], order, kw, module=False, valid=options)
        return args[:n], {**kw, **named}

    @functools.wraps(fn)
    def call(*args, **kw):
        if len(args) > n or not valid.issuperset(kw):
            args, kw = slow(args, kw)
        if args and getattr(args[0], "is_meta", False):
            return on_meta(fn, args, kw)
        if is_compiling():  # no value checks there, so no name to give them
            return fn(*args, **kw)
        token = _LOSS.set(name)  # the name a reduction's value check reports
        try:
            return fn(*args, **kw)
        finally:
            _LOSS.reset(token)

    call.positional_inputs = tuple(inputs)
    call.__kwdefaults__ = fn.__kwdefaults__  # introspection sees the options' defaults
    return call
