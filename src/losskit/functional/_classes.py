"""Input/target handling for the multi-class losses: target form, shapes, class indices.

Input is ``(N, C)``, ``(N, C, d1, ..., dk)`` or torch's unbatched ``(C,)``; the class
dimension is 1 (0 when unbatched). The target is either class indices of shape
``(N, d1, ..., dk)`` (``()`` when unbatched), of any integer dtype, or probabilities of
the input's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _checks as C
from .._reduction import compute_dtype, in_dtype, mean_weight
from ._common import finite_on_cpu
from ._fused import eager

TARGET_TYPES = ("auto", "index", "probs")


@dataclass
class Classes:
    """A validated multi-class call."""

    raw: torch.Tensor  # the input as given; ``input`` is it in the compute dtype
    target: torch.Tensor  # int64 indices, or probabilities in the compute dtype
    kind: str  # "index" | "probs"
    class_dim: int
    num_classes: int
    weight: torch.Tensor | None  # (C,), compute dtype

    mask: torch.Tensor | None = None  # counted targets (index targets with ignore_index)
    _input: torch.Tensor | None = None
    _all_counted: bool | None = None

    @property
    def all_counted(self) -> bool:
        """No target is ignored, as read where value checks read values (a device sync),
        or on CPU in eager mode (no sync there); ``False`` (unknown) elsewhere, and then the
        mask is applied."""
        if self._all_counted is None:
            readable = self.mask is not None and (
                C.checks_enabled() or (self.mask.device.type == "cpu" and eager())
            )
            self._all_counted = self.mask is None or (readable and bool(self.mask.all()))
        return self._all_counted

    @property
    def input(self) -> torch.Tensor:
        """The input in the compute dtype (float32 for half inputs), made on first use
        (the kernels read ``raw`` directly: no float32 copy of half logits). The rows of
        ignored targets are 0 here, so that a NaN or inf in them (a masked vocabulary)
        reaches neither the value nor the gradient. Finite logits need no such copy (an
        ignored row's loss and gradient are 0 times finite values): on CPU one read shows
        that (:func:`finite_on_cpu`), and the copy, and its backward's, are skipped."""
        if self._input is None:
            x = in_dtype(self.raw, compute_dtype(self.raw.dtype))
            # a copy of the logits only when some target is ignored and some logit is not
            # finite (or, on a device, may not be)
            if not self.all_counted and not finite_on_cpu(x):
                x = x.masked_fill(~self.mask.unsqueeze(self.class_dim), 0.0)
            self._input = x
        return self._input

    def class_view(self, t: torch.Tensor) -> torch.Tensor:
        """A ``(C,)`` tensor shaped to broadcast along the class dimension of the input."""
        shape = [1] * self.raw.dim()
        shape[self.class_dim] = -1
        return t.view(shape)


def prepare_classes(
    loss: str,
    input: object,
    target: object,
    *,
    weight: object = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    normalizer: object = None,
    target_type: str = "auto",
    input_name: str = "input",
    allow_probs: bool = True,
    homogeneous: bool = True,
) -> tuple[Classes, torch.Tensor | None]:
    """Validate a multi-class call; returns it and the mask of counted targets.

    ``homogeneous``: every term of the loss is scaled by the class weight (not so with a
    z-loss); the mean's weights may then be rescaled (:func:`mean_weight`)."""
    C.check_call(
        loss,
        input,
        target,
        reduction=reduction,
        normalizer=normalizer,
        input_name=input_name,
        weight=weight,
    )
    if target_type not in TARGET_TYPES:
        C.fail(loss, f"target_type must be one of 'auto', 'index', 'probs', got {target_type!r}.")
    if input.dim() == 0:
        C.fail(
            loss,
            f"{input_name} must have a class dimension: (N, C), (N, C, d1, ...) or (C,), "
            "got a 0-dim tensor.",
        )
    class_dim = 0 if input.dim() == 1 else 1
    num_classes = input.shape[class_dim]
    if num_classes == 0:
        C.fail(
            loss,
            f"{input_name} of shape {tuple(input.shape)} has 0 classes (dimension "
            f"{class_dim}); at least one is needed.",
        )
    idx_shape = () if input.dim() == 1 else (input.shape[0], *input.shape[2:])
    kind = _target_kind(loss, input, target, target_type, idx_shape, allow_probs)

    C.check_class_weight(loss, weight, num_classes)
    dtype = compute_dtype(input.dtype)
    w = None
    if weight is not None:
        w = mean_weight(weight.to(dtype), reduction, normalizer, homogeneous)
    mask = None
    if kind == "index":
        t = in_dtype(target, torch.int64)
        # the check's one read may show that no target is ignored: then no mask
        every = C.check_class_indices(loss, t, num_classes, ignore_index, classes_from=input_name)
        if ignore_index is not None and not every:
            mask = t != ignore_index
    else:
        t = target.to(dtype)
        C.check_prob_rows(loss, t, class_dim, target.dtype)
    return Classes(input, t, kind, class_dim, num_classes, w, mask), mask


_SQUEEZE = "squeeze the class dimension: target.squeeze(1)."


def _has_unit_class_dim(target, idx_shape):
    """An (N, 1, d...) target where (N, d...) indices were meant."""
    return (
        target.dim() >= 2
        and target.shape[1] == 1
        and (target.shape[0], *target.shape[2:]) == tuple(idx_shape)
    )


def _target_kind(loss, input, target, target_type, idx_shape, allow_probs):
    integer = not target.is_floating_point()
    if target_type == "probs" and integer:
        C.fail(
            loss,
            f"target_type='probs', but the target holds integers ({C.describe(target)}), "
            "which are class indices.",
            "drop target_type (or pass target_type='index'); for probabilities pass a "
            "floating target of the input's shape, e.g. one_hot(target, C).float().",
            cls=C.LossTypeError,
        )
    if target_type == "index" or (target_type == "auto" and integer):
        C.check_integer(loss, "target", target)
        if tuple(target.shape) != idx_shape:
            hint = None
            if _has_unit_class_dim(target, idx_shape):
                hint = _SQUEEZE
            elif tuple(target.shape) == tuple(input.shape):
                hint = "an integer target of the input's shape: for one-hot or probability "
                hint += "targets pass target.float(); for class indices use target.argmax(1)."
            C.fail(
                loss,
                f"target of class indices must have shape {idx_shape} for input of shape "
                f"{tuple(input.shape)}, got {tuple(target.shape)}.",
                hint,
            )
        return "index"
    # floating target
    if tuple(target.shape) == tuple(input.shape) and allow_probs:
        return "probs"
    if tuple(target.shape) == idx_shape:
        C.fail(
            loss,
            f"target has the shape of class indices {idx_shape} but a floating dtype "
            f"({C.dtype_name(target.dtype)}).",
            "class indices must be integers: cast with target.long().",
            cls=C.LossTypeError,
        )
    if not allow_probs:
        C.fail(
            loss,
            f"target must hold class indices of shape {idx_shape}, got {C.describe(target)}.",
            "cast class indices with target.long().",
        )
    C.fail(
        loss,
        f"target must be class indices of shape {idx_shape} or probabilities of the "
        f"input's shape {tuple(input.shape)}, got {C.describe(target)}.",
        _SQUEEZE if _has_unit_class_dim(target, idx_shape) else None,
    )
