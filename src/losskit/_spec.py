"""What a registry row is: :class:`LossSpec` (one loss), :class:`Example` (a worked
example) and the adapters rows use to reach torch's built-ins. The rows themselves live in
:mod:`losskit._rows`, one module per family; :mod:`losskit._registry` collects them."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from ._kinds import REAL, REAL_TARGET, ExtraInput, InputKind, TargetKind

__all__ = ["Example", "LossSpec", "torch_adapter", "weight_after_target"]


@dataclass(frozen=True)
class Example:
    """A worked example: inputs (nested lists), options, and the value its source prints.

    A target of Python ints is a class-index target (int64); ``extra`` holds further
    positional inputs (``anchor_state`` of the detection loss, ``linear_weight`` of
    linear cross entropy). List-valued options (class weights, ``linear_bias``) become
    float tensors in :meth:`call_options`.
    """

    source: str
    input: object
    target: object
    options: Mapping[str, object] = field(default_factory=dict)
    printed_value: float | None = None
    extra: tuple = ()

    def tensors(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
        """``(input, target, *extra)`` as tensors, floating ones in ``dtype``."""

        def cast(v: object) -> torch.Tensor:
            t = torch.tensor(v)
            return torch.tensor(v, dtype=dtype) if t.is_floating_point() else t

        return (cast(self.input), cast(self.target), *map(cast, self.extra))

    def call_options(self, dtype: torch.dtype = torch.float32) -> dict[str, object]:
        return {
            k: torch.tensor(v, dtype=dtype) if isinstance(v, list) else v
            for k, v in self.options.items()
        }


@dataclass(frozen=True)
class LossSpec:
    """One registered loss: the only declaration of it.

    ``input_kind`` and ``target_kind`` are kind objects (:mod:`losskit._kinds`); what they
    determine (``weight_kind``, ``plot_axis``, the shape of ``reduction="none"``, sample
    inputs, plot inputs, extra positional inputs) is read from them, never written per
    row. ``module_name`` names the ``losskit.nn`` class: made from the row (hyperparameters in
    ``__init__``, a one-line ``forward``) unless ``losskit.nn`` defines it by hand;
    ``module_aliases`` are further names of it. ``variants`` are option sets (besides the
    defaults) that the contract tests run. ``torch_builtin`` computes torch's own value
    for the same call, or returns ``None`` when torch has no equivalent for the options
    given. ``minimum`` is the least value of the loss per sample (and of a mean): 0
    unless the row says otherwise (cosine similarity's -1; ``-inf`` for a loss with no
    lower bound, as the Poisson loss without its ``log(y!)`` term).
    ``paper`` is the URL of the paper that defines the loss (a link on its docs page).
    ``detached`` names what the loss's definition holds constant in its gradient (CIoU's
    ``alpha``, as in the paper and torchvision): that gradient is not the derivative of
    the value, so the numerical gradient checks do not apply to the row.

    ``positional`` is torch's (or the peer's) positional order of the options after the
    inputs, for the functional and the module alike: ``("weight", "size_average",
    "ignore_index", "reduce", "reduction", "label_smoothing")`` lets a torch user write
    ``cross_entropy(x, y, w)`` and ``CrossEntropyLoss(w)``. Empty (the default): the
    options are keyword-only. Beyond the order, a positional option is a
    :class:`~losskit.LossTypeError` naming the keyword (:func:`losskit._checks.call_forms`).

    ``functional``, ``reference`` and ``torch_builtin`` all take ``(input, target,
    *extra, **options)``; a loss whose public signature orders its inputs otherwise is
    registered through an adapter (:func:`weight_after_target`) that keeps the public
    function as ``__wrapped__``.
    """

    name: str
    family: str
    functional: Callable[..., torch.Tensor]
    module_name: str
    reference: Callable[..., object]
    summary: str
    when_to_use: str
    examples: tuple[Example, ...]
    aliases: tuple[str, ...] = ()
    module_aliases: tuple[str, ...] = ()
    input_kind: InputKind = REAL
    target_kind: TargetKind = REAL_TARGET
    variants: tuple[Mapping[str, object], ...] = ()
    torch_builtin: Callable[..., torch.Tensor | None] | None = None
    paper: str | None = None
    minimum: float = 0.0
    positional: tuple[str, ...] = ()
    detached: str | None = None

    def __call__(self, input, target, *extra, **options):
        return self.functional(input, target, *extra, **options)

    @property
    def module(self) -> type:
        """The ``losskit.nn`` class of this loss."""
        from . import nn

        return getattr(nn, self.module_name)

    @property
    def weight_kind(self) -> str | None:
        """``"element"``, ``"class"`` or ``None``: the weight the loss takes."""
        return self.target_kind.weight_kind

    @property
    def plot_axis(self) -> str:
        """``"residual"`` or ``"p_t"``: the x axis of ``losskit plot``."""
        return self.target_kind.plot_axis

    @property
    def extra_inputs(self) -> tuple[ExtraInput, ...]:
        """Positional inputs after the target (``anchor_state``, ``linear_weight``)."""
        return self.target_kind.extra_inputs

    def none_shape(self, shape) -> tuple[int, ...]:
        """The shape of ``reduction="none"`` for an input of ``shape``."""
        return self.target_kind.none_shape(self.target_kind.input_shape(shape))

    def sample(self, shape=(5, 7), dtype=torch.float64, *, seed=0, extreme=False, device="cpu"):
        """Valid ``(input, target, *extra)`` of the row's kinds (tests, benchmarks)."""
        return self.target_kind.sample(
            self.input_kind, shape, dtype, seed=seed, extreme=extreme, device=device
        )

    def sample_weight(self, shape, dtype=torch.float64, seed=1) -> torch.Tensor | None:
        """A positive weight of the row's ``weight_kind`` for an input of ``shape``."""
        return self.target_kind.sample_weight(shape, dtype, seed)


def torch_adapter(
    fn: Callable[..., torch.Tensor],
    supports: tuple[str, ...] = (),
    weight_mean_differs: bool = False,
    defaults: Mapping[str, object] | None = None,
):
    """Adapter calling torch's built-in ``fn`` with the options it shares with losskit.

    It returns ``None`` when an option torch lacks is set away from its default.
    """
    defaults = {"target_type": "auto", "normalizer": None, **(defaults or {})}

    def builtin(input, target, *, reduction="mean", **options):
        for k, v in options.items():
            if k in supports or v is None:
                continue
            if isinstance(v, torch.Tensor):  # a tensor option torch lacks (a weight)
                return None
            if v != 0.0 and defaults.get(k) != v:
                return None
        if weight_mean_differs and options.get("weight") is not None and reduction == "mean":
            return None  # torch divides a weighted mean by the element count
        probs = target.is_floating_point() and "ignore_index" in supports
        if probs and options.get("weight") is not None and reduction == "mean":
            return None  # probability targets: torch divides a weighted mean by N
        kept = {k: v for k, v in options.items() if k in supports and v is not None}
        return fn(input, target, reduction=reduction, **kept)

    builtin.__name__ = f"torch_{fn.__name__}"
    return builtin


def weight_after_target(fn: Callable[..., object]) -> Callable[..., object]:
    """``fn(input, linear_weight, target, **options)`` in the registry's order,
    ``(input, target, linear_weight, **options)``: input and target first, as for every
    row, and the layer's weight after them as an extra input (``Example.extra``).

    Options after the inputs and unknown keywords get :func:`losskit._checks.call_forms`'s
    rules. The adapter keeps ``fn``'s name and docstring, ``fn`` itself as ``__wrapped__``
    (``inspect.unwrap`` gives the public function) and reports the reordered signature.
    """

    from ._checks import call_forms

    public = fn if hasattr(fn, "positional_inputs") else call_forms(fn)

    @functools.wraps(fn)
    def call(input, target, linear_weight, *args, **options):
        return public(input, linear_weight, target, *args, **options)

    params = list(inspect.signature(fn).parameters.values())
    if [p.name for p in params[:3]] != ["input", "linear_weight", "target"]:
        raise TypeError(f"{fn.__name__} does not take (input, linear_weight, target)")
    order = [params[0], params[2], params[1], *params[3:]]
    call.__signature__ = inspect.signature(fn).replace(parameters=order)
    return call
