"""Segmentation maps: logits ``(N, C, *)`` against a map of class indices, of per-channel
probabilities, or a binary mask; one loss per (image, class), per class, per image or
one for the batch.

Three target kinds, each a frozen dataclass (derive a variant with
:func:`dataclasses.replace`):

* :data:`SEG_INDEX`: class indices ``(N, *)`` for logits ``(N, C, *)`` (``mode="multiclass"``,
  softmax over dimension 1); the ``ignore_index`` variants of the contract tests mark
  every third pixel, which then leaves every sum.
* :data:`SEG_MASKS`: values in [0, 1] of the input's shape ``(N, C, *)``, one mask per
  channel (``mode="multilabel"``, a sigmoid per channel).
* :data:`SEG_BINARY`: one mask ``(N, *)`` in {0, 1} for binary logits ``(N, *)``
  (Lovász hinge; ``mode="binary"``): one loss per image, ``none_dims=("N",)``, and no
  weight.

``none_dims`` says what ``reduction="none"`` keeps with the loss's default options:
``("N", "C")`` one value per (image, class), the default of the overlap losses with
``per_image=True``; ``("C",)`` per class (batch sums); ``("N",)`` per image (generalized
Dice, Lovász with ``per_image=True``); ``()`` one value. A loss whose default differs
takes ``replace(SEG_INDEX, none_dims=("N",))``; one without a class weight adds
``weight_kind=None``. The class weight (``weight_kind="class"``) has one entry per class:
``C`` (1 for a binary mask).

Shapes: the input is ``(N, C, *)`` (``(N, C)`` too: N one-pixel images). A 1-d shape
``(n,)`` given to ``sample`` becomes one image of two classes and ``n`` pixels,
``(1, 2, n)`` (binary: ``(1, n)``); property tests get ``(N, C, *)`` from any sizes, 0
included (empty batches, images without a pixel).

Samples: random maps, where small images leave most classes absent (an empty target
mask). ``extreme=True``: logits of +-1e4 (probabilities exactly 0 and 1, so empty
predictions: classes no pixel predicts), hard masks, and image 0 all background (class
0, or every mask 0).

Plots (``losskit plot dice_loss``): a toy mask of two pixels, one foreground (class 1, or
mask 1) and one background, the true class of each pixel predicted with probability
``p``: the foreground pixel's foreground probability is ``p`` and the background pixel's
is ``1 - p``. ``p`` is the x axis; one image per value of ``p``, so the loss of
``reduction="none"`` has one row per point and its first column is drawn (class 0 for
:data:`SEG_INDEX`: by the symmetry of the toy it equals class 1's). The gradient is taken
by ``z = logit(p)``, the logit of the true class at both pixels (multiclass: logits
``[0, z]`` and ``[z, 0]``; masks: ``z`` and ``-z``).

Example:
    >>> import torch
    >>> from losskit._kinds import LOGITS
    >>> from losskit._kinds.segmentation import SEG_INDEX, SEG_MASKS
    >>> x, y = SEG_INDEX.sample(LOGITS, (2, 3, 4), torch.float64, seed=0)
    >>> tuple(x.shape), tuple(y.shape), y.dtype, SEG_INDEX.none_shape(x.shape)
    ((2, 3, 4), (2, 4), torch.int64, (2, 3))
    >>> x, y = SEG_MASKS.sample(LOGITS, (2, 3, 4), torch.float64, seed=0, extreme=True)
    >>> tuple(y.shape), float(y[0].sum())  # image 0: every mask empty
    ((2, 3, 4), 0.0)
    >>> from dataclasses import replace
    >>> replace(SEG_INDEX, none_dims=("N",), weight_kind=None).none_shape((2, 3, 4))
    (2,)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import TargetKind

__all__ = ["SegmentationTarget", "SEG_INDEX", "SEG_MASKS", "SEG_BINARY", "PLOT_LABEL"]

PLOT_LABEL = "p, predicted probability of each pixel's class (2-pixel toy mask)"


@dataclass(frozen=True)
class SegmentationTarget(TargetKind):
    """A segmentation target kind. ``form``: ``"index"`` (class indices ``(N, *)``),
    ``"masks"`` (``(N, C, *)`` in [0, 1]) or ``"binary"`` (``(N, *)`` in {0, 1} for
    logits ``(N, *)``). ``none_dims``: the dimensions ``reduction="none"`` keeps, of
    ``"N"`` (images) and ``"C"`` (classes)."""

    form: str = "index"
    none_dims: tuple[str, ...] = ("N", "C")

    # -- shapes
    def input_shape(self, shape):
        shape = tuple(shape)
        if self.form == "binary":
            return (1, *shape) if len(shape) == 1 else shape
        if len(shape) < 2:
            return (1, 2, *shape)
        return shape

    def num_classes(self, shape):
        return 1 if self.form == "binary" else shape[1]

    def none_shape(self, shape):
        sizes = {"N": shape[0], "C": self.num_classes(shape)}
        return tuple(sizes[d] for d in self.none_dims)

    def shape_from(self, dims, last):
        if self.form == "binary":
            return (*dims, last)  # (N, *) with at least one dimension
        return (dims[0], last, *dims[1:]) if dims else (1, last)

    def typical_shape(self, size):
        if self.form == "binary":
            return (max(1, size // 4096), 64, 64)
        return (max(1, size // (4 * 4096)), 4, 64, 64)

    # -- values
    def sample_target(self, shape, g, *, extreme, dtype):
        if self.form == "index":
            n, c, *space = shape
            y = torch.randint(0, c, (n, *space), generator=g)
            if extreme and y.numel():
                y[0] = 0  # image 0 is all background: every other class is empty there
            return y, ()
        y = (torch.rand(shape, generator=g, dtype=torch.float64) > 0.5).double()
        if not extreme and self.form == "masks":  # a few soft targets
            soft = torch.rand(shape, generator=g, dtype=torch.float64)
            y = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) > 0.7, soft, y)
        if extreme and y.numel():
            y[0] = 0.0  # image 0: empty masks
        return y, ()

    # -- plots
    def plot_grid(self):
        p = torch.linspace(0.0, 1.0, 803, dtype=torch.float64)[1:-1]
        return p, PLOT_LABEL

    def plot_inputs(self, input_kind, p):
        z = input_kind.true_entry(p).clone().requires_grad_(True)
        n = p.shape[0]
        if self.form == "index":
            # pixel 0 of class 1 (logits [0, z]), pixel 1 of class 0 (logits [z, 0])
            zero = torch.zeros_like(z)
            x = torch.stack([torch.stack([zero, z], -1), torch.stack([z, zero], -1)], -1)
            y = torch.tensor([1, 0]).expand(n, 2)
            return x, y, (), z, "logit of the true class (both pixels)"
        # mask (1, 0): foreground pixel z, background pixel -z
        x = torch.stack([z, -z], -1)
        y = torch.tensor([1.0, 0.0], dtype=p.dtype).expand(n, 2)
        if self.form == "masks":
            x, y = x.unsqueeze(1), y.unsqueeze(1)
        return x, y, (), z, "logit of the true class (both pixels)"


SEG_INDEX = SegmentationTarget(
    "segmentation_index",
    "class indices (N, d1, ..., dk) for (N, C, d1, ..., dk) logits (mode='multiclass'), "
    "or probabilities of the input's shape; reduction='none': one loss per (image, class)",
    weight_kind="class",
    integer=True,
    soft_targets=True,
)
SEG_MASKS = SegmentationTarget(
    "segmentation_masks",
    "masks in [0, 1] of the input's shape (N, C, d1, ..., dk), one per channel "
    "(mode='multilabel'); reduction='none': one loss per (image, class)",
    weight_kind="class",
    form="masks",
)
SEG_BINARY = SegmentationTarget(
    "segmentation_binary",
    "a mask in {0, 1} (N, d1, ..., dk) for binary logits of that shape; "
    "reduction='none': one loss per image",
    weight_kind=None,
    form="binary",
    none_dims=("N",),
)
