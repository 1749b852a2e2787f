"""``losskit.explain``: a loss computed by hand, step by step, and checked against torch.

The steps are those of the NumPy float64 reference (``losskit.reference``), recorded as
they run; the check runs losskit's torch implementation and, where torch has the loss,
torch's own built-in on the same inputs.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from . import _checks as C
from ._registry import LossSpec, spec
from .reference import Step, record

__all__ = ["Explanation", "explain"]

# Options that are tensors in the functional API (lists become tensors).
_TENSOR_OPTIONS = {
    "weight": torch.float64,
    "pos_weight": torch.float64,
    "linear_bias": torch.float64,
}


def _fmt_value(value: np.ndarray, ignored: bool = False) -> str:
    if value.ndim == 0:
        return f"{float(value):.6g}"
    with np.printoptions(
        precision=4,
        suppress=True,
        threshold=60,
        edgeitems=3,
        floatmode="maxprec",
        nanstr="ignored" if ignored else "nan",
    ):
        return np.array2string(value, separator=", ")


def _plain(value: object, ignored: bool = False) -> object:
    """JSON-ready: arrays to (nested) lists, non-finite floats to strings (NaN of an
    ignored entry to ``"ignored"``)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "ignored" if ignored and math.isnan(value) else str(value)
    if isinstance(value, list):
        return [_plain(v, ignored) for v in value]
    return value


@dataclass
class Explanation:
    """The by-hand computation of one loss on one input.

    Attributes:
        name: the loss.
        source: where the input comes from (a published worked example, or "given").
        options: the options used.
        steps: the named steps, each with ``name``, ``formula`` and ``value``.
        result: the reference's result: a float, or a list for ``reduction="none"``.
        check: losskit's torch value, torch's built-in value (``None`` where torch has no
            such loss or option) and their absolute differences from ``result``.
        inputs: what the loss takes, from its input and target kinds.
        ignored_steps: the steps whose entries at ignored targets (``ignore_index``) are
            shown as ``ignored`` (NaN in ``steps``, ``"ignored"`` in :meth:`to_dict`).
    """

    name: str
    source: str
    options: Mapping[str, object]
    steps: list[Step]
    result: float | list
    check: dict[str, object] = field(default_factory=dict)
    inputs: str = ""
    ignored_steps: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready data: ``{"name", "source", "inputs", "options", "steps", "result",
        "check"}``."""
        return {
            "name": self.name,
            "source": self.source,
            "inputs": self.inputs,
            "options": {
                k: _plain(v.tolist() if isinstance(v, torch.Tensor) else v)
                for k, v in self.options.items()
            },
            "steps": [
                {
                    "name": s.name,
                    "formula": s.formula,
                    "value": _plain(s.value, i in self.ignored_steps),
                }
                for i, s in enumerate(self.steps)
            ],
            "result": _plain(self.result),
            "check": {k: _plain(v) for k, v in self.check.items()},
        }

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.source}"]
        if self.inputs:
            lines.append(f"takes: {self.inputs}")
        if self.options:
            shown = ", ".join(
                f"{k}={v.tolist() if isinstance(v, torch.Tensor) else v!r}"
                for k, v in self.options.items()
            )
            lines.append(f"options: {shown}")
        lines.append("")
        width = max((len(s.name) for s in self.steps), default=0)
        for i, s in enumerate(self.steps, 1):
            head = f"{i:2d}. {s.name.ljust(width)}   {s.formula}"
            if s.value.ndim == 0:  # a number goes on the formula's line
                lines.append(f"{head} = {_fmt_value(s.value)}")
                continue
            lines.append(head)
            for row in _fmt_value(s.value, i - 1 in self.ignored_steps).splitlines():
                lines.append(f"    {' ' * width}   {row}")
        lines.append("")
        lines.append(f"result: {_fmt_value(np.asarray(self.result))}")
        c = self.check
        parts = [
            f"losskit {_fmt_value(np.asarray(c['losskit']))} (|diff| {c['losskit_abs_diff']:.2g})"
        ]
        if c.get("torch") is not None:
            parts.append(
                f"torch built-in {_fmt_value(np.asarray(c['torch']))} "
                f"(|diff| {c['torch_abs_diff']:.2g})"
            )
        else:
            parts.append("torch built-in: none for this loss or these options")
        lines.append("check:  " + "; ".join(parts))
        return "\n".join(lines)


def explain_options(name: str) -> list[str]:
    """The options ``explain`` takes for a loss: those of its by-hand reference (not the
    execution options, such as ``backend``, that choose how the torch path runs), and the
    extra inputs (``anchor_state``, ``linear_weight``) given as options."""
    row = spec(name)
    params = inspect.signature(inspect.unwrap(row.reference)).parameters.values()
    options = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    return [*(e.name for e in row.extra_inputs), *options]


def _as_tensor(value: object, integer: bool) -> torch.Tensor:
    """A CPU tensor, float64 when floating: tensors of any dtype, lists and arrays mix."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if not value.is_floating_point():  # an integer (index) tensor stays one
            return value
        value = value.numpy()
    array = np.asarray(value)
    if integer:
        if array.dtype.kind == "f" and not np.all(array == np.round(array)):
            raise C.LossTypeError(f"class indices must be whole numbers, got {value!r}.")
        return torch.as_tensor(array.astype(np.int64))
    return torch.as_tensor(array.astype(np.float64))


def _indices(row: LossSpec, target: object, x: torch.Tensor) -> bool:
    """Whether the target holds class indices: always for an integer kind, except a
    floating target of the input's shape where the kind takes probabilities too
    (``soft_targets``), which is then read as torch reads it: probabilities."""
    kind = row.target_kind
    if not kind.integer or not kind.soft_targets:
        return kind.integer
    if isinstance(target, torch.Tensor):
        floating, shape = target.is_floating_point(), tuple(target.shape)
    else:
        array = np.asarray(target)
        floating, shape = array.dtype.kind == "f", array.shape
    return not (floating and shape == tuple(x.shape))


def _as_option(key: str, value: object) -> object:
    """Tensor options (class weights, ``linear_bias``) as float64 tensors, whatever their
    form (list, array, tensor of any dtype)."""
    if isinstance(value, torch.Tensor) and (value.is_floating_point() or key in _TENSOR_OPTIONS):
        return value.detach().cpu().double()
    if key in _TENSOR_OPTIONS and value is not None and not isinstance(value, torch.Tensor):
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    return value


def _ignored(row: LossSpec, y: torch.Tensor, options: Mapping[str, object]) -> np.ndarray | None:
    """Where the target is ``ignore_index`` (``None`` when nothing is ignored)."""
    ignore = options.get("ignore_index")
    if ignore is None or isinstance(ignore, torch.Tensor) and ignore.dim() != 0:
        return None
    mask = (y == float(ignore)).numpy()
    return mask if mask.any() else None


# A step uses the target when its name or formula names it (y, p_t, "target"), or drops
# the ignored elements (a target that only masks positions).
_USES_TARGET = re.compile(r"\by\b|\[y\]|target|_t\b|ignored")


def _mark_ignored(steps: list[Step], ignored: np.ndarray | None) -> list[int]:
    """The steps, from the first one that uses the target, whose values have the
    target's shape: their ignored entries are shown as ignored (not another class's
    numbers). Returns their indices; their ignored entries become NaN."""
    if ignored is None:
        return []
    marked, using = [], False
    for i, s in enumerate(steps):
        using = using or bool(_USES_TARGET.search(f"{s.name} {s.formula}"))
        if using and s.value.shape == ignored.shape:
            steps[i] = Step(s.name, s.formula, np.where(ignored, np.nan, s.value))
            marked.append(i)
    return marked


def explain(
    name: str, input: object = None, target: object = None, **options: object
) -> Explanation:
    """Compute a loss by hand, step by step, and check the result against torch.

    Args:
        name: a registered loss name or alias (``losskit list`` shows them).
        input, target: arrays, nested lists or tensors. Both ``None``: the loss's first
            embedded example (a published tutorial's inputs where one exists), with its options
            (explicit options override them).
        **options: the loss's options; lists become tensors (``weight=[2, 1, 2]``).
            For ``detection_focal_loss`` pass ``anchor_state=`` here, for
            ``linear_cross_entropy`` ``linear_weight=`` (both part of the embedded
            examples).

    Returns:
        An :class:`Explanation`; ``str()`` renders the walk-through, ``to_dict()`` gives
        JSON-ready data.

    Example:
        >>> import losskit
        >>> e = losskit.explain("cross_entropy", [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]],
        ...                     [0, 1, 0], weight=[1, 2])
        >>> [s.name for s in e.steps][:3]
        ['logits', 'softmax of each row', 'log-probabilities']
        >>> round(e.result, 4)
        0.7398
    """
    row: LossSpec = spec(name)
    extra_inputs = row.extra_inputs  # given to explain as options
    extra_names = tuple(e.name for e in extra_inputs)
    if input is None and target is None:
        example = row.examples[0]
        input, target, source = example.input, example.target, example.source
        options = {
            **example.options,
            **dict(zip(extra_names, example.extra, strict=True)),
            **options,
        }
    elif input is None or target is None:
        C.fail(row.name, "explain needs both input and target, or neither (the embedded example).")
    else:
        source = "given input and target"
    C.check_options(f"explain {row.name}", options, explain_options(row.name))
    missing = [n for n in extra_names if n not in options]
    if missing:
        C.fail(row.name, f"explain needs {', '.join(missing)}= for this loss.")

    x = _as_tensor(input, integer=False)
    y = _as_tensor(target, integer=_indices(row, target, x))
    extra = [_as_tensor(options.pop(e.name), integer=e.integer) for e in extra_inputs]
    call = {k: _as_option(k, v) for k, v in options.items()}

    value = row.functional(x, y, *extra, **call)  # validates first, with losskit's messages
    with record() as steps:
        result = np.asarray(row.reference(x, y, *extra, **call), dtype=np.float64)
    builtin = row.torch_builtin(x, y, *extra, **call) if row.torch_builtin else None
    steps = list(steps)
    marked = _mark_ignored(steps, _ignored(row, y, call))

    ours = value.detach().double().numpy()
    check: dict[str, object] = {
        "losskit": float(ours) if ours.ndim == 0 else ours,
        "losskit_abs_diff": float(np.max(np.abs(ours - result), initial=0.0)),
        "torch": None,
        "torch_abs_diff": None,
    }
    if builtin is not None:
        theirs = builtin.detach().double().numpy()
        check["torch"] = float(theirs) if theirs.ndim == 0 else theirs
        check["torch_abs_diff"] = float(np.max(np.abs(theirs - result), initial=0.0))
    return Explanation(
        name=row.name,
        source=source,
        options={**call, **dict(zip(extra_names, extra, strict=True))},
        steps=steps,
        ignored_steps=marked,
        result=float(result) if result.ndim == 0 else result.tolist(),
        check=check,
        inputs=f"input {row.input_kind.description}; target {row.target_kind.description}",
    )
