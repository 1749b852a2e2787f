"""losskit.functional: every loss as a function ``loss(input, target, *, ..., reduction)``.

Each family module lists its own public names (``__all__``); this package re-exports
them all, and a test checks them against the registry.
"""

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
    margin,
    metrics,
    multiclass,
    multilabel,  # multi-label and noise-robust classification
    regression,
    segmentation,  # segmentation overlap losses (Dice, Jaccard, Tversky)
)
from .binary import *  # noqa: F403
from .boxes import *  # noqa: F403
from .ctc import *  # noqa: F403
from .detection import *  # noqa: F403
from .distillation import *  # noqa: F403
from .distributions import *  # noqa: F403
from .keras import *  # noqa: F403
from .linear import *  # noqa: F403
from .lovasz import *  # noqa: F403
from .margin import *  # noqa: F403
from .metrics import *  # noqa: F403
from .multiclass import *  # noqa: F403
from .multilabel import *  # noqa: F403
from .regression import *  # noqa: F403
from .segmentation import *  # noqa: F403

__all__ = [
    *regression.__all__,
    *binary.__all__,
    *multiclass.__all__,
    *detection.__all__,
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
    *metrics.__all__,
]

# The public form of every function: torch's positional order of the options (declared by
# the registry row) and the "unknown option ... did you mean" error (see
# losskit._checks.call_forms); the family modules keep the keyword-only implementations.
from .._checks import call_forms as _call_forms  # noqa: E402

_public: dict = {}  # one public form per function: an alias stays the same object
for _name in __all__:
    _fn = globals()[_name]
    if _fn not in _public:
        _public[_fn] = _call_forms(_fn)
    globals()[_name] = _public[_fn]
del _name, _fn, _public
