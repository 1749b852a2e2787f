"""losskit.nn: module forms of the losses, made from the registry.

Each registry row names its module (``LossSpec.module_name``). A module holds the
hyperparameters of its functional and calls it in a one-line ``forward`` (see
:class:`losskit.nn.Loss`); it is made here from the row, unless it is written by hand
(:class:`LinearCrossEntropyLoss` owns a linear layer).
"""

from __future__ import annotations

import inspect

from .._registry import REGISTRY
from ._base import Loss
from .combined import CombinedLoss
from .linear import LinearCrossEntropyLoss

_BY_HAND = {"LinearCrossEntropyLoss": LinearCrossEntropyLoss}


def _module_doc(row) -> str:
    public = inspect.unwrap(row.functional)
    fn = public.__name__
    # the public function's inputs, in its order (what forward takes, as in Loss)
    params = inspect.signature(public).parameters.values()
    inputs = ", ".join(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
    return (
        f"Module form of :func:`losskit.functional.{fn}`: {row.summary}\n\n"
        f"Hyperparameters are the function's keyword arguments; ``forward({inputs}, "
        "**overrides)`` calls it (an override, e.g. ``normalizer=``, wins for that call)."
    )


def _make_module(row) -> type:
    if row.module_name in _BY_HAND:
        return _BY_HAND[row.module_name]
    namespace = {
        "__module__": __name__,
        "__qualname__": row.module_name,
        "__doc__": _module_doc(row),
    }
    return type(
        row.module_name,
        (Loss,),
        namespace,
        functional=inspect.unwrap(row.functional),
        positional=row.positional,
    )


__all__ = ["Loss", "CombinedLoss"]  # CombinedLoss sums modules: not a registry row
for _row in REGISTRY.values():
    _cls = _make_module(_row)
    for _name in (_row.module_name, *_row.module_aliases):
        globals()[_name] = _cls
        __all__.append(_name)
del _row, _cls, _name
