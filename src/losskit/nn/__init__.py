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
