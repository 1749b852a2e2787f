"""losskit.nn: module forms of the losses. Each holds its hyperparameters and calls its
functional in ``forward``; see :class:`losskit.nn.Loss`."""

from .. import functional as F
from ._base import Loss

__all__ = [
    "Loss",
    "L1Loss",
    "MAELoss",
    "MSELoss",
    "RMSELoss",
    "SmoothL1Loss",
    "HuberLoss",
    "PseudoHuberLoss",
    "LogCoshLoss",
    "QuantileLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "SigmoidFocalLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "SoftmaxFocalLoss",
    "SymmetricCrossEntropyLoss",
    "ReverseCrossEntropyLoss",
    "CategoricalCrossEntropyLoss",
    "DetectionFocalLoss",
]


class L1Loss(Loss, functional=F.l1_loss):
    """Module form of :func:`losskit.functional.l1_loss`."""


MAELoss = L1Loss


class MSELoss(Loss, functional=F.mse_loss):
    """Module form of :func:`losskit.functional.mse_loss`."""


class RMSELoss(Loss, functional=F.rmse_loss):
    """Module form of :func:`losskit.functional.rmse_loss`."""


class SmoothL1Loss(Loss, functional=F.smooth_l1_loss):
    """Module form of :func:`losskit.functional.smooth_l1_loss`."""


class HuberLoss(Loss, functional=F.huber_loss):
    """Module form of :func:`losskit.functional.huber_loss`."""


class PseudoHuberLoss(Loss, functional=F.pseudo_huber_loss):
    """Module form of :func:`losskit.functional.pseudo_huber_loss`."""


class LogCoshLoss(Loss, functional=F.log_cosh_loss):
    """Module form of :func:`losskit.functional.log_cosh_loss`."""


class QuantileLoss(Loss, functional=F.quantile_loss):
    """Module form of :func:`losskit.functional.quantile_loss`."""


class BCELoss(Loss, functional=F.binary_cross_entropy):
    """Module form of :func:`losskit.functional.binary_cross_entropy`."""


class BCEWithLogitsLoss(Loss, functional=F.binary_cross_entropy_with_logits):
    """Module form of :func:`losskit.functional.binary_cross_entropy_with_logits`."""


class SigmoidFocalLoss(Loss, functional=F.sigmoid_focal_loss):
    """Module form of :func:`losskit.functional.sigmoid_focal_loss`."""


class CrossEntropyLoss(Loss, functional=F.cross_entropy):
    """Module form of :func:`losskit.functional.cross_entropy`."""


class NLLLoss(Loss, functional=F.nll_loss):
    """Module form of :func:`losskit.functional.nll_loss`."""


class SoftmaxFocalLoss(Loss, functional=F.softmax_focal_loss):
    """Module form of :func:`losskit.functional.softmax_focal_loss`."""


class SymmetricCrossEntropyLoss(Loss, functional=F.symmetric_cross_entropy):
    """Module form of :func:`losskit.functional.symmetric_cross_entropy`."""


class ReverseCrossEntropyLoss(Loss, functional=F.reverse_cross_entropy):
    """Module form of :func:`losskit.functional.reverse_cross_entropy`."""


class CategoricalCrossEntropyLoss(Loss, functional=F.categorical_cross_entropy):
    """Module form of :func:`losskit.functional.categorical_cross_entropy`."""


class DetectionFocalLoss(Loss, functional=F.detection_focal_loss):
    """Module form of :func:`losskit.functional.detection_focal_loss`:
    ``forward(input, target, anchor_state)``."""
