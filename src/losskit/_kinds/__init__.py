"""Input and target kinds: one object per kind, the only code that knows what a kind is.

A registry row names the kind of its input (real values, logits, probabilities,
log-probabilities) and of its target (real values, values in [0, 1], class indices,
probability rows, anchors, a linear layer's classes). Everything that depends on the kind
asks its object: valid sample inputs (tests, benchmarks), the inputs of a plot, the names of
extra positional inputs, the shape of ``reduction="none"``, the kind of weight a loss takes,
and a description for ``losskit explain``. The first families' kinds are here; a later
family's kinds live in its own module of this package (``_kinds/<family>.py``), built on
the classes here.

Example:
    >>> import torch
    >>> from losskit._kinds import INDEX, LOGITS
    >>> x, y = INDEX.sample(LOGITS, (4, 3), torch.float64, seed=0)[:2]
    >>> tuple(x.shape), tuple(y.shape), y.dtype
    ((4, 3), (4,), torch.int64)
    >>> INDEX.none_shape((4, 3, 8))
    (4, 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

__all__ = [
    "InputKind",
    "TargetKind",
    "ExtraInput",
    "REAL",
    "LOGITS",
    "PROBS",
    "LOGPROBS",
    "REAL_TARGET",
    "PER_SAMPLE",
    "UNIT",
    "INDEX",
    "INDEX_ONLY",
    "ROWS",
    "ANCHORS",
    "LINEAR",
]


def _class_dim(shape: tuple[int, ...]) -> int:
    """The class dimension of an ``(N, C, *)`` or unbatched ``(C,)`` input."""
    return 0 if len(shape) == 1 else 1


def _index_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of class indices for an ``(N, C, *)`` or ``(C,)`` input."""
    return () if len(shape) == 1 else (shape[0], *shape[2:])


def _true(entry: str) -> str:
    return f"{entry} of the true class"


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputKind:
    """What the input holds. ``entry`` names one input value on a plot's gradient axis;
    ``scalable``: any multiple of a valid input is valid (real values and logits)."""

    name: str
    description: str
    entry: str
    scalable: bool = True

    def sample(self, shape, g, *, extreme: bool) -> torch.Tensor:
        """A float64 input of ``shape``; ``extreme``: values at the edge of the kind."""
        if extreme:
            return torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, -1e4).double()
        return torch.randn(shape, generator=g, dtype=torch.float64) * 2.0

    def interior(self, x: torch.Tensor) -> torch.Tensor:
        """Where ``x`` lies strictly inside the kind's domain (not on its edge)."""
        return torch.ones_like(x, dtype=torch.bool)

    def true_entry(self, p: torch.Tensor) -> torch.Tensor:
        """The input value of a true class of probability ``p``."""
        return _logit(p)

    def other_entry(self, p: torch.Tensor) -> torch.Tensor:
        """The input value of the other class of a two-class row whose true class has ``p``."""
        return torch.zeros_like(p)


class _Logits(InputKind):
    def sample(self, shape, g, *, extreme):
        if extreme:
            return super().sample(shape, g, extreme=True)
        return torch.randn(shape, generator=g, dtype=torch.float64) * 3.0


class _Probs(InputKind):
    def sample(self, shape, g, *, extreme):
        u = torch.rand(shape, generator=g, dtype=torch.float64)
        return (u > 0.5).double() if extreme else u * 0.96 + 0.02

    def interior(self, x):
        return (x > 0) & (x < 1)

    def true_entry(self, p):
        return p

    def other_entry(self, p):
        return 1.0 - p


class _LogProbs(InputKind):
    def sample(self, shape, g, *, extreme):
        if extreme:
            scores = torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, -1e4).double()
        else:
            scores = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
        return torch.log_softmax(scores, dim=_class_dim(shape))

    def true_entry(self, p):
        return torch.log(p)

    def other_entry(self, p):
        return torch.log1p(-p)


REAL = InputKind("real", "real values", "prediction")
LOGITS = _Logits("logits", "logits", "logit")
PROBS = _Probs("probs", "probabilities in [0, 1]", "probability", scalable=False)
LOGPROBS = _LogProbs("logprobs", "log-probabilities", "log-probability", scalable=False)


# --------------------------------------------------------------------------- targets
# The x axes of ``losskit plot``: the residual, the true class's probability, a box
# pair's IoU. A kind with a new axis adds it here.
PLOT_AXES = ("residual", "p_t", "iou")


@dataclass(frozen=True)
class ExtraInput:
    """A positional input after the target: its name, whether it holds integers, and
    whether it has one entry per sample (a batch slices it) or belongs to the model."""

    name: str
    integer: bool
    per_sample: bool


@dataclass(frozen=True)
class TargetKind:
    """What the target holds, and what follows from it.

    ``weight_kind``: ``"element"`` (a weight broadcast to the input), ``"class"`` (one per
    class), ``"sample"`` (one per value of ``reduction="none"``) or ``None`` (no weight).
    ``plot_axis``: one of :data:`PLOT_AXES`.
    ``integer``: the target holds class indices. ``soft_targets``: it may instead hold
    probabilities of the input's shape (a floating target, as ``cross_entropy`` reads
    one). ``extra_inputs``: positional inputs after the target.
    """

    name: str
    description: str
    weight_kind: str | None = "element"
    plot_axis: str = "p_t"
    integer: bool = False
    soft_targets: bool = False
    extra_inputs: tuple[ExtraInput, ...] = ()

    # -- shapes
    def input_shape(self, shape) -> tuple[int, ...]:
        """The input shape a sample of ``shape`` gets (some kinds need a fixed rank)."""
        return tuple(shape)

    def none_shape(self, shape) -> tuple[int, ...]:
        """The shape of ``reduction="none"`` for an input of ``shape``."""
        return tuple(shape)

    def num_classes(self, shape) -> int:
        """The number of classes of an input of ``shape`` (one class weight each)."""
        return shape[_class_dim(shape)]

    def shape_from(self, dims: list[int], last: int) -> tuple[int, ...]:
        """A valid input shape from arbitrary sizes ``dims`` (0 to 3 of them, each >= 0)
        and a positive ``last`` (classes or features), for property tests."""
        return tuple(dims)

    def typical_shape(self, size: int) -> tuple[int, ...] | None:
        """An input of about ``size`` elements for the CPU benchmark (``None``: this kind
        has a benchmark of its own)."""
        return (size // 256, 256)

    # -- values
    def sample_target(self, shape, g, *, extreme: bool, dtype: torch.dtype):
        """``(target, extra)`` for an input of ``shape``."""
        y = torch.randn(shape, generator=g, dtype=torch.float64)
        return y, ()

    def sample(
        self,
        input_kind: InputKind,
        shape,
        dtype=torch.float64,
        *,
        seed=0,
        extreme=False,
        device="cpu",
    ):
        """``(input, target, *extra)`` of this kind, the input of ``input_kind``.

        ``extreme``: logits of +-1e4, probabilities exactly 0 and 1, residuals of +-1e4.
        Floating targets are in ``dtype``, class indices int64.
        """
        shape = self.input_shape(shape)
        g = torch.Generator().manual_seed(seed)
        x = input_kind.sample(shape, g, extreme=extreme)
        y, extra = self.sample_target(shape, g, extreme=extreme, dtype=dtype)
        if y.is_floating_point():
            y = y.to(dtype)
        return tuple(t.to(device) for t in (x.to(dtype), y, *extra))

    def sample_weight(self, shape, dtype=torch.float64, seed=1) -> torch.Tensor | None:
        """A positive weight of this kind's ``weight_kind`` for an input of ``shape``."""
        if self.weight_kind is None:
            return None
        shape = self.input_shape(shape)
        if self.weight_kind == "class":
            shape = (self.num_classes(shape),)
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)

    # -- plots
    def plot_grid(self) -> tuple[torch.Tensor, str]:
        """The values of a plot's x axis, and its label."""
        p = torch.linspace(0.0, 1.0, 803, dtype=torch.float64)[1:-1]
        return p, "p_t, probability of the true class"

    def plot_inputs(self, input_kind: InputKind, p: torch.Tensor):
        """Inputs whose true class has probability ``p``: ``(input, target, extra,
        leaf, leaf's name)``, ``leaf`` the input entry the gradient is taken by."""
        x = input_kind.true_entry(p).clone().requires_grad_(True)
        return x, torch.ones_like(p), (), x, _true(input_kind.entry)

    def plot_options(self) -> dict[str, object]:
        """Options a plot's call sets (the user's win): one value per point of the axis
        needs ``per_image=True`` from a loss that pools the batch by default (Lovász)."""
        return {}

    # -- kinks
    def untie(self, x: torch.Tensor) -> torch.Tensor:
        """A hard input (every entry +-100) moved off exact ties, for a loss with a kink
        wherever two of its errors tie (one that sorts them: Lovász); others unchanged."""
        return x

    def batch_dim(self, position: int) -> int:
        """The batch dimension of the ``position``-th positional input (0 the input, 1 the
        target, then the extra inputs): 0, unless the kind lays its inputs out otherwise
        (CTC's time-first log-probabilities ``(T, N, C)``)."""
        return 0

    # -- modules
    def module_call(self, factory, args, options):
        """The module built by ``factory(**options)`` for a call on ``args``, and the
        inputs its forward takes."""
        return factory(**options), tuple(args)


class _RealTarget(TargetKind):
    def plot_grid(self):
        return torch.linspace(-3.0, 3.0, 801, dtype=torch.float64), (
            "residual r = prediction - target"
        )

    def plot_inputs(self, input_kind, r):
        x = r.clone().requires_grad_(True)
        return x, torch.zeros_like(r), (), x, input_kind.entry


class _PerSample(_RealTarget):
    def none_shape(self, shape):
        return tuple(shape[:1])


class _Unit(TargetKind):
    def sample_target(self, shape, g, *, extreme, dtype):
        y = (torch.rand(shape, generator=g, dtype=torch.float64) > 0.5).double()
        if not extreme:  # a few soft targets
            soft = torch.rand(shape, generator=g, dtype=torch.float64)
            y = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) > 0.7, soft, y)
        return y, ()


class _Index(TargetKind):
    def none_shape(self, shape):
        return _index_shape(tuple(shape))

    def shape_from(self, dims, last):
        shape = (*dims, last)
        return (shape[0], last, *shape[1:-1]) if len(shape) > 1 else shape

    def typical_shape(self, size):
        return (size // 1000, 1000)

    def sample_target(self, shape, g, *, extreme, dtype):
        n_classes = shape[_class_dim(shape)]
        return torch.randint(0, n_classes, _index_shape(shape), generator=g), ()

    def plot_inputs(self, input_kind, p):
        # two classes, the true one first: p_t = softmax([x_t, x_other])[0]
        first = input_kind.true_entry(p).clone().requires_grad_(True)
        x = torch.stack([first, input_kind.other_entry(p)], dim=1)
        return x, torch.zeros(p.shape[0], dtype=torch.long), (), first, _true(input_kind.entry)


class _Rows(_Index):
    def none_shape(self, shape):
        return tuple(shape[:-1])

    def num_classes(self, shape):
        return shape[-1]

    def shape_from(self, dims, last):
        return (*dims, last)

    def sample_target(self, shape, g, *, extreme, dtype):
        y = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dim=-1)
        if extreme:
            y = torch.nn.functional.one_hot(y.argmax(-1), shape[-1]).double()
        return y, ()

    def plot_inputs(self, input_kind, p):
        x, _, extra, first, entry = super().plot_inputs(input_kind, p)
        y = torch.tensor([1.0, 0.0], dtype=p.dtype).expand(p.shape[0], 2)
        return x, y, extra, first, entry


class _Anchors(TargetKind):
    def input_shape(self, shape):
        return (*shape, 2, 3)[:3] if len(shape) < 3 else tuple(shape[:3])

    def num_classes(self, shape):
        return shape[-1]

    def shape_from(self, dims, last):
        return (*(*dims, 1, 1)[:2], last)

    def typical_shape(self, size):
        return (1, size // 80, 80)

    def sample_target(self, shape, g, *, extreme, dtype):
        b, a, k = shape
        y = torch.nn.functional.one_hot(torch.randint(0, k, (b, a), generator=g), k).double()
        state = torch.randint(-1, 2, (b, a), generator=g)
        if state.numel():
            state.view(-1)[0] = 1  # at least one object anchor
        return y, (state,)

    def plot_inputs(self, input_kind, p):
        x = input_kind.true_entry(p).clone().requires_grad_(True)
        n = p.shape[0]
        state = torch.ones(1, n, dtype=torch.long)
        y = torch.ones(1, n, 1, dtype=p.dtype)
        return x.view(1, n, 1), y, (state,), x, _true(input_kind.entry)


# Classes of the linear layer in ``LINEAR`` samples (the shape given is the hidden
# states' ``(*, D)``): odd, and larger than the feature sizes the tests use.
LINEAR_CLASSES = 11


class _Linear(TargetKind):
    def none_shape(self, shape):
        return tuple(shape[:-1])

    def num_classes(self, shape):
        return LINEAR_CLASSES

    def shape_from(self, dims, last):
        return (*dims[:2], last)

    def typical_shape(self, size):
        return None  # python -m benchmarks.linear measures it: time and memory of the logits

    def sample_target(self, shape, g, *, extreme, dtype):
        v, d = LINEAR_CLASSES, shape[-1]
        y = torch.randint(0, v, shape[:-1], generator=g)
        # scaled by 1 / sqrt(D), so that extreme hidden states of +-1e4 give logits of
        # that order
        w = torch.randn(v, d, generator=g, dtype=torch.float64) / math.sqrt(max(d, 1))
        return y, (w.to(dtype),)

    def plot_inputs(self, input_kind, p):
        # hidden states through an identity layer: the hidden state of the true class's
        # row is its logit, the other one is 0, as for two-class logits
        first = _logit(p).clone().requires_grad_(True)
        x = torch.stack([first, torch.zeros_like(p)], dim=1)
        y = torch.zeros(p.shape[0], dtype=torch.long)
        return x, y, (torch.eye(2, dtype=p.dtype),), first, _true("logit")

    def module_call(self, factory, args, options):
        # the module owns the layer: built to the sample weight's shape, which is copied in
        x, y, w = args
        module = factory(in_features=w.shape[1], num_classes=w.shape[0], dtype=w.dtype, **options)
        with torch.no_grad():
            module.linear.weight.copy_(w)
        return module, (x, y)


REAL_TARGET = _RealTarget("real", "real values of the input's shape", plot_axis="residual")
PER_SAMPLE = _PerSample(
    "per_sample",
    "real values of the input's shape; reduction='none' gives one value per sample",
    plot_axis="residual",
)
UNIT = _Unit("unit", "values in [0, 1] of the input's shape")
INDEX = _Index(
    "index",
    "class indices (N, d1, ..., dk) for an (N, C, d1, ..., dk) input",
    weight_kind="class",
    integer=True,
    soft_targets=True,
)
#: class indices only: the rows whose loss takes no probability target (nll_loss)
INDEX_ONLY = replace(INDEX, soft_targets=False)
ROWS = _Rows("rows", "one-hot or probability rows along the class dimension", weight_kind=None)
ANCHORS = _Anchors(
    "anchors",
    "one-hot classes (B, A, K) and an anchor_state (B, A): -1 ignored, 0 background, 1 object",
    weight_kind=None,
    extra_inputs=(ExtraInput("anchor_state", integer=True, per_sample=True),),
)
LINEAR = _Linear(
    "linear",
    "class indices (*) for hidden states (*, D), and the layer's weight (V, D)",
    weight_kind="class",
    integer=True,
    extra_inputs=(ExtraInput("linear_weight", integer=False, per_sample=False),),
)


# --------------------------------------------------------------------------- Keras' forms
# Keras' losses reduce over the last axis per sample: ``reduction="none"`` gives the input
# without its last dimension, and the weight is per sample (Keras' ``sample_weight``),
# ``weight_kind="sample"``: it has that shape.
class _Rate(InputKind):
    def sample(self, shape, g, *, extreme):
        if extreme:  # rates of 0 (the eps floor of the log) and 1e4
            return torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, 0.0).double()
        return torch.rand(shape, generator=g, dtype=torch.float64) * 3.0 + 0.05

    def interior(self, x):
        return x > 0


RATE = _Rate("rate", "rates >= 0 (a Poisson mean, not its log)", "rate", scalable=False)


class OnePerSample:
    """One loss per sample, over the last axis: ``none_shape`` drops it, and the weight
    has that shape (``weight_kind="sample"``)."""

    def none_shape(self, shape):
        return tuple(shape[:-1])

    def shape_from(self, dims, last):
        return (*dims, last)

    def sample_weight(self, shape, dtype=torch.float64, seed=1):
        g = torch.Generator().manual_seed(seed)
        shape = self.none_shape(self.input_shape(shape))
        return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)


class _LastAxis(OnePerSample, _RealTarget):
    def plot_inputs(self, input_kind, r):
        # one feature per sample: target 1, prediction 1 + r (a relative error of r)
        leaf = r.clone().requires_grad_(True)
        x = (1.0 + leaf).unsqueeze(-1)
        return x, torch.ones_like(x), (), leaf, input_kind.entry


class _Relative(_LastAxis):
    def sample_target(self, shape, g, *, extreme, dtype):
        # magnitudes in [0.5, 3]: a relative error's gradient 100 / (D |y|) stays
        # representable in float16 (it overflows there for |y| below about 1.5e-3 / D)
        sign = torch.where(torch.rand(shape, generator=g) > 0.5, 1.0, -1.0).double()
        return sign * (torch.rand(shape, generator=g, dtype=torch.float64) * 2.5 + 0.5), ()


class _Counts(_LastAxis):
    def sample_target(self, shape, g, *, extreme, dtype):
        top = 100 if extreme else 6
        return torch.randint(0, top, shape, generator=g).double(), ()

    def plot_grid(self):
        # rates 1 + r stay > 0
        _, label = super().plot_grid()
        return torch.linspace(-1.0, 3.0, 802, dtype=torch.float64)[1:], label


class _Directions(_LastAxis):
    def plot_inputs(self, input_kind, r):
        # target (1, 0), prediction (1, r): a residual r in the second coordinate
        leaf = r.clone().requires_grad_(True)
        x = torch.stack([torch.ones_like(r), leaf], dim=-1)
        y = torch.tensor([1.0, 0.0], dtype=r.dtype).expand(r.shape[0], 2)
        return x, y, (), leaf, input_kind.entry


class _Signs(OnePerSample, TargetKind):
    def sample_target(self, shape, g, *, extreme, dtype):
        return torch.where(torch.rand(shape, generator=g) > 0.5, 1.0, -1.0).double(), ()

    def plot_inputs(self, input_kind, p):
        # one output of label 1 whose score is the logit of p: the margin is logit(p)
        x = input_kind.true_entry(p).clone().requires_grad_(True)
        y = torch.ones(p.shape[0], 1, dtype=p.dtype)
        return x.unsqueeze(-1), y, (), x, _true(input_kind.entry)


class _SampleRows(OnePerSample, _Rows):
    pass


PER_ROW = _Relative(
    "per_row",
    "real values of the input's shape (relative errors: |target| floored at eps); one loss "
    "per sample, over the last dimension",
    weight_kind="sample",
    plot_axis="residual",
)
COUNTS = _Counts(
    "counts",
    "counts (values >= 0) of the input's shape; one loss per sample, over the last dimension",
    weight_kind="sample",
    plot_axis="residual",
)
DIRECTIONS = _Directions(
    "directions",
    "vectors along the last dimension, of the input's shape; one loss per vector",
    weight_kind="sample",
    plot_axis="residual",
)
SIGNS = _Signs(
    "signs",
    "labels -1/1 or 0/1 (converted to -1/1) of the input's shape; one loss per sample, "
    "over the last dimension",
    weight_kind="sample",
)
SAMPLE_ROWS = _SampleRows(
    "sample_rows",
    "one-hot or probability rows along the last dimension; a weight per sample",
    weight_kind="sample",
)

__all__ += ["RATE", "PER_ROW", "COUNTS", "DIRECTIONS", "SIGNS", "SAMPLE_ROWS"]
