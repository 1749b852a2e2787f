"""Registry rows of the Lovász losses (Berman et al. 2018)."""

from __future__ import annotations

from .. import functional as F
from .. import reference as R
from .._kinds import LOGITS
from .._kinds.lovasz import LOVASZ_BINARY, LOVASZ_INDEX
from .._spec import Example, LossSpec

PAPER = "https://arxiv.org/abs/1705.08790"

ROWS = (
    LossSpec(
        name="lovasz_softmax_loss",
        family="segmentation",
        functional=F.lovasz_softmax_loss,
        module_name="LovaszSoftmaxLoss",
        reference=R.lovasz_softmax_loss,
        summary="Lovász extension of the Jaccard loss on softmax errors |g - p|, sorted; "
        "mean over present classes",
        when_to_use="multiclass segmentation scored by mean IoU (fine-tuning after CE)",
        examples=(
            Example(
                "1 image of 3 pixels, 2 classes (the docstring's)",
                [[[2.0, 0.0, -1.0], [0.0, 1.0, 1.0]]],
                [[0, 1, 0]],
            ),
            Example(
                "2 images of 2 x 2 pixels, 3 classes, void pixels 255, per image",
                [
                    [
                        [[2.0, -1.0], [0.5, 0.0]],
                        [[0.0, 1.5], [0.2, 0.0]],
                        [[-1.0, 0.0], [1.0, 3.0]],
                    ],
                    [
                        [[0.3, 0.1], [-2.0, 1.0]],
                        [[1.0, 0.0], [0.4, 0.0]],
                        [[0.0, 2.0], [0.5, -1.0]],
                    ],
                ],
                [[[0, 1], [255, 2]], [[1, 2], [1, 255]]],
                options={"ignore_index": 255, "per_image": True},
            ),
        ),
        aliases=("lovasz_softmax",),
        input_kind=LOGITS,
        target_kind=LOVASZ_INDEX,
        variants=(
            {"per_image": True, "ignore_index": -1},
            {"classes": "all", "ignore_index": 255},
            {"classes": [0, 1], "per_image": True},
        ),
        paper=PAPER,
    ),
    LossSpec(
        name="lovasz_hinge_loss",
        family="segmentation",
        functional=F.lovasz_hinge_loss,
        module_name="LovaszHingeLoss",
        reference=R.lovasz_hinge_loss,
        summary="Lovász extension of the Jaccard loss on hinge errors max(0, 1 - x (2y - 1)), "
        "sorted; per image",
        when_to_use="binary segmentation scored by IoU",
        examples=(
            Example(
                "1 image of 4 pixels (the docstring's)",
                [[2.0, -0.5, 0.3, -3.0]],
                [[1, 1, 0, 0]],
            ),
            Example(
                "2 images of 3 pixels, void pixels 255, one batch",
                [[1.5, -0.2, 0.7], [-1.0, 2.0, 0.1]],
                [[1, 0, 255], [0, 1, 1]],
                options={"ignore_index": 255, "per_image": False},
            ),
        ),
        aliases=("lovasz_hinge",),
        input_kind=LOGITS,
        target_kind=LOVASZ_BINARY,
        variants=({"per_image": False}, {"ignore_index": 255}),
        paper=PAPER,
    ),
)
