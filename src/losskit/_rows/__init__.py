"""The registry's rows, one module per family; :mod:`losskit._registry` collects them in
this order (the order of ``losskit list`` and of the README's table). A new family is one
module here and one line below."""

from __future__ import annotations

from . import (  # torch.nn's CTC, KL divergence and likelihoods
    binary,
    boxes,
    ctc,
    detection,
    distillation,
    distributions,
    keras,
    linear,
    lovasz,  # Lovász losses (Berman et al. 2018)
    margin,  # torch.nn's margin and embedding losses
    multiclass,
    multilabel,  # multi-label and noise-robust classification
    regression,
    segmentation,  # segmentation overlap losses (Dice, Jaccard, Tversky)
)

# The families a row may name (``LossSpec.family``); a new family adds its name here.
FAMILIES = (
    "regression",
    "binary",
    "multiclass",
    "detection",
    "language model",
    "box regression",
    "distillation",
    "segmentation",
    "distribution",
    "embedding",
    "sequence",
)

ROWS = (
    *regression.ROWS,
    *binary.ROWS,
    *multiclass.ROWS,
    *detection.ROWS,
    *linear.ROWS,
    *keras.ROWS,
    *segmentation.ROWS,
    *boxes.ROWS,
    *distillation.ROWS,
    *multilabel.ROWS,
    *distributions.ROWS,
    *ctc.ROWS,
    *lovasz.ROWS,
    *margin.ROWS,
)
