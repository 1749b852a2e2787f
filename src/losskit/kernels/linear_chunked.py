"""Linear cross entropy by chunks of tokens, for GPUs (``backend="triton"`` with a
``chunk_size``): tensor-core matmuls for the logits and both gradients, and the softmax
kernel (:func:`losskit.kernels.softmax.launch`) in place on each chunk's logits, which it
turns into their gradient.

For a chunk of ``c`` token rows ``x_c`` (``c`` is ``chunk_size``; at most ``N``):

* ``Z = x_c W^T + b``, ``(c, V)`` in the input's dtype (a matmul with float32
  accumulation: cuBLAS on a GPU);
* one launch of the softmax kernel reads ``Z`` twice (its online log-sum-exp, then the
  gradient) and overwrites it with ``dl_i / dZ`` of each row's loss (float32 math, stored
  in the input's dtype), writing the row's loss;
* ``grad_x[c] = Z W``, ``grad_W += Z^T x_c`` (in place, in the weight's dtype), ``grad_b +=
  sum_i Z_i`` (float32).

For ``"mean"`` and ``"sum"`` the gradients are made in the forward, for a unit upstream
gradient, and the backward only scales them (in place: no extra memory); for ``"none"``
the backward runs the sweep again with each row's upstream gradient. Extra memory is one
``(c, V)`` tile of logits: ``c`` is set by a memory budget, e.g. ``c = 2**30 // (2 V)``
rows for a 1 GiB bfloat16 tile. The class loops of the kernel are those of the softmax
family (:mod:`losskit.kernels.softmax`): cross entropy with class weights,
``ignore_index``, label smoothing and z-loss; ``softcap`` is not supported here (the fused
kernel of :mod:`losskit.kernels.linear` has it).

By the roofline model (``benchmarks/roofline.py``) the three matmuls, ``6 N D V`` FLOPs,
dominate: 25.8 TFLOP at ``8192 x 4096 x 128256``, 26 ms at an H200's 989 TFLOP/s dense
bfloat16 (about 35 ms at 75 % of it), against 1.3 ms for the kernel's three passes over
the bfloat16 logits. The design of :mod:`losskit.kernels.linear` (no logits at all, the
gradients accumulated with float32 atomics) needs at least 80 ms there by the same model.

Precision: the logits are rounded to the input's dtype before the softmax (bfloat16: a
relative 2**-9), as in other chunked implementations; the torch path computes them in
float32. Differentiable once; under ``torch.func.vmap`` each element is swept on its own.
"""

from __future__ import annotations

import torch

from ..functional._rowstats import Function, check_first_order, vmap_by_loop
from . import softmax

LOSS = "linear_cross_entropy"
SECOND_ORDER_HINT = (
    "for second derivatives (e.g. a gradient penalty), hold the logits and use "
    "losskit.functional.cross_entropy(input @ linear_weight.T + linear_bias, target, ...), "
    "which is twice differentiable."
)


def sweep(x, w, b, y, cw, ignore_index, label_smoothing, z_loss, rows, needs, row_scale=None):
    """Per-row losses ``(N,)`` float32 and the gradients ``(grad_x, grad_w, grad_b)`` that
    ``needs`` asks for (``None`` otherwise), for a unit upstream gradient or, with
    ``row_scale`` ``(N,)``, for that upstream gradient."""
    n = x.shape[0]
    v = w.shape[0]
    gx = torch.empty_like(x) if needs[0] else None
    gw = torch.zeros_like(w) if needs[1] else None
    gb = (
        torch.zeros(v, dtype=torch.float32, device=x.device) if needs[2] and b is not None else None
    )
    losses = torch.empty(n, dtype=torch.float32, device=x.device)
    wt = w.t()
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        xc = x[r0:r1]
        z = torch.addmm(b, xc, wt) if b is not None else torch.mm(xc, wt)
        loss, _ = softmax.launch(
            z,
            y[r0:r1],
            cw,
            z,  # the gradient overwrites the logits
            ignore_index=ignore_index,
            mode=softmax.MODE_CE,
            eps=label_smoothing,
            z=z_loss,
            gamma=0.0,
            alpha=1.0,
            beta=0.0,
            log_zero=-4.0,
        )
        losses[r0:r1] = loss
        if gx is None and gw is None and gb is None:
            continue
        if row_scale is not None:
            z.mul_(row_scale[r0:r1].to(z.dtype).unsqueeze(1))
        if gx is not None:
            torch.mm(z, w, out=gx[r0:r1])
        if gw is not None:
            gw.addmm_(z.t(), xc)
        if gb is not None:
            gb += z.sum(0, dtype=torch.float32)
    return losses, (gx, gw, gb)


class _BackwardSweep(Function):
    """The backward's sweep (``"none"``) as a Function of its own: under a torch.func
    transform its arguments reach it as plain tensors (a kernel cannot read functorch's
    wrappers), and under ``vmap`` each element is swept on its own. Its outputs are not
    differentiable."""

    @staticmethod
    def forward(x, w, b, y, cw, ignore_index, label_smoothing, z_loss, rows, needs, row_scale):
        options = (ignore_index, label_smoothing, z_loss, rows)
        return sweep(x, w, b, y, cw, *options, needs, row_scale=row_scale)[1]

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(*(t for t in output if t is not None))

    @staticmethod
    def backward(ctx, *_):  # not reached: the outputs are marked not differentiable
        check_first_order(LOSS, SECOND_ORDER_HINT)

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_BackwardSweep.apply, info, in_dims, *args)


class _ChunkedLinearCrossEntropy(Function):
    """Outputs the per-row losses (``scalar=False``) or their sum."""

    @staticmethod
    def forward(x, w, b, y, cw, ignore_index, label_smoothing, z_loss, rows, scalar, needs):
        losses, grads = sweep(
            x,
            w,
            b,
            y,
            cw,
            ignore_index,
            label_smoothing,
            z_loss,
            rows,
            needs if scalar else (False,) * 3,
        )
        return (losses.sum() if scalar else losses), *grads

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, w, b, y, cw, ignore_index, label_smoothing, z_loss, rows, scalar, needs = inputs
        grads = [t for t in output[1:] if t is not None]
        ctx.mark_non_differentiable(*grads)
        ctx.scalar = scalar
        ctx.options = (ignore_index, label_smoothing, z_loss, rows)
        ctx.dtype_b = b.dtype if b is not None else None
        if scalar:
            ctx.save_for_backward(*output[1:])
        else:
            ctx.save_for_backward(x, w, b, y, cw)

    @staticmethod
    def backward(ctx, grad_out, *_):
        check_first_order(LOSS, SECOND_ORDER_HINT)
        if ctx.scalar:
            # the gradients of the forward, scaled in place by the (scalar) upstream
            # gradient: autograd refuses a second backward through this graph
            gx, gw, gb = ctx.saved_tensors
            for t in (gx, gw, gb):
                if t is not None:
                    t.mul_(grad_out.to(t.dtype))
        else:
            x, w, b, y, cw = ctx.saved_tensors
            needs = tuple(ctx.needs_input_grad[:3])
            gx, gw, gb = _BackwardSweep.apply(x, w, b, y, cw, *ctx.options, needs, grad_out)
        gb = gb.to(ctx.dtype_b) if gb is not None else None
        return gx, gw, gb, *(None,) * 8

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_ChunkedLinearCrossEntropy.apply, info, in_dims, *args)


def chunked_linear_cross_entropy(
    x, w, b, y, cw, ignore_index, label_smoothing, z_loss, rows, scalar
):
    """The per-row losses ``(N,)`` (float32), or their sum (``scalar``), of ``x (N, D)``,
    ``w (V, D)`` and ``b (V,)`` or None (one dtype), targets ``y (N,)`` int64 (rows equal
    to ``ignore_index`` are not counted), class weights ``cw (V,)`` float32 (constant) or
    None, in chunks of ``rows`` token rows. Differentiable once."""
    x, w = x.contiguous(), w.contiguous()
    b = b.contiguous() if b is not None else None
    needs = (x.requires_grad, w.requires_grad, b is not None and b.requires_grad)
    out = _ChunkedLinearCrossEntropy.apply(
        x, w, b, y.contiguous(), cw, ignore_index, label_smoothing, z_loss, rows, scalar, needs
    )
    return out[0]
