"""A weighted sum of loss modules that reports each term: DiceCE, DiceFocal and the like."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .. import _checks as C
from ._base import Loss

__all__ = ["CombinedLoss"]

_NAME = "CombinedLoss"


def _check_terms(terms: object) -> dict[str, nn.Module]:
    if not isinstance(terms, (Mapping, nn.ModuleDict)):
        C.fail(
            _NAME,
            f"terms must map names to loss modules, got {type(terms).__name__}.",
            'e.g. CombinedLoss({"dice": DiceLoss(), "ce": CrossEntropyLoss()}).',
            cls=C.LossTypeError,
        )
    if not terms:
        C.fail(_NAME, "terms must hold at least one loss module, got an empty mapping.")
    for name, term in terms.items():
        if not isinstance(name, str) or not name or "." in name or hasattr(nn.ModuleDict(), name):
            C.fail(
                _NAME,
                f"term names must be non-empty strings without '.' that are not attributes "
                f"of nn.Module, got {name!r}.",
                cls=C.LossTypeError if not isinstance(name, str) else C.LossInputError,
            )
        if not isinstance(term, nn.Module):
            C.fail(
                _NAME,
                f"term {name!r} must be a loss module (torch.nn.Module), got "
                f"{type(term).__name__}.",
                "wrap a loss function in a module, or use losskit.get(name).",
                cls=C.LossTypeError,
            )
    return dict(terms.items())


def _check_weights(weights: object, names: list[str]) -> dict[str, float]:
    if weights is None:
        return dict.fromkeys(names, 1.0)
    if not isinstance(weights, Mapping):
        C.fail(
            _NAME,
            f"weights must map term names to numbers, got {type(weights).__name__}.",
            cls=C.LossTypeError,
        )
    unknown = [k for k in weights if k not in names]
    if unknown:
        C.fail(
            _NAME,
            f"weights names {', '.join(map(repr, unknown))}, which is not a term; the terms "
            f"are {', '.join(map(repr, names))}.",
        )
    out = {}
    for name in names:
        out[name] = C.check_number(_NAME, f"weights[{name!r}]", weights.get(name, 1.0))
    return out


class CombinedLoss(nn.Module):
    r"""A weighted sum of loss modules, with each term's value kept for logging.

    .. math::
        L = \sum_k w_k \, L_k(\text{input}, \text{target})

    Every term is called on the same inputs; ``weights`` default to 1. After each call
    ``last`` maps every term's name to its value, unweighted and detached (for a logger:
    ``{k: v.item() for k, v in loss.last.items()}``). The terms are registered
    submodules (``.to(device)`` moves their buffers, ``state_dict`` holds them).

    Options given to ``forward`` (``normalizer=``, ``reduction=``...) go to every term;
    a mapping from term names to values gives each named term its own
    (``normalizer={"ce": n_pixels}``). A term that is not a losskit module takes no
    options. Every term must return the same shape (a scalar with ``"mean"`` or
    ``"sum"``). Works under ``torch.compile`` (``last`` is set by the compiled call).

    Args:
        terms: a mapping from names to loss modules (``losskit.nn`` modules, or any
            ``torch.nn.Module`` called as ``term(input, target)``).
        weights: a mapping from (some of) the same names to finite numbers. Default:
            ``None`` (1 each).

    Shape:
        input and target as every term takes them; output the terms' shape.

    Example:
        DiceCE, Dice plus half the cross entropy, with void pixels 255:

        >>> import torch, losskit
        >>> dice_ce = losskit.nn.CombinedLoss(
        ...     {"dice": losskit.nn.DiceLoss(ignore_index=255),
        ...      "ce": losskit.nn.CrossEntropyLoss(ignore_index=255)},
        ...     weights={"ce": 0.5})
        >>> logits = torch.tensor([[[[2.0, -1.0]], [[0.0, 1.0]]]])  # (N, C, H, W) = (1, 2, 1, 2)
        >>> target = torch.tensor([[[0, 255]]])
        >>> dice_ce(logits, target)
        tensor(0.5952)
        >>> {k: round(v.item(), 4) for k, v in dice_ce.last.items()}
        {'dice': 0.5317, 'ce': 0.1269}
    """

    last: dict[str, torch.Tensor]

    def __init__(self, terms, weights=None) -> None:
        super().__init__()
        terms = _check_terms(terms)
        self.terms = nn.ModuleDict(terms)
        self.weights = _check_weights(weights, list(terms))
        self.last = {}

    def _options(self, name: str, term: nn.Module, options: dict[str, object]):
        mine = {}
        for key, value in options.items():
            if isinstance(value, Mapping):
                if set(value) - set(self.terms):
                    bad = sorted(map(repr, set(value) - set(self.terms)))
                    C.fail(
                        _NAME,
                        f"{key}= names {', '.join(bad)}, which is not a term; the terms are "
                        f"{', '.join(map(repr, self.terms))}.",
                    )
                if name not in value:
                    continue
                value = value[name]
            mine[key] = value
        if mine and not isinstance(term, Loss):
            C.fail(
                _NAME,
                f"term {name!r} ({type(term).__name__}) is not a losskit module and takes no "
                f"options, got {', '.join(sorted(mine))}=.",
                f'give the option to the other terms only: {key}={{"other": value}}.',
                cls=C.LossTypeError,
            )
        return mine

    def forward(self, input, target, *extra, **options) -> torch.Tensor:
        total = None
        last = {}
        for name, term in self.terms.items():
            value = term(input, target, *extra, **self._options(name, term, options))
            last[name] = value.detach()
            if total is not None and value.shape != total.shape:
                C.fail(
                    _NAME,
                    f"term {name!r} returned shape {tuple(value.shape)}, the terms before it "
                    f"{tuple(total.shape)}.",
                    "give every term the same reduction ('mean' or 'sum' return scalars).",
                )
            w = self.weights[name]
            weighted = value if w == 1.0 else value * w
            total = weighted if total is None else total + weighted
        self.last = last
        return total

    def extra_repr(self) -> str:
        if all(math.isclose(w, 1.0) for w in self.weights.values()):
            return ""
        return "weights=" + repr(self.weights)
