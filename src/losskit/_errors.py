"""The two exception types every losskit check raises."""

from __future__ import annotations

__all__ = ["LossInputError", "LossTypeError"]


class LossInputError(ValueError):
    """A loss got an argument with the wrong shape, value or range.

    Subclass of :class:`ValueError`, so ``except ValueError`` keeps working. The message
    names the loss, the argument, what was expected, what was received and, when one is
    likely, a hint.
    """

    __module__ = "losskit"


class LossTypeError(TypeError):
    """A loss got an argument of the wrong type or dtype (subclass of :class:`TypeError`)."""

    __module__ = "losskit"
