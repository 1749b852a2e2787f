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
from .._reduction import compute_dtype

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

    _input: torch.Tensor | None = None

    @property
    def input(self) -> torch.Tensor:
        """The input in the compute dtype (float32 for half inputs), made on first use
        (the kernels read ``raw`` directly: no float32 copy of half logits)."""
        if self._input is None:
            self._input = self.raw.to(compute_dtype(self.raw.dtype))
        return self._input

    def class_view(self, t: torch.Tensor) -> torch.Tensor:
        """A ``(C,)`` tensor shaped to broadcast along the class dimension of the input."""
        shape = [1] * self.raw.dim()
        shape[self.class_dim] = -1
        return t.view(shape)


def index_shape(input: torch.Tensor) -> tuple[int, ...]:
    if input.dim() == 1:
        return ()
    return (input.shape[0], *input.shape[2:])


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
) -> tuple[Classes, torch.Tensor | None]:
    """Validate a multi-class call; returns it and the mask of counted targets."""
    C.check_reduction(loss, reduction)
    C.check_tensor(loss, "input", input)
    C.check_tensor(loss, "target", target)
    C.check_floating(loss, "input", input)
    C.check_real(loss, "target", target)
    weight = C.check_weight_tensor(loss, weight)
    C.check_same_device(loss, input=input, target=target, weight=weight)
    C.check_normalizer(loss, normalizer, reduction)
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
    idx_shape = index_shape(input)
    kind = _target_kind(loss, input, target, target_type, idx_shape, allow_probs)

    if weight is not None and (weight.dim() != 1 or weight.shape[0] != num_classes):
        C.fail(
            loss,
            f"weight must hold one value per class, shape ({num_classes},), got "
            f"{tuple(weight.shape)}.",
            "weight is the class weight (C,); for a per-sample weight, use "
            "reduction='none' and weigh the result.",
        )
    dtype = compute_dtype(input.dtype)
    w = weight.to(dtype) if weight is not None else None
    mask = None
    if kind == "index":
        t = target.long()
        if ignore_index is not None:
            mask = t != ignore_index
        _check_index_range(loss, t, num_classes, ignore_index, classes_from=input_name)
    else:
        t = target.to(dtype)
        check_probs(loss, t, class_dim, target.dtype)
    return Classes(input, t, kind, class_dim, num_classes, w), mask


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
    if target_type == "index" or (target_type == "auto" and integer):
        if target.is_floating_point():
            C.fail(
                loss,
                f"target must hold integer class indices, got {C.describe(target)}.",
                "class indices must be integers: cast with target.long().",
                cls=C.LossTypeError,
            )
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


def _check_index_range(loss, t, num_classes, ignore_index, classes_from="input"):
    """Value check: class indices in ``0..num_classes-1`` or ``ignore_index``.

    ``classes_from`` names the argument that holds the classes, for the message ("but
    input has 4 classes"; ``linear_cross_entropy``'s classes are the rows of
    ``linear_weight``).
    """
    if not C.checks_enabled() or t.numel() == 0:
        return
    with torch.no_grad():
        counted = t if ignore_index is None else torch.where(t == ignore_index, 0, t)
        lo, hi = torch.aminmax(counted)  # one pass, one synchronisation when all is well
        if bool((lo >= 0) & (hi < num_classes)):
            return
        bad = (t < 0) | (t >= num_classes)
        if ignore_index is not None:
            bad &= t != ignore_index
        n_bad = int(bad.sum())
        if n_bad == 0:
            return
        values = torch.unique(t[bad]).tolist()
        kept = t if ignore_index is None else t[t != ignore_index]
        t_min, t_max = int(kept.min()), int(kept.max())
    noun = "class index" if len(values) == 1 else "class indices"
    plural = "value" if n_bad == 1 else "values"
    ignore = f", or ignore_index={ignore_index}" if ignore_index is not None else ""
    hint = None
    if t_max == num_classes and t_min >= 1:
        hint = "labels look 1-based: subtract 1 (target - 1)."
    elif 255 in values:
        hint = "did you mean ignore_index=255? (255 marks void pixels in many segmentation sets)"
    elif len(values) == 1 and values[0] < 0:
        hint = f"did you mean ignore_index={values[0]}?"
    C.fail(
        loss,
        f"target has {noun} {C.format_values(values)}, but {classes_from} has "
        f"{num_classes} classes (valid 0..{num_classes - 1}{ignore}); {n_bad} {plural} out "
        "of range.",
        hint,
    )


# How far from 1 a probability row may sum, by the dtype the user passed it in.
_SUM_TOLERANCE = {
    torch.float64: 1e-6,
    torch.float32: 1e-3,
    torch.float16: 3e-2,
    torch.bfloat16: 3e-2,
}


def check_probs(loss, t, class_dim, source_dtype=None):
    C.check_in_unit_interval(
        loss,
        "target",
        t,
        hint="probability targets must lie in [0, 1]; for class indices pass an integer "
        "tensor (target.long()).",
    )
    if not C.checks_enabled() or t.numel() == 0:
        return
    with torch.no_grad():
        sums = t.sum(dim=class_dim)
        tol = _SUM_TOLERANCE.get(source_dtype or t.dtype, 1e-3)
        off = (sums - 1).abs() > tol
        n_off = int(off.sum())
        if n_off == 0:
            return
        worst = sums[off]
        lo, hi = float(worst.min()), float(worst.max())
    C.fail(
        loss,
        f"probability targets must sum to 1 over the class dimension {class_dim}; "
        f"{n_off} of {sums.numel()} rows do not (sums from {lo:.6g} to {hi:.6g}).",
        "normalise with target / target.sum(dim, keepdim=True), or pass class indices.",
    )
