r"""Losses across processes, on ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Two helpers, and no process-group code of losskit's own: they call
``torch.distributed.all_reduce`` on the group they are given (default: the world).

* :func:`global_count` counts the targets that are not ignored, summed over the ranks: the
  ``normalizer=`` that makes a mean exact under gradient accumulation and data
  parallelism when ranks (or micro-batches) hold different numbers of counted tokens.
* :func:`vocab_parallel_cross_entropy` is cross entropy when the classes (the
  vocabulary of a language model) are split across the ranks of a tensor-parallel group:
  rank ``r`` holds the logits of classes ``[r * V_local, (r + 1) * V_local)``. Every rank
  gets the loss of the full vocabulary, and the gradient of its own slice, from two
  all-reduces of ``O(N)`` numbers; the logits are never gathered.

Both work without a process group (``torch.distributed`` not initialised, or not built):
the "world" is then the one process, so the same code runs on one device and on many.
Every rank of the group must call them, in the same order, with consistent arguments
(collectives are matched by order); the value checks (``losskit.set_checks``) must be
on or off on all ranks alike, because with checks on,
:func:`vocab_parallel_cross_entropy` verifies the shards with one extra all-reduce.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from . import _checks as C
from ._reduction import compute_dtype, finish_sum, mean_weight
from .functional._rowstats import (
    Function,
    RowCrossEntropy,
    RowStats,
    check_first_order,
    target_weight,
    vmap_by_loop,
)

__all__ = ["global_count", "vocab_parallel_cross_entropy"]


# --------------------------------------------------------------------------- the group
def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def _rank_and_size(loss: str, group) -> tuple[int, int]:
    """This process's rank in ``group`` and the group's size; ``(0, 1)`` without one."""
    if not _initialized():
        if group is not None:
            C.fail(
                loss,
                f"group={group!r} was given, but torch.distributed is not initialised.",
                "call torch.distributed.init_process_group(...) first, or pass group=None.",
            )
        return 0, 1
    rank, size = dist.get_rank(group), dist.get_world_size(group)
    if rank < 0:
        C.fail(loss, f"this process (global rank {dist.get_rank()}) is not a member of {group!r}.")
    return rank, size


def _all_reduce(t: torch.Tensor, op: str, group, size: int) -> torch.Tensor:
    """In-place all-reduce (``"sum"`` or ``"max"``); a no-op in a world of one."""
    if size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX, group=group)
    return t


# --------------------------------------------------------------------------- global_count
def global_count(target, *, ignore_index=-100, group=None) -> torch.Tensor:
    r"""The number of counted targets, summed over the ranks of ``group``.

    .. math::
        n = \sum_{r \in \text{group}} \sum_{b} \#\{ i : y^{(r, b)}_i \ne
        \text{ignore\_index} \}

    over the ranks ``r`` and the target tensors ``b`` given (several micro-batches of a
    gradient-accumulation step can be counted with one all-reduce). Pass it as
    ``normalizer=`` to any loss with ``reduction="mean"``: each rank then returns its
    *summed* loss divided by the global count, so that the sum over ranks and
    micro-batches of the per-call losses is exactly the mean over every counted token of
    the whole step, however unevenly the tokens are spread. (DDP *averages* gradients
    over the ranks: multiply the loss by the world size before ``backward`` to undo it.)

    Without a process group (``torch.distributed`` not initialised) it is the local count.
    The count is an ``int64`` 0-dim tensor on the target's device, all-reduced there (use
    CUDA tensors with NCCL); nothing is read back to the host. It is 0 when nothing is
    counted anywhere, which ``normalizer`` rejects while value checks are on: guard with
    ``.clamp_min(1)`` if a whole step can be ignored (the summed loss is then 0 anyway).

    Args:
        target: a target tensor of any shape and real dtype (class indices, or the
            float targets of a binary loss with ``ignore_index``), or a sequence of them
            on one device.
        ignore_index: the target value that is not counted, or ``None`` to count every
            element. Default: ``-100``.
        group: the process group. Default: ``None`` (the world).

    Returns:
        0-dim ``int64`` tensor on the target's device, equal on every rank.

    Example:
        >>> import torch
        >>> from losskit.distributed import global_count
        >>> global_count(torch.tensor([[3, 1, -100], [0, -100, -100]]))  # one process
        tensor(3)
        >>> global_count([torch.tensor([1, 2]), torch.tensor([-100, 4])])  # micro-batches
        tensor(3)
    """
    name = "global_count"
    if isinstance(target, torch.Tensor):
        targets = [target]
    elif isinstance(target, Sequence) and not isinstance(target, str) and len(target) > 0:
        targets = list(target)
    else:
        empty = " (empty)" if isinstance(target, (list, tuple)) and not target else ""
        C.fail(
            name,
            f"target must be a torch.Tensor or a non-empty sequence of tensors, got "
            f"{type(target).__name__}{empty}.",
            cls=C.LossTypeError,
        )
    for i, t in enumerate(targets):
        label = "target" if len(targets) == 1 else f"target[{i}]"
        C.check_tensor(name, label, t)
        C.check_real(name, label, t)
    C.check_same_device(name, **{f"target[{i}]": t for i, t in enumerate(targets)})
    if ignore_index is not None:
        C.check_number(name, "ignore_index", ignore_index)
    _, size = _rank_and_size(name, group)

    device = targets[0].device
    count = torch.zeros((), dtype=torch.int64, device=device)
    for t in targets:
        if ignore_index is None:
            count += t.numel()
        else:
            count += (t != ignore_index).sum()
    return _all_reduce(count, "sum", group, size)


# --------------------------------------------------------------------------- vocab parallel
SECOND_ORDER_HINT = (
    "for second derivatives, gather the logits and use losskit.functional.cross_entropy, "
    "which is twice differentiable."
)


class _VocabParallelCrossEntropy(Function):
    """Per-row cross entropy of the full vocabulary from the local shard ``(M, V_local)``.

    Forward: the row statistics of :mod:`losskit.functional._rowstats` against the global
    row maximum ``m`` (one all-reduce, MAX): ``s = sum_c exp(x_c - m)``, ``x_y - m`` (from
    the rank owning ``y``, 0 elsewhere) and, with label smoothing, ``sum_c w_c (x_c - m)``
    are one all-reduce (SUM) of a ``(2 or 3, M)`` tensor; every term is <= 0 or a sum of
    exponentials <= 1, so nothing cancels. Outputs ``(loss, lse)``, the per-row loss and
    the (not differentiable) log-sum-exp kept for the backward.

    Backward, local (no communication): ``g (a p_c - b [c = y] - d w_c)`` with the row
    coefficients ``a, b, d`` of ``RowCrossEntropy`` and ``p = exp(x - lse)`` recomputed
    from the saved shard. Differentiable once; under ``torch.func.vmap`` each element of
    the batch makes its own two all-reduces.
    """

    @staticmethod
    def forward(x, target, mask, weight, vocab_start, ce, group, size):
        dtype = compute_dtype(x.dtype)
        xf = x.to(dtype)
        v_local = xf.shape[1]
        owned, index = _owned(target, mask, vocab_start, v_local)

        m = _all_reduce(xf.amax(dim=1), "max", group, size)
        below = xf - m.unsqueeze(1)  # <= 0; the global maximum is attained on some rank,
        # so the global sum of exponentials is >= 1
        stats = [
            torch.exp(below).sum(1),
            torch.where(owned, below.gather(1, index).squeeze(1), 0),
        ]
        if ce.label_smoothing:
            shard = _shard(weight, vocab_start, v_local)
            stats.append(below @ shard if shard is not None else below.sum(1))
        stats = _all_reduce(torch.stack(stats), "sum", group, size)
        rows = RowStats.from_sum_exp(
            m, stats[0], stats[1], stats[2] if ce.label_smoothing else None
        )
        loss = ce.loss(rows, target_weight(weight, target, mask), mask)
        # an ignored row may be all -inf (padding, lse NaN): keep exp(x - lse) finite
        # there (any lse >= max(x) does, and its gradient is multiplied by 0)
        lse = rows.lse
        return loss, torch.where(mask | (lse > 0), lse, 0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, target, mask, weight, vocab_start, ce, _, _ = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(x, target, mask, weight, output[1])
        ctx.options = (vocab_start, ce)

    @staticmethod
    def backward(ctx, grad_loss, _grad_lse):
        check_first_order("vocab_parallel_cross_entropy", SECOND_ORDER_HINT)
        x, target, mask, weight, lse = ctx.saved_tensors
        vocab_start, ce = ctx.options
        v_local = x.shape[1]
        g = torch.where(mask, grad_loss.to(lse.dtype), 0)
        coef = ce.coefficients(lse, target_weight(weight, target, mask), g)
        # out of place: under vmap (jacrev) the coefficients are batched and x is not
        grad = (x.to(lse.dtype) - lse.unsqueeze(1)).exp_() * coef.p.unsqueeze(1)
        if coef.spread is not None:
            shard = _shard(weight, vocab_start, v_local)
            if shard is None:
                grad.sub_(coef.spread.unsqueeze(1))
            else:
                grad.sub_(coef.spread.unsqueeze(1) * shard)
        if ce.label_smoothing < 1.0:
            owned, index = _owned(target, mask, vocab_start, v_local)
            grad.scatter_add_(1, index, torch.where(owned, -coef.target, 0).unsqueeze(1))
        return grad.to(x.dtype), None, None, None, None, None, None, None

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_VocabParallelCrossEntropy.apply, info, in_dims, *args)


def _owned(target, mask, vocab_start, v_local):
    """The counted rows whose target class is on this rank, and its local column."""
    local = target - vocab_start
    owned = mask & (local >= 0) & (local < v_local)
    return owned, torch.where(owned, local, 0).unsqueeze(1)


def _shard(weight, vocab_start, v_local):
    return None if weight is None else weight[vocab_start : vocab_start + v_local]


def _checksum(t):
    """The same number on every rank exactly when ``t`` is the same (a position-weighted
    sum; a float sum is compared by its bits, as an int64)."""
    if t.is_floating_point():
        t = t.to(torch.float64)
        positions = torch.arange(1, t.numel() + 1, device=t.device, dtype=torch.float64)
        return (t.reshape(-1) * positions).sum().reshape(1).view(torch.int64)[0]
    positions = torch.arange(1, t.numel() + 1, device=t.device, dtype=torch.int64)
    return (t.reshape(-1) * positions).sum()


def _check_shards(name, rank, size, group, x, target, v_local, weight):
    """Value check (one all-reduce): equal shard widths, rows and targets on every rank;
    returns whether the class weights are equal too. Every rank raises alike (they all
    see the same maxima and minima)."""
    with torch.no_grad():
        parts = [
            torch.tensor(v_local, device=x.device),
            torch.tensor(target.numel(), device=x.device),
            _checksum(target).to(x.device),
        ]
        if weight is not None:
            parts.append(_checksum(weight).to(x.device))
        local = torch.stack(parts)
        both = _all_reduce(torch.cat([local, -local]), "max", group, size)
        hi, lo = both[: len(parts)].tolist(), (-both[len(parts) :]).tolist()
    if hi[0] != lo[0]:
        C.fail(
            name,
            f"logits_shard must hold the same number of classes on every rank of the group, "
            f"got from {lo[0]} to {hi[0]} (rank {rank}: {tuple(x.shape)}).",
            "pad the vocabulary to a multiple of the group size (as Megatron's "
            "make-vocab-size-divisible-by does).",
        )
    if hi[1] != lo[1]:
        C.fail(
            name,
            f"every rank of the group must hold the same tokens, got from {lo[1]} to {hi[1]} "
            f"target elements (rank {rank}: target shape {tuple(target.shape)}).",
            "a vocabulary-parallel group splits the classes, not the tokens.",
        )
    if hi[2] != lo[2]:
        C.fail(
            name,
            "target must be identical on every rank of the group (it holds global class "
            "indices), but it differs between ranks.",
            "broadcast the target from one rank, or pass the same batch to every rank.",
        )
    # whether the class weights agree: reported by the caller after their shape check
    return weight is None or hi[3] == lo[3]


def vocab_parallel_cross_entropy(
    logits_shard,
    target,
    *,
    group=None,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    reduction="mean",
    normalizer=None,
):
    r"""Cross entropy over a vocabulary split across the ranks of ``group``.

    Rank ``r`` of a group of ``R`` ranks holds the logits of the contiguous classes
    ``[r V_l, (r + 1) V_l)`` of the full vocabulary of ``V = R V_l`` classes (the layout
    of a column-parallel output layer, e.g. Megatron's). With the row maximum ``m_i``
    over the full vocabulary (an all-reduce MAX) and
    ``lse_i = m_i + log sum_c exp(x_{i,c} - m_i)`` (an all-reduce SUM, together with the
    target logit, which the rank owning it contributes, and, for label smoothing, the
    weighted sum of the logits), every rank returns, with class weights ``w``
    (``w = 1`` without ``weight``),

    .. math::
        \ell_i = (1 - \epsilon)\, w_{y_i} (\mathrm{lse}_i - x_{i, y_i})
                 + \frac{\epsilon}{V} \sum_{c=0}^{V-1} w_c (\mathrm{lse}_i - x_{i,c})
                 + z\, \mathrm{lse}_i^2, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    over the targets not equal to ``ignore_index``: exactly
    ``losskit.functional.cross_entropy(full_logits, target, weight=weight, ...)`` of the
    gathered logits, with the same semantics for ``weight``, ``ignore_index``,
    ``label_smoothing``, ``z_loss``, ``reduction`` and ``normalizer`` (an empty mean is
    0.0 with a zero gradient). The gradient of each rank's shard is the matching slice of
    the full gradient, ``g_i (p_{i,c} a_i - (1 - \epsilon) w_{y_i} [c = y_i] - \epsilon
    w_c / V)`` with ``a_i = (1 - \epsilon) w_{y_i} + \epsilon W / V + 2 z lse_i`` and
    ``W = sum_c w_c``, computed locally from the saved shard and ``lse`` (the backward
    communicates nothing).

    The class weight is the full vocabulary's ``(V,)`` vector, the same on every rank,
    as the target is (it holds global class indices): each rank reads the slice of its
    own classes, and ``w_{y_i}`` and ``W`` without communication. It is a constant (no
    gradient).

    Cost: two all-reduces of ``O(N)`` numbers per call, never a gather of the logits;
    with value checks on, one more (of 6 numbers, 8 with ``weight``) verifies that the
    shard widths, the token counts, the targets and the class weights agree across the
    ranks, and the target range is checked against ``V``; both read a few numbers back
    to the host. The classes must split evenly (pad the vocabulary to a multiple of the
    group size). Without a process group the "group" is this process alone, and the
    result is :func:`losskit.functional.cross_entropy` with the classes last.

    Differentiable once: a second derivative (``create_graph=True``, nested
    ``torch.func`` transforms) raises a :class:`~losskit.LossInputError` rather than
    returning a gradient that is not itself differentiable. ``torch.func.grad`` and
    ``vjp`` work, and so does ``torch.func.vmap`` (each element of the batch makes its own
    all-reduces, in the same order on every rank).

    Args:
        logits_shard: this rank's logits ``(*, V_l)``, classes last (the layout of a
            language model's ``(B, T, V_l)`` output), any floating dtype.
        target: global class indices ``(*)`` in ``[0, V)`` or ``ignore_index``, any
            integer dtype, identical on every rank.
        group: the tensor-parallel process group. Default: ``None`` (the world).
        weight: class weights ``(V,)`` of the full vocabulary, any real dtype, identical
            on every rank (not the rank's slice). Default: ``None``.
        ignore_index: a class index not counted. Default: ``-100``.
        label_smoothing: ``epsilon`` in [0, 1], spread over the full vocabulary ``V``.
            Default: ``0.0``.
        z_loss: coefficient of ``lse^2`` (PaLM), ``>= 0``. Default: ``0.0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead (a float or a
            0-dim tensor, the same on every rank; see :func:`global_count`).

    Shape:
        logits_shard ``(*, V_l)``, target ``(*)``, weight ``(V)``; output scalar, or ``(*)`` with
        ``reduction="none"`` (ignored targets give 0). The same on every rank.

    Returns:
        The loss in the compute dtype (float32 for float16/bfloat16 logits, which are
        computed in float32); the gradient of ``logits_shard`` has its dtype.

    Example:
        >>> import torch, losskit.functional as LF
        >>> from losskit.distributed import vocab_parallel_cross_entropy
        >>> logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
        >>> target = torch.tensor([0, 3])
        >>> # without a process group: the whole vocabulary on one rank
        >>> vocab_parallel_cross_entropy(logits, target, label_smoothing=0.1)
        tensor(0.8812)
        >>> LF.cross_entropy(logits, target, label_smoothing=0.1)
        tensor(0.8812)
        >>> # on 2 ranks, rank r passes logits[:, 2 * r : 2 * r + 2] and the same target

    References:
        Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language Models
        Using Model Parallelism", 2019, https://arxiv.org/abs/1909.08053
    """
    name = "vocab_parallel_cross_entropy"
    C.check_reduction(name, reduction)
    C.check_tensor(name, "logits_shard", logits_shard)
    C.check_tensor(name, "target", target)
    C.check_floating(name, "logits_shard", logits_shard)
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        C.fail(
            name,
            f"target must hold integer class indices, got {C.describe(target)}.",
            "class indices must be integers: cast with target.long().",
            cls=C.LossTypeError,
        )
    weight = C.check_weight_tensor(name, weight)
    C.check_same_device(name, logits_shard=logits_shard, target=target, weight=weight)
    C.check_normalizer(name, normalizer, reduction)
    ii = C.check_ignore_index(name, ignore_index)
    ls = C.check_number(name, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    z = C.check_number(name, "z_loss", z_loss, low=0.0)
    if logits_shard.dim() == 0 or logits_shard.shape[-1] == 0:
        C.fail(
            name,
            f"logits_shard must have the classes last, (*, V_local) with V_local >= 1, got "
            f"shape {tuple(logits_shard.shape)}.",
        )
    if tuple(target.shape) != tuple(logits_shard.shape[:-1]):
        C.fail(
            name,
            f"target must have shape {tuple(logits_shard.shape[:-1])} (logits_shard "
            f"{tuple(logits_shard.shape)} without its last, class dimension), got "
            f"{tuple(target.shape)}.",
            "the classes are the last dimension here (not dimension 1, as in cross_entropy).",
        )
    rank, size = _rank_and_size(name, group)
    v_local = logits_shard.shape[-1]
    vocab_size = v_local * size
    vocabulary = f"the full vocabulary ({size} rank{'s' if size != 1 else ''} x {v_local})"
    t = target.reshape(-1).long()

    weights_agree = True
    if C.checks_enabled():
        if size > 1:
            weights_agree = _check_shards(name, rank, size, group, logits_shard, t, v_local, weight)
        C.check_class_indices(name, t, vocab_size, ii, classes_from=vocabulary)
    dtype = compute_dtype(logits_shard.dtype)
    if weight is not None:
        slice_hint = "pass the same full (V,) weight on every rank, not the rank's own slice."
        if tuple(weight.shape) != (vocab_size,):
            C.fail(
                name,
                f"weight must hold one value per class of {vocabulary}, shape "
                f"({vocab_size},), got {tuple(weight.shape)}.",
                slice_hint if tuple(weight.shape) == (v_local,) else None,
            )
        if not weights_agree:
            C.fail(
                name,
                "weight must be identical on every rank of the group (the class weights of "
                "the full vocabulary), but it differs between ranks.",
                slice_hint,
            )
        # scaled by its largest magnitude where only ratios matter (the weighted mean)
        weight = mean_weight(weight.detach().to(dtype), reduction, normalizer, not z)

    mask = t != ii
    x = logits_shard.reshape(-1, v_local)
    if t.numel() == 0:  # every rank has no rows (checked above): no collective to match
        per = x.sum(1).to(dtype) * 0.0
    else:
        ce = RowCrossEntropy(
            num_classes=vocab_size,
            label_smoothing=ls,
            z_loss=z,
            weight_sum=weight.sum() if weight is not None else None,
        )
        per = _VocabParallelCrossEntropy.apply(x, t, mask, weight, rank * v_local, ce, group, size)[
            0
        ]
    if reduction == "none":
        return per.reshape(target.shape)
    den = mask.sum() if weight is None else target_weight(weight, t, mask).sum()
    return finish_sum(per.sum(), den, reduction, normalizer)
