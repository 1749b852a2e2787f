"""Linear cross entropy: the cross entropy of a linear layer's output, without its logits.

A language model's last layer maps hidden states ``(N, D)`` to logits ``(N, V)`` over a
vocabulary of ``V`` classes, and the logits (with their softmax and gradient) dominate the
memory of training: 8192 tokens x 128256 classes is 4 GB in float32. Here the loss walks
the tokens in chunks of rows (and the vocabulary in blocks of classes, with an online
log-sum-exp, when ``V`` is very large), so only one ``(rows, classes)`` tile of logits
exists at a time. For ``reduction="mean"`` and ``"sum"`` the gradients are computed in the
forward sweep (as Liger-Kernel does) and the backward only scales them by the upstream
gradient; for ``reduction="none"`` the backward sweeps again, from the saved per-row
log-sum-exp, with each row's upstream gradient.

The math of one row, logits ``z`` (after the softcap), target ``y``, class weights ``w``
(``W = sum_c w_c``), smoothing ``e`` and z-loss coefficient ``k``, ``p = softmax(z)``::

    loss    = (1 - e) w_y (lse - z_y) + e / V (W lse - sum_c w_c z_c) + k lse^2
    dl/dz_c = p_c ((1 - e) w_y + e W / V + 2 k lse) - (1 - e) w_y [c = y] - e w_c / V
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _checks as C
from .. import kernels
from .._reduction import compute_dtype, reduce_sums
from ._classes import _check_index_range
from .multiclass import _check_ignore_index

__all__ = ["linear_cross_entropy"]

NAME = "linear_cross_entropy"

# The default tile of logits, in elements (rows x classes): 2**22 float32 values, 16 MiB,
# 80 rows of a 50,000-class vocabulary. Measured with benchmarks/linear.py on a shared
# 2-core CPU (4096 x 64 x 50,000, float32, forward + backward, median s): 16 rows 1.38,
# 32 rows 0.90, 64 rows 0.86, 128 rows 0.97, 256 rows 1.00 (+36 MB), 512 rows 0.96
# (+74 MB); the default 0.78-0.92; the materialised loss 1.7-1.9. The three matmuls run
# at about 130 GFLOP/s and are 80% of the time.
DEFAULT_TILE = 2**22
# Never fewer rows per chunk than this: each chunk updates the whole (V, D) weight gradient.
MIN_ROWS = 16
# When MIN_ROWS rows of the vocabulary exceed this (V > 2**20 classes), the vocabulary is
# blocked too, into blocks of DEFAULT_TILE // MIN_ROWS classes (online log-sum-exp).
MAX_TILE = 2**24


@dataclass(frozen=True)
class _Plan:
    """The options of one call, resolved for the sweep."""

    rows: int  # token rows per chunk
    block: int  # classes per vocabulary block (== V: the vocabulary is not blocked)
    num_classes: int
    label_smoothing: float
    z_loss: float
    softcap: float | None
    weight_sum: float | torch.Tensor  # W = sum_c w_c (V without class weights)


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
    mask: torch.Tensor  # (c,) 1.0 where counted, 0.0 where ignored
    w_y: torch.Tensor | None  # (c,) class weight of the target
    g: torch.Tensor  # (c,) upstream gradient times the mask
    target_coef: torch.Tensor  # (c,) (1 - ls) w_y, times the mask


def _logits(x, w, b, softcap):
    """One tile of logits (and ``tanh(a / softcap)``, kept for the gradient)."""
    z = x @ w.T if b is None else torch.addmm(b, x, w.T)
    if softcap is None:
        return z, None
    t = z.div_(softcap).tanh_()
    return t * softcap, t


def _row_loss(ch, plan, lse_minus_zy, lse_minus_r, s_r, lse):
    """Per-row loss; ``r`` is a per-row reference logit and ``s_r = sum_c w_c (z_c - r)``,
    so that ``W lse - sum_c w_c z_c = W (lse - r) - s_r`` has no cancellation."""
    ls = plan.label_smoothing
    loss = lse_minus_zy if ch.w_y is None else ch.w_y * lse_minus_zy
    if ls:
        smooth = plan.weight_sum * lse_minus_r - s_r
        loss = (1.0 - ls) * loss + (ls / plan.num_classes) * smooth
    if plan.z_loss:
        loss = loss + plan.z_loss * lse.square()
    return loss * ch.mask


def _coef(ch, plan, lse):
    """Per row ``(1 - ls) w_y + ls W / V + 2 k lse`` (times the mask): ``dl/dz = coef p - ...``."""
    coef = ch.target_coef
    if plan.label_smoothing:
        coef = coef + (plan.label_smoothing / plan.num_classes) * plan.weight_sum * ch.mask
    if plan.z_loss:
        coef = coef + (2.0 * plan.z_loss) * lse * ch.mask
    return coef


def _grad_tile(e, t, scale, ch, plan, v0, w, cw, acc):
    """Accumulate ``g * dl/da`` of one tile, from ``e = exp(z - ref)`` (overwritten).

    ``scale`` (per row) makes ``scale * e = g * coef * p``; ``a`` is the logit before the
    softcap. ``acc = (grad_x of the chunk, grad_w, grad_b)``, each possibly ``None``.
    The gradient tile is ``G = diag(scale) e - T - S``: ``T`` holds ``g (1 - ls) w_y`` at
    each row's target class, ``S = (g ls / V) w^T`` is rank one. Without a softcap, ``T``
    and ``S`` are applied to the small products instead of the tile (``G @ W`` is
    ``scale * (e @ W) - T @ W - S @ W``), which saves two passes over the tile.
    """
    c, vb = e.shape
    col = ch.y - v0
    inside = (col >= 0) & (col < vb)
    col = col.clamp(0, vb - 1)
    at_target = torch.where(inside, ch.g * ch.target_coef, 0.0)  # T's values, per row
    spread = ch.g * (plan.label_smoothing / plan.num_classes) if plan.label_smoothing else None
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
    if plan.label_smoothing:
        s_r = z @ cw if cw is not None else z.sum(1)  # sum_c w_c (z_c - m)
    e = z.exp_()
    s = e.sum(1)
    log_s = s.log()  # lse - m
    lse = m + log_s
    loss = _row_loss(ch, plan, log_s - zy, log_s, s_r, lse)
    if want_grad:  # p = e / s
        _grad_tile(e, t, ch.g * _coef(ch, plan, lse) / s, ch, plan, 0, w, cw, acc)
    return lse, loss


def _stats_blocks(ch, plan, weights):
    """Loss and lse of a chunk, walking the vocabulary blocks with an online log-sum-exp:
    a running max ``m`` and ``s = sum_c exp(z_c - m)``, rescaled when ``m`` grows."""
    m = s = r = zy = s_r = None
    for v0, v1 in weights.blocks:
        w, b, cw = weights.block(v0, v1)
        z, _ = _logits(ch.x, w, b, plan.softcap)
        block_max = z.amax(1)
        if m is None:
            m_new = r = block_max  # r: the reference logit of the smoothing sum
            s = torch.zeros_like(m_new)
            zy = torch.zeros_like(m_new)
            s_r = torch.zeros_like(m_new)
        else:
            m_new = torch.maximum(m, block_max)
            s = s * torch.exp(m - m_new)
        z.sub_(m_new.unsqueeze(1))
        col = ch.y - v0
        inside = (col >= 0) & (col < v1 - v0)
        z_col = z.gather(1, col.clamp(0, v1 - v0 - 1).unsqueeze(1)).squeeze(1)
        zy = torch.where(inside, z_col + (m_new - r), zy)  # z_y - r
        if plan.label_smoothing:
            part = z @ cw if cw is not None else z.sum(1)  # sum_block w_c (z_c - m_new)
            w_block = cw.sum() if cw is not None else float(v1 - v0)
            s_r = s_r + part + w_block * (m_new - r)
        s = s + z.exp_().sum(1)
        m = m_new
    lse_minus_r = (m - r) + s.log()
    lse = r + lse_minus_r
    return lse, _row_loss(ch, plan, lse_minus_r - zy, lse_minus_r, s_r, lse)


def _grad_blocks(ch, plan, weights, lse, acc):
    """Gradient of a chunk from its known lse, recomputing the logits block by block."""
    scale = ch.g * _coef(ch, plan, lse)
    for v0, v1 in weights.blocks:
        w, b, cw = weights.block(v0, v1)
        z, t = _logits(ch.x, w, b, plan.softcap)
        e = z.sub_(lse.unsqueeze(1)).exp_()  # p = exp(z - lse)
        _grad_tile(e, t, scale, ch, plan, v0, w, cw, acc)


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
    ls = plan.label_smoothing
    for i0 in range(0, n, plan.rows):
        i1 = min(i0 + plan.rows, n)
        counted = mask[i0:i1]
        mask_f = counted.to(dtype)
        y_c = torch.where(counted, y[i0:i1], 0)
        w_y = cw[y_c] if cw is not None else None
        g = mask_f if upstream is None else upstream[i0:i1].to(dtype) * mask_f
        ch = _Chunk(
            x=x[i0:i1].to(dtype),
            y=y_c,
            mask=mask_f,
            w_y=w_y,
            g=g,
            target_coef=(1.0 - ls) * (mask_f if w_y is None else w_y * mask_f),
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


class _LinearCrossEntropy(torch.autograd.Function):
    """Per-row loss (``scalar=False``) or its sum (``scalar=True``)."""

    @staticmethod
    def forward(ctx, x, w, b, y, mask, cw, plan, scalar, track):
        ctx.dtypes = (x.dtype, w.dtype, b.dtype if b is not None else None)
        ctx.scalar = scalar
        if scalar:  # the gradients of the sum, computed in the same sweep
            grads = tuple(ctx.needs_input_grad[:3]) if track else (False,) * 3
            loss, _, gx, gw, gb = _sweep(x, w, b, y, mask, cw, plan, grads=grads)
            ctx.grads = (gx, gw, gb)
            return loss.sum()
        loss, lse, _, _, _ = _sweep(x, w, b, y, mask, cw, plan)
        ctx.save_for_backward(x, w, b, y, mask, cw, lse)
        ctx.plan = plan
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        if ctx.scalar:
            grads = [None if t is None else t * grad_out.to(t.dtype) for t in ctx.grads]
        else:
            x, w, b, y, mask, cw, lse = ctx.saved_tensors
            _, _, *grads = _sweep(
                x,
                w,
                b,
                y,
                mask,
                cw,
                ctx.plan,
                lse=lse,
                upstream=grad_out,
                grads=tuple(ctx.needs_input_grad[:3]),
            )
        grads = [None if t is None else t.to(dt) for t, dt in zip(grads, ctx.dtypes, strict=True)]
        return (*grads, None, None, None, None, None, None)


def _triton_rows(y, mask, cw, plan):
    """The whole batch as one chunk (no ``x``): the per-row terms of loss and gradient."""
    mask_f = mask.to(torch.float32)
    w_y = cw[y] if cw is not None else None
    coef = mask_f if w_y is None else w_y * mask_f
    return _Chunk(
        x=None,
        y=y,
        mask=mask_f,
        w_y=w_y,
        g=mask_f,
        target_coef=(1.0 - plan.label_smoothing) * coef,
    )


class _TritonLinearCrossEntropy(torch.autograd.Function):
    """The fused kernel (:mod:`losskit.kernels.linear`): the forward launch gives the
    lse and loss of every row, the backward launch recomputes the tiles of logits and
    accumulates the gradients. Per-row loss (``scalar=False``) or its sum."""

    @staticmethod
    def forward(ctx, x, w, b, y, mask, cw, plan, scalar):
        from ..kernels import linear as K

        ls = plan.label_smoothing
        x, w = x.contiguous(), w.contiguous()
        b = b.contiguous() if b is not None else None
        mx, se, part, zy = K.forward(x, w, b, y, cw, plan.softcap, bool(ls))
        ref = mx.amax(0)  # the row's largest logit
        lse_minus_r = (se * torch.exp(mx - ref)).sum(0).log()
        lse = ref + lse_minus_r
        ch = _triton_rows(y, mask, cw, plan)
        s_r = None
        if ls:  # sum_c w_c (z_c - ref) from each tile's sum_c w_c (z_c - m_tile)
            v, tiles = w.shape[0], mx.shape[0]
            if cw is None:
                starts = torch.arange(tiles, device=x.device) * K.BLOCK_V
                w_tile = (v - starts).clamp(max=K.BLOCK_V).to(torch.float32)
            else:
                w_tile = torch.nn.functional.pad(cw, (0, tiles * K.BLOCK_V - v)).view(tiles, -1)
                w_tile = w_tile.sum(1)
            s_r = (part + w_tile.unsqueeze(1) * (mx - ref)).sum(0)
        loss = _row_loss(ch, plan, lse - zy, lse_minus_r, s_r, lse)
        ctx.save_for_backward(x, w, b, y, mask, cw, lse)
        ctx.plan = plan
        ctx.dtypes = (x.dtype, w.dtype, b.dtype if b is not None else None)
        return loss.sum() if scalar else loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        from ..kernels import linear as K

        x, w, b, y, mask, cw, lse = ctx.saved_tensors
        plan = ctx.plan
        ch = _triton_rows(y, mask, cw, plan)
        g = grad_out.to(torch.float32) * ch.mask  # a scalar, or one value per row
        ch.g = g
        ls = plan.label_smoothing
        grads = K.backward(
            x,
            w,
            b,
            y,
            cw,
            plan.softcap,
            lse,
            (g * _coef(ch, plan, lse)).contiguous(),
            (g * ch.target_coef).contiguous(),
            (g * (ls / plan.num_classes)).contiguous() if ls else None,
            tuple(ctx.needs_input_grad[:3]),
        )
        grads = [None if t is None else t.to(dt) for t, dt in zip(grads, ctx.dtypes, strict=True)]
        return (*grads, None, None, None, None, None)


def _kernel_unsupported(input, chunk_size):
    if input.dtype == torch.float64:
        return "float64 inputs (it computes in float32)"
    if chunk_size is not None:
        return "chunk_size (the kernel tiles on its own)"
    return None


# --------------------------------------------------------------------------- checks
def _check_chunk_size(chunk_size, n, v):
    """Rows per token chunk and classes per vocabulary block."""

    def positive(what, value):
        if isinstance(value, bool) or not isinstance(value, int):
            C.fail(
                NAME,
                f"{what} must be a positive int, got {value!r}.",
                "pass None (the default), an int (rows per chunk) or a pair (rows, classes).",
                cls=C.LossTypeError,
            )
        if value < 1:
            C.fail(NAME, f"{what} must be a positive int, got {value!r}.")
        return value

    if chunk_size is None:
        rows = max(MIN_ROWS, DEFAULT_TILE // v // 8 * 8)
        block = v if rows * v <= MAX_TILE else DEFAULT_TILE // rows
    elif isinstance(chunk_size, tuple | list):
        if len(chunk_size) != 2:
            C.fail(
                NAME, f"chunk_size must be an int or a pair (rows, classes), got {chunk_size!r}."
            )
        rows = positive("chunk_size[0] (rows)", chunk_size[0])
        block = positive("chunk_size[1] (classes)", chunk_size[1])
    else:
        rows = positive("chunk_size", chunk_size)
        block = v
    return max(1, min(rows, n)), min(block, v)


def _check_args(input, linear_weight, target, linear_bias, weight, normalizer, reduction):
    C.check_reduction(NAME, reduction)
    C.check_tensor(NAME, "input", input)
    C.check_tensor(NAME, "linear_weight", linear_weight)
    C.check_tensor(NAME, "target", target)
    if linear_bias is not None:
        C.check_tensor(NAME, "linear_bias", linear_bias)
    weight = C.check_weight_tensor(NAME, weight)
    C.check_floating(NAME, "input", input)
    C.check_floating(NAME, "linear_weight", linear_weight)
    for arg, t in (("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if t is not None and t.dtype != input.dtype:
            C.fail(
                NAME,
                f"{arg} must have the input's dtype ({C.dtype_name(input.dtype)}), got "
                f"{C.describe(t)}.",
                f"cast it with {arg}.to(input.dtype).",
                cls=C.LossTypeError,
            )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        C.fail(
            NAME,
            f"target must hold integer class indices, got {C.describe(target)}.",
            "cast class indices with target.long() (probability targets are not supported "
            "by linear_cross_entropy).",
            cls=C.LossTypeError,
        )
    C.check_same_device(
        NAME,
        input=input,
        linear_weight=linear_weight,
        target=target,
        linear_bias=linear_bias,
        weight=weight,
    )
    C.check_normalizer(NAME, normalizer, reduction)
    if input.dim() == 0:
        C.fail(NAME, "input must be (N, D) or (*, D), got a 0-dim tensor.")
    d = input.shape[-1]
    if linear_weight.dim() != 2:
        C.fail(
            NAME,
            f"linear_weight must be (V, D) = (classes, features), as nn.Linear.weight, got "
            f"shape {tuple(linear_weight.shape)}.",
        )
    v, d_w = linear_weight.shape
    if d_w != d:
        C.fail(
            NAME,
            f"linear_weight of shape {tuple(linear_weight.shape)} takes {d_w} features, but "
            f"input of shape {tuple(input.shape)} has {d} (its last dimension).",
            "linear_weight is (classes, features), as nn.Linear.weight: pass linear_weight.T."
            if v == d
            else None,
        )
    if v == 0:
        C.fail(NAME, "linear_weight has 0 rows (classes); at least one is needed.")
    if linear_bias is not None and tuple(linear_bias.shape) != (v,):
        C.fail(
            NAME,
            f"linear_bias must hold one value per class, shape ({v},), got "
            f"{tuple(linear_bias.shape)}.",
        )
    if weight is not None and tuple(weight.shape) != (v,):
        C.fail(
            NAME,
            f"weight must hold one value per class, shape ({v},), got {tuple(weight.shape)}.",
            "weight is the class weight (V,); for a per-token weight, use "
            "reduction='none' and weigh the result.",
        )
    if tuple(target.shape) != tuple(input.shape[:-1]):
        C.fail(
            NAME,
            f"target must have shape {tuple(input.shape[:-1])} (the input's without its last "
            f"dimension), got {tuple(target.shape)}.",
        )
    return weight


def _check_classes(y, v, ignore_index):
    """Value check: class indices in ``0..V-1`` or ``ignore_index``; the input holds
    features, the classes are the rows of ``linear_weight``."""
    _check_index_range(NAME, y, v, ignore_index, classes_from="linear_weight")


# --------------------------------------------------------------------------- the loss
def linear_cross_entropy(
    input,
    linear_weight,
    target,
    *,
    linear_bias=None,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
    normalizer=None,
    chunk_size=None,
    backend="auto",
):
    r"""Cross entropy of a linear layer's output, computed without materialising the logits.

    Equal, in value and in the gradients of ``input``, ``linear_weight`` and
    ``linear_bias``, to

    .. math::
        a = x W^\top + b, \qquad z = s \tanh(a / s) \quad(\text{with } \texttt{softcap}=s),
        \qquad \ell = \operatorname{cross\_entropy}(z, y)

    with :func:`losskit.functional.cross_entropy`'s semantics: for a counted target
    (not ``ignore_index``), class weights ``w``, label smoothing ``\epsilon``, z-loss
    ``k`` and ``\operatorname{lse}_i = \log \sum_c e^{z_{i,c}}``,

    .. math::
        \ell_i = (1 - \epsilon)\, w_{y_i} (\operatorname{lse}_i - z_{i, y_i})
                 + \frac{\epsilon}{V} \sum_c w_c (\operatorname{lse}_i - z_{i,c})
                 + k\, \operatorname{lse}_i^2, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    (``sum(l) / normalizer`` with a normalizer; ``0.0`` with a zero gradient when
    nothing is counted).

    The ``(N, V)`` logits are never held: the tokens are walked in chunks of ``rows``
    (and, for a vocabulary too large for a small chunk, the classes in blocks, with an
    online log-sum-exp), so memory beyond the inputs and gradients is one
    ``(rows, classes)`` tile, a few ``(N,)`` vectors, and the ``(V, D)`` weight gradient
    accumulated in float32. For ``"mean"`` and ``"sum"`` the gradients are computed in
    the forward sweep (one pass over the logits, the approach of Liger-Kernel's fused
    linear cross entropy) and only scaled by the upstream gradient in the backward; for
    ``"none"`` the backward recomputes the tiles with each row's upstream gradient (the
    approach of Cut Cross-Entropy). Half-precision inputs are computed in float32 tile
    by tile; the loss is float32 and each gradient has its parameter's dtype. Unlike
    ``torch.nn.functional.linear_cross_entropy``, this chunks by default and also takes
    ``z_loss``, ``softcap`` and ``normalizer``; targets are class indices only. The class
    ``weight`` is a constant (it gets no gradient) and the backward is not itself
    differentiable (no double backward).

    Args:
        input: hidden states ``(N, D)`` or ``(*, D)``, floating.
        linear_weight: ``(V, D)``, the ``weight`` of ``nn.Linear(D, V)``; the input's dtype.
        target: class indices ``(N,)`` or ``(*)``, any integer dtype.
        linear_bias: ``(V,)``, optional. Default: ``None``.
        weight: class weights ``(V,)``. Default: ``None``.
        ignore_index: a target value not counted (``None`` means ``-100``, as in torch).
            Default: ``-100``.
        label_smoothing: ``epsilon`` in [0, 1]. Default: ``0.0``.
        z_loss: coefficient ``k >= 0`` of ``lse^2`` (PaLM). Default: ``0.0``.
        softcap: ``s > 0``: logits become ``s * tanh(logits / s)`` (Gemma 2). Default:
            ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.
        chunk_size: token rows per chunk, or a pair ``(rows, classes)`` to also block the
            vocabulary. Default ``None``: chunks of ``2**22 // V`` rows (a 16 MiB float32
            tile; at least 16 rows), and vocabulary blocks only above ``2**20`` classes.
        backend: ``"torch"`` (the chunked sweep above, any device) or ``"triton"`` (the
            fused kernel of :mod:`losskit.kernels.linear`: one launch computes the tiles
            of logits and their log-sum-exp, a second recomputes them for the gradients,
            which are accumulated in float32 with atomic adds; no ``chunk_size``, no
            float64). ``"auto"`` is the torch path for now, on every device: the fused
            kernel is opt-in until it has been benchmarked on a GPU. Default: ``"auto"``.

    Shape:
        input ``(*, D)``, linear_weight ``(V, D)``, linear_bias and weight ``(V,)``,
        target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"`` (ignored
        targets give 0).

    Example:
        >>> import torch, losskit.functional as LF
        >>> h = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])
        >>> W = torch.tensor([[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]])
        >>> y = torch.tensor([0, 1, 2])
        >>> LF.linear_cross_entropy(h, W, y)
        tensor(1.3383)
        >>> LF.cross_entropy(h @ W.T, y)  # the same, with the (N, V) logits in memory
        tensor(1.3383)
        >>> LF.linear_cross_entropy(h, W, y, softcap=1.0, reduction="none")
        tensor([1.1316, 0.5810, 1.6516])

    References:
        Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", ICLR 2025,
        https://arxiv.org/abs/2411.09009 (cross entropy without the logits in memory);
        Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM Training", 2024,
        https://arxiv.org/abs/2410.10989 (chunked fused linear cross entropy).
    """
    ls = C.check_number(NAME, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    k = C.check_number(NAME, "z_loss", z_loss, low=0.0)
    cap = None
    if softcap is not None:
        cap = C.check_number(NAME, "softcap", softcap, low=0.0, low_open=True)
    ii = -100 if ignore_index is None else _check_ignore_index(NAME, ignore_index)
    weight = _check_args(input, linear_weight, target, linear_bias, weight, normalizer, reduction)
    v, d = linear_weight.shape
    x = input.reshape(-1, d)
    y = target.reshape(-1).long()
    n = x.shape[0]
    _check_classes(y, v, ii)
    rows, block = _check_chunk_size(chunk_size, n, v)
    use_kernel = kernels.select(
        NAME,
        "torch" if backend == "auto" else backend,
        input,
        _kernel_unsupported(input, chunk_size),
    )
    dtype = compute_dtype(input.dtype)
    mask = y != ii
    cw = weight.detach().to(dtype) if weight is not None else None
    plan = _Plan(
        rows=rows,
        block=block,
        num_classes=v,
        label_smoothing=ls,
        z_loss=k,
        softcap=cap,
        weight_sum=cw.sum() if cw is not None else float(v),
    )
    scalar = reduction != "none"
    if use_kernel:
        y_k = torch.where(mask, y, 0)  # ignored rows read class 0 and count 0
        out = _TritonLinearCrossEntropy.apply(
            x, linear_weight, linear_bias, y_k, mask, cw, plan, scalar
        )
    else:
        out = _LinearCrossEntropy.apply(
            x, linear_weight, linear_bias, y, mask, cw, plan, scalar, torch.is_grad_enabled()
        )
    if not scalar:
        return out.reshape(target.shape)
    if reduction == "mean" and normalizer is None:
        den = mask.sum() if cw is None else torch.where(mask, cw[torch.where(mask, y, 0)], 0).sum()
        return reduce_sums(out, den, reduction)
    return reduce_sums(out, out, reduction, normalizer)
