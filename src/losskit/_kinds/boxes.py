"""Box pairs: predicted and target boxes ``(..., 4)``, box i against box i.

Boxes are sampled in ``xyxy`` (``x1 <= x2``, ``y1 <= y2``), the target near its predicted
box so that most pairs overlap; ``extreme`` pairs are degenerate on purpose: identical
boxes, zero-width and zero-height boxes, a zero-area box against itself, and coordinates
of order 1e4. A loss of a pair is one value (``reduction="none"`` drops the last
dimension) and its weight is one per box (``weight_kind="sample"``). ``losskit plot``
draws a loss against the pair's IoU: the predicted box is the target's unit square
shifted by ``(s, s)``.

Example:
    >>> import torch
    >>> from losskit._kinds.boxes import BOXES, BOX_PAIRS
    >>> x, y = BOX_PAIRS.sample(BOXES, (3, 4), torch.float64, seed=0)
    >>> tuple(x.shape), BOX_PAIRS.none_shape(x.shape)
    ((3, 4), (3,))
    >>> bool((x[:, 2] >= x[:, 0]).all() and (y[:, 3] >= y[:, 1]).all())
    True
"""

from __future__ import annotations

import torch

from . import InputKind, OnePerSample, TargetKind

__all__ = ["BOXES", "BOX_PAIRS"]


def _boxes(corner: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    return torch.cat([corner, corner + size], dim=-1)


class _Boxes(InputKind):
    """Predicted boxes in ``xyxy``. A box scaled by a negative number is not a box, so
    the kind is not ``scalable``; its derivatives are defined everywhere it is valid."""

    def sample(self, shape, g, *, extreme):
        lead = (*shape[:-1], 2)
        corner = torch.rand(lead, generator=g, dtype=torch.float64) * 4.0
        size = torch.rand(lead, generator=g, dtype=torch.float64) * 3.0 + 0.5
        if extreme:
            corner, size = corner * 2.5e3, size * 2.5e3
        return _boxes(corner, size)


class _BoxPairs(OnePerSample, TargetKind):
    def input_shape(self, shape):
        return (*tuple(shape)[:-1], 4) if len(shape) else (4,)

    def shape_from(self, dims, last):
        return (*dims, 4)

    def typical_shape(self, size):
        return (size // 4, 4)

    def sample(
        self, input_kind, shape, dtype=torch.float64, *, seed=0, extreme=False, device="cpu"
    ):
        shape = self.input_shape(shape)
        g = torch.Generator().manual_seed(seed)
        x = input_kind.sample(shape, g, extreme=extreme)
        w = x[..., 2:] - x[..., :2]
        shift = (torch.rand(w.shape, generator=g, dtype=torch.float64) - 0.5) * w
        scale = torch.rand(w.shape, generator=g, dtype=torch.float64) * 0.8 + 0.6
        y = _boxes(x[..., :2] + shift, w * scale)
        if extreme and x.numel():
            flat_x, flat_y = x.view(-1, 4), y.view(-1, 4)
            flat_y[0::4] = flat_x[0::4]  # identical boxes
            flat_x[1::4, 2] = flat_x[1::4, 0]  # a zero-width prediction
            flat_y[2::4, 3] = flat_y[2::4, 1]  # a zero-height target
            flat_x[3::4, 2:] = flat_x[3::4, :2]  # a point ...
            flat_y[3::4] = flat_x[3::4]  # ... against itself
        return x.to(dtype).to(device), y.to(dtype).to(device)

    def sample_target(self, shape, g, *, extreme, dtype):  # pragma: no cover - see sample
        raise NotImplementedError("box pairs are sampled together by BOX_PAIRS.sample")

    def plot_grid(self):
        iou = torch.linspace(0.0, 1.0, 803, dtype=torch.float64)[1:-1]
        return iou, "IoU of the predicted and target box"

    def plot_inputs(self, input_kind, iou):
        # the target is the unit square; the prediction is it shifted by (s, s), so with
        # a = (1 - s)^2, IoU = a / (2 - a): s = 1 - sqrt(2 IoU / (1 + IoU)). The enclosing
        # box (1 + s)^2 exceeds the union, so GIoU's and DIoU's penalties show.
        s = (1 - torch.sqrt(2 * iou / (1 + iou))).clone().requires_grad_(True)
        zeros, ones = torch.zeros_like(iou), torch.ones_like(iou)
        x = torch.stack([s, s, 1 + s, 1 + s], dim=-1)
        y = torch.stack([zeros, zeros, ones, ones], dim=-1)
        return x, y, (), s, "the predicted box's diagonal shift s"


BOXES = _Boxes("boxes", "boxes (..., 4) in the chosen box_format", "box coordinate", scalable=False)
BOX_PAIRS = _BoxPairs(
    "box_pairs",
    "boxes (..., 4) in the input's box_format, box i against box i; a weight per box",
    weight_kind="sample",
    plot_axis="iou",
)
