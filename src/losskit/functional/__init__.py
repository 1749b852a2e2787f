"""losskit.functional: every loss as a function ``loss(input, target, *, ..., reduction)``."""

from .binary import binary_cross_entropy, binary_cross_entropy_with_logits, sigmoid_focal_loss
from .detection import detection_focal_loss
from .linear import linear_cross_entropy
from .metrics import in_top_k, top_k_accuracy
from .multiclass import (
    categorical_cross_entropy,
    cross_entropy,
    nll_loss,
    reverse_cross_entropy,
    softmax_focal_loss,
    symmetric_cross_entropy,
)
from .regression import (
    huber_loss,
    l1_loss,
    log_cosh_loss,
    mae_loss,
    mse_loss,
    pseudo_huber_loss,
    quantile_loss,
    rmse_loss,
    smooth_l1_loss,
)

__all__ = [
    "l1_loss",
    "mae_loss",
    "mse_loss",
    "rmse_loss",
    "smooth_l1_loss",
    "huber_loss",
    "pseudo_huber_loss",
    "log_cosh_loss",
    "quantile_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "cross_entropy",
    "nll_loss",
    "softmax_focal_loss",
    "symmetric_cross_entropy",
    "reverse_cross_entropy",
    "categorical_cross_entropy",
    "linear_cross_entropy",
    "detection_focal_loss",
    "top_k_accuracy",
    "in_top_k",
]
