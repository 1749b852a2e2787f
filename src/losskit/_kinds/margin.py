"""Target kinds of torch.nn's margin and embedding losses.

Labels 1/-1 per element (soft margin, hinge embedding) or per pair (cosine embedding);
ranked pairs and triplets, whose further inputs (``input2``, ``negative``) are extra
inputs after the target; the -1-padded class lists of ``multilabel_margin_loss``; class
indices of an ``(N, C)`` or ``(C,)`` input (``multi_margin_loss``); 0/1 labels per class
along the last dimension (``multilabel_soft_margin_loss``).

Torch orders the inputs of the pair losses ``(input1, input2, target)``; the registry's
order is ``(input1, target, input2)``, and :class:`_SecondInput` puts a module's inputs
back into torch's order (the module's forward is torch's).

Example:
    >>> import torch
    >>> from losskit._kinds import REAL
    >>> from losskit._kinds.margin import LABEL_LISTS
    >>> x, y = LABEL_LISTS.sample(REAL, (2, 4), seed=0)
    >>> y.shape, bool(((y >= -1) & (y < 4)).all())
    (torch.Size([2, 4]), True)
"""

from __future__ import annotations

import torch

from . import ExtraInput, InputKind, TargetKind

__all__ = [
    "DISTANCES",
    "SIGN_LABELS",
    "SIMILARITY",
    "RANKED",
    "COSINE_PAIRS",
    "TRIPLETS",
    "LABEL_LISTS",
    "MARGIN_INDEX",
    "MULTI_LABELS",
]


def _signs(shape, g) -> torch.Tensor:
    return torch.where(torch.rand(shape, generator=g) > 0.5, 1.0, -1.0).double()


def _reals(shape, g, extreme: bool) -> torch.Tensor:
    """Further real inputs (second scores, vectors, embeddings), as the input's sample."""
    if extreme:  # magnitudes 1e4 to 1.5e4: sign vectors would sit on hinges' corners
        sign = torch.where(torch.rand(shape, generator=g) > 0.5, 1.0, -1.0).double()
        return sign * 1e4 * (1.0 + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64))
    return torch.randn(shape, generator=g, dtype=torch.float64) * 2.0


def _rows_shape(shape) -> tuple[int, ...]:
    """An ``(N, C)`` or ``(C,)`` input from any sample shape (leading two dimensions)."""
    return tuple(shape[:2])


class _LastAxis:
    """One loss per row along the last dimension."""

    def none_shape(self, shape):
        return tuple(shape[:-1])

    def num_classes(self, shape):
        return shape[-1]


class _PerSampleWeight:
    """A weight of ``reduction="none"``'s shape (``weight_kind="sample"``): per pair,
    triplet or sample."""

    def sample_weight(self, shape, dtype=torch.float64, seed=1):
        g = torch.Generator().manual_seed(seed)
        shape = self.none_shape(self.input_shape(shape))
        return (torch.rand(shape, generator=g, dtype=torch.float64) + 0.25).to(dtype)


class _Rows2D(_LastAxis):
    """Inputs ``(N, C)`` or ``(C,)`` only."""

    def input_shape(self, shape):
        return _rows_shape(shape)

    def shape_from(self, dims, last):
        return (*dims[:1], last)


class _TwoClassMargin:
    """Plots against the margin of a two-class row whose first class is the true one."""

    def plot_grid(self):
        return torch.linspace(-3.0, 3.0, 801, dtype=torch.float64), (
            "score margin x_true - x_other (two classes)"
        )


# --------------------------------------------------------------------------- inputs
class _Distances(InputKind):
    def sample(self, shape, g, *, extreme):
        if extreme:  # distances of 0 and 1e4
            return torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, 0.0).double()
        return torch.rand(shape, generator=g, dtype=torch.float64) * 3.0 + 0.01


DISTANCES = _Distances("distances", "distances >= 0 between the members of each pair", "distance")


# --------------------------------------------------------------------------- labels 1/-1
class _SignLabels(TargetKind):
    def sample_target(self, shape, g, *, extreme, dtype):
        return _signs(shape, g), ()

    def plot_inputs(self, input_kind, p):
        # label 1, score logit(p): log(1 + exp(-x)) = -log p
        x = input_kind.true_entry(p).clone().requires_grad_(True)
        return x, torch.ones_like(p), (), x, f"{input_kind.entry} of a label-1 element"


class _Similarity(_SignLabels):
    def plot_grid(self):
        return torch.linspace(0.0, 3.0, 801, dtype=torch.float64), (
            "distance x of a dissimilar pair (target -1)"
        )

    def plot_inputs(self, input_kind, d):
        x = d.clone().requires_grad_(True)
        return x, -torch.ones_like(d), (), x, "distance"


class _SecondInput(TargetKind):
    """The registry's ``(input1, target, input2)``; a module takes torch's
    ``(input1, input2, target)``."""

    def module_call(self, factory, args, options):
        input1, target, input2, *rest = args
        return factory(**options), (input1, input2, target, *rest)


class _Ranked(_SecondInput):
    def sample_target(self, shape, g, *, extreme, dtype):
        return _signs(shape, g), (_reals(shape, g, extreme).to(dtype),)

    def plot_grid(self):
        return torch.linspace(-3.0, 3.0, 801, dtype=torch.float64), (
            "score difference x1 - x2 (target 1: x1 should rank higher)"
        )

    def plot_inputs(self, input_kind, r):
        x1 = r.clone().requires_grad_(True)
        return x1, torch.ones_like(r), (torch.zeros_like(r),), x1, "x1"


class _CosinePairs(_PerSampleWeight, _LastAxis, _SecondInput):
    def input_shape(self, shape):
        return _rows_shape(shape)

    def shape_from(self, dims, last):
        return (*dims[:1], last)

    def sample_target(self, shape, g, *, extreme, dtype):
        return _signs(shape[:-1], g), (_reals(shape, g, extreme).to(dtype),)

    def plot_grid(self):
        c = torch.linspace(-1.0, 1.0, 803, dtype=torch.float64)[1:-1]
        return c, "cosine similarity of a dissimilar pair (target -1)"

    def plot_inputs(self, input_kind, c):
        # unit vectors (c, sqrt(1 - c^2)) and (1, 0): their cosine is c
        leaf = c.clone().requires_grad_(True)
        x1 = torch.stack([leaf, torch.sqrt(1.0 - leaf.square())], dim=-1)
        x2 = torch.tensor([1.0, 0.0], dtype=c.dtype).expand(c.shape[0], 2)
        return x1, -torch.ones_like(c), (x2,), leaf, "cosine similarity"


class _Triplets(_PerSampleWeight, _LastAxis, TargetKind):
    def shape_from(self, dims, last):
        return (*dims, last)

    def sample_target(self, shape, g, *, extreme, dtype):
        positive = _reals(shape, g, extreme)
        return positive, (_reals(shape, g, extreme).to(dtype),)

    def plot_grid(self):
        return torch.linspace(0.0, 4.0, 801, dtype=torch.float64), (
            "distance d(a, p) from anchor to positive (the negative at distance 2)"
        )

    def plot_inputs(self, input_kind, d):
        # one feature: anchor 0, positive d, negative 2
        leaf = d.clone().requires_grad_(True)
        anchor = torch.zeros(d.shape[0], 1, dtype=d.dtype)
        negative = torch.full((d.shape[0], 1), 2.0, dtype=d.dtype)
        return anchor, leaf.unsqueeze(-1), (negative,), leaf, "d(a, p)"


# --------------------------------------------------------------------------- classes
class _LabelLists(_PerSampleWeight, _TwoClassMargin, _Rows2D, TargetKind):
    def typical_shape(self, size):
        return (size // 100, 100)

    def sample_target(self, shape, g, *, extreme, dtype):
        n_classes = shape[-1]
        rows = shape[:-1]
        order = torch.argsort(torch.rand((*rows, n_classes), generator=g), dim=-1)
        # 1..C-1 listed classes (one when C = 1): a listed and an unlisted class per row
        count = torch.randint(1, max(n_classes, 2), (*rows, 1), generator=g)
        return torch.where(torch.arange(n_classes) < count, order, -1), ()

    def plot_inputs(self, input_kind, m):
        first = m.clone().requires_grad_(True)
        x = torch.stack([first, torch.zeros_like(m)], dim=1)
        y = torch.tensor([0, -1]).expand(m.shape[0], 2)
        return x, y, (), first, "score of the listed class"


class _MarginIndex(_TwoClassMargin, _Rows2D, TargetKind):
    def typical_shape(self, size):
        return (size // 1000, 1000)

    def sample_target(self, shape, g, *, extreme, dtype):
        return torch.randint(0, shape[-1], tuple(shape[:-1]), generator=g), ()

    def plot_inputs(self, input_kind, m):
        first = m.clone().requires_grad_(True)
        x = torch.stack([first, torch.zeros_like(m)], dim=1)
        return x, torch.zeros(m.shape[0], dtype=torch.long), (), first, "score of the true class"


class _MultiLabels(_LastAxis, TargetKind):
    def shape_from(self, dims, last):
        return (*dims, last)

    def sample_target(self, shape, g, *, extreme, dtype):
        y = (torch.rand(shape, generator=g, dtype=torch.float64) > 0.5).double()
        if not extreme:  # a few soft labels
            soft = torch.rand(shape, generator=g, dtype=torch.float64)
            y = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) > 0.7, soft, y)
        return y, ()

    def plot_inputs(self, input_kind, p):
        # one class of label 1 whose logit is logit(p)
        x = input_kind.true_entry(p).clone().requires_grad_(True)
        return x.unsqueeze(-1), torch.ones(p.shape[0], 1, dtype=p.dtype), (), x, "logit"


SIGN_LABELS = _SignLabels("sign_labels", "labels 1 and -1 of the input's shape")
SIMILARITY = _Similarity(
    "similarity",
    "labels 1 (similar pair) and -1 (dissimilar pair) of the input's shape; the input holds "
    "the pairs' distances",
    plot_axis="residual",
)
RANKED = _Ranked(
    "ranked_pairs",
    "labels 1 (input1 should rank higher) and -1 of input1's shape; input2, the other "
    "scores, of that shape",
    plot_axis="residual",
    extra_inputs=(ExtraInput("input2", integer=False, per_sample=True),),
)
COSINE_PAIRS = _CosinePairs(
    "cosine_pairs",
    "labels 1 (similar) and -1 (dissimilar), one per pair, (N,) for vectors input1 (N, D); "
    "input2, the other vectors, (N, D)",
    weight_kind="sample",
    plot_axis="residual",
    extra_inputs=(ExtraInput("input2", integer=False, per_sample=True),),
)
TRIPLETS = _Triplets(
    "triplets",
    "positive embeddings of the anchor's shape (*, D); negative embeddings of that shape",
    weight_kind="sample",
    plot_axis="residual",
    extra_inputs=(ExtraInput("negative", integer=False, per_sample=True),),
)
LABEL_LISTS = _LabelLists(
    "label_lists",
    "class indices of the input's shape, (N, C) or (C,): each row lists its classes, then "
    "-1 padding",
    weight_kind="sample",
    plot_axis="residual",
    integer=True,
)
MARGIN_INDEX = _MarginIndex(
    "margin_index",
    "class indices (N,) for an (N, C) input, or () for (C,)",
    weight_kind="class",
    plot_axis="residual",
    integer=True,
)
MULTI_LABELS = _MultiLabels(
    "multi_labels",
    "0/1 (or soft) labels per class, the input's shape (*, C); one loss per sample",
    weight_kind="class",
)
