"""Binary and multi-label losses: a target of the input's shape, with values in [0, 1]."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as TF

from .. import _checks as C
from .._reduction import reduce, reduce_builtin
from ._fused import eager, fused, fused_total
from ._sigmoid import bce_with_logits, prepare_binary, sigmoid_focal, upcast

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "sigmoid_focal_loss"]


def _no_autocast(device_type: str):
    """Autocast off on ``device_type``; nothing to turn off on a device without autocast
    (meta tensors)."""
    available = getattr(torch.amp, "is_autocast_available", lambda d: d in ("cpu", "cuda"))
    if available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def binary_cross_entropy(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Binary cross entropy on probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    .. math::
        \ell_i = -w_i \left[ y_i \max(\log x_i, -100) + (1 - y_i) \max(\log(1 - x_i), -100)
        \right]

    The log is clamped at -100 as torch does, so ``x = 0`` or ``1`` gives a finite loss.
    ``"mean"`` is ``sum(w l) / sum(w)`` (torch divides a weighted loss by the element
    count; without ``weight`` both agree). Under autocast it computes in float32 instead
    of refusing. At ``x = 0`` or ``1`` the gradient is torch's ``(x - y) / 1e-12``, which
    overflows to infinity in a float16 input's gradient. Prefer
    :func:`binary_cross_entropy_with_logits` on logits: it is exact where ``sigmoid``
    saturates.

    Args:
        input: probabilities in [0, 1] (checked; a :class:`LossInputError` reports the
            min and max found).
        target: same shape as ``input``, values in [0, 1] (checked).
        weight: per-element weight broadcastable to ``input``. Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide ``sum(w * l)`` by this instead of ``sum(w)``.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> p = torch.tensor([[-1., 1.], [1., 2.]]).sigmoid()
        >>> LF.binary_cross_entropy(p, torch.tensor([[1., 0.], [0., 1.]]))
        tensor(1.0167)
    """
    name = "binary_cross_entropy"
    prepare_binary(name, input, target, weight, reduction, normalizer)
    x, y, w, _ = upcast(input, target, weight)
    C.check_in_unit_interval(
        name,
        "input",
        x,
        hint="input must be probabilities; for logits use binary_cross_entropy_with_logits.",
    )
    C.check_in_unit_interval(name, "target", y)
    if C.checks_enabled() and not y.requires_grad and x.device.type == "cpu" and eager():
        # the closed form, where the value checks proved both in [0, 1] (with checks off
        # torch's kernel refuses other values, reported below)
        with _no_autocast(x.device.type):
            if w is None and reduction != "none":
                return fused_total(
                    _BCESum,
                    _bce_sum_plain,
                    x,
                    y,
                    count=x.numel(),
                    reduction=reduction,
                    normalizer=normalizer,
                    kernel_up_to=_KERNEL_UP_TO,
                )
            loss = fused(_BCE, _bce_plain, x, y)
            return reduce(loss, reduction, weight=w, normalizer=normalizer)

    def builtin(red):
        with _no_autocast(x.device.type):
            try:
                return TF.binary_cross_entropy(x, y, reduction=red)
            except RuntimeError as err:  # torch's own range check, with value checks off
                if "between 0 and 1" not in str(err):
                    raise
                arg = "target" if "target" in str(err) else "input"
                C.fail(
                    name,
                    f"{arg} must hold values in [0, 1] (torch refuses others).",
                    "losskit's value checks are off; turn them on to see the values.",
                )

    return reduce_builtin(builtin, reduction, weight=w, normalizer=normalizer, numel=x.numel())


#: Elements up to which the mean or sum runs torch's kernel (its plain path): torch's
#: binary_cross_entropy costs more per element than the closed form, so the bound is
#: low. Measured on CPU, torch 2.13, one thread, forward + backward: 86 against 163 us
#: at 1024 elements, 156 against 179 at 4096, 248 against 196 at 8192, 1533 against 465
#: at 65536.
_KERNEL_UP_TO = 1 << 12


def _bce_plain(x, y):
    """Binary cross entropy per element through torch's autograd: the definition
    :class:`_BCE` is checked against, and the one differentiated twice."""
    return TF.binary_cross_entropy(x, y, reduction="none")


def _bce_sum_plain(x, y):
    return TF.binary_cross_entropy(x, y, reduction="sum")


#: torch's floor of ``x (1 - x)`` in the gradient: ``1e-12`` as a float32, in every dtype.
_EPSILON = 9.999999960041972e-13


class _BCE:
    """Torch's ``(y - 1) max(log1p(-x), -100) - y max(log x, -100)`` per element, from
    vectorized ``log`` and ``log1p`` (torch's kernel takes them one element at a time, at
    about four times the cost), and torch's gradient ``(x - y) / max(x (1 - x), 1e-12)``
    (the same infinities in a float16 gradient at 0 and 1). ``(1 - y) b`` is ``b - b y``:
    exact at the hard targets 0 and 1."""

    @staticmethod
    def forward(x, y):
        loss = torch.log(x).clamp_min_(-100.0).mul_(y)  # y max(log x, -100)
        neg = torch.neg(x).log1p_().clamp_min_(-100.0)  # max(log1p(-x), -100)
        loss.add_(neg.addcmul_(neg, y, value=-1.0))  # + (1 - y) max(log1p(-x), -100)
        return loss.neg_(), (x, y)

    @staticmethod
    def backward(state, grad, needs):
        x, y = state
        den = torch.rsub(x, 1.0).mul_(x).clamp_min_(_EPSILON)  # max((1 - x) x, 1e-12)
        return torch.div(torch.sub(x, y).mul_(grad), den, out=den), None


class _BCESum(_BCE):
    """The sum of :class:`_BCE`'s loss in one buffer: the sums of ``y max(log x, -100)``
    and of ``(1 - y) max(log1p(-x), -100)``, terms of one sign, so as exact as the sum of
    the loss."""

    @staticmethod
    def forward(x, y):
        buf = torch.log(x).clamp_min_(-100.0).mul_(y)
        total = buf.sum()
        torch.neg(x, out=buf).log1p_().clamp_min_(-100.0)
        total += buf.addcmul_(buf, y, value=-1.0).sum()
        return total.neg_(), (x, y)


def binary_cross_entropy_with_logits(
    input,
    target,
    *,
    weight=None,
    pos_weight=None,
    label_smoothing=0.0,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
    backend="auto",
):
    r"""Binary cross entropy on logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    .. math::
        \ell_i = -w_i \left[ p_c\, y_i \log\sigma(x_i) + (1 - y_i) \log\sigma(-x_i) \right],
        \qquad y_i \leftarrow y_i (1 - \epsilon) + \epsilon / 2

    where ``p_c`` is ``pos_weight`` and ``epsilon`` is ``label_smoothing``. Elements whose
    target equals ``ignore_index`` are not counted. ``"mean"`` is
    ``sum(w l) / sum(w)`` over counted elements; ``pos_weight`` scales the positive term
    only and is not part of the denominator (torch semantics). All ignored: 0.0.

    Args:
        input: logits, any shape.
        target: same shape, values in [0, 1] (checked), or ``ignore_index``.
        weight: per-element weight broadcastable to ``input``. Default: ``None``.
        pos_weight: weight of the positive term, broadcastable to ``input`` (usually
            ``(C,)``). Default: ``None``.
        label_smoothing: ``epsilon`` in [0, 1]. Default: ``0.0``.
        ignore_index: a target value to skip (e.g. ``-1``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide by this instead of ``sum(w)``.
        backend: ``"auto"`` (the fused Triton kernel on CUDA when Triton imports, else
            torch), ``"torch"`` or ``"triton"``. Default: ``"auto"``.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.binary_cross_entropy_with_logits(torch.tensor([[-1., 1.], [1., 2.]]),
        ...                                     torch.tensor([[1., 0.], [0., 1.]]))
        tensor(1.0167)
    """
    return bce_with_logits(
        "binary_cross_entropy_with_logits",
        input,
        target,
        weight=weight,
        pos_weight=pos_weight,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
        backend=backend,
    )


def sigmoid_focal_loss(
    input,
    target,
    *,
    alpha=0.25,
    gamma=2.0,
    weight=None,
    pos_weight=None,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
    backend="auto",
):
    r"""Sigmoid focal loss (Lin et al. 2017), the RetinaNet classification loss, on logits.

    .. math::
        \ell_i = -w_i\, \alpha_t\, (1 - p_t)^\gamma \log p_t, \qquad
        p_t = p\,y + (1 - p)(1 - y), \quad \alpha_t = \alpha y + (1 - \alpha)(1 - y),
        \quad p = \sigma(x)

    ``log p_t`` is the binary cross entropy with logits (so ``pos_weight`` scales its
    positive term), and the modulating factor is computed in log space,
    ``(1 - p_t)^\gamma = \exp(\gamma \log(1 - p_t))`` with
    ``\log(1 - p_t) = \log\sigma(-x)`` for ``y = 1``, ``\log\sigma(x)`` for ``y = 0``
    and ``\operatorname{logaddexp}(\log y + \log\sigma(-x), \log(1 - y) + \log\sigma(x))``
    for soft targets (never ``\log 0``), so logits of +-1e4 and every ``gamma >= 0`` (0 and
    0 < gamma < 1 included) give finite values, gradients and second derivatives. ``gamma=0`` with
    ``alpha=None`` equals :func:`binary_cross_entropy_with_logits` exactly.

    Unlike torchvision (``reduction="none"`` by default), the default is ``"mean"``.

    Args:
        input: logits, any shape.
        target: same shape, values in [0, 1] (checked), or ``ignore_index``.
        alpha: weight of the positive class in [0, 1]; ``None`` or a negative value (as in
            torchvision) disables it. Default: ``0.25``.
        gamma: focusing parameter, ``>= 0``. Default: ``2.0``.
        weight, pos_weight, ignore_index, reduction, normalizer, backend: as
            :func:`binary_cross_entropy_with_logits`.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([0.95, 0.05, 0.5, 0.5]).logit()
        >>> LF.sigmoid_focal_loss(logits, torch.tensor([1., 0., 1., 0.]), reduction="sum")
        tensor(0.1734)

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
        https://arxiv.org/abs/1708.02002
    """
    return sigmoid_focal(
        "sigmoid_focal_loss",
        input,
        target,
        alpha=alpha,
        gamma=gamma,
        weight=weight,
        pos_weight=pos_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
        backend=backend,
    )
