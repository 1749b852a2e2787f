"""Softmax family kernel: cross entropy with class-index targets (class weight,
ignore_index, label smoothing, z-loss), softmax focal loss, and symmetric / reverse
cross entropy.

One program per row (a sample), or per block of up to 128 consecutive pixels of a K-dim
map (tiles of classes x pixels, loads coalesced along the pixels, reductions over the
classes): a first pass over the classes in blocks keeps an online maximum and sum of
exponentials (and, for the focal loss, the same over the classes other than the target);
a second pass writes the gradient of every class. The loss of the row, its gradient and
the row's weight in the mean are all made in this one launch; log-sum-exp and every sum
are float32, and each gradient is formed in float32 (the true class's ``p - 1``
included) before it is stored in the input's dtype. A K-dim input ``(N, C, d1, ...,
dk)`` is read in place with stride ``S = d1 * ... * dk`` along the classes (no permuted
copy). Offsets are 64-bit.

Gradients per row, with ``p = softmax(x)``, target ``t``, class weights ``w``:

* cross entropy: ``(1 - e) w_t (p_c - [c = t]) + e / C (W p_c - w_c) + 2 z lse p_c``
  with ``W = sum_c w_c``;
* focal, ``f = (1 - p_t)^g``, ``L = log p_t``, ``q_c = p_c / (1 - p_t)`` (``c != t``):
  ``-w_t ((1 - p_t) f - g p_t L f)`` for ``c = t`` and ``w_t f (p_c - g p_t L q_c)``
  otherwise; ``1 - p_t`` and ``q`` come from the log-sum-exp of the other classes, so
  they stay exact when ``p_t`` rounds to 1;
* focal with label smoothing, ``F(p) = -(1 - p)^g log p``, coefficients ``a_c = e w_c / C
  + (1 - e) w_t [c = t]``, ``h_c = p_c F'(p_c)``: ``a_c h_c - p_c sum_k a_k h_k``, which
  takes a third pass (the sum before the gradients); ``1 - p`` of the row's top class
  comes from the sum of the other classes, kept in the first pass;
* symmetric: ``alpha w_t (p_c - [c = t]) + beta A w_t p_t ([c = t] - p_c)``.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .._checks import current_loss
from .._checks import in_functorch_transform as in_transform
from ..functional._rowstats import Function, check_first_order, vmap_by_loop

SECOND_ORDER_HINT = (
    "for second derivatives (e.g. a gradient penalty), use backend='torch', which is "
    "twice differentiable."
)
MODE_CE, MODE_FOCAL, MODE_SYMMETRIC = 0, 1, 2


@triton.jit
def _log1p(u):
    """log(1 + u) for u >= 0, exact for small u (three terms of the series below 1e-4)."""
    return tl.where(u < 1e-4, u * (1.0 - u * (0.5 - u / 3.0)), tl.log(1.0 + u))


@triton.jit
def _focal_smooth_terms(x, c, inb, t, lse, lp1, log1m_top, r_top, top, w_t, eps, gamma, C, wc):
    """Focal loss with label smoothing, per class: ``p``, the coefficient ``q_c w_c``,
    ``F = -(1 - p)^g log p`` and ``h = p dF/dp = (1 - p)^g (g p log(p) / (1 - p) - 1)``.
    The row's top class takes ``log p``, ``log(1 - p)`` and ``log(p) / (1 - p)`` from the
    sum of the other classes (``lp1``, ``log1m_top``, ``r_top``), exact when ``p`` rounds
    to 1; every other class has ``p <= 1/2``."""
    # any finite value past the last class; a -inf logit has log p clamped to the lowest
    # float32, as the torch path does, so that 0 * log p stays 0 in the gradient
    logp = tl.where(inb, x - lse, -1.0)
    live = logp >= -3.4028234663852886e38  # the clamp passes no gradient where it bites
    logp = tl.maximum(logp, -3.4028234663852886e38)
    p = tl.exp(logp)
    is_top = c == top
    one_minus = tl.where(is_top, 1.0, 1.0 - p)
    l1 = tl.where(is_top, log1m_top, tl.log(one_minus))
    r = tl.where(is_top, r_top, logp / one_minus)
    logp = tl.where(is_top, -lp1, logp)
    f = tl.exp(gamma * l1)
    coef = eps / C * wc + tl.where(c == t, (1.0 - eps) * w_t, 0.0)
    coef = tl.where(inb, coef, 0.0)
    p = tl.where(inb, p, 0.0)
    return p, coef, -f * logp, tl.where(live, f * (gamma * p * r - 1.0), 0.0)


@triton.jit
def _softmax_loss_kernel(
    x_ptr,
    t_ptr,
    w_ptr,
    wsum_ptr,
    grad_ptr,
    loss_ptr,
    den_ptr,
    R,
    C,
    S,
    ignore_index,
    eps,
    z,
    gamma,
    alpha,
    beta,
    log_zero,
    MODE: tl.constexpr,
    HAS_W: tl.constexpr,
    SMOOTH: tl.constexpr,
    ZLOSS: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    # BLOCK_S consecutive rows (samples, or pixels of a map: then consecutive addresses),
    # the classes in blocks of BLOCK_C: tiles of (BLOCK_C, BLOCK_S), reduced over axis 0
    row = tl.program_id(0).to(tl.int64) * BLOCK_S + tl.arange(0, BLOCK_S)
    live = row < R
    n = row // S
    s = row % S
    base = n * C * S + s  # x[n, c, s] lives at base + c * S
    t = tl.load(t_ptr + row, mask=live, other=ignore_index).to(tl.int64)
    counted = (t != ignore_index) & live
    # a class out of range (value checks off) is gathered as class 0, never out of bounds,
    # and its row's loss and gradient are NaN
    bad = counted & ((t < 0) | (t >= C))
    t = tl.where(counted & ~bad, t, 0)
    x_t = tl.load(x_ptr + base + t * S, mask=live, other=0.0).to(tl.float32)
    if HAS_W:
        w_t = tl.load(w_ptr + t, mask=live, other=0.0).to(tl.float32)
    else:
        w_t = tl.full([BLOCK_S], 1.0, tl.float32)
    cols = tl.arange(0, BLOCK_C)
    t2 = t[None, :]
    live2 = live[None, :]
    base2 = base[None, :]

    # pass 1: online max and sum of exp (and over the classes other than t, for focal)
    m = tl.full([BLOCK_S], float("-inf"), tl.float32)
    acc = tl.zeros([BLOCK_S], tl.float32)
    m2 = tl.full([BLOCK_S], float("-inf"), tl.float32)
    acc2 = tl.zeros([BLOCK_S], tl.float32)
    wx = tl.zeros([BLOCK_S], tl.float32)  # sum_c w_c x_c, for label smoothing
    acc_o = tl.zeros([BLOCK_S], tl.float32)  # focal, smoothing: sum of exp(x_c - m) but the top
    top = tl.zeros([BLOCK_S], tl.int64)  # ... and the top class
    for start in range(0, C, BLOCK_C):
        c = start + cols
        c2 = c[:, None]
        inb = (c2 < C) & live2
        x = tl.load(x_ptr + base2 + c2.to(tl.int64) * S, mask=inb, other=float("-inf"))
        x = x.to(tl.float32)
        bmax = tl.max(x, axis=0)
        m_new = tl.maximum(m, bmax)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a block of masked classes
        e = tl.where(inb, tl.exp(x - m_safe[None, :]), 0.0)
        acc = acc * tl.exp(m - m_safe) + tl.sum(e, axis=0)
        if MODE == 1:
            if SMOOTH:
                bi = tl.argmax(x, axis=0)
                is_new = bmax > m
                old_top = tl.where(m == float("-inf"), 0.0, tl.exp(m - m_safe))
                block_others = tl.sum(tl.where(cols[:, None] == bi[None, :], 0.0, e), axis=0)
                acc_o = acc_o * old_top + tl.where(is_new, old_top + block_others, tl.sum(e, 0))
                top = tl.where(is_new, start + bi.to(tl.int64), top)
        m = m_new
        if MODE == 1:
            xo = tl.where(c2 == t2, float("-inf"), x)
            m2_new = tl.maximum(m2, tl.max(xo, axis=0))
            safe = tl.where(m2_new == float("-inf"), 0.0, m2_new)
            acc2 = acc2 * tl.exp(m2 - safe) + tl.sum(
                tl.where(inb & (c2 != t2), tl.exp(xo - safe[None, :]), 0.0), axis=0
            )
            m2 = m2_new
        if SMOOTH:
            if HAS_W:
                wc = tl.load(w_ptr + c, mask=c < C, other=0.0).to(tl.float32)[:, None]
            else:
                wc = 1.0
            wx += tl.sum(tl.where(inb, wc * x, 0.0), axis=0)
    lse = m + tl.log(acc)
    log_pt = x_t - lse
    p_t = tl.exp(log_pt)

    if HAS_W:
        w_sum = tl.load(wsum_ptr).to(tl.float32)
    else:
        w_sum = C * 1.0
    # the loss of the row and the coefficients of its gradient
    if MODE == 0:
        loss = (1.0 - eps) * w_t * (lse - x_t)
        if SMOOTH:
            loss += eps / C * (w_sum * lse - wx)
        if ZLOSS:
            loss += z * lse * lse
        f = tl.zeros([BLOCK_S], tl.float32)
        lse2 = tl.zeros([BLOCK_S], tl.float32)
        k = tl.zeros([BLOCK_S], tl.float32)
    elif MODE == 1:
        lse2 = m2 + tl.log(acc2)  # log(1 - p_t) + lse
        log_1mpt = lse2 - lse
        f = tl.exp(gamma * log_1mpt)
        k = gamma * p_t * log_pt * f  # g p_t L f
        loss = -w_t * f * log_pt
        if SMOOTH:  # loss = sum_c coef_c F_c; gradient coef_c h_c - p_c sum_k coef_k h_k
            lp1 = _log1p(acc_o)  # lse - m = -log p_top
            lse = m + lp1
            safe = tl.where(acc_o > 0, acc_o, 1.0)
            log1m_top = tl.where(acc_o > 0, tl.log(safe) - lp1, float("-inf"))
            r_top = tl.where(acc_o > 0, -lp1 * (1.0 + acc_o) / safe, -1.0)
            loss = tl.zeros([BLOCK_S], tl.float32)
            k = tl.zeros([BLOCK_S], tl.float32)  # sum_c coef_c h_c
            for start in range(0, C, BLOCK_C):
                c = start + cols
                c2 = c[:, None]
                inb = (c2 < C) & live2
                x = tl.load(x_ptr + base2 + c2.to(tl.int64) * S, mask=inb, other=0.0)
                if HAS_W:
                    wc = tl.load(w_ptr + c, mask=c < C, other=0.0).to(tl.float32)[:, None]
                else:
                    wc = 1.0
                _, coef, F, h = _focal_smooth_terms(
                    x.to(tl.float32), c2, inb, t2, lse[None, :], lp1[None, :],
                    log1m_top[None, :], r_top[None, :], top[None, :], w_t[None, :],
                    eps, gamma, C, wc,
                )  # fmt: skip
                loss += tl.sum(coef * F, axis=0)
                k += tl.sum(coef * h, axis=0)
    else:
        f = tl.zeros([BLOCK_S], tl.float32)
        lse2 = tl.zeros([BLOCK_S], tl.float32)
        k = tl.zeros([BLOCK_S], tl.float32)
        loss = alpha * w_t * (lse - x_t) - beta * log_zero * w_t * (1.0 - p_t)

    # pass 2: the gradient of every class, formed in float32, stored in the input dtype
    lse_2 = lse[None, :]
    w_t2 = w_t[None, :]
    keep = counted[None, :]
    nan = bad[None, :]
    for start in range(0, C, BLOCK_C):
        c = start + cols
        c2 = c[:, None]
        inb = (c2 < C) & live2
        offs = base2 + c2.to(tl.int64) * S
        x = tl.load(x_ptr + offs, mask=inb, other=0.0).to(tl.float32)
        p = tl.exp(x - lse_2)
        is_t = c2 == t2
        if MODE == 0:
            g = (1.0 - eps) * w_t2 * tl.where(is_t, p - 1.0, p)
            if SMOOTH:
                if HAS_W:
                    wc = tl.load(w_ptr + c, mask=c < C, other=0.0).to(tl.float32)[:, None]
                else:
                    wc = 1.0
                g += eps / C * (w_sum * p - wc)
            if ZLOSS:
                g += 2.0 * z * lse_2 * p
        elif MODE == 1:
            if SMOOTH:
                if HAS_W:
                    wc = tl.load(w_ptr + c, mask=c < C, other=0.0).to(tl.float32)[:, None]
                else:
                    wc = 1.0
                p, coef, _, h = _focal_smooth_terms(
                    x, c2, inb, t2, lse_2, lp1[None, :], log1m_top[None, :], r_top[None, :],
                    top[None, :], w_t2, eps, gamma, C, wc,
                )  # fmt: skip
                g = coef * h - p * k[None, :]
            else:
                q = tl.exp(x - lse2[None, :])
                g = tl.where(
                    is_t,
                    -w_t2 * (tl.exp(lse2 - lse)[None, :] * f[None, :] - k[None, :]),
                    w_t2 * (f[None, :] * p - k[None, :] * q),
                )
        else:
            g = alpha * w_t2 * tl.where(is_t, p - 1.0, p)
            g += beta * log_zero * w_t2 * p_t[None, :] * tl.where(is_t, 1.0 - p, -p)
        g = tl.where(keep, tl.where(nan, float("nan"), g), 0.0)
        tl.store(grad_ptr + offs, g.to(grad_ptr.dtype.element_ty), mask=inb)

    tl.store(loss_ptr + row, tl.where(counted, tl.where(bad, float("nan"), loss), 0.0), mask=live)
    tl.store(den_ptr + row, tl.where(counted, w_t, 0.0), mask=live)


def launch(x, target, weight, grad, *, ignore_index, mode, eps, z, gamma, alpha, beta, log_zero):
    """Run the kernel on contiguous logits ``x`` ``(N, C, *)`` and targets ``(N, *)``,
    writing the gradient of each row's loss into ``grad`` (``x`` itself is allowed: each
    element is read before its gradient is stored, and a row has one program). Returns
    ``(loss, den)`` per row, float32."""
    n, c = x.shape[0], x.shape[1]
    spatial = math.prod(x.shape[2:])  # 0 for a map with an empty spatial dimension
    rows = n * spatial  # no launch when there are none
    loss = torch.empty(rows, dtype=torch.float32, device=x.device)
    den = torch.empty(rows, dtype=torch.float32, device=x.device)
    w_sum = weight.sum(dtype=torch.float32).reshape(1) if weight is not None else None
    if rows:
        block_c = min(triton.next_power_of_2(c), 4096)
        # rows (spatial == 1): one per program; a map: up to 128 consecutive pixels per
        # program, coalesced along the pixels, in tiles of at most 4096 elements
        block_s = 1 if spatial == 1 else max(1, min(128, 4096 // block_c))
        _softmax_loss_kernel[(triton.cdiv(rows, block_s),)](
            x,
            target,
            weight if weight is not None else x,
            w_sum if w_sum is not None else x,
            grad,
            loss,
            den,
            rows,
            c,
            spatial,
            ignore_index,
            float(eps),
            float(z),
            float(gamma),
            float(alpha),
            float(beta),
            float(log_zero),
            MODE=mode,
            HAS_W=weight is not None,
            SMOOTH=eps > 0,
            ZLOSS=z > 0,
            BLOCK_C=block_c,
            BLOCK_S=block_s,
        )
    return loss, den


class _SoftmaxLoss(Function):
    """One launch: outputs ``(loss, den, grad)`` per row, the saved gradient and the
    mean's denominator not differentiable. Differentiable once; under
    ``torch.func.vmap`` each element of the batch is launched on its own."""

    @staticmethod
    def forward(x, target, weight, ignore_index, mode, eps, z, gamma, alpha, beta, log_zero):
        x, target = x.contiguous(), target.contiguous()  # vmap_by_loop hands in slices
        grad = torch.empty_like(x)
        loss, den = launch(
            x,
            target,
            weight,
            grad,
            ignore_index=ignore_index,
            mode=mode,
            eps=eps,
            z=z,
            gamma=gamma,
            alpha=alpha,
            beta=beta,
            log_zero=log_zero,
        )
        return loss, den, grad

    @staticmethod
    def setup_context(ctx, inputs, output):
        x = inputs[0]
        ctx.mark_non_differentiable(output[1], output[2])
        ctx.save_for_backward(output[2])
        ctx.shape = (x.shape[0], x.shape[1], math.prod(x.shape[2:]))
        ctx.loss = current_loss()

    @staticmethod
    def backward(ctx, grad_loss, _grad_den, _grad_grad):
        check_first_order(ctx.loss, SECOND_ORDER_HINT)
        (grad,) = ctx.saved_tensors
        n, c, spatial = ctx.shape
        scale = grad_loss.view(n, 1, spatial)
        if in_transform():  # the upstream gradient may be batched (jacrev): out of place
            return (grad.view(n, c, spatial) * scale).view(grad.shape), *(None,) * 10
        # only scales the gradient saved by the forward, in place: no extra memory (a second
        # backward through the same graph is refused by autograd's version check); the
        # float32 upstream gradient is not rounded to the gradient's dtype first
        grad.view(n, c, spatial).mul_(scale)
        return (grad,) + (None,) * 10

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_SoftmaxLoss.apply, info, in_dims, *args)


def softmax_loss(
    x,
    target,
    *,
    weight=None,
    ignore_index=-100,
    mode=MODE_CE,
    label_smoothing=0.0,
    z_loss=0.0,
    gamma=0.0,
    alpha=1.0,
    beta=0.0,
    log_zero=-4.0,
):
    """Run the kernel on logits ``(N, C, *)`` (or ``(C,)``) and class indices ``(N, *)``.

    Returns ``(loss, den)`` per row, of the target's shape: the row's loss with its class
    weight applied (0 where ignored) and its weight in the mean (``w[t]``, 0 where
    ignored).
    """
    unbatched = x.dim() == 1
    if unbatched:
        x, target = x.unsqueeze(0), target.reshape(1)
    xc = x.contiguous()
    tc = target.contiguous()
    w = weight.contiguous() if weight is not None else None
    loss, den, _ = _SoftmaxLoss.apply(
        xc, tc, w, int(ignore_index), mode, label_smoothing, z_loss, gamma, alpha, beta, log_zero
    )
    shape = () if unbatched else target.shape
    return loss.view(shape), den.view(shape)
