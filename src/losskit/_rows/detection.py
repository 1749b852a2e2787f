"""Registry rows of the detection losses."""

from __future__ import annotations

from .. import functional as F
from .. import reference as R
from .._kinds import ANCHORS, LOGITS
from .._spec import Example, LossSpec

ROWS = (
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
)
