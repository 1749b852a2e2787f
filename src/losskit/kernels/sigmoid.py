"""Sigmoid family kernel: binary cross entropy with logits and sigmoid focal loss.

One pass reads the logits and targets once and writes, in float32 arithmetic, each
element's gradient (stored in the input's dtype) and either the element's loss
(``reduction="none"``) or per-block partial sums of the loss and of the mean's
denominator. The backward pass only scales the saved gradient by ``grad_output``.

Per element, with ``s = sigmoid(x)``, ``log s = min(x, 0) - log1p(exp(-|x|))`` and the
target smoothed as ``y' = y (1 - ls) + ls / 2``:

* ``ce = -(pw y' log s + (1 - y') log(1 - s))`` (a term of coefficient 0 adds 0, its log
  -inf or not), ``dce/dx = (pw y' + 1 - y') s - pw y'``;
* focal: ``1 - p_t = y (1 - s) + (1 - y) s``, ``f = exp(gamma log(1 - p_t))``,
  ``loss = alpha_t f ce`` and ``dloss/dx = alpha_t f (gamma ce dlog(1 - p_t)/dx + dce/dx)``.

Per element the focal loss takes two exponentials, two logarithms and one division (BCE:
one of each), all from ``e = exp(-|x|)``: see the kernel's comments.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._checks import current_loss
from .._checks import in_functorch_transform as in_transform
from ..functional._rowstats import Function, check_first_order, vmap_by_loop

_BLOCK = 1024
SECOND_ORDER_HINT = (
    "for second derivatives (e.g. a gradient penalty), use backend='torch', which is "
    "twice differentiable."
)


@triton.jit
def _sigmoid_loss_kernel(
    x_ptr,
    y_ptr,
    w_ptr,
    pw_ptr,
    grad_ptr,
    loss_ptr,
    den_ptr,
    n,
    pw_period,
    alpha,
    gamma,
    ls,
    ignore_value,
    HAS_W: tl.constexpr,
    HAS_PW: tl.constexpr,
    HAS_IGNORE: tl.constexpr,
    FOCAL: tl.constexpr,
    HAS_ALPHA: tl.constexpr,
    REDUCE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inb = offs < n
    x = tl.load(x_ptr + offs, mask=inb, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + offs, mask=inb, other=0.0).to(tl.float32)
    counted = inb
    if HAS_IGNORE:
        counted = counted & (y != ignore_value)
        y = tl.where(counted, y, 0.0)
    ys = y * (1.0 - ls) + 0.5 * ls
    # with e = exp(-|x|) and l = log(1 + e): log s = min(x, 0) - l, log(1 - s) = log s - x,
    # and s, 1 - s are r and e r (x >= 0) or e r and r (x < 0), r = 1 / (1 + e)
    e = tl.exp(-tl.abs(x))
    log1p_e = tl.log(1.0 + e)
    log_s = tl.minimum(x, 0.0) - log1p_e
    log_1ms = -tl.maximum(x, 0.0) - log1p_e  # log s - x, with no inf - inf at x = -inf
    pos = x >= 0.0
    if FOCAL:
        # 1 - p_t = y (1 - s) + (1 - y) s = r (u e + v) with (u, v) = (y, 1 - y) where
        # x >= 0, else (1 - y, y): its log is log(u e + v) - l, and log(u e + v) = -|x|
        # exactly when v = 0 (no log 0 when e underflows); v is y or 1 - y itself (never
        # 1 - u: no cancellation for y near 0); one division gives r and e / (u e + v)
        u = tl.where(pos, y, 1.0 - y)
        v = tl.where(pos, 1.0 - y, y)
        one = v == 0.0
        big = tl.where(one, 1.0, u * e + v)  # >= v > 0 where v != 0
        inv = 1.0 / ((1.0 + e) * big)
        r = big * inv
        ratio = tl.where(one, 1.0, e * (1.0 + e) * inv)  # e / (u e + v)
        log_1mpt = tl.where(one, -tl.abs(x), tl.log(big)) - log1p_e
    else:
        r = 1.0 / (1.0 + e)
    s = tl.where(pos, r, e * r)
    if HAS_PW:
        # the class of each element: offs % pw_period, from one 64-bit remainder per program
        # (then at most one wrap when the period is at least a block, else a 32-bit one)
        local = (pid.to(tl.int64) * BLOCK) % pw_period + tl.arange(0, BLOCK)
        if pw_period >= BLOCK:
            col = local - tl.where(local >= pw_period, pw_period, 0)
        else:
            col = (local.to(tl.int32) % pw_period).to(tl.int64)
        pw = tl.load(pw_ptr + col, mask=inb, other=1.0).to(tl.float32)
    else:
        pw = 1.0
    # a term of zero coefficient adds 0, also where its log is -inf (x = -inf, y = 0;
    # x = +inf, y = 1): a saturated logit that agrees with its target has loss 0
    ce = -(tl.where(ys > 0.0, pw * ys * log_s, 0.0) + tl.where(ys < 1.0, (1.0 - ys) * log_1ms, 0.0))
    grad = (pw * ys + 1.0 - ys) * s - pw * ys
    loss = ce
    if FOCAL:
        # d log(1 - p_t) / dx = (1 - 2 y) s (1 - s) / (1 - p_t) = (1 - 2 y) r e / (u e + v)
        d_log_1mpt = (1.0 - 2.0 * y) * r * ratio
        # log(1 - p_t) floored at -FLT_MAX (-inf at an agreeing saturated logit): no
        # 0 * inf at gamma = 0, as the torch path's logits of +-finfo.max
        f = tl.exp(gamma * tl.maximum(log_1mpt, -3.4028234663852886e38))
        grad = f * (gamma * ce * d_log_1mpt + grad)
        loss = f * ce
        if HAS_ALPHA:
            alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y)
            loss = alpha_t * loss
            grad = alpha_t * grad
    if HAS_W:
        w = tl.load(w_ptr + offs, mask=inb, other=0.0).to(tl.float32)
        loss = w * loss
        grad = w * grad
        den = tl.where(counted, w, 0.0)
    else:
        den = tl.where(counted, 1.0, 0.0)
    loss = tl.where(counted, loss, 0.0)
    # an infinite logit gets a zero gradient, as on the torch path
    grad = tl.where(counted & (tl.abs(x) != float("inf")), grad, 0.0)
    tl.store(grad_ptr + offs, grad.to(grad_ptr.dtype.element_ty), mask=inb)
    if REDUCE:
        tl.store(loss_ptr + pid, tl.sum(loss, axis=0))
        tl.store(den_ptr + pid, tl.sum(den, axis=0))
    else:
        tl.store(loss_ptr + offs, loss, mask=inb)


class _SigmoidLoss(Function):
    """One launch: outputs ``(loss, den, grad)``, the loss (summed, or per element), the
    mean's denominator and the saved gradient (neither differentiable). Differentiable
    once; under ``torch.func.vmap`` each element of the batch is launched on its own."""

    @staticmethod
    def forward(x, y, w, pw, alpha, gamma, ls, ignore_index, focal, reduce_):
        x, y = x.contiguous(), y.contiguous()  # vmap_by_loop hands in slices
        w = w.contiguous() if w is not None else None
        n = x.numel()
        grad = torch.empty_like(x)
        blocks = triton.cdiv(n, _BLOCK)
        f32 = torch.float32
        loss = torch.empty(blocks if reduce_ else n, dtype=f32, device=x.device)
        den = torch.empty(blocks if reduce_ else 1, dtype=f32, device=x.device)
        if n:
            _sigmoid_loss_kernel[(blocks,)](
                x,
                y,
                w if w is not None else x,
                pw if pw is not None else x,
                grad,
                loss,
                den,
                n,
                pw.numel() if pw is not None else 1,
                float(alpha if alpha is not None else 0.0),
                float(gamma),
                float(ls),
                float(ignore_index if ignore_index is not None else 0.0),
                HAS_W=w is not None,
                HAS_PW=pw is not None,
                HAS_IGNORE=ignore_index is not None,
                FOCAL=focal,
                HAS_ALPHA=alpha is not None,
                REDUCE=reduce_,
                BLOCK=_BLOCK,
            )
        if reduce_:
            return loss.sum(), den.sum(), grad
        return loss.view(x.shape), den, grad

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(output[1], output[2])
        ctx.save_for_backward(output[2])
        ctx.loss = current_loss()

    @staticmethod
    def backward(ctx, grad_loss, _grad_den, _grad_grad):
        check_first_order(ctx.loss, SECOND_ORDER_HINT)
        (grad,) = ctx.saved_tensors
        if in_transform():  # the upstream gradient may be batched (jacrev): out of place
            return grad * grad_loss, None, None, None, None, None, None, None, None, None
        # only scales the gradient saved by the forward, in place: no extra memory (a second
        # backward through the same graph is refused by autograd's version check); the
        # float32 upstream gradient is not rounded to the gradient's dtype first, so a
        # bfloat16 gradient is rounded once, after the product
        grad.mul_(grad_loss)
        return grad, None, None, None, None, None, None, None, None, None

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_SigmoidLoss.apply, info, in_dims, *args)


def sigmoid_loss(
    x, y, *, weight, pos_weight, alpha, gamma, label_smoothing, ignore_index, focal, reduction
):
    """Run the kernel; returns ``(loss, den)``: the summed loss and the summed weight of
    the counted elements for ``"mean"``/``"sum"``, the per-element loss for ``"none"``.

    ``x`` is the logits in any float dtype; ``y``, ``weight`` (broadcast to ``x``) and
    ``pos_weight`` (along the last dimension) are expanded here as needed.
    """
    xc = x.contiguous()
    yc = (y if y.is_floating_point() else y.to(x.dtype)).expand_as(x).contiguous()
    if ignore_index is not None:
        # compared as torch compares it, in the target's dtype: 0.1 is 0.0999755859375
        # for a float16 target (the kernel compares in float32, exact for 16-bit targets)
        ignore_index = float(torch.tensor(ignore_index, dtype=yc.dtype))
    w = None if weight is None else weight.expand_as(x).contiguous()
    pw = None
    if pos_weight is not None:
        if pos_weight.dim() <= 1 and x.dim() >= 1 and pos_weight.numel() in (1, x.shape[-1]):
            pw = pos_weight.reshape(-1).contiguous()
        else:  # a general broadcast: one value per element
            pw = pos_weight.expand_as(x).contiguous()
    loss, den, _ = _SigmoidLoss.apply(
        xc, yc, w, pw, alpha, gamma, label_smoothing, ignore_index, focal, reduction != "none"
    )
    return loss, den
