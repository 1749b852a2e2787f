"""losskit.reference: every loss in plain NumPy float64, written as the named steps a person
does by hand. Same names and arguments as :mod:`losskit.functional`; the tests' oracle and
the engine of ``losskit.explain``. Inputs may be lists, arrays or tensors; results are
NumPy float64.

Example:
    >>> from losskit import reference as R
    >>> with R.record() as steps:
    ...     value = R.l1_loss([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    >>> float(value), [s.name for s in steps]
    (1.0, ['prediction', 'target', 'residual', 'absolute error', 'sum', 'count', 'mean'])
"""

from ._steps import Step, record
from .binary import binary_cross_entropy, binary_cross_entropy_with_logits, sigmoid_focal_loss
from .linear import linear_cross_entropy
from .multiclass import (
    categorical_cross_entropy,
    cross_entropy,
    detection_focal_loss,
    in_top_k,
    nll_loss,
    reverse_cross_entropy,
    softmax_focal_loss,
    symmetric_cross_entropy,
    top_k_accuracy,
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
    "Step",
    "record",
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
