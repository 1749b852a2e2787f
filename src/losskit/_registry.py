"""The registry: one ``LossSpec`` row per loss, plain data read by the tests, the demo,
the benchmarks, the command line, ``losskit.nn`` and the docs. Adding a loss is one
function, one reference and one row here."""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
import torch.nn.functional as TF

from . import functional as F
from . import reference as R
from ._checks import fail
from ._errors import LossTypeError
from ._kinds import (
    ANCHORS,
    COUNTS,
    DIRECTIONS,
    INDEX,
    LINEAR,
    LOGITS,
    LOGPROBS,
    PER_ROW,
    PER_SAMPLE,
    PROBS,
    RATE,
    REAL,
    REAL_TARGET,
    ROWS,
    SAMPLE_ROWS,
    SIGNS,
    UNIT,
    ExtraInput,
    InputKind,
    TargetKind,
)

__all__ = ["Example", "LossSpec", "REGISTRY", "get", "spec", "names"]


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

    ``functional``, ``reference`` and ``torch_builtin`` all take ``(input, target,
    *extra, **options)``; a loss whose public signature orders its inputs otherwise is
    registered through an adapter (:func:`_weight_after_target`) that keeps the public
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


def _torch(
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


def _weight_after_target(fn: Callable[..., object]) -> Callable[..., object]:
    """``fn(input, linear_weight, target, **options)`` in the registry's order,
    ``(input, target, linear_weight, **options)``: input and target first, as for every
    row, and the layer's weight after them as an extra input (``Example.extra``).

    The adapter keeps ``fn``'s name and docstring, ``fn`` itself as ``__wrapped__``
    (``inspect.unwrap`` gives the public function) and reports the reordered signature.
    """

    @functools.wraps(fn)
    def call(input, target, linear_weight, **options):
        return fn(input, linear_weight, target, **options)

    params = list(inspect.signature(fn).parameters.values())
    if [p.name for p in params[:3]] != ["input", "linear_weight", "target"]:
        raise TypeError(f"{fn.__name__} does not take (input, linear_weight, target)")
    order = [params[0], params[2], params[1], *params[3:]]
    call.__signature__ = inspect.signature(fn).replace(parameters=order)
    return call


def _torch_linear_cross_entropy(
    input,
    target,
    linear_weight,
    *,
    reduction="mean",
    linear_bias=None,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    normalizer=None,
    chunk_size=None,
    backend="auto",
):
    """``torch.nn.functional.linear_cross_entropy`` (torch 2.13 and later) on the same
    call; ``None`` on an older torch or with an option torch lacks (``z_loss``,
    ``softcap``, ``normalizer``, ``chunk_size``, ``backend``). torch's input is ``(N, D)``
    or ``(D,)``: leading dimensions are flattened into ``N`` and restored for ``"none"``."""
    if not hasattr(TF, "linear_cross_entropy"):
        return None
    if z_loss or softcap is not None or normalizer is not None or chunk_size is not None:
        return None
    if backend != "auto":
        return None
    out = TF.linear_cross_entropy(
        input.reshape(-1, linear_weight.shape[-1]),
        linear_weight,
        target.reshape(-1),
        linear_bias=linear_bias,
        weight=weight,
        reduction=reduction,
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing,
    )
    return out.reshape(target.shape) if reduction == "none" else out


# Where the embedded worked examples come from: five published tutorials.
_T000 = "a published summary of PyTorch's loss functions"
_T001 = "a tutorial on robust classification losses"
_T002 = "a tutorial on nn.CrossEntropyLoss with ignore_index and class weights"
_T003 = "a PyTorch deep-learning book's chapter on loss functions"
_T004 = "a PyTorch tutorial on loss functions"
# Their inputs.
_SEED003 = dict(input=[[1.0, 1.0], [1.0, 1.0]], target=[[0.0, 1.0], [2.0, 3.0]])
_SEED004 = dict(input=[0.020, 0.176, 0.313], target=[0.019, 0.234, 0.918])
_SEED000_LOGITS = [[-1.0, 1.0], [1.0, 2.0]]
_SEED000_TARGET = [[1.0, 0.0], [0.0, 1.0]]  # torch.eye(2)[[0, 1]]
_SEED004_FOCAL_P = [0.95, 0.05, 0.5, 0.5]
_SEED002_PRED = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
_SEED002_PRED4 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]
_SEED000_P = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.1, 0.2, 0.3]]
_SEED000_NLL_P = [[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]]
_SEED001_PRED = [[10.0, 5.0, -6.0], [8.0, 8.0, 8.0]]


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


_S003 = _T003 + ": sample = ones(2, 2), target = [[0, 1], [2, 3]]"
_S004 = _T004 + ": y_hat = [0.020, 0.176, 0.313], y_true = [0.019, 0.234, 0.918]"

_ROWS = (
    LossSpec(
        name="l1_loss",
        aliases=("mae_loss",),
        family="regression",
        functional=F.l1_loss,
        module_name="L1Loss",
        module_aliases=("MAELoss",),
        reference=R.l1_loss,
        summary="mean absolute error |x - y|",
        when_to_use="regression robust to outliers (conditional median)",
        examples=(
            Example(_S003, **_SEED003, printed_value=1.0),
            Example(_S004 + " (MAE)", **_SEED004),
        ),
        torch_builtin=_torch(TF.l1_loss),
    ),
    LossSpec(
        name="mse_loss",
        family="regression",
        functional=F.mse_loss,
        module_name="MSELoss",
        reference=R.mse_loss,
        summary="mean squared error (x - y)²",
        when_to_use="default regression loss",
        examples=(Example(_S003, **_SEED003, printed_value=1.5),),
        torch_builtin=_torch(TF.mse_loss),
    ),
    LossSpec(
        name="rmse_loss",
        family="regression",
        functional=F.rmse_loss,
        module_name="RMSELoss",
        reference=R.rmse_loss,
        summary='sqrt(mean((x - y)²)); `"none"`: one RMSE per sample',
        when_to_use="a loss in the target's units",
        examples=(Example(_S004, **_SEED004),),
        target_kind=PER_SAMPLE,
    ),
    LossSpec(
        name="smooth_l1_loss",
        family="regression",
        functional=F.smooth_l1_loss,
        module_name="SmoothL1Loss",
        reference=R.smooth_l1_loss,
        summary="0.5 r²/β below β, |r| - β/2 above",
        when_to_use="box regression",
        examples=(Example(_S003, **_SEED003, printed_value=0.625),),
        variants=({"beta": 0.5}, {"beta": 0.0}),
        torch_builtin=_torch(TF.smooth_l1_loss, supports=("beta",)),
        paper="https://arxiv.org/abs/1504.08083",
    ),
    LossSpec(
        name="huber_loss",
        family="regression",
        functional=F.huber_loss,
        module_name="HuberLoss",
        reference=R.huber_loss,
        summary="0.5 r² below δ, δ(|r| - δ/2) above",
        when_to_use="regression with outliers",
        examples=(Example(_S004, **_SEED004),),
        variants=({"delta": 0.3},),
        torch_builtin=_torch(TF.huber_loss, supports=("delta",)),
    ),
    LossSpec(
        name="pseudo_huber_loss",
        family="regression",
        functional=F.pseudo_huber_loss,
        module_name="PseudoHuberLoss",
        reference=R.pseudo_huber_loss,
        summary="δ²(sqrt(1 + (r/δ)²) - 1)",
        when_to_use="Huber, smooth everywhere",
        examples=(Example(_S004, **_SEED004),),
        variants=({"delta": 0.2},),
    ),
    LossSpec(
        name="log_cosh_loss",
        family="regression",
        functional=F.log_cosh_loss,
        module_name="LogCoshLoss",
        reference=R.log_cosh_loss,
        summary="log cosh(r), stable for |r| up to 1e4 and beyond",
        when_to_use="Huber-like, no hyperparameter",
        examples=(Example(_S004, **_SEED004),),
    ),
    LossSpec(
        name="quantile_loss",
        family="regression",
        functional=F.quantile_loss,
        module_name="QuantileLoss",
        reference=R.quantile_loss,
        summary="pinball max(q r, (q - 1) r), r = y - x",
        when_to_use="prediction intervals, forecasting",
        examples=(Example(_S004, **_SEED004, options={"quantile": 0.9}),),
        variants=({"quantile": 0.1},),
    ),
    LossSpec(
        name="binary_cross_entropy",
        family="binary",
        functional=F.binary_cross_entropy,
        module_name="BCELoss",
        reference=R.binary_cross_entropy,
        summary="BCE on probabilities, log clamped at -100",
        when_to_use="when the model outputs probabilities",
        examples=(
            Example(
                _T000 + ": sigmoid([[-1, 1], [1, 2]]) against eye(2)[[0, 1]]",
                [[_sigmoid(v) for v in row] for row in _SEED000_LOGITS],
                _SEED000_TARGET,
                printed_value=1.0167,
            ),
            Example(
                _T004 + ": y_hat = [0.920, 0.976, 0.003], y_true = [0, 0, 1]",
                [0.920, 0.976, 0.003],
                [0.0, 0.0, 1.0],
            ),
        ),
        input_kind=PROBS,
        target_kind=UNIT,
        torch_builtin=_torch(
            TF.binary_cross_entropy, supports=("weight",), weight_mean_differs=True
        ),
    ),
    LossSpec(
        name="binary_cross_entropy_with_logits",
        family="binary",
        functional=F.binary_cross_entropy_with_logits,
        module_name="BCEWithLogitsLoss",
        reference=R.binary_cross_entropy_with_logits,
        summary="BCE on logits; `pos_weight`, `label_smoothing`, `ignore_index`",
        when_to_use="binary and multi-label classification",
        examples=(
            Example(
                _T000 + ": logits [[-1, 1], [1, 2]] against eye(2)[[0, 1]]",
                _SEED000_LOGITS,
                _SEED000_TARGET,
                printed_value=1.0167,
            ),
        ),
        input_kind=LOGITS,
        target_kind=UNIT,
        variants=({"label_smoothing": 0.1}, {"ignore_index": -1.0}),
        torch_builtin=_torch(
            TF.binary_cross_entropy_with_logits,
            supports=("weight", "pos_weight"),
            weight_mean_differs=True,
        ),
    ),
    LossSpec(
        name="sigmoid_focal_loss",
        family="binary",
        functional=F.sigmoid_focal_loss,
        module_name="SigmoidFocalLoss",
        reference=R.sigmoid_focal_loss,
        summary="-α_t (1 - p_t)^γ log p_t on logits, in log space",
        when_to_use="dense detection, heavy imbalance",
        examples=(
            Example(
                _T004 + ": y_pred = [0.95, 0.05, 0.5, 0.5] (as logits), y_true = [1, 0, 1, 0]",
                [_logit(p) for p in _SEED004_FOCAL_P],
                [1.0, 0.0, 1.0, 0.0],
                options={"alpha": 0.25, "gamma": 2.0},
            ),
        ),
        input_kind=LOGITS,
        target_kind=UNIT,
        variants=(
            {"gamma": 0.0, "alpha": None},
            {"gamma": 0.5, "alpha": 0.75},
            {"gamma": 5.0},
            {"ignore_index": -1.0},
        ),
        paper="https://arxiv.org/abs/1708.02002",
    ),
    LossSpec(
        name="cross_entropy",
        family="multiclass",
        functional=F.cross_entropy,
        module_name="CrossEntropyLoss",
        reference=R.cross_entropy,
        summary="softmax CE: class `weight`, `ignore_index`, `label_smoothing`, `z_loss`, "
        "index or probability targets, K-dim maps",
        when_to_use="classification, segmentation",
        examples=(
            Example(
                _T002 + ": pred = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], label = [0, 1, 0]",
                _SEED002_PRED,
                [0, 1, 0],
                printed_value=0.6405,
            ),
            Example(
                _T002 + ": the same pred and label",
                _SEED002_PRED,
                [0, 1, 0],
                options={"ignore_index": 1},
                printed_value=0.4421,
            ),
            Example(
                _T002 + ": the same pred and label",
                _SEED002_PRED,
                [0, 1, 0],
                options={"weight": [1.0, 2.0]},
                printed_value=0.7398,
            ),
            Example(
                _T002 + ": 4 x 3 pred, label = [2, 1, 0, 1]",
                _SEED002_PRED4,
                [2, 1, 0, 1],
                options={"weight": [2.0, 1.0, 2.0], "ignore_index": 2},
                printed_value=1.0401,
            ),
            Example(
                _T000 + ": p = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.1, 0.2, 0.3]], "
                "label = [0, 1, 1]",
                _SEED000_P,
                [0, 1, 1],
                options={"ignore_index": 0},
                printed_value=1.1019,
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=(
            {"label_smoothing": 0.2},
            {"ignore_index": 1},
            {"z_loss": 1e-2},
            {"ignore_index": 0, "label_smoothing": 0.1},
        ),
        torch_builtin=_torch(
            TF.cross_entropy,
            supports=("weight", "ignore_index", "label_smoothing"),
            defaults={"ignore_index": -100},
        ),
    ),
    LossSpec(
        name="nll_loss",
        family="multiclass",
        functional=F.nll_loss,
        module_name="NLLLoss",
        reference=R.nll_loss,
        summary='-w_y log p_y of log-probabilities (also the 2-D "NLLLoss2d" form)',
        when_to_use="after an explicit log_softmax",
        examples=(
            Example(
                _T000 + ": log of p = [[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]], "
                "label = [0, 1, 2] (printed there as 1.4429; the value is 1.4229)",
                [[math.log(v) for v in row] for row in _SEED000_NLL_P],
                [0, 1, 2],
            ),
        ),
        input_kind=LOGPROBS,
        target_kind=INDEX,
        variants=({"ignore_index": 1},),
        torch_builtin=_torch(
            TF.nll_loss, supports=("weight", "ignore_index"), defaults={"ignore_index": -100}
        ),
    ),
    LossSpec(
        name="softmax_focal_loss",
        family="multiclass",
        functional=F.softmax_focal_loss,
        module_name="SoftmaxFocalLoss",
        reference=R.softmax_focal_loss,
        summary="-w_y (1 - p_t)^γ log p_t over a softmax; γ = 0 is `cross_entropy`",
        when_to_use="imbalanced multi-class, segmentation",
        examples=(
            Example(
                _T002 + ": pred = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], label = [0, 1, 0]",
                _SEED002_PRED,
                [0, 1, 0],
                options={"gamma": 2.0},
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=(
            {"gamma": 0.5},
            {"gamma": 0.0},
            {"gamma": 5.0, "label_smoothing": 0.1},
            {"ignore_index": 1},
        ),
        paper="https://arxiv.org/abs/1708.02002",
    ),
    LossSpec(
        name="symmetric_cross_entropy",
        family="multiclass",
        functional=F.symmetric_cross_entropy,
        module_name="SymmetricCrossEntropyLoss",
        reference=R.symmetric_cross_entropy,
        summary="α CE + β RCE (Wang et al. 2019)",
        when_to_use="noisy labels",
        examples=(
            Example(
                _T001 + ": y_pred = [[10, 5, -6], [8, 8, 8]], y_true = [0, 2]",
                _SEED001_PRED,
                [0, 2],
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=({"alpha": 0.1, "beta": 1.0}, {"log_zero": -6.0}, {"ignore_index": 1}),
        paper="https://arxiv.org/abs/1908.06112",
    ),
    LossSpec(
        name="reverse_cross_entropy",
        family="multiclass",
        functional=F.reverse_cross_entropy,
        module_name="ReverseCrossEntropyLoss",
        reference=R.reverse_cross_entropy,
        summary="-Σ p_k log q_k with log 0 := `log_zero` (A = -4)",
        when_to_use="the robust half of SCE",
        examples=(
            Example(
                _T001 + ": y_pred = [[10, 5, -6], [8, 8, 8]], y_true = [0, 2]",
                _SEED001_PRED,
                [0, 2],
            ),
        ),
        input_kind=LOGITS,
        target_kind=INDEX,
        variants=({"log_zero": -2.0}, {"ignore_index": 1}),
        paper="https://arxiv.org/abs/1908.06112",
    ),
    LossSpec(
        name="categorical_cross_entropy",
        family="multiclass",
        functional=F.categorical_cross_entropy,
        module_name="CategoricalCrossEntropyLoss",
        reference=R.categorical_cross_entropy,
        summary="the Keras form: rows rescaled and clipped, `from_logits`, `dim`",
        when_to_use="porting Keras code",
        examples=(
            Example(
                _T004 + ": y_hat = [[0.920, 0.080], [0.020, 0.80]], y_true = [[1, 0], [0, 1]]",
                [[0.920, 0.080], [0.020, 0.80]],
                [[1.0, 0.0], [0.0, 1.0]],
            ),
        ),
        input_kind=PROBS,
        target_kind=ROWS,
        variants=({"from_logits": True}, {"label_smoothing": 0.1}, {"eps": 1e-3}),
    ),
    LossSpec(
        name="detection_focal_loss",
        family="detection",
        functional=F.detection_focal_loss,
        module_name="DetectionFocalLoss",
        reference=R.detection_focal_loss,
        summary="RetinaNet focal over anchors (-1 ignored, 0 background, 1 object) "
        "/ max(1, objects)",
        when_to_use="one-stage detectors",
        examples=(
            Example(
                "1 image, 3 anchors (object, background, ignored), 2 classes",
                [[[2.0, -1.0], [-3.0, -2.0], [0.5, 0.5]]],
                [[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]],
                extra=([[1, 0, -1]],),
            ),
        ),
        input_kind=LOGITS,
        target_kind=ANCHORS,
        variants=({"gamma": 0.5, "alpha": None},),
        paper="https://arxiv.org/abs/1708.02002",
    ),
    LossSpec(
        name="linear_cross_entropy",
        family="language model",
        functional=_weight_after_target(F.linear_cross_entropy),
        module_name="LinearCrossEntropyLoss",
        reference=_weight_after_target(R.linear_cross_entropy),
        summary="`cross_entropy(x Wᵀ + b)` without ever holding the (N, V) logits; "
        "`softcap`, `z_loss`, `label_smoothing`",
        when_to_use="LM heads over large vocabularies",
        examples=(
            Example(
                "losskit's docstring: 3 tokens of 2 features, a 3-class linear layer",
                [[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]],
                [0, 1, 2],
                printed_value=1.3383,
                extra=([[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]],),
            ),
            Example(
                "the same tokens and layer, with a bias and label smoothing",
                [[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]],
                [0, 1, 2],
                options={"linear_bias": [0.5, 0.0, -0.5], "label_smoothing": 0.1},
                extra=([[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]],),
            ),
        ),
        target_kind=LINEAR,
        variants=(
            {"label_smoothing": 0.2},
            {"ignore_index": 1},
            {"z_loss": 1e-2, "softcap": 2.0},
            {"chunk_size": (2, 4), "label_smoothing": 0.1, "ignore_index": 0},
        ),
        torch_builtin=_torch_linear_cross_entropy,
        paper="https://arxiv.org/abs/2411.09009",
    ),
    # Keras 3's forms that torch lacks: one loss per sample over the last axis, a weight
    # per sample (Keras' sample_weight); inputs of the examples from Keras' docstrings.
    LossSpec(
        name="mean_absolute_percentage_error",
        aliases=("mape_loss",),
        family="regression",
        functional=F.mean_absolute_percentage_error,
        module_name="MeanAbsolutePercentageError",
        module_aliases=("MAPELoss",),
        reference=R.mean_absolute_percentage_error,
        summary="Keras' MAPE: 100 mean(|y - x| / max(|y|, ε)) per sample",
        when_to_use="errors relative to the target's size (forecasting, prices); porting Keras",
        examples=(
            Example(
                "Keras 3's MeanAbsolutePercentageError docstring: y_true = [100, 200, 300], "
                "y_pred = [90, 210, 310]",
                [90.0, 210.0, 310.0],
                [100.0, 200.0, 300.0],
            ),
            Example(
                "Keras 3's MeanAbsolutePercentageError metric docstring: y_true = [[0, 1], "
                "[0, 0]], y_pred = [[1, 1], [0, 0]], sample_weight = [1, 0]",
                [[1.0, 1.0], [0.0, 0.0]],
                [[0.0, 1.0], [0.0, 0.0]],
                options={"weight": [1.0, 0.0]},
            ),
        ),
        target_kind=PER_ROW,
        variants=({"eps": 1e-2},),
    ),
    LossSpec(
        name="mean_squared_logarithmic_error",
        aliases=("msle_loss",),
        family="regression",
        functional=F.mean_squared_logarithmic_error,
        module_name="MeanSquaredLogarithmicError",
        module_aliases=("MSLELoss",),
        reference=R.mean_squared_logarithmic_error,
        summary="Keras' MSLE: mean((log(max(x, ε) + 1) - log(max(y, ε) + 1))²) per sample",
        when_to_use="non-negative targets spanning magnitudes (counts, prices); porting Keras",
        examples=(
            Example(
                "Keras 3's MeanSquaredLogarithmicError metric docstring: y_true = [[0, 1], "
                "[0, 0]], y_pred = [[1, 1], [0, 0]]",
                [[1.0, 1.0], [0.0, 0.0]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        target_kind=COUNTS,
        variants=({"eps": 0.5}, {"eps": 0.0}),
    ),
    LossSpec(
        name="hinge",
        family="binary",
        functional=F.hinge,
        module_name="Hinge",
        reference=R.hinge,
        summary="Keras' hinge: mean(max(1 - y x, 0)) per sample, labels -1/1 (0/1 converted)",
        when_to_use="max-margin (SVM-style) binary or multi-label classifiers; porting Keras",
        examples=(
            Example(
                "Keras 3's Hinge metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[0.6, 0.4], [0.4, 0.6]]",
                [[0.6, 0.4], [0.4, 0.6]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=LOGITS,
        target_kind=SIGNS,
    ),
    LossSpec(
        name="squared_hinge",
        family="binary",
        functional=F.squared_hinge,
        module_name="SquaredHinge",
        reference=R.squared_hinge,
        summary="Keras' squared hinge: mean(max(1 - y x, 0)²) per sample",
        when_to_use="a smooth max-margin loss (L2-SVM); porting Keras",
        examples=(
            Example(
                "Keras 3's SquaredHinge metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[0.6, 0.4], [0.4, 0.6]]",
                [[0.6, 0.4], [0.4, 0.6]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=LOGITS,
        target_kind=SIGNS,
    ),
    LossSpec(
        name="categorical_hinge",
        family="multiclass",
        functional=F.categorical_hinge,
        module_name="CategoricalHinge",
        reference=R.categorical_hinge,
        summary="Keras' categorical hinge: max(max_j (1 - y_j) x_j - Σ y_j x_j + 1, 0) per sample",
        when_to_use="multi-class max-margin (Crammer-Singer) on one-hot rows; porting Keras",
        examples=(
            Example(
                "Keras 3's CategoricalHinge metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[0.6, 0.4], [0.4, 0.6]]",
                [[0.6, 0.4], [0.4, 0.6]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=LOGITS,
        target_kind=SAMPLE_ROWS,
        paper="https://jmlr.org/papers/v2/crammer01a.html",
    ),
    LossSpec(
        name="cosine_similarity_loss",
        family="regression",
        functional=F.cosine_similarity_loss,
        module_name="CosineSimilarityLoss",
        reference=R.cosine_similarity_loss,
        summary="Keras' cosine similarity: -Σ x̂ ŷ along `dim`, norms floored at ε; in [-1, 1]",
        when_to_use="matching directions (embeddings), not lengths; porting Keras",
        examples=(
            Example(
                "Keras 3's cosine_similarity docstring: y_true = [[0, 1], [1, 1], [1, 1]], "
                "y_pred = [[1, 0], [1, 1], [-1, -1]]",
                [[1.0, 0.0], [1.0, 1.0], [-1.0, -1.0]],
                [[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
            ),
        ),
        target_kind=DIRECTIONS,
        variants=({"eps": 3.0},),
        minimum=-1.0,
    ),
    LossSpec(
        name="poisson_loss",
        family="regression",
        functional=F.poisson_loss,
        module_name="PoissonLoss",
        reference=R.poisson_loss,
        summary="Keras' Poisson: mean(x - y log(x + ε)) per sample, x a rate >= 0",
        when_to_use="count targets with a rate output (softplus, exp); porting Keras",
        examples=(
            Example(
                "Keras 3's Poisson metric docstring: y_true = [[0, 1], [0, 0]], "
                "y_pred = [[1, 1], [0, 0]]",
                [[1.0, 1.0], [0.0, 0.0]],
                [[0.0, 1.0], [0.0, 0.0]],
            ),
        ),
        input_kind=RATE,
        target_kind=COUNTS,
        variants=({"eps": 1e-2},),
        minimum=-math.inf,
    ),
)

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
