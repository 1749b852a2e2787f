"""losskit: every common PyTorch loss, exact, explained and fast.

Functions live in :mod:`losskit.functional` (alias ``losskit.F``), modules in
:mod:`losskit.nn`, NumPy float64 references in :mod:`losskit.reference`, and
:func:`losskit.get` builds a module from its registered name, and :func:`losskit.explain`
computes any loss by hand, step by step, checked against torch.
"""

from importlib import metadata as _metadata

from . import distributed, functional, nn, reference
from . import functional as F
from ._checks import checks_enabled, set_checks
from ._errors import LossInputError, LossTypeError
from ._registry import REGISTRY, Example, LossSpec, get, names, spec
from .explain import Explanation, explain  # the function shadows the module, on purpose

try:  # the installed distribution's version: one home, pyproject.toml
    __version__ = _metadata.version("losskit")
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a bare source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "F",
    "functional",
    "nn",
    "reference",
    "distributed",
    "LossInputError",
    "LossTypeError",
    "set_checks",
    "checks_enabled",
    "REGISTRY",
    "LossSpec",
    "Example",
    "get",
    "spec",
    "names",
    "explain",
    "Explanation",
    "__version__",
]
