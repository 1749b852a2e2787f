"""The registry: one ``LossSpec`` row per loss, plain data read by the tests, the demo,
the benchmarks, the command line, ``losskit.nn`` and the docs. Adding a loss is one
function, one reference and one row in its family's module of :mod:`losskit._rows`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

import torch

from ._checks import fail
from ._errors import LossTypeError
from ._rows import ROWS as _ROWS
from ._spec import Example, LossSpec

__all__ = ["Example", "LossSpec", "REGISTRY", "get", "spec", "names"]


REGISTRY: Mapping[str, LossSpec] = MappingProxyType({row.name: row for row in _ROWS})
_ALIASES = {alias: row.name for row in _ROWS for alias in row.aliases}


def names(include_aliases: bool = False) -> list[str]:
    """Registered loss names (and aliases)."""
    out = list(REGISTRY)
    return out + list(_ALIASES) if include_aliases else out


# Short names users type, resolved by :func:`spec` and :func:`get` (not exported as
# functions); ambiguous ones ("bce", "focal") get a suggestion instead.
_SHORT_NAMES = {"ce": "cross_entropy", "nll": "nll_loss", "mae": "l1_loss", "l1": "l1_loss"}
_AMBIGUOUS = {"bce": ("binary_cross_entropy_with_logits", "binary_cross_entropy")}


def _resolve(name: str) -> str | None:
    """The registered name that ``name`` means: a name or alias, a module name
    (``"CrossEntropyLoss"``), a short name (``"ce"``), any case, with or without
    ``_loss``; ``None`` when nothing matches."""
    modules = {n: r.name for r in REGISTRY.values() for n in (r.module_name, *r.module_aliases)}
    key = name.strip()
    for candidate in (key, key.lower(), f"{key.lower()}_loss"):
        for table in (_ALIASES, modules, _SHORT_NAMES):
            if candidate in table:
                return table[candidate]
        if candidate in REGISTRY:
            return candidate
    lowered = {m.lower(): r for m, r in modules.items()}
    return lowered.get(key.lower())


def spec(name: str) -> LossSpec:
    """The registry row of a loss, by name, alias, module name or short name."""
    if not isinstance(name, str):
        fail(
            "losskit",
            f"a loss name must be a string, got {name!r} ({type(name).__name__}).",
            "`losskit list` shows every loss.",
            cls=LossTypeError,
        )
    key = _resolve(name)
    if key is None:
        every = names(True)
        close = (
            list(_AMBIGUOUS.get(name.lower(), ()))
            or [n for n in every if name.lower() in n]
            or difflib.get_close_matches(name, every, n=3)
        )
        fail(
            "losskit",
            f"unknown loss {name!r}.",
            f"did you mean {' or '.join(map(repr, close[:3]))}?"
            if close
            else "`losskit list` shows every loss.",
        )
    return REGISTRY[key]


def get(name: str, *args: object, **options: object) -> torch.nn.Module:
    """A loss module by name, alias, module name or short name, e.g.
    ``losskit.get("huber_loss", delta=0.5)``, ``losskit.get("CrossEntropyLoss")``,
    ``losskit.get("ce")``.

    Example:
        >>> import losskit, torch
        >>> loss = losskit.get("mae_loss")
        >>> loss(torch.ones(2, 2), torch.tensor([[0., 1.], [2., 3.]]))
        tensor(1.)
    """
    return spec(name).module(*args, **options)


def losses_table() -> str:
    """The README's table of losses (Markdown), made from the registry; a test keeps the
    README's copy equal to it (``python -m losskit._registry`` prints it)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [
        "| function | module | family | what it computes | when to use it |",
        "|---|---|---|---|---|",
    ]
    for row in REGISTRY.values():
        name = f"`{row.name}`" + "".join(f" (alias `{a}`)" for a in row.aliases)
        lines.append(
            f"| {name} | `{row.module_name}` | {row.family} | {cell(row.summary)} | "
            f"{cell(row.when_to_use)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(losses_table())
