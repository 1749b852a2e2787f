"""Registry rows of the segmentation overlap losses (Dice, Jaccard, Tversky, focal Tversky,
generalized Dice)."""

from __future__ import annotations

from dataclasses import replace

from .. import functional as F
from .. import reference as R
from .._kinds import LOGITS
from .._kinds.segmentation import SEG_INDEX
from .._spec import Example, LossSpec

# One image, two classes, three pixels: logits (1, 2, 3) and the mask [0, 1, 1].
TOY = "a toy mask: one image of 3 pixels, background then two foreground pixels"
TOY_LOGITS = [[[2.0, -1.0, 0.5], [-1.0, 2.0, 0.0]]]
TOY_MASK = [[0, 1, 1]]
# Two images: the second has no foreground pixel, and its pixel 2 is void (255).
TWO = "two toy masks, the second without foreground and with a void pixel (255)"
TWO_LOGITS = [[[2.0, -1.0, 0.5], [-1.0, 2.0, 0.0]], [[1.0, 0.0, 3.0], [0.0, -2.0, 1.0]]]
TWO_MASKS = [[0, 1, 1], [0, 0, 255]]

# the options that the contract tests run besides the defaults (tests/test_segmentation.py
# runs the modes and the rest of the options)
OVERLAP_VARIANTS = (
    {"per_image": False},
    {"smooth": 1.0, "squared": True},
    {"log_loss": True, "smooth": 1e-5},
    {"ignore_index": 255, "include_background": False},
)
SEGMENTATION = "segmentation"

ROWS = (
    LossSpec(
        name="dice_loss",
        family=SEGMENTATION,
        functional=F.dice_loss,
        module_name="DiceLoss",
        reference=R.dice_loss,
        summary="1 - (2I + s) / (P + G + s) per (image, class): soft Dice on softmax or "
        "sigmoid maps",
        when_to_use="segmentation with small or unbalanced foreground; with CE (DiceCE)",
        examples=(
            Example(TOY, TOY_LOGITS, TOY_MASK),
            Example(TWO, TWO_LOGITS, TWO_MASKS, options={"ignore_index": 255}),
        ),
        input_kind=LOGITS,
        target_kind=SEG_INDEX,
        variants=OVERLAP_VARIANTS,
        paper="https://arxiv.org/abs/1606.04797",
    ),
    LossSpec(
        name="jaccard_loss",
        aliases=("iou_loss",),
        family=SEGMENTATION,
        functional=F.jaccard_loss,
        module_name="JaccardLoss",
        module_aliases=("IoULoss",),
        reference=R.jaccard_loss,
        summary="1 - (I + s) / (P + G - I + s) per (image, class): soft IoU",
        when_to_use="segmentation scored by IoU (mIoU)",
        examples=(Example(TOY, TOY_LOGITS, TOY_MASK),),
        input_kind=LOGITS,
        target_kind=SEG_INDEX,
        variants=({"ignore_index": 255, "include_background": False, "squared": True},),
    ),
    LossSpec(
        name="tversky_loss",
        family=SEGMENTATION,
        functional=F.tversky_loss,
        module_name="TverskyLoss",
        reference=R.tversky_loss,
        summary="1 - (I + s) / (I + α FP + β FN + s): Dice with false positives (α) "
        "and false negatives (β) weighed apart",
        when_to_use="segmentation where missing foreground costs more (β > α)",
        examples=(Example(TOY, TOY_LOGITS, TOY_MASK, options={"alpha": 0.3, "beta": 0.7}),),
        input_kind=LOGITS,
        target_kind=SEG_INDEX,
        variants=(
            {"alpha": 0.3, "beta": 0.7, "per_image": False, "ignore_index": 255},
            {"log_loss": True, "smooth": 1.0, "include_background": False},
        ),
        paper="https://arxiv.org/abs/1706.05721",
    ),
    LossSpec(
        name="focal_tversky_loss",
        family=SEGMENTATION,
        functional=F.focal_tversky_loss,
        module_name="FocalTverskyLoss",
        reference=R.focal_tversky_loss,
        summary="(1 - Tversky index)^γ, γ = 0.75: more weight on the classes scored worst",
        when_to_use="small lesions and structures, unbalanced segmentation",
        examples=(Example(TOY, TOY_LOGITS, TOY_MASK, options={"alpha": 0.3, "beta": 0.7}),),
        input_kind=LOGITS,
        target_kind=SEG_INDEX,
        variants=(
            {"alpha": 0.3, "beta": 0.7, "gamma": 2.0, "per_image": False, "ignore_index": 255},
        ),
        paper="https://arxiv.org/abs/1810.07842",
    ),
    LossSpec(
        name="generalized_dice_loss",
        family=SEGMENTATION,
        functional=F.generalized_dice_loss,
        module_name="GeneralizedDiceLoss",
        reference=R.generalized_dice_loss,
        summary="one Dice over the classes, each weighted by 1 / G² (Sudre); one loss per image",
        when_to_use="highly unbalanced classes, many small structures",
        examples=(
            Example(TOY, TOY_LOGITS, TOY_MASK),
            Example(TWO, TWO_LOGITS, TWO_MASKS, options={"ignore_index": 255}),
        ),
        input_kind=LOGITS,
        target_kind=replace(
            SEG_INDEX,
            name="segmentation_index_per_image",
            description=SEG_INDEX.description.replace("(image, class)", "image"),
            none_dims=("N",),
            weight_kind=None,
        ),
        variants=(
            {"weight_type": "simple", "ignore_index": 255},
            {
                "weight_type": "uniform",
                "per_image": False,
                "smooth": 1.0,
                "include_background": False,
            },
        ),
        paper="https://arxiv.org/abs/1707.03237",
    ),
)
