"""The Lovász losses' targets: the segmentation kinds (:mod:`losskit._kinds.segmentation`)
with the Lovász losses' shapes and no class weight.

* :data:`LOVASZ_INDEX`: class indices ``(N, *)`` for logits ``(N, C, *)``
  (``lovasz_softmax_loss``); its default ``per_image=False`` pools the batch, so
  ``reduction="none"`` gives ``()``. A plot draws one image per point, so it calls the
  loss with ``per_image=True`` (:meth:`plot_options`).
* :data:`LOVASZ_BINARY`: labels {0, 1} ``(N, *)`` for binary logits ``(N, *)``
  (``lovasz_hinge_loss``); ``reduction="none"`` gives one loss per image, ``(N,)``.

A Lovász loss is piecewise linear in the errors it sorts, with a kink wherever two errors
tie: there its gradient jumps and no second derivative exists (the value is continuous,
and tested at ties). Hard samples (logits of +-100, the second-derivative contract test)
tie by construction, so :meth:`untie` spreads them by distinct amounts below 0.5, which
keeps them hard (errors far from the hinge's corner, softmax saturated) but off ties.

Example:
    >>> import torch
    >>> from losskit._kinds import LOGITS
    >>> from losskit._kinds.lovasz import LOVASZ_BINARY, LOVASZ_INDEX
    >>> x, y = LOVASZ_INDEX.sample(LOGITS, (2, 3, 4), torch.float64, seed=0)
    >>> tuple(x.shape), tuple(y.shape), LOVASZ_INDEX.none_shape(x.shape)
    ((2, 3, 4), (2, 4), ())
    >>> x, y = LOVASZ_BINARY.sample(LOGITS, (2, 4), torch.float64, seed=0)
    >>> tuple(y.shape), LOVASZ_BINARY.none_shape(x.shape), LOVASZ_BINARY.weight_kind
    ((2, 4), (2,), None)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .segmentation import SegmentationTarget

__all__ = ["LovaszTarget", "LOVASZ_INDEX", "LOVASZ_BINARY"]


@dataclass(frozen=True)
class LovaszTarget(SegmentationTarget):
    """A segmentation target of a Lovász loss; ``plot_per_image``: the plot's call sets
    ``per_image=True`` (the loss pools the batch by default)."""

    plot_per_image: bool = False

    def plot_options(self):
        return {"per_image": True} if self.plot_per_image else {}

    def untie(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus distinct offsets in [0, 0.5): no two entries of a hard sample (all
        of +-100) equal, and none changes sign."""
        steps = torch.arange(x.numel(), dtype=x.dtype, device=x.device).reshape(x.shape)
        return x + 0.5 * steps / max(x.numel(), 1)


LOVASZ_INDEX = LovaszTarget(
    "lovasz_index",
    "class indices (N, d1, ..., dk) for (N, C, d1, ..., dk) logits; reduction='none': one "
    "loss per image (per_image=True), else one for the batch",
    weight_kind=None,
    integer=True,
    none_dims=(),
    plot_per_image=True,
)
LOVASZ_BINARY = LovaszTarget(
    "lovasz_binary",
    "labels 0/1 (N, d1, ..., dk) for binary logits of that shape; reduction='none': one "
    "loss per image (per_image=True, the default), else one for the batch",
    weight_kind=None,
    form="binary",
    none_dims=("N",),
)
