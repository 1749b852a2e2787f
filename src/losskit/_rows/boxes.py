"""Registry rows of the box regression losses."""

from __future__ import annotations

from .. import functional as F
from .. import reference as R
from .._kinds.boxes import BOX_PAIRS, BOXES
from .._spec import Example, LossSpec

_HALF = "two 2 x 2 boxes, the second shifted right by 1: [0, 0, 2, 2] against [1, 0, 3, 2]"
_APART = "two unit squares one unit apart: [0, 0, 1, 1] against [2, 0, 3, 1]"
_SHAPE = "a 1 x 2 box against the 2 x 2 box with the same corner"
_PAIRS = dict(
    input=[[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 2.0]],
    target=[[1.0, 0.0, 3.0, 2.0], [2.0, 0.0, 3.0, 1.0], [0.0, 0.0, 2.0, 2.0]],
)
_THREE = "the three pairs: " + "; ".join((_HALF, _APART, _SHAPE))
_VARIANTS = ({"box_format": "cxcywh"}, {"box_format": "xywh", "eps": 1e-3})


def _row(name, module_name, summary, when_to_use, single, paper, **more):
    return LossSpec(
        name=name,
        family="box regression",
        functional=getattr(F, name),
        module_name=module_name,
        reference=getattr(R, name),
        summary=summary,
        when_to_use=when_to_use,
        examples=(Example(single[0], [single[1]], [single[2]]), Example(_THREE, **_PAIRS)),
        input_kind=BOXES,
        target_kind=BOX_PAIRS,
        variants=_VARIANTS,
        paper=paper,
        **more,
    )


ROWS = (
    _row(
        "box_iou_loss",
        "BoxIoULoss",
        "1 - IoU of each predicted box with its target box",
        "box regression scored by overlap; no gradient once boxes are disjoint",
        (_HALF, [0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0]),
        "https://arxiv.org/abs/1608.01471",
    ),
    _row(
        "generalized_box_iou_loss",
        "GeneralizedBoxIoULoss",
        "1 - IoU + (C - U) / C, C the enclosing box's area",
        "box regression (DETR, FCOS): a gradient for disjoint boxes too",
        (_APART, [0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]),
        "https://arxiv.org/abs/1902.09630",
    ),
    _row(
        "distance_box_iou_loss",
        "DistanceBoxIoULoss",
        "1 - IoU + squared centre distance / squared enclosing diagonal",
        "box regression that pulls centres together directly; converges faster than GIoU",
        (_APART, [0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]),
        "https://arxiv.org/abs/1911.08287",
    ),
    _row(
        "complete_box_iou_loss",
        "CompleteBoxIoULoss",
        "distance IoU loss + alpha v, v the aspect-ratio mismatch (alpha without gradient)",
        "box regression that also matches aspect ratios (YOLO-style detectors)",
        (_SHAPE, [0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 2.0]),
        "https://arxiv.org/abs/1911.08287",
        detached="alpha = v / (1 - IoU + v + eps), held constant as in the paper and torchvision",
    ),
)
