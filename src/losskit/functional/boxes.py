"""Box regression losses: IoU, generalized IoU, distance IoU and complete IoU."""

from __future__ import annotations

import functools
import math

import torch

from .. import _checks as C
from .._reduction import reduce
from ._fused import eager, fused

__all__ = [
    "box_iou_loss",
    "generalized_box_iou_loss",
    "distance_box_iou_loss",
    "complete_box_iou_loss",
]

_FORMATS = ("xyxy", "cxcywh", "xywh")


def _to_xyxy(b: torch.Tensor, fmt: str) -> torch.Tensor:
    if fmt == "xyxy":
        return b
    a, c, w, h = b.unbind(-1)
    if fmt == "cxcywh":
        return torch.stack((a - w / 2, c - h / 2, a + w / 2, c + h / 2), -1)
    return torch.stack((a, c, a + w, c + h), -1)


def _prologue(name, input, target, box_format, eps, weight, reduction, normalizer):
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    if box_format not in _FORMATS:
        C.fail(name, f"box_format must be one of {_FORMATS}, got {box_format!r}")
    C.check_number(name, "eps", eps, low=0.0)
    if input.shape[-1:] != (4,) or input.shape != target.shape:
        C.fail(
            name,
            f"input and target must have the same shape (..., 4), got "
            f"{tuple(input.shape)} and {tuple(target.shape)}",
        )
    if weight is not None:
        C.check_broadcastable_to(
            name,
            "weight",
            weight,
            input.shape[:-1],
            f"weight is per box: give it the shape {tuple(input.shape[:-1])}, or one that "
            "broadcasts to it.",
        )
    dtype = torch.promote_types(input.dtype, torch.float32)
    x = _to_xyxy(input.to(dtype), box_format)
    y = _to_xyxy(target.to(dtype), box_format)
    return x, y


def _check_boxes(name, x, y):
    """Value check: every box finite with x2 >= x1 and y2 >= y1 (reads the data)."""
    for what, b in (("input", x), ("target", y)):
        bad = ~torch.isfinite(b).all(-1) | (b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])
        n = int(bad.sum())
        if n:
            idx = tuple(int(i) for i in bad.nonzero()[0])
            C.fail(
                name,
                f"{n} {what} box(es) are invalid (non-finite, x2 < x1 or y2 < y1), "
                f"e.g. at {idx}: {b[idx].tolist()} (as xyxy)",
            )


def _parts(x, y, eps):
    x1, y1, x2, y2 = x.unbind(-1)
    a1, b1, a2, b2 = y.unbind(-1)
    area_x = (x2 - x1) * (y2 - y1)
    area_y = (a2 - a1) * (b2 - b1)
    iw = (torch.minimum(x2, a2) - torch.maximum(x1, a1)).clamp(min=0)
    ih = (torch.minimum(y2, b2) - torch.maximum(y1, b1)).clamp(min=0)
    inter = iw * ih
    union = area_x + area_y - inter
    iou = inter / (union + eps)
    # a zero-area box against itself: IoU 1 (losskit's choice; see the README)
    same = (x == y).all(-1) & (union == 0)
    iou = torch.where(same, torch.ones_like(iou), iou)
    cw = torch.maximum(x2, a2) - torch.minimum(x1, a1)
    ch = torch.maximum(y2, b2) - torch.minimum(y1, b1)
    return iou, union, cw, ch


def _iou_plain(x, y, eps):
    return 1 - _parts(x, y, eps)[0]


def _giou_plain(x, y, eps):
    iou, union, cw, ch = _parts(x, y, eps)
    area_c = cw * ch
    return 1 - iou + (area_c - union) / (area_c + eps)


def _diou_plain(x, y, eps):
    return _diou(x, y, eps)[0]


def _ciou_plain(x, y, eps):
    diou, iou = _diou(x, y, eps)
    v = (4 / math.pi**2) * (_angle(y) - _angle(x)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou + alpha * v


_PLAIN = {"iou": _iou_plain, "giou": _giou_plain, "diou": _diou_plain, "ciou": _ciou_plain}


_BOX_BLOCK = 1 << 15  # boxes per block of the closed form


class _BoxRule:
    """The box losses of predicted boxes ``x (M, 4)`` (xyxy) against fixed targets ``y``
    and their derivative in ``x``, without autograd's tape of ~20 column ops. Pairs of
    coordinates are handled together: ``lo = (x1, y1)``, ``hi = (x2, y2)``, ``wh = hi -
    lo``; the intersection's sides ``iwh = clamp(min(hi, hi_t) - max(lo, lo_t), 0)``, the
    enclosing box's ``cwh = max(hi, hi_t) - min(lo, lo_t)``.

    With ``r = 1 / (U + eps)`` and ``iou = I r``: ``d iou / dI = r (1 + iou)`` and
    ``d iou / dA = -iou r`` (``A`` the predicted box's area). GIoU's ``(C - U) / (C +
    eps)`` adds ``1 / (C + eps)`` against ``I`` and ``A`` and ``(U + eps) / (C + eps)^2``
    on ``C``; DIoU's ``rho^2 / diag^2`` adds ``c / diag^2`` per centre offset ``c`` (half
    to each corner's coordinate) and ``-2 rho^2 cwh / diag^4`` on the enclosing sides;
    CIoU's ``alpha v`` (alpha constant) adds ``alpha (8 / pi^2) (theta - theta_t)
    (h, -w) / (w^2 + h^2)`` on ``wh``. The ties are autograd's: ``minimum``/``maximum``
    split the gradient in halves (``(1 +- sign(x - y)) / 2``), ``clamp(min=0)`` passes it
    at 0; a zero-area box against itself (IoU 1 by choice) gets no IoU gradient.

    Computed by blocks of ``_BOX_BLOCK`` boxes, each block's coordinates copied once into
    rows ``(4, B)`` (ops on columns of ``(M, 4)`` or on its pairs ``(M, 2)`` run 5-10x
    slower on CPU), so the temporaries stay a few blocks' size; the gradient is kept as
    rows ``(4, M)`` and written back as boxes in the backward's one multiply."""

    def __init__(self, kind, name, y, eps, check, need_grad, shape):
        self.kind, self.name, self.y, self.eps = kind, name, y, eps
        self.check, self.need_grad, self.shape = check, need_grad, shape

    def _check(self, x, wh, wh_t):
        """Every box finite with w, h >= 0 iff every w and h is finite and >= 0 (an
        infinite coordinate makes a side infinite or NaN): two aminmax passes over the
        sides, the careful check only when they fail (or a side overflowed)."""
        lo, hi = torch.aminmax(wh)
        lo_t, hi_t = torch.aminmax(wh_t)
        if not bool((torch.minimum(lo, lo_t) >= 0) & (torch.maximum(hi, hi_t) < math.inf)):
            _check_boxes(self.name, x.reshape(self.shape), self.y.reshape(self.shape))

    def forward(self, x):
        m = x.shape[0]
        loss = torch.empty(m, dtype=x.dtype, device=x.device)
        # the gradient as rows (4, M), x1, y1, x2, y2 (backward writes it back as boxes)
        grad = torch.empty((4, m), dtype=x.dtype, device=x.device) if self.need_grad else None
        # by blocks of boxes: the temporaries stay small (and in cache)
        for i in range(0, m, _BOX_BLOCK):
            j = i + _BOX_BLOCK
            self._block(x, x[i:j], self.y[i:j], loss[i:j], None if grad is None else grad[:, i:j])
        return loss, grad

    def _block(self, x_all, x, y, loss_out, grad_out):
        eps, kind, need = self.eps, self.kind, self.need_grad
        # coordinates as rows (4, B): x1, y1, x2, y2; the pairs lo = (x1, y1) and hi = (x2,
        # y2) are then (2, B) blocks, and each op one contiguous pass
        xt, yt = torch.stack(x.unbind(1)), torch.stack(y.unbind(1))
        lo, hi, lo_t, hi_t = xt[:2], xt[2:], yt[:2], yt[2:]
        wh = hi - lo
        wh_t = hi_t - lo_t
        if self.check:
            self._check(x_all, wh, wh_t)
        union = torch.mul(wh[0], wh[1])  # the predicted area, then the union
        union.addcmul_(wh_t[0], wh_t[1])
        theta_t = torch.atan2(wh_t[0], wh_t[1]) if kind == "ciou" else None
        del wh_t
        iwh = torch.minimum(hi, hi_t).sub_(torch.maximum(lo, lo_t))
        overlap = iwh >= 0 if need else None  # clamp(min=0) passes the gradient at 0
        iwh.clamp_(min=0.0)
        inter = torch.mul(iwh[0], iwh[1])
        union.sub_(inter)
        r = torch.add(union, eps).reciprocal_()  # 1 / (U + eps)
        iou = inter.mul_(r)
        del inter
        # a zero-area box against itself: IoU 1, no gradient (looked for only on CPU, where
        # the read waits for no device)
        if x.device.type != "cpu" or bool((union == 0).any()):
            same = (union == 0) & (xt == yt).all(0)
            iou.masked_fill_(same, 1.0)
            r.masked_fill_(same, 0.0)
        loss = torch.rsub(iou, 1.0)
        cwh = centre = rd = rc = kc = None
        if kind != "iou":
            cwh = torch.maximum(hi, hi_t).sub_(torch.minimum(lo, lo_t))
        if kind == "giou":
            rc = torch.mul(cwh[0], cwh[1]).add_(eps).reciprocal_()  # 1 / (C + eps)
            # (C - U) / (C + eps) = 1 - (U + eps) / (C + eps)
            kc = union.add_(eps).mul_(rc)
            loss.add_(1.0).sub_(kc)
            kc.mul_(rc)  # (U + eps) / (C + eps)^2, the derivative in C
        elif kind != "iou":
            centre = torch.add(lo, hi).sub_(lo_t).sub_(hi_t).mul_(0.5)  # the centres' offsets
            rd = torch.mul(cwh[0], cwh[0]).addcmul_(cwh[1], cwh[1]).add_(eps).reciprocal_()
            rho2 = torch.mul(centre[0], centre[0]).addcmul_(centre[1], centre[1])
            loss.addcmul_(rho2, rd)  # + rho^2 / diag^2
        del union
        k_angle = None
        if kind == "ciou":
            dth = torch.atan2(wh[0], wh[1]).sub_(theta_t)  # atan2(0, 0) = 0
            del theta_t
            v = dth.square().mul_(4 / math.pi**2)
            alpha = torch.rsub(iou, 1.0 + eps).add_(v).reciprocal_().mul_(v)
            loss.addcmul_(alpha, v)
            del v
            if need:  # alpha dv/dtheta / (w^2 + h^2)
                k_angle = alpha.mul_(dth).mul_(8 / math.pi**2)
                norm2 = torch.mul(wh[0], wh[0]).addcmul_(wh[1], wh[1])
                k_angle.div_(norm2.clamp_min_(torch.finfo(x.dtype).tiny))
                del norm2
            del alpha, dth
        loss_out.copy_(loss)
        if not need:
            return
        # the loss's derivatives in I (times -1/2) and in the predicted area A
        kq = torch.add(iou, 1.0).mul_(r)
        ka = r.mul_(iou)
        del iou, r
        if rc is not None:
            kq.sub_(rc)
            ka.sub_(rc)
            del rc
        kq.mul_(0.5)
        # half of -dL/dI times dI/d(side): the other side of the intersection, if open
        dn = iwh.flip(0).mul_(kq).mul_(overlap)
        del iwh, overlap, kq
        # dL/dA times dA/d(side), the other side (CIoU: and its angle's derivative)
        k = wh.flip(0)
        if k_angle is None:
            k.mul_(ka)
        else:
            k[0].mul_(ka + k_angle)
            k[1].mul_(ka.sub_(k_angle))
        del wh, ka, k_angle
        # half of dL/d(enclosing side) times its derivative in the other one (GIoU), or in
        # itself (DIoU: -2 rho^2 cwh / diag^4)
        if kc is not None:
            half_e = cwh.flip(0).mul_(kc.mul_(0.5))
        elif rd is not None:
            half_e = cwh.mul_(rho2.mul_(rd).mul_(rd).neg_())
        else:
            half_e = None
        del cwh, kc
        # each corner: s = sign(x - y) picks the minimum's/maximum's side ((1 +- s) / 2):
        # hi: P + s D + K (+ c / diag^2), lo: -(P + K) + s D (+ c / diag^2), with
        # D = half_e + dn and P = half_e - dn
        grad = torch.sub(xt, yt, out=grad_out).sign_().unflatten(0, (2, 2))
        if half_e is None:
            pk = k.sub_(dn)
        else:
            pk = k.add_(half_e).sub_(dn)
            dn.add_(half_e)
        del half_e
        grad.mul_(dn)
        grad[1].add_(pk)
        grad[0].sub_(pk)
        if centre is not None:
            grad.add_(centre.mul_(rd))

    def backward(self, state, grad, needs):
        # the rows (4, M) back to boxes (M, 4), scaled by the upstream gradient in one pass
        out = torch.empty((state.shape[1], 4), dtype=state.dtype, device=state.device)
        torch.mul(state, grad, out=out.t())
        return (out,)


def _box_loss(kind, name, input, target, box_format, eps, weight, reduction, normalizer):
    x, y = _prologue(name, input, target, box_format, eps, weight, reduction, normalizer)
    if eager() and not y.requires_grad and x.numel() and not x.is_meta:
        flat_y = y.reshape(-1, 4)
        need = x.requires_grad and torch.is_grad_enabled()
        rule = _BoxRule(kind, name, flat_y, eps, C.checks_enabled(), need, x.shape)
        plain = functools.partial(_flat_plain, _PLAIN[kind], flat_y, eps)
        loss = fused(rule, plain, x.reshape(-1, 4)).reshape(x.shape[:-1])
    else:
        if C.checks_enabled():
            _check_boxes(name, x, y)
        loss = _PLAIN[kind](x, y, eps)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _flat_plain(plain, y, eps, x):
    return plain(x, y, eps)


def box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""IoU loss of box pairs, box i against box i.

    .. math::
        \ell = 1 - \frac{I}{U + \epsilon}

    Args:
        input: predicted boxes ``(..., 4)``.
        target: target boxes ``(..., 4)``.
        box_format: ``"xyxy"`` (default), ``"cxcywh"`` or ``"xywh"``.
        eps: added to the union (default ``1e-7``).
        weight: per-box weight broadcastable to ``(...)``.
        reduction: ``"none"``, ``"mean"`` (default) or ``"sum"``.
        normalizer: with ``"mean"``, divide by this instead.

    Shape:
        input, target ``(..., 4)``; ``reduction="none"`` gives ``(...)``.

    Returns:
        The loss tensor.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> b = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
        >>> round(box_iou_loss(a, b).item(), 4)
        0.6667

    References:
        Yu et al., UnitBox: An Advanced Object Detection Network, 2016.
    """
    return _box_loss(
        "iou", "box_iou_loss", input, target, box_format, eps, weight, reduction, normalizer
    )


def generalized_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""Generalized IoU loss: the IoU loss plus the enclosing box's empty share.

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{C - U}{C + \epsilon}

    Args, Shape and Returns as :func:`box_iou_loss`; ``C`` is the area of the smallest
    box enclosing both.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
        >>> round(generalized_box_iou_loss(a, b).item(), 4)
        1.3333

    References:
        Rezatofighi et al., Generalized Intersection over Union, CVPR 2019.
    """
    return _box_loss(
        "giou", "generalized_box_iou_loss", input, target, box_format, eps, weight, reduction,
        normalizer,
    )  # fmt: skip


def _diou(x, y, eps):
    iou, _, cw, ch = _parts(x, y, eps)
    diag2 = cw**2 + ch**2 + eps
    dx = (x[..., 0] + x[..., 2] - y[..., 0] - y[..., 2]) / 2
    dy = (x[..., 1] + x[..., 3] - y[..., 1] - y[..., 3]) / 2
    return 1 - iou + (dx**2 + dy**2) / diag2, iou


def distance_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""Distance IoU loss: the IoU loss plus the squared centre distance over the
    enclosing box's squared diagonal.

    .. math::
        \ell = 1 - \mathrm{IoU} + \frac{\rho^2}{c^2 + \epsilon}

    Args, Shape and Returns as :func:`box_iou_loss`.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
        >>> round(distance_box_iou_loss(a, b).item(), 4)
        1.4

    References:
        Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    return _box_loss(
        "diou", "distance_box_iou_loss", input, target, box_format, eps, weight, reduction,
        normalizer,
    )  # fmt: skip


def _angle(b):
    w = b[..., 2] - b[..., 0]
    h = b[..., 3] - b[..., 1]
    zero = (w == 0) & (h == 0)
    # atan2(w, h) = atan(w / h) for h > 0; finite gradient when w = h = 0 too
    return torch.where(zero, torch.zeros_like(w), torch.atan2(w, torch.where(zero, 1.0, h)))


def complete_box_iou_loss(
    input, target, *, box_format="xyxy", eps=1e-7, weight=None, reduction="mean", normalizer=None
):
    r"""Complete IoU loss: the distance IoU loss plus an aspect-ratio term.

    .. math::
        v = \frac{4}{\pi^2}\left(\operatorname{atan2}(w_t, h_t)
            - \operatorname{atan2}(w_p, h_p)\right)^2,\quad
        \alpha = \frac{v}{1 - \mathrm{IoU} + v + \epsilon}\ (\text{no gradient}),\quad
        \ell = \ell_{DIoU} + \alpha v

    Args, Shape and Returns as :func:`box_iou_loss`.

    Example:
        >>> import torch
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 2.0]])
        >>> b = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> round(complete_box_iou_loss(a, b).item(), 4)
        0.5345

    References:
        Zheng et al., Distance-IoU Loss, AAAI 2020.
    """
    return _box_loss(
        "ciou", "complete_box_iou_loss", input, target, box_format, eps, weight, reduction,
        normalizer,
    )  # fmt: skip
