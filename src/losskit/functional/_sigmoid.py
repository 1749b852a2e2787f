"""The sigmoid losses' shared implementation: validation of a target of the input's
shape, ``ignore_index``, the kernel dispatch, and the stable BCE-with-logits and focal
math. :mod:`losskit.functional.binary` and :mod:`losskit.functional.detection` call it,
each reporting errors under its own name."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as TF

from .. import _checks as C
from .. import kernels
from .._reduction import compute_dtype, finish_sum, reduce, reduce_builtin
from ._common import finite_on_cpu
from ._fused import eager, fused, fused_total
from ._math import log_add_exp, softplus_of_minus_abs

_WEIGHT_HINT = (
    "weight rescales each element's loss: give it the input's shape or one "
    "that broadcasts to it, e.g. (C,) for an (N, C) input."
)


def prepare_binary(loss, input, target, weight, reduction, normalizer, pos_weight=None):
    C.check_call(
        loss,
        input,
        target,
        reduction=reduction,
        normalizer=normalizer,
        weight=weight,
        pos_weight=pos_weight,
    )
    if target.shape != input.shape:
        hint = None
        if target.dim() == input.dim() - 1 and not target.is_floating_point():
            hint = (
                "this looks like class indices; use cross_entropy, or one-hot encode the "
                "target with torch.nn.functional.one_hot(target, C).float()."
            )
        elif target.numel() == input.numel():
            hint = f"reshape it with target.view({tuple(input.shape)})."
        C.fail(
            loss,
            f"target must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}.",
            hint,
        )
    if weight is not None:
        C.check_broadcastable_to(loss, "weight", weight, input.shape, _WEIGHT_HINT)
    if pos_weight is not None:
        C.check_broadcastable_to(
            loss,
            "pos_weight",
            pos_weight,
            input.shape,
            "pos_weight holds one weight per class: shape (C,) for an "
            "(N, C) input, broadcast along the last dimension.",
        )


def upcast(input, target, weight=None, pos_weight=None):
    dtype = compute_dtype(input.dtype)
    w = weight.to(dtype) if weight is not None else None
    pw = pos_weight.to(dtype) if pos_weight is not None else None
    return input.to(dtype), target.to(dtype), w, pw


def _kernel_unsupported(input):
    """What the sigmoid kernel cannot do with this input (it computes in float32)."""
    return "float64 inputs" if input.dtype == torch.float64 else None


def _sigmoid_kernel(
    name,
    input,
    target,
    *,
    weight,
    pos_weight,
    alpha,
    gamma,
    label_smoothing,
    ignore_index,
    focal,
    reduction,
    normalizer,
):
    from ..kernels.sigmoid import sigmoid_loss

    total, den = sigmoid_loss(
        input,
        target,
        weight=weight,
        pos_weight=pos_weight,
        alpha=alpha,
        gamma=gamma,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        focal=focal,
        reduction=reduction,
    )
    return finish_sum(total, den, reduction, normalizer)


def _ignore_mask(loss, target, ignore_index):
    """Counted elements (``target != ignore_index``) and the target with ignored set to 0."""
    if ignore_index is None:
        return None, target
    C.check_number(loss, "ignore_index", ignore_index)
    mask = target != ignore_index
    return mask, torch.where(mask, target, torch.zeros_like(target))


def _prologue(
    name,
    input,
    target,
    *,
    weight,
    pos_weight,
    ignore_index,
    reduction,
    normalizer,
    backend,
    **kernel_options,
):
    """Validate a sigmoid-family call and run the kernel when the backend is chosen.

    Returns ``(result, None)`` from the kernel, or ``(None, (x, y, w, pw, mask))``: the
    inputs of the torch path in the compute dtype, ignored targets set to 0.
    """
    prepare_binary(name, input, target, weight, reduction, normalizer, pos_weight)
    mask, y = _ignore_mask(name, target, ignore_index)
    C.check_in_unit_interval(name, "target", y, mask)
    if kernels.select(name, backend, input, _kernel_unsupported(input)):
        result = _sigmoid_kernel(
            name,
            input,
            target,
            weight=weight,
            pos_weight=pos_weight,
            ignore_index=ignore_index,
            reduction=reduction,
            normalizer=normalizer,
            **kernel_options,
        )
        return result, None
    x, y, w, pw = upcast(input, y, weight, pos_weight)
    if mask is not None:  # ignored elements are inert: a NaN or inf there reaches nothing
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return None, (x, y, w, pw, mask)


def bce_with_logits(
    name,
    input,
    target,
    *,
    weight,
    pos_weight,
    label_smoothing,
    ignore_index,
    reduction,
    normalizer,
    backend,
):
    """Binary cross entropy with logits; errors are reported under ``name``."""
    ls = C.check_number(name, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    result, torch_path = _prologue(
        name,
        input,
        target,
        weight=weight,
        pos_weight=pos_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
        backend=backend,
        alpha=None,
        gamma=0.0,
        label_smoothing=ls,
        focal=False,
    )
    if torch_path is None:
        return result
    x, y, w, pw, mask = torch_path
    if ls:
        y = y * (1.0 - ls) + 0.5 * ls
    if pw is None and reduction != "none" and x.device.type == "cpu" and eager():
        # the closed form, for a mean or a sum (reduction="none" stays torch's, bit for
        # bit); a loss that is not finite (an infinite or NaN logit, an infinite weight)
        # is computed again on the careful path below. Reading that is no device sync on
        # CPU, and it replaces the logits' finiteness pass
        if w is None and mask is None:
            out = fused_total(
                _BCESum,
                _bce_sum_plain,
                x,
                y,
                count=x.numel(),
                reduction=reduction,
                normalizer=normalizer,
            )
            if math.isfinite(out.detach().item()):
                return out
        else:
            out = fused(_BCE, _bce_plain, x, y)
            out = reduce(out, reduction, weight=w, mask=mask, normalizer=normalizer)
            if math.isfinite(out.detach().item()):
                return out
    x, infinite = _saturated(x, y)
    out = reduce_builtin(
        lambda red: TF.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction=red),
        reduction,
        weight=w,
        mask=mask,
        normalizer=normalizer,
        numel=x.numel(),
    )
    return _infinite_where(out, infinite)


def _bce_plain(x, y):
    """Binary cross entropy with logits per element through torch's autograd: the
    definition :class:`_BCE` is checked against, and the one differentiated twice."""
    return TF.binary_cross_entropy_with_logits(x, y, reduction="none")


class _BCE:
    """``max(x, 0) - x y + log1p(exp(-|x|))`` (torch's ``(1 - y) x - log_sigmoid(x)``,
    rearranged: exact where the logit agrees with its target, no ``log 0``) and its
    derivatives ``d/dx = sigmoid(x) - y``, ``d/dy = -x``, for finite logits: one ``sigmoid``
    and one ``log1p`` forward, against torch's composite of about ten kernels, and the
    gradient from one ``sigmoid`` in the backward (nothing saved beyond the inputs)."""

    @staticmethod
    def forward(x, y):
        loss = softplus_of_minus_abs(x)  # log1p(exp(-|x|))
        # max(x, 0) - x y first: exactly 0 where the logit agrees with a hard target
        loss.add_(x.clamp_min(0.0).addcmul_(x, y, value=-1.0))
        return loss, (x, y)

    @staticmethod
    def backward(state, grad, needs):
        x, y = state
        gx = torch.sigmoid(x).sub_(y).mul_(grad) if needs[0] else None
        gy = torch.mul(x, grad).neg_() if needs[1] else None
        return gx, gy


def _bce_sum_plain(x, y):
    return TF.binary_cross_entropy_with_logits(x, y, reduction="sum")


class _BCESum(_BCE):
    """The sum of :class:`_BCE`'s loss, in one buffer: ``sum log1p(exp(-|x|))`` plus
    ``sum (max(x, 0) - x y)``, two sums of terms ``>= 0`` (for ``y`` in [0, 1]), so as
    exact as the sum of the loss, with no per-element loss kept."""

    @staticmethod
    def forward(x, y):
        buf = softplus_of_minus_abs(x, negated=True)
        total = buf.sum().neg_()
        total += torch.clamp_min(x, 0.0, out=buf).addcmul_(x, y, value=-1.0).sum()
        # the buffer is kept for the gradient (no allocation in the backward); taken by
        # the first backward (a retained graph's next one allocates its own)
        return total, (x, y, [buf])

    @staticmethod
    def backward(state, grad, needs):
        x, y, spare = state
        gx = gy = None
        if needs[0]:
            out = spare.pop() if spare else None
            gx = torch.sigmoid(x, out=out).sub_(y).mul_(grad)
        if needs[1]:
            gy = torch.mul(x, grad).neg_()
        return gx, gy


def _saturated(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Infinite logits made safe for torch's ``(1 - y) x - log sigmoid(x)``, which is NaN
    at ``x = +-inf`` (``0 * inf`` at ``y = 1``, ``inf - inf`` at ``x = -inf``).

    Returns ``x`` with ``+-inf`` replaced by ``+-finfo.max`` (finite logits unchanged,
    bit for bit), where a logit that agrees with its target (``x = +inf, y = 1``;
    ``x = -inf, y = 0``) gives its limit exactly: loss 0 and gradient 0; and where the
    loss is ``+inf`` instead: an infinite logit against any other target, restored by
    :func:`_infinite_where`. An infinite logit gets a zero gradient (the clamp's), as on
    the kernel path.
    """
    if finite_on_cpu(x):
        # no infinite logit (reading that is no device sync on CPU): nothing to clamp, and
        # the four passes over the logits below are skipped
        return x, None
    big = torch.finfo(x.dtype).max
    infinite = torch.isinf(x) & (y != (x > 0))
    return x.clamp(-big, big), infinite


def _infinite_where(out: torch.Tensor, infinite: torch.Tensor) -> torch.Tensor:
    """``out`` with ``+inf`` where :func:`_saturated` found an infinite loss: per element
    for ``reduction="none"``, the whole result for a mean or a sum (``None``: none)."""
    if infinite is None:
        return out
    if out.shape != infinite.shape:
        infinite = infinite.any()
    # added, not selected: the gradient of every other element passes unchanged
    return out + torch.where(infinite, float("inf"), 0.0).to(out.dtype)


def _log_one_minus_pt(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``log(1 - p_t) = log(y (1 - p) + (1 - y) p)``, ``p = sigmoid(x)``, in log space.

    Hard targets take their branch exactly (``log(1 - sigmoid(x)) = log_sigmoid(-x)``);
    only soft targets go through ``logaddexp`` of ``log y`` and ``log(1 - y)``, with ``y``
    kept inside (0, 1) there, so no ``log 0`` enters a value, a gradient or a second
    derivative.
    """
    hard_one, hard_zero = y == 1, y == 0
    soft = torch.where(hard_one | hard_zero, torch.full_like(y, 0.5), y)
    mixed = log_add_exp(torch.log(soft) + TF.logsigmoid(-x), torch.log1p(-soft) + TF.logsigmoid(x))
    return torch.where(hard_one, TF.logsigmoid(-x), torch.where(hard_zero, TF.logsigmoid(x), mixed))


def _minus_log_pt(x: torch.Tensor, y: torch.Tensor, pos_weight=None) -> torch.Tensor:
    """``-log p_t = w y softplus(-x) + (1 - y) softplus(x)`` (``w``: ``pos_weight``, 1 by
    default), exact where a logit agrees with a hard target: torch's ``(1 - y) x -
    log_sigmoid(x)`` cancels to 0 there (``x = -15, y = 0`` in float32: 3e-7). torch's
    softplus is ``x`` past its threshold, set where ``e^-x`` is below the rounding of
    ``x``: 20 in float32, 40 in float64. The focal losses' plain path, equal to their
    closed form."""
    th = 40.0 if x.dtype == torch.float64 else 20.0
    pos = TF.softplus(-x, threshold=th)
    if pos_weight is not None:
        pos = pos * pos_weight
    return y * pos + (1.0 - y) * TF.softplus(x, threshold=th)


def sigmoid_focal(
    name,
    input,
    target,
    *,
    alpha,
    gamma,
    weight,
    pos_weight,
    ignore_index,
    reduction,
    normalizer,
    backend="auto",
):
    """The sigmoid focal loss; errors are reported under ``name``."""
    gamma = C.check_number(name, "gamma", gamma, low=0.0)
    if alpha is not None:
        alpha = C.check_number(name, "alpha", alpha, high=1.0)
        if alpha < 0:
            alpha = None
    if gamma == 0.0 and alpha is None:  # the identity, bit for bit: focal is plain BCE here
        return bce_with_logits(
            name,
            input,
            target,
            weight=weight,
            pos_weight=pos_weight,
            label_smoothing=0.0,
            ignore_index=ignore_index,
            reduction=reduction,
            normalizer=normalizer,
            backend=backend,
        )
    result, torch_path = _prologue(
        name,
        input,
        target,
        weight=weight,
        pos_weight=pos_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
        backend=backend,
        alpha=alpha,
        gamma=gamma,
        label_smoothing=0.0,
        focal=True,
    )
    if torch_path is None:
        return result
    x, y, w, pw, mask = torch_path
    if (
        gamma > 0.0
        and not y.requires_grad
        and (pw is None or not pw.requires_grad)
        and x.device.type == "cpu"
        and eager()
    ):
        # the closed-form gradient
        x, infinite = _saturated(x, y)
        plain = functools.partial(_focal_plain, alpha=alpha, gamma=gamma, pos_weight=pw)
        loss = fused(_SigmoidFocal(alpha, gamma, pos_weight=pw), plain, x, y)
        out = reduce(loss, reduction, weight=w, mask=mask, normalizer=normalizer)
        return _infinite_where(out, infinite)
    x, infinite = _saturated(x, y)
    ce = _minus_log_pt(x, y, pw)  # -log p_t, pos_weight on the positive term
    loss = ce
    if gamma != 0.0:
        loss = torch.exp(gamma * _log_one_minus_pt(x, y)) * ce  # (1 - p_t)^gamma (-log p_t)
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    out = reduce(loss, reduction, weight=w, mask=mask, normalizer=normalizer)
    return _infinite_where(out, infinite)


def _focal_plain(x, y, *, alpha, gamma, pos_weight=None):
    """The sigmoid focal loss per element through autograd, finite logits (infinite ones
    clamped by :func:`_saturated`): the definition the closed form is checked against,
    and the one differentiated twice."""
    loss = torch.exp(gamma * _log_one_minus_pt(x, y))
    loss = loss * _minus_log_pt(x, y, pos_weight)
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    return loss


def _power(omp: torch.Tensor, mod: torch.Tensor, gamma: float) -> torch.Tensor:
    """``(1 - p_t)^(gamma - 1)`` from ``omp = 1 - p_t`` and ``mod = omp^gamma``. Below
    ``gamma = 1`` it is infinite at ``omp = 0``, where the bracket it multiplies (``p q``
    and ``1 - p_t`` times finite values) is 0: there ``mod / max(omp, tiny)`` is 0, the
    product's limit, instead of ``inf * 0``."""
    if gamma == 2.0:
        return omp
    if gamma >= 1.0:
        return omp.pow(gamma - 1.0)
    return mod / omp.clamp_min(torch.finfo(omp.dtype).tiny)


class _SigmoidFocal:
    """``alpha_t (1 - p_t)^gamma ce`` and its derivative, for finite logits (at
    ``+-finfo.max`` too: ``p q = 0`` there) and ``gamma > 0`` (below 1 through
    :func:`_power`), from one ``exp(-|x|)``, one ``log1p`` and one reciprocal:
    ``p = sigmoid(x)`` and ``q = sigmoid(-x)`` are each the exact one of
    ``1 / (1 + e)`` and ``e / (1 + e)`` (selected by ``lerp`` on the sign, which is
    exact at weights 0 and 1), ``ce = max(x, 0) - x y + log1p(e)``, ``1 - p_t = p + y (q
    - p)``, and

    ``d/dx = alpha_t (1 - p_t)^(gamma - 1) (gamma (1 - 2y) p q ce + (1 - p_t)(p - y))``.

    ``epsilon`` (the poly-1 focal loss's; 0: none) adds ``epsilon (1 - p_t)^(gamma + 1)``,
    not alpha weighted, whose derivative is ``epsilon (gamma + 1) (1 - p_t)^gamma (1 - 2y)
    p q``.

    ``pos_weight`` ``w`` (torch's, on the positive term of ``ce``: ``(1 - y) x + (1 + (w -
    1) y) softplus(-x)``) adds ``(w - 1) y softplus(-x)`` to ``ce`` and ``-(w - 1) y q`` to
    its derivative ``p - y``."""

    def __init__(self, alpha, gamma, epsilon=0.0, pos_weight=None):
        self.alpha, self.gamma, self.epsilon = alpha, gamma, epsilon
        self.pos_weight = pos_weight
        if pos_weight is not None and epsilon:
            raise NotImplementedError("pos_weight with the poly-1 term")  # no caller

    def forward(self, x, y):
        gamma, alpha = self.gamma, self.alpha
        if self.epsilon:
            return self._forward_poly1(x, y)
        # five buffers in all (six for gamma != 2), each reused once its value is spent
        e = x.abs().neg_().exp_()  # exp(-|x|)
        big = torch.add(e, 1.0).reciprocal_()  # sigmoid(|x|)
        small = e * big  # sigmoid(-|x|)
        positive = x.sign().mul_(0.5).add_(0.5)  # 1, 0 (and 1/2 at 0, where both are 1/2)
        p = torch.lerp(small, big, positive)
        q = torch.lerp(big, small, positive, out=positive)
        ce = torch.clamp_min(x, 0.0, out=big).addcmul_(x, y, value=-1.0).add_(e.log1p_())
        extra = None  # pos_weight: (w - 1) y q, the derivative's extra term
        if self.pos_weight is not None:
            extra = torch.mul(y, self.pos_weight - 1.0)
            ce.addcmul_(extra, torch.neg(x).clamp_min_(0.0).add_(e))  # e: log1p(exp(-|x|))
            extra.mul_(q)
        omp = torch.lerp(p, q, y, out=small)  # 1 - p_t
        mod = torch.mul(omp, omp, out=e) if gamma == 2.0 else torch.pow(omp, gamma, out=e)
        power = _power(omp, mod, gamma)  # (1 - p_t)^(gamma - 1)
        # the derivative's bracket: gamma (1 - 2y) p q ce + (1 - p_t)(p - y), in q's buffer
        grad = q.mul_(p).mul_(ce).mul_(gamma)
        grad.addcmul_(grad, y, value=-2.0)  # times 1 - 2y
        d_ce = p.sub_(y) if extra is None else p.sub_(y).sub_(extra)  # d ce / dx
        grad.addcmul_(omp, d_ce).mul_(power)
        loss = mod.mul_(ce)
        if alpha is not None:
            alpha_t = torch.mul(y, 2.0 * alpha - 1.0, out=p).add_(1.0 - alpha)
            loss.mul_(alpha_t)
            grad.mul_(alpha_t)
        return loss, grad

    def _forward_poly1(self, x, y):
        gamma, alpha, eps = self.gamma, self.alpha, self.epsilon
        e = x.abs().neg_().exp_()  # exp(-|x|)
        big = torch.add(e, 1.0).reciprocal_()  # sigmoid(|x|)
        small = e * big  # sigmoid(-|x|)
        positive = x.sign().mul_(0.5).add_(0.5)
        p = torch.lerp(small, big, positive)
        q = torch.lerp(big, small, positive)
        ce = x.relu().addcmul_(x, y, value=-1.0).add_(e.log1p_())
        omp = torch.lerp(p, q, y)  # 1 - p_t
        mod = omp.square() if gamma == 2.0 else omp.pow(gamma)
        power = _power(omp, mod, gamma)  # (1 - p_t)^(gamma - 1)
        pq = big.copy_(y).mul_(-2.0).add_(1.0).mul_(p).mul_(q)  # (1 - 2y) p q
        alpha_t = None
        if alpha is not None:
            alpha_t = small.copy_(y).mul_(2.0 * alpha - 1.0).add_(1.0 - alpha)
        # d/dx = (1 - p_t)^(gamma - 1) ((1 - 2y) p q (gamma alpha_t ce + eps (gamma + 1)
        # (1 - p_t)) + alpha_t (1 - p_t) (p - y))
        inner = torch.mul(ce, gamma, out=positive)
        if alpha_t is not None:
            inner.mul_(alpha_t)
        grad = pq.mul_(inner.add_(omp, alpha=eps * (gamma + 1.0)))
        focal = p.sub_(y).mul_(omp)
        if alpha_t is not None:
            focal.mul_(alpha_t)
            ce.mul_(alpha_t)
        grad.add_(focal).mul_(power)
        loss = mod.mul_(ce.add_(omp, alpha=eps))  # (1 - p_t)^gamma (alpha_t ce + eps (1 - p_t))
        return loss, grad

    def backward(self, dx, grad, needs):
        return grad * dx, None


# --------------------------------------------------------------------------- for other families
def prepare_sigmoid(name, input, target, *, weight, ignore_index, reduction, normalizer):
    """Validate a call of a sigmoid-family loss without a kernel (the asymmetric and
    poly-1 focal losses) under ``name``; returns the torch path's ``(x, y, w, mask,
    saturated)``: the compute dtype, ignored targets set to 0 and their logits to 0
    (inert), infinite logits clamped to ``+-finfo.max`` (finite arithmetic, a zero
    gradient there) and marked in ``saturated`` (``None`` where no logit is infinite), for
    the loss to restore an infinite limit with :func:`infinite_where`."""
    _, (x, y, w, _, mask) = _prologue(
        name,
        input,
        target,
        weight=weight,
        pos_weight=None,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
        backend="torch",
    )
    if finite_on_cpu(x):
        return x, y, w, mask, None  # no infinite logit (no device sync on CPU): no clamp
    big = torch.finfo(x.dtype).max
    return x.clamp(-big, big), y, w, mask, torch.isinf(x)


log_one_minus_pt = _log_one_minus_pt
minus_log_pt = _minus_log_pt
sigmoid_focal_rule = _SigmoidFocal  # with epsilon: the poly-1 focal loss's closed form
infinite_where = _infinite_where
