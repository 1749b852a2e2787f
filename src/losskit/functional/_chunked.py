"""The chunked torch sweep of ``linear_cross_entropy``: the logits one tile at a time.

The tokens are walked in chunks of rows (and the vocabulary in blocks of classes, with an
online log-sum-exp, when ``V`` is very large), so only one ``(rows, classes)`` tile of
logits exists at a time. Each chunk is reduced to its rows' statistics, and
:class:`~losskit.functional._rowstats.RowCrossEntropy` turns them into the loss and the
coefficients of the gradient (the math is written there). For ``reduction="mean"`` and
``"sum"`` the gradients are computed in the forward sweep and the backward only scales
them by the upstream gradient; for ``reduction="none"`` the backward sweeps again, from
the saved per-row log-sum-exp, with each row's upstream gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _checks as C
from .._reduction import compute_dtype
from ._rowstats import (
    Coefficients,
    Function,
    RowCrossEntropy,
    RowStats,
    batched_grad,
    check_first_order,
    target_weight,
    vmap_by_loop,
)

__all__ = ["Plan", "chunked_linear_cross_entropy"]

LOSS = "linear_cross_entropy"
SECOND_ORDER_HINT = (
    "for second derivatives (e.g. a gradient penalty), hold the logits and use "
    "losskit.functional.cross_entropy(input @ linear_weight.T + linear_bias, target, ...), "
    "which is twice differentiable."
)


@dataclass(frozen=True)
class Plan:
    """The options of one call, resolved for the sweep."""

    rows: int  # token rows per chunk
    block: int  # classes per vocabulary block (== V: the vocabulary is not blocked)
    softcap: float | None
    ce: RowCrossEntropy  # classes, label smoothing, z-loss, sum of the class weights


class _Weights:
    """The linear layer and the class weights in the compute dtype, block by block."""

    def __init__(self, w, b, cw, dtype, plan):
        self.v = w.shape[0]
        self.blocks = [(v0, min(v0 + plan.block, self.v)) for v0 in range(0, self.v, plan.block)]
        self.single = len(self.blocks) == 1
        self.dtype = dtype
        # one block: cast once (a no-op unless the weights are half); else block by block
        self.w = w.to(dtype) if self.single else w
        self.b = b.to(dtype) if b is not None and self.single else b
        self.cw = cw  # (V,) already in the compute dtype

    def block(self, v0, v1):
        if self.single:
            return self.w, self.b, self.cw
        b = self.b[v0:v1].to(self.dtype) if self.b is not None else None
        cw = self.cw[v0:v1] if self.cw is not None else None
        return self.w[v0:v1].to(self.dtype), b, cw


@dataclass
class _Chunk:
    """One chunk of token rows, in the compute dtype."""

    x: torch.Tensor  # (c, D)
    y: torch.Tensor  # (c,) targets, ignored rows set to class 0
    counted: torch.Tensor  # (c,) bool: False where ignored
    w_y: torch.Tensor | None  # (c,) class weight of the target, 0 where ignored
    g: torch.Tensor  # (c,) upstream gradient, 0 where ignored


def _logits(x, w, b, softcap):
    """One tile of logits (and ``tanh(a / softcap)``, kept for the gradient)."""
    z = x @ w.T if b is None else torch.addmm(b, x, w.T)
    if softcap is None:
        return z, None
    t = z.div_(softcap).tanh_()
    return t * softcap, t


def _grad_tile(e, t, scale, coef: Coefficients, ch, v0, w, cw, acc):
    """Accumulate ``g * dl/da`` of one tile, from ``e = exp(z - ref)`` (overwritten).

    ``scale`` (per row) makes ``scale * e = coef.p * p``; ``a`` is the logit before the
    softcap. ``acc = (grad_x of the chunk, grad_w, grad_b)``, each possibly ``None``.
    The gradient tile is ``G = diag(scale) e - T - S``: ``T`` holds ``coef.target`` at
    each row's target class, ``S = coef.spread w^T`` is rank one. Without a softcap, ``T``
    and ``S`` are applied to the small products instead of the tile (``G @ W`` is
    ``scale * (e @ W) - T @ W - S @ W``), which saves two passes over the tile.
    """
    c, vb = e.shape
    col = ch.y - v0
    inside = (col >= 0) & (col < vb)
    col = col.clamp(0, vb - 1)
    at_target = torch.where(inside, coef.target, 0.0)  # T's values, per row
    spread = coef.spread
    gx, gw, gb = acc
    if t is not None:  # softcap: z = s tanh(a / s), dz/da = 1 - tanh^2, elementwise
        e.mul_(scale.unsqueeze(1))
        e.index_put_((torch.arange(c, device=e.device), col), -at_target, accumulate=True)
        if spread is not None:
            if cw is None:
                e.sub_(spread.unsqueeze(1))
            else:
                e.addr_(spread, cw, alpha=-1.0)
        e.mul_(t.square_().neg_().add_(1.0))
        if gx is not None:
            gx.addmm_(e, w)
        if gw is not None:
            gw[v0 : v0 + vb].addmm_(e.T, ch.x)
        if gb is not None:
            gb[v0 : v0 + vb] += e.sum(0)
        return
    if gx is not None:
        gx.addcmul_(e @ w, scale.unsqueeze(1))
        gx.sub_(at_target.unsqueeze(1) * w.index_select(0, col))
        if spread is not None:
            gx.addr_(spread, cw @ w if cw is not None else w.sum(0), alpha=-1.0)
    if gw is not None:
        gw_b = gw[v0 : v0 + vb]
        gw_b.addmm_(e.T, ch.x * scale.unsqueeze(1))
        gw_b.index_add_(0, col, ch.x * at_target.unsqueeze(1), alpha=-1.0)
        if spread is not None:
            spread_x = spread @ ch.x
            if cw is None:
                gw_b.sub_(spread_x)
            else:
                gw_b.addr_(cw, spread_x, alpha=-1.0)
    if gb is not None:
        gb_b = gb[v0 : v0 + vb]
        gb_b.addmv_(e.T, scale)
        gb_b.index_add_(0, col, at_target, alpha=-1.0)
        if spread is not None:
            gb_b.sub_(spread.sum() * (cw if cw is not None else 1.0))


def _stats_single(ch, plan, weights, acc, want_grad):
    """Loss and lse of a chunk when the vocabulary is one block: the tile is computed once,
    and (with ``want_grad``) turned into the gradient right away."""
    w, b, cw = weights.block(0, weights.v)
    z, t = _logits(ch.x, w, b, plan.softcap)
    m = z.amax(1)
    z.sub_(m.unsqueeze(1))  # z - m <= 0
    zy = z.gather(1, ch.y.unsqueeze(1)).squeeze(1)  # z_y - m
    s_r = None
    if plan.ce.label_smoothing:
        s_r = z @ cw if cw is not None else z.sum(1)  # sum_c w_c (z_c - m)
    e = z.exp_()
    s = e.sum(1)
    stats = RowStats.from_sum_exp(m, s, zy, s_r)
    lse = stats.lse
    loss = plan.ce.loss(stats, ch.w_y, ch.counted)
    if want_grad:  # p = e / s
        coef = plan.ce.coefficients(lse, ch.w_y, ch.g)
        _grad_tile(e, t, coef.p / s, coef, ch, 0, w, cw, acc)
    return lse, loss


def _stats_blocks(ch, plan, weights):
    """Loss and lse of a chunk, walking the vocabulary blocks with an online log-sum-exp:
    a running max ``m`` and ``s = sum_c exp(z_c - m)``, rescaled when ``m`` grows."""
    m = s = r = zy = s_r = None
    smooth = plan.ce.label_smoothing
    for v0, v1 in weights.blocks:
        w, b, cw = weights.block(v0, v1)
        z, _ = _logits(ch.x, w, b, plan.softcap)
        block_max = z.amax(1)
        if m is None:
            m_new = r = block_max  # r: the reference logit of the row's statistics
            s = torch.zeros_like(m_new)
            zy = torch.zeros_like(m_new)
            s_r = torch.zeros_like(m_new) if smooth else None
        else:
            m_new = torch.maximum(m, block_max)
            s = s * torch.exp(m - m_new)
        z.sub_(m_new.unsqueeze(1))
        col = ch.y - v0
        inside = (col >= 0) & (col < v1 - v0)
        z_col = z.gather(1, col.clamp(0, v1 - v0 - 1).unsqueeze(1)).squeeze(1)
        zy = torch.where(inside, z_col + (m_new - r), zy)  # z_y - r
        if smooth:
            part = z @ cw if cw is not None else z.sum(1)  # sum_block w_c (z_c - m_new)
            w_block = cw.sum() if cw is not None else float(v1 - v0)
            s_r = s_r + part + w_block * (m_new - r)
        s = s + z.exp_().sum(1)
        m = m_new
    stats = RowStats.from_sum_exp(r, s, zy, s_r, max_minus_ref=m - r)
    return stats.lse, plan.ce.loss(stats, ch.w_y, ch.counted)


def _grad_blocks(ch, plan, weights, lse, acc):
    """Gradient of a chunk from its known lse, recomputing the logits block by block."""
    coef = plan.ce.coefficients(lse, ch.w_y, ch.g)
    for v0, v1 in weights.blocks:
        w, b, cw = weights.block(v0, v1)
        z, t = _logits(ch.x, w, b, plan.softcap)
        e = z.sub_(lse.unsqueeze(1)).exp_()  # p = exp(z - lse)
        _grad_tile(e, t, coef.p, coef, ch, v0, w, cw, acc)


def _sweep(x, w, b, y, mask, cw, plan, *, lse=None, upstream=None, grads=(False,) * 3):
    """One pass over the token chunks.

    * ``lse is None``: the per-row loss and lse; with ``grads``, also the gradients of the
      summed loss (upstream gradient 1 for every row).
    * ``lse`` given (the backward of ``reduction="none"``): only the gradients, each row
      weighted by ``upstream``.

    Returns ``(loss, lse, grad_x, grad_w, grad_b)`` in the compute dtype (``None`` where
    not computed); the weight gradient is accumulated in float32 (float64 for float64).
    """
    n, d = x.shape
    v = w.shape[0]
    dtype = compute_dtype(x.dtype)
    dev = x.device
    gx = torch.zeros(n, d, dtype=dtype, device=dev) if grads[0] else None
    gw = torch.zeros(v, d, dtype=dtype, device=dev) if grads[1] else None
    gb = torch.zeros(v, dtype=dtype, device=dev) if grads[2] and b is not None else None
    want_grad = gx is not None or gw is not None or gb is not None
    weights = _Weights(w, b, cw, dtype, plan)
    forward = lse is None
    if forward:
        loss = torch.empty(n, dtype=dtype, device=dev)
        lse = torch.empty(n, dtype=dtype, device=dev)
    else:
        loss = None
    for i0 in range(0, n, plan.rows):
        i1 = min(i0 + plan.rows, n)
        counted = mask[i0:i1]
        y_c = torch.where(counted, y[i0:i1], 0)
        if upstream is None:
            g = counted.to(dtype)
        else:
            g = torch.where(counted, upstream[i0:i1].to(dtype), 0.0)
        ch = _Chunk(
            x=x[i0:i1].to(dtype), y=y_c, counted=counted, w_y=target_weight(cw, y_c, counted), g=g
        )
        acc = (gx[i0:i1] if gx is not None else None, gw, gb)
        if forward and weights.single:
            lse[i0:i1], loss[i0:i1] = _stats_single(ch, plan, weights, acc, want_grad)
            continue
        if forward:
            lse[i0:i1], loss[i0:i1] = _stats_blocks(ch, plan, weights)
        if want_grad:
            _grad_blocks(ch, plan, weights, lse[i0:i1], acc)
    return loss, lse, gx, gw, gb


def _cast(grads, dtypes):
    return tuple(None if t is None else t.to(dt) for t, dt in zip(grads, dtypes, strict=True))


class _SweepBackward(Function):
    """The backward sweep of ``reduction="none"`` (the gradients of ``sum_i g_i l_i``), as
    a Function of its own so that it has a vmap rule: under ``torch.func.jacrev`` or
    ``vmap(grad(...))`` the upstream gradient is batched, and each element of the batch
    is swept on its own. Its outputs are not differentiable."""

    @staticmethod
    def forward(x, w, b, y, mask, cw, lse, upstream, plan, needs):
        _, _, *grads = _sweep(x, w, b, y, mask, cw, plan, lse=lse, upstream=upstream, grads=needs)
        return tuple(grads)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(*(t for t in output if t is not None))

    @staticmethod
    def backward(ctx, *_):  # not reached: the outputs are marked not differentiable
        C.fail(LOSS, "the backward sweep is not differentiable.", SECOND_ORDER_HINT)

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_SweepBackward.apply, info, in_dims, *args)


class _LinearCrossEntropy(Function):
    """The sum of the per-row losses (``scalar=True``) with the gradients of the sum
    computed in the same sweep (for the inputs ``needs`` names), or the per-row losses
    (``scalar=False``) with their lse, the backward then sweeping again.

    Outputs: ``(sum, grad_x, grad_w, grad_b)`` or ``(loss, lse)``; all but the first are
    not differentiable. Under ``torch.func.vmap`` each element of the batch is swept on
    its own (``vmap_by_loop``); there is no double backward and no forward mode."""

    @staticmethod
    def forward(x, w, b, y, mask, cw, plan, scalar, needs):
        if scalar:  # the gradients of the sum, computed in the same sweep
            loss, _, gx, gw, gb = _sweep(x, w, b, y, mask, cw, plan, grads=needs)
            return loss.sum(), gx, gw, gb
        loss, lse, _, _, _ = _sweep(x, w, b, y, mask, cw, plan)
        return loss, lse

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, b, y, mask, cw, plan, scalar, _ = inputs
        ctx.dtypes = (x.dtype, w.dtype, b.dtype if b is not None else None)
        ctx.scalar = scalar
        ctx.plan = plan
        extra = [t for t in output[1:] if t is not None]
        ctx.mark_non_differentiable(*extra)
        if scalar:
            ctx.save_for_backward(*output[1:])
        else:
            ctx.save_for_backward(x, w, b, y, mask, cw, output[1])

    @staticmethod
    def backward(ctx, grad_out, *_):
        check_first_order(LOSS, SECOND_ORDER_HINT)
        if ctx.scalar:
            grads = [None if t is None else t * grad_out.to(t.dtype) for t in ctx.saved_tensors]
        else:
            if batched_grad(grad_out):
                C.fail(
                    LOSS,
                    "a vectorized backward (is_grads_batched=True, as jacobian or hessian "
                    "with vectorize=True) of reduction='none' is not supported: the "
                    "backward sweep takes one upstream gradient at a time.",
                    "use vectorize=False, or torch.func.jacrev (its vmap sweeps each row "
                    "of the batch on its own).",
                )
            x, w, b, y, mask, cw, lse = ctx.saved_tensors
            needs = tuple(ctx.needs_input_grad[:3])
            grads = _SweepBackward.apply(x, w, b, y, mask, cw, lse, grad_out, ctx.plan, needs)
        return (*_cast(grads, ctx.dtypes), None, None, None, None, None, None)

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_LinearCrossEntropy.apply, info, in_dims, *args)


def chunked_linear_cross_entropy(x, w, b, y, mask, cw, plan, scalar):
    """The per-row losses ``(N,)``, or their sum (``scalar``), of ``x (N, D)``, ``w (V, D)``,
    ``b (V,)`` or None, targets ``y (N,)`` int64 counted where ``mask``, class weights
    ``cw (V,)`` (compute dtype, constant) or None. Differentiable once in ``x``, ``w``, ``b``."""
    if scalar:
        track = torch.is_grad_enabled()
        needs = tuple(track and t is not None and t.requires_grad for t in (x, w, b))
        return _LinearCrossEntropy.apply(x, w, b, y, mask, cw, plan, True, needs)[0]
    return _LinearCrossEntropy.apply(x, w, b, y, mask, cw, plan, False, (False,) * 3)[0]
