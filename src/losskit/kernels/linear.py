"""Linear cross entropy kernel: the matmul, the log-sum-exp and the gradient fused, so the
``(N, V)`` logits never exist in memory (in the spirit of Cut Cross-Entropy, Wijmans et
al. 2024, without its gradient filtering).

Two launches, each over a grid of ``(BLOCK_M rows) x (BLOCK_V classes)`` tiles:

* forward: each program computes its tile of logits ``a = x W^T + b`` in float32 (a loop
  over the features in ``BLOCK_D`` steps, ``tl.dot``), applies the softcap, and writes
  the tile's row maximum ``m``, ``sum_c exp(z_c - m)``, and (for label smoothing)
  ``sum_c w_c (z_c - m)``, plus the target's logit from the one tile that holds it. The
  per-tile partials (``V / BLOCK_V`` floats per row) are merged in torch into the row's
  log-sum-exp and loss; nothing of size ``N x V`` is stored.
* backward: each program recomputes its tile, forms the gradient of the logits in
  float32 (``G = scale p - T - S``, see :mod:`losskit.functional._rowstats`; times
  ``1 - tanh^2`` under a softcap), and adds ``G W`` into the input's gradient and
  ``G^T x`` into the weight's gradient, ``BLOCK_D`` features at a time, with float32
  atomic adds, relaxed (no ordering is needed: nothing reads an accumulator before the
  launch ends; the sums are float32, as the torch path's are, and the order of the
  additions, hence the last bits, may vary between runs on a GPU).

Extra memory: the float32 gradient accumulators (``4 N D`` and ``4 V D`` bytes; the
gradients are cast to the parameters' dtype at the end) and ``O(N V / BLOCK_V)`` floats
of partials. Offsets are 64-bit.

:func:`linear_cross_entropy` is the autograd Function around the two launches (the
torch code that merges the partials into each row's statistics, and the loss and the
gradient's coefficients from them, is :mod:`losskit.functional._rowstats`, shared with
the torch path). It is differentiable once; under ``torch.func.vmap`` each element of
the batch is launched on its own.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import _checks as C
from ..functional._rowstats import (
    Function,
    RowCrossEntropy,
    RowStats,
    check_first_order,
    target_weight,
    vmap_by_loop,
)
from . import interpreter_on

LOSS = "linear_cross_entropy"
SECOND_ORDER_HINT = (
    "for second derivatives (e.g. a gradient penalty), hold the logits and use "
    "losskit.functional.cross_entropy(input @ linear_weight.T + linear_bias, target, ...), "
    "which is twice differentiable."
)

# Tile sizes: tl.dot needs every dimension >= 16. Products are "ieee": float32 inputs are
# multiplied in full float32, as torch's default matmul does (no TF32). DOT_F32 (on under
# Triton's CPU interpreter, whose half-precision tl.dot is wrong in Triton 3.9) widens the
# operands to float32 first: the same products (a product of two bfloat16 values is exact
# in float32) and the same float32 sums.
BLOCK_M, BLOCK_V, BLOCK_D = 64, 128, 64


@triton.jit
def _tile_logits(
    x_ptr,
    w_ptr,
    b_ptr,
    N,
    V,
    D,
    cap,
    HAS_B: tl.constexpr,
    SOFTCAP: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """This program's float32 tile ``z`` of logits (after the softcap), ``t = tanh(a /
    cap)``, and the tile's rows and classes (64-bit) with their in-range masks."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M).to(tl.int64)
    cols = tl.program_id(1).to(tl.int64) * BLOCK_V + tl.arange(0, BLOCK_V).to(tl.int64)
    row_ok = rows < N
    col_ok = cols < V
    acc = tl.zeros((BLOCK_M, BLOCK_V), dtype=tl.float32)
    ks = tl.arange(0, BLOCK_D)
    for k0 in range(0, D, BLOCK_D):
        k = k0 + ks
        k_ok = k < D
        xt = tl.load(
            x_ptr + rows[:, None] * D + k[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0
        )
        wt = tl.load(
            w_ptr + cols[:, None] * D + k[None, :], mask=col_ok[:, None] & k_ok[None, :], other=0.0
        )
        if DOT_F32:
            xt, wt = xt.to(tl.float32), wt.to(tl.float32)
        acc = tl.dot(xt, tl.trans(wt), acc, input_precision="ieee")
    if HAS_B:
        acc += tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    t = acc
    if SOFTCAP:
        # tanh(u) = sign(u) (1 - e) / (1 + e) with e = exp(-2 |u|) in (0, 1]: no overflow
        u = acc / cap
        e = tl.exp(-2.0 * tl.abs(u))
        t = (1.0 - e) / (1.0 + e)
        t = tl.where(u < 0, -t, t)
        acc = cap * t
    return acc, t, rows, cols, row_ok, col_ok


@triton.jit
def _linear_ce_forward_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    cw_ptr,
    max_ptr,
    sum_ptr,
    smooth_ptr,
    zy_ptr,
    N,
    V,
    D,
    cap,
    HAS_B: tl.constexpr,
    HAS_W: tl.constexpr,
    SMOOTH: tl.constexpr,
    SOFTCAP: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    z, t, rows, cols, row_ok, col_ok = _tile_logits(
        x_ptr, w_ptr, b_ptr, N, V, D, cap, HAS_B, SOFTCAP, DOT_F32, BLOCK_M, BLOCK_V, BLOCK_D
    )
    z = tl.where(col_ok[None, :], z, float("-inf"))
    m = tl.max(z, 1)
    zc = tl.where(col_ok[None, :], z - m[:, None], 0.0)  # 0 past the last class, not -inf
    s = tl.sum(tl.where(col_ok[None, :], tl.exp(zc), 0.0), 1)
    pid_v = tl.program_id(1).to(tl.int64)
    out = pid_v * N + rows
    tl.store(max_ptr + out, m, mask=row_ok)
    tl.store(sum_ptr + out, s, mask=row_ok)
    if SMOOTH:
        if HAS_W:
            cw = tl.load(cw_ptr + cols, mask=col_ok, other=0.0)
            part = tl.sum(zc * cw[None, :], 1)  # cw is 0 past the last class
        else:
            part = tl.sum(zc, 1)
        tl.store(smooth_ptr + out, part, mask=row_ok)
    y = tl.load(y_ptr + rows, mask=row_ok, other=-1)
    hit = cols[None, :] == y[:, None]
    zy = tl.sum(tl.where(hit, z, 0.0), 1)
    inside = row_ok & (y >= pid_v * BLOCK_V) & (y < pid_v * BLOCK_V + BLOCK_V)
    tl.store(zy_ptr + rows, zy, mask=inside)


@triton.jit
def _linear_ce_backward_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    cw_ptr,
    lse_ptr,
    scale_ptr,
    target_ptr,
    spread_ptr,
    gx_ptr,
    gw_ptr,
    gb_ptr,
    N,
    V,
    D,
    cap,
    HAS_B: tl.constexpr,
    HAS_W: tl.constexpr,
    SMOOTH: tl.constexpr,
    SOFTCAP: tl.constexpr,
    GRAD_X: tl.constexpr,
    GRAD_W: tl.constexpr,
    GRAD_B: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    z, t, rows, cols, row_ok, col_ok = _tile_logits(
        x_ptr, w_ptr, b_ptr, N, V, D, cap, HAS_B, SOFTCAP, DOT_F32, BLOCK_M, BLOCK_V, BLOCK_D
    )
    lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
    scale = tl.load(scale_ptr + rows, mask=row_ok, other=0.0)  # g * coef, 0 when ignored
    at_target = tl.load(target_ptr + rows, mask=row_ok, other=0.0)  # g (1 - e) w_y
    y = tl.load(y_ptr + rows, mask=row_ok, other=-1)
    ok = row_ok[:, None] & col_ok[None, :]
    p = tl.exp(tl.where(ok, z - lse[:, None], float("-inf")))
    g = scale[:, None] * p - tl.where(cols[None, :] == y[:, None], at_target[:, None], 0.0)
    if SMOOTH:
        spread = tl.load(spread_ptr + rows, mask=row_ok, other=0.0)  # g e / V
        if HAS_W:
            cw = tl.load(cw_ptr + cols, mask=col_ok, other=0.0)
            g -= spread[:, None] * cw[None, :]
        else:
            g -= spread[:, None]
    if SOFTCAP:
        g = g * (1.0 - t * t)
    g = tl.where(ok, g, 0.0)
    if GRAD_B:
        tl.atomic_add(gb_ptr + cols, tl.sum(g, 0), mask=col_ok, sem="relaxed")
    gd = g.to(x_ptr.dtype.element_ty)  # the tensor cores' operand: the input's dtype
    if DOT_F32:
        gd = gd.to(tl.float32)
    ks = tl.arange(0, BLOCK_D)
    for k0 in range(0, D, BLOCK_D):
        k = k0 + ks
        k_ok = k < D
        if GRAD_X:
            wt = tl.load(
                w_ptr + cols[:, None] * D + k[None, :],
                mask=col_ok[:, None] & k_ok[None, :],
                other=0.0,
            )
            if DOT_F32:
                wt = wt.to(tl.float32)
            gx = tl.dot(gd, wt, input_precision="ieee")
            tl.atomic_add(
                gx_ptr + rows[:, None] * D + k[None, :],
                gx,
                mask=row_ok[:, None] & k_ok[None, :],
                sem="relaxed",
            )
        if GRAD_W:
            xt = tl.load(
                x_ptr + rows[:, None] * D + k[None, :],
                mask=row_ok[:, None] & k_ok[None, :],
                other=0.0,
            )
            if DOT_F32:
                xt = xt.to(tl.float32)
            gw = tl.dot(tl.trans(gd), xt, input_precision="ieee")
            tl.atomic_add(
                gw_ptr + cols[:, None] * D + k[None, :],
                gw,
                mask=col_ok[:, None] & k_ok[None, :],
                sem="relaxed",
            )


def _grid(n: int, v: int) -> tuple[int, int]:
    return (triton.cdiv(n, BLOCK_M), triton.cdiv(v, BLOCK_V))


def forward(x, w, b, y, cw, cap, smooth):
    """Per-tile partials: ``(max, sum_exp, smooth_part or None, z_y)``, float32.

    ``x`` (N, D) and ``w`` (V, D) contiguous, same dtype; ``y`` (N,) int64 with ignored
    rows set to a valid class; ``cw`` (V,) float32 or None.
    """
    n, d = x.shape
    v = w.shape[0]
    grid = _grid(n, v)
    f32 = dict(dtype=torch.float32, device=x.device)
    mx = torch.empty(grid[1], n, **f32)
    se = torch.empty(grid[1], n, **f32)
    sm = torch.empty(grid[1], n, **f32) if smooth else mx
    zy = torch.empty(n, **f32)
    _linear_ce_forward_kernel[grid](
        x, w, b if b is not None else x, y, cw if cw is not None else mx,
        mx, se, sm, zy, n, v, d, float(cap or 1.0),
        HAS_B=b is not None, HAS_W=cw is not None, SMOOTH=smooth, SOFTCAP=cap is not None,
        DOT_F32=interpreter_on(), BLOCK_M=BLOCK_M, BLOCK_V=BLOCK_V, BLOCK_D=BLOCK_D,
    )  # fmt: skip
    return mx, se, (sm if smooth else None), zy


def backward(x, w, b, y, cw, cap, lse, scale, at_target, spread, grads):
    """float32 gradients ``(grad_x, grad_w, grad_b)`` of ``sum_i g_i l_i``; ``None`` where
    ``grads`` says not needed. ``scale``, ``at_target``, ``spread``: per-row float32."""
    n, d = x.shape
    v = w.shape[0]
    f32 = dict(dtype=torch.float32, device=x.device)
    gx = torch.zeros(n, d, **f32) if grads[0] else None
    gw = torch.zeros(v, d, **f32) if grads[1] else None
    gb = torch.zeros(v, **f32) if grads[2] and b is not None else None
    if gx is None and gw is None and gb is None:
        return gx, gw, gb
    dummy = lse
    _linear_ce_backward_kernel[_grid(n, v)](
        x, w, b if b is not None else x, y, cw if cw is not None else dummy,
        lse, scale, at_target, spread if spread is not None else dummy,
        gx if gx is not None else dummy, gw if gw is not None else dummy,
        gb if gb is not None else dummy, n, v, d, float(cap or 1.0),
        HAS_B=b is not None, HAS_W=cw is not None, SMOOTH=spread is not None,
        SOFTCAP=cap is not None, GRAD_X=gx is not None, GRAD_W=gw is not None,
        GRAD_B=gb is not None,
        DOT_F32=interpreter_on(), BLOCK_M=BLOCK_M, BLOCK_V=BLOCK_V, BLOCK_D=BLOCK_D,
    )  # fmt: skip
    return gx, gw, gb


class _Backward(Function):
    """The backward launch as a Function of its own: under a torch.func transform its
    arguments reach it as plain tensors (a kernel cannot read functorch's wrappers), and
    under ``vmap`` (``jacrev``, ``vmap(grad(...))``) each element of the batch is launched
    on its own. Its outputs are not differentiable."""

    @staticmethod
    def forward(*args):
        return backward(*args)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(*(t for t in output if t is not None))

    @staticmethod
    def backward(ctx, *_):  # not reached: the outputs are marked not differentiable
        C.fail(LOSS, "the kernel's backward launch is not differentiable.", SECOND_ORDER_HINT)

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_Backward.apply, info, in_dims, *args)


class _LinearCrossEntropy(Function):
    """The fused kernel: the forward launch gives the per-tile partials, merged here into
    each row's statistics and loss; the backward launch recomputes the tiles of logits and
    accumulates the gradients. Outputs ``(loss, lse)``: the per-row loss (``scalar=False``)
    or its sum, and the non-differentiable per-row log-sum-exp kept for the backward."""

    @staticmethod
    def forward(x, w, b, y, mask, cw, ce, cap, scalar):
        ls = ce.label_smoothing
        mx, se, part, zy = forward(x, w, b, y, cw, cap, bool(ls))
        ref = mx.amax(0)  # the row's largest logit
        s_r = None
        if ls:  # sum_c w_c (z_c - ref) from each tile's sum_c w_c (z_c - m_tile)
            v, tiles = w.shape[0], mx.shape[0]
            if cw is None:
                starts = torch.arange(tiles, device=x.device) * BLOCK_V
                w_tile = (v - starts).clamp(max=BLOCK_V).to(torch.float32)
            else:
                w_tile = torch.nn.functional.pad(cw, (0, tiles * BLOCK_V - v)).view(tiles, -1)
                w_tile = w_tile.sum(1)
            s_r = (part + w_tile.unsqueeze(1) * (mx - ref)).sum(0)
        stats = RowStats.from_sum_exp(ref, (se * torch.exp(mx - ref)).sum(0), zy - ref, s_r)
        loss = ce.loss(stats, target_weight(cw, y, mask), mask)
        return (loss.sum() if scalar else loss), stats.lse

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, b, y, mask, cw, ce, cap, _ = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, w, b, y, mask, cw, output[1])
        ctx.options = (ce, cap)
        ctx.dtypes = (x.dtype, w.dtype, b.dtype if b is not None else None)

    @staticmethod
    def backward(ctx, grad_out, _grad_lse):
        check_first_order(LOSS, SECOND_ORDER_HINT)
        x, w, b, y, mask, cw, lse = ctx.saved_tensors
        ce, cap = ctx.options
        g = torch.where(mask, grad_out.to(torch.float32), 0.0)  # a scalar, or one per row
        coef = ce.coefficients(lse, target_weight(cw, y, mask), g)
        spread = coef.spread.contiguous() if coef.spread is not None else None
        grads = _Backward.apply(
            x,
            w,
            b,
            y,
            cw,
            cap,
            lse,
            coef.p.contiguous(),
            coef.target.contiguous(),
            spread,
            tuple(ctx.needs_input_grad[:3]),
        )
        grads = [None if t is None else t.to(dt) for t, dt in zip(grads, ctx.dtypes, strict=True)]
        return (*grads, None, None, None, None, None, None)

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_LinearCrossEntropy.apply, info, in_dims, *args)


def fused_linear_cross_entropy(x, w, b, y, mask, cw, ce: RowCrossEntropy, cap, scalar):
    """The per-row losses ``(N,)`` (float32), or their sum (``scalar``), of ``x (N, D)``,
    ``w (V, D)`` and ``b (V,)`` or None (one dtype), targets ``y (N,)`` int64 with ignored
    rows set to a valid class, counted where ``mask``, class weights ``cw (V,)`` float32
    (constant) or None, and the softcap ``cap`` or None. Differentiable once."""
    x, w = x.contiguous(), w.contiguous()
    b = b.contiguous() if b is not None else None
    return _LinearCrossEntropy.apply(x, w, b, y, mask, cw, ce, cap, scalar)[0]
