"""Recording of the named steps that a reference computation takes.

References call :func:`step` for every intermediate a person would write down by hand.
Outside :func:`record` that is a no-op that returns the value; inside, each step is kept
(name, formula, value), which is what ``losskit.explain`` shows.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

__all__ = ["Step", "record", "step", "as_array"]

_steps: contextvars.ContextVar[list[Step] | None] = contextvars.ContextVar(
    "losskit_reference_steps", default=None
)


@dataclass(frozen=True)
class Step:
    """One line of a by-hand computation."""

    name: str
    formula: str
    value: np.ndarray


@contextmanager
def record() -> Iterator[list[Step]]:
    """Collect the steps of the reference calls made inside the block."""
    steps: list[Step] = []
    token = _steps.set(steps)
    try:
        yield steps
    finally:
        _steps.reset(token)


def step(name: str, formula: str, value: object) -> np.ndarray:
    """Record ``value`` under ``name`` (when recording) and return it as a float64 array."""
    value = np.asarray(value, dtype=np.float64)
    steps = _steps.get()
    if steps is not None:
        steps.append(Step(name, formula, value.copy()))
    return value


def as_array(x: object, dtype: type = np.float64) -> np.ndarray | None:
    """NumPy array of ``x`` (a list, an array or a torch tensor); ``None`` stays ``None``."""
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy() if dtype is np.float64 else x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
