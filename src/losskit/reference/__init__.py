"""losskit.reference: every loss in plain NumPy float64, written as the named steps a person
does by hand. Same names and arguments as :mod:`losskit.functional`; the tests' oracle and
the engine of ``losskit.explain``. Inputs may be lists, arrays or tensors; results are
NumPy float64. Each family module lists its own public names; a test checks them against
the registry.

Example:
    >>> from losskit import reference as R
    >>> with R.record() as steps:
    ...     value = R.l1_loss([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    >>> float(value), [s.name for s in steps]
    (1.0, ['prediction', 'target', 'residual', 'absolute error', 'sum', 'count', 'mean'])
"""

from . import (  # torch.nn's CTC, KL divergence and likelihoods
    binary,
    boxes,
    ctc,
    distillation,
    distributions,
    keras,
    linear,
    lovasz,  # Lovász losses (Berman et al. 2018)
    margin,
    multiclass,
    multilabel,  # multi-label and noise-robust classification
    regression,
    segmentation,  # segmentation overlap losses (Dice, Jaccard, Tversky)
)
from ._steps import Step, record
from .binary import *  # noqa: F403
from .boxes import *  # noqa: F403
from .ctc import *  # noqa: F403
from .distillation import *  # noqa: F403
from .distributions import *  # noqa: F403
from .keras import *  # noqa: F403
from .linear import *  # noqa: F403
from .lovasz import *  # noqa: F403
from .margin import *  # noqa: F403
from .multiclass import *  # noqa: F403
from .multilabel import *  # noqa: F403
from .regression import *  # noqa: F403
from .segmentation import *  # noqa: F403

__all__ = [
    "Step",
    "record",
    *regression.__all__,
    *binary.__all__,
    *multiclass.__all__,
    *linear.__all__,
    *keras.__all__,
    *segmentation.__all__,
    *boxes.__all__,
    *distillation.__all__,
    *multilabel.__all__,
    *distributions.__all__,
    *ctc.__all__,
    *lovasz.__all__,
    *margin.__all__,
]
