"""Connectionist temporal classification: ``ctc_loss``, torch's name, arguments, defaults
and values, computed by torch's own kernel (``aten._ctc_loss``, the forward-backward
algorithm), with losskit's rules around it.

What losskit adds to torch's kernel:

* every argument is checked first, with a named error, where torch asserts, crashes or
  silently computes garbage: an input length above ``T``, a negative target length or one
  above the padded targets' width, concatenated targets whose count is not the sum of the
  target lengths, a ``blank`` outside ``0..C-1``, a target label out of range or equal to
  ``blank``;
* the gradient is the derivative of the loss with respect to ``log_probs`` itself. torch's
  kernel returns ``p - gamma`` (``p = exp(log_probs)``, ``gamma`` the posterior of each
  frame's label), which is the gradient with respect to the logits *before* a
  ``log_softmax`` and is exact only through one; losskit returns ``-gamma``. Through a
  ``log_softmax`` (the usual ``F.ctc_loss(logits.log_softmax(2), ...)``) the two agree
  exactly, since ``log_softmax``'s backward removes any multiple of ``p``;
* an impossible alignment (an input too short for its target) has the loss ``inf`` as in
  torch, but a zero gradient (torch: NaN), and ``zero_infinity=True`` makes its loss 0;
* an empty batch (``N = 0``) or an empty input (``T = 0``) gives the defined value (the
  empty mean 0; an empty input aligns only an empty target) instead of torch's error.

On the CPU, with 64 classes or more of which the batch's targets name at most half, the kernel
runs on those classes alone: ``log_probs`` gathered to ``(T, N, K)`` (``K`` = blank plus
the most distinct labels of one sample), the labels renumbered, and the gradient scattered
back. The kernel reads ``log_probs`` only at each sample's labels, so the values are
torch's bit for bit; the gradient of a class no label names is exactly 0 (the derivative
is), and torch's backward, whose last pass is over every class, costs ``K / C`` of its
time there (``(400, 8, 1000)``, forward + backward on one thread: 32 ms, against 50 on
every class and torch's 44).

The kernel is called through two ``torch.library`` operators under ``torch.compile``
(its own output's shape depends on the target lengths, which a traced graph cannot hold);
the first derivative is computed by hand, so a second derivative raises.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import _checks as C
from .._reduction import compute_dtype, reduce
from ._math import exp_of_difference
from ._rowstats import Function, check_first_order, vmap_by_loop

__all__ = ["ctc_loss"]

NAME = "ctc_loss"
SECOND_ORDER_HINT = (
    "the CTC gradient comes from torch's forward-backward kernel, which has no derivative "
    "of its own."
)


# --------------------------------------------------------------------------- the kernel
def _width(targets: Tensor) -> int:
    """Static width of the extended label sequence: 2 S + 1 for the targets' capacity."""
    return 2 * (targets.shape[-1] if targets.dim() == 2 else targets.shape[0]) + 1


_BLOCK = 1 << 18  # elements of p = exp(log_probs) held at a time by the gradient's fix


def _fix_gradient(raw, grad, lp, il, nll):
    """torch's kernel gradient ``g (p - gamma)`` made the derivative with respect to
    ``log_probs``: ``-g gamma``, the ``g p`` term removed on the counted frames of the
    samples whose loss is finite (an infinite one's is 0; torch's would be NaN). In place
    on ``raw``, one pass, ``p`` made block by block of frames."""
    finite = torch.isfinite(nll)  # an infinite sample's gradient: 0 from the kernel
    frames = torch.arange(lp.shape[0], device=lp.device)[:, None] < il.to(lp.device)[None, :]
    scale = torch.where(frames & finite[None, :], grad, 0.0).unsqueeze(-1)
    step = max(1, _BLOCK // max(1, lp[0].numel()))  # frames per block: p one block at a time
    p = torch.empty_like(lp[:step])  # one buffer for every block
    for t0 in range(0, lp.shape[0], step):
        block = lp[t0 : t0 + step]
        p_block = exp_of_difference(block, out=p[: block.shape[0]])
        raw[t0 : t0 + step].addcmul_(p_block, scale[t0 : t0 + step], value=-1.0)
    return raw


_FEW_FROM = 64  # classes: fewer, and the kernel runs on all of them


def _classes(targets, tl, c, blank):
    """The classes the batch names, per sample, when they are at most half of ``c``
    (else ``None``): ``(cls, labels, keep)`` with ``cls (N, K)`` the classes of the
    compressed columns (blank first, then the sample's labels, then unnamed classes as
    filler), ``labels`` the targets renumbered to those columns (blank is 0) and ``keep
    (N, K)`` true on the named ones. CPU only: ``K`` is read on the host. Below
    ``_FEW_FROM`` classes it is not tried: finding the named classes costs about 0.2 ms a
    forward + backward even where they turn out too many (100 x 32 x 29: 6.98 against
    6.78 ms), and the most a few columns fewer can save is small (50 x 655 x 32 with 22
    named, run on those: 37.4 against 38.1 ms)."""
    if c < _FEW_FROM:
        return None
    n = tl.shape[0]
    if targets.dim() == 2:
        counted = torch.arange(targets.shape[1])[None, :] < tl[:, None]
        labels = torch.where(counted, targets, blank)
        rows = torch.arange(n)[:, None].expand_as(labels)
    else:
        labels = targets
        rows = torch.repeat_interleave(torch.arange(n), tl, output_size=targets.shape[0])
    named = torch.zeros(n, c, dtype=torch.bool)
    named[rows, labels] = True
    named[:, blank] = True
    count = named.sum(1)
    k = int(count.max())
    if 2 * k > c:
        return None
    every = torch.arange(c)
    key = (~named).long() * (2 * c) + (every != blank).long() * c + every
    order = key.argsort(1)
    column = torch.empty_like(order).scatter_(1, order, every.expand(n, c))
    cls = order[:, :k].contiguous()
    keep = torch.arange(k)[None, :] < count[:, None]
    return cls, column[rows, labels], keep


def _gather_classes(lp, cls):
    return lp.gather(2, cls.unsqueeze(0).expand(lp.shape[0], *cls.shape))


@torch.library.custom_op("losskit::ctc_forward", mutates_args=())
def _ctc_forward_op(
    lp: Tensor, targets: Tensor, il: Tensor, tl: Tensor, blank: int
) -> tuple[Tensor, Tensor]:
    """torch's kernel for ``torch.compile``: the forward variables padded to a width known
    from the shapes (``2 S + 1``), so that the traced graph has static shapes."""
    nll, alpha = torch._ctc_loss(lp, targets, il, tl, blank, False)
    width = _width(targets)
    if alpha.shape[2] == width:
        return nll, alpha
    padded = alpha.new_full((*alpha.shape[:2], width), -math.inf)
    padded[..., : alpha.shape[2]] = alpha
    return nll, padded


@_ctc_forward_op.register_fake
def _(lp, targets, il, tl, blank):
    return lp.new_empty(lp.shape[1]), lp.new_empty(lp.shape[1], lp.shape[0], _width(targets))


@torch.library.custom_op("losskit::ctc_backward", mutates_args=())
def _ctc_backward_op(
    grad: Tensor,
    lp: Tensor,
    targets: Tensor,
    il: Tensor,
    tl: Tensor,
    nll: Tensor,
    alpha: Tensor,
    blank: int,
) -> Tensor:
    k = 2 * int(tl.max()) + 1 if tl.numel() else 1
    return _backward(grad, lp, targets, il, tl, nll, alpha[..., :k].contiguous(), blank)


@_ctc_backward_op.register_fake
def _(grad, lp, targets, il, tl, nll, alpha, blank):
    return torch.empty_like(lp)


def _backward(grad, lp, targets, il, tl, nll, alpha, blank):
    # zero_infinity here only zeroes an infinite sample's gradient (torch's would be NaN).
    # The Tensor-lengths overload named: the overload packet tries the IntArrayRef one
    # first, whose failure formats the lengths tensors into its error message (ms per call)
    raw = torch.ops.aten._ctc_loss_backward.Tensor(
        grad, lp, targets, il, tl, nll, alpha, blank, True
    )
    return _fix_gradient(raw, grad, lp, il, nll)


def _eager_backward(grad, lp, targets, il, tl, nll, alpha, blank):
    """The gradient on the forward's columns: all classes, or the named ones scattered
    back (the same choice as the forward's, made again from the same targets)."""
    few = _classes(targets, tl, lp.shape[2], blank) if lp.device.type == "cpu" else None
    if few is None:
        return _backward(grad, lp, targets, il, tl, nll, alpha, blank)
    cls, labels, keep = few
    part = _backward(grad, _gather_classes(lp, cls), labels, il, tl, nll, alpha, 0)
    part.mul_(keep)  # the filler columns: exactly 0 (the fix leaves p g - p g there)
    out = torch.zeros_like(lp)
    return out.scatter_(2, cls.unsqueeze(0).expand_as(part), part)


class _CTC(Function):
    """Per-sample negative log-likelihood ``(N,)`` of ``lp (T, N, C)``; differentiable once
    in ``lp``. Under ``torch.func.vmap`` each element of the batch runs on its own."""

    @staticmethod
    def forward(lp, targets, il, tl, blank):
        with torch.no_grad():
            if torch.compiler.is_compiling() or lp.is_meta:  # shapes only: the operators'
                return _ctc_forward_op(lp, targets, il, tl, blank)  # fake kernels
            if lp.device.type == "cpu":
                few = _classes(targets, tl, lp.shape[2], blank)
                if few is not None:  # the named classes alone
                    cls, labels, _ = few
                    return torch._ctc_loss(_gather_classes(lp, cls), labels, il, tl, 0, False)
            return torch._ctc_loss(lp, targets, il, tl, blank, False)

    @staticmethod
    def setup_context(ctx, inputs, output):
        lp, targets, il, tl, blank = inputs
        nll, alpha = output
        ctx.mark_non_differentiable(alpha)
        # alpha's gradient is never read: not materialized as a (N, T, 2 S + 1) zero tensor
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(lp, targets, il, tl, nll, alpha)
        ctx.blank = blank

    @staticmethod
    def backward(ctx, grad, _):
        check_first_order(NAME, SECOND_ORDER_HINT)
        lp, targets, il, tl, nll, alpha = ctx.saved_tensors
        if grad is None:  # not materialized: nothing reached the loss
            return None, None, None, None, None
        with torch.no_grad():
            if torch.compiler.is_compiling() or lp.is_meta:
                g = _ctc_backward_op(grad, lp, targets, il, tl, nll, alpha, ctx.blank)
            else:
                g = _eager_backward(grad.contiguous(), lp, targets, il, tl, nll, alpha, ctx.blank)
        return g, None, None, None, None

    @staticmethod
    def vmap(info, in_dims, *args):
        return vmap_by_loop(_CTC.apply, info, in_dims, *args)


# --------------------------------------------------------------------------- checks
def _lengths(arg, value, n, device):
    """A lengths argument as an int64 tensor of ``n`` entries (``n = None``: unbatched,
    one length)."""
    want = "(N,)" if n is not None else "a number or shape ()"
    if isinstance(value, Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            C.fail(
                NAME,
                f"{arg} must hold integer lengths, got {C.describe(value)}.",
                f"cast it with {arg}.long().",
                cls=C.LossTypeError,
            )
        t = value
    elif isinstance(value, (list, tuple)) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        items = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            C.fail(
                NAME,
                f"{arg} must be a tensor or a sequence of ints, got {value!r}.",
                cls=C.LossTypeError,
            )
        t = torch.tensor(value, dtype=torch.long)
    else:
        C.fail(
            NAME,
            f"{arg} must be a tensor or a sequence of ints, got {type(value).__name__}.",
            cls=C.LossTypeError,
        )
    if n is None:
        if t.numel() != 1 or t.dim() > 1:
            C.fail(
                NAME,
                f"{arg} of an unbatched input (T, C) must be {want}, got shape {tuple(t.shape)}.",
            )
        return t.reshape(1).long()
    if tuple(t.shape) != (n,):
        C.fail(
            NAME,
            f"{arg} must hold one length per sample, shape ({n},) for log_probs of batch "
            f"{n}, got shape {tuple(t.shape)}.",
            "log_probs is (T, N, C): time first, the batch second.",
        )
    return t.long()


def _bounds(t: Tensor) -> tuple[int, int]:
    """The least and largest entry of an integer tensor, read on the host (0, 0 when empty)."""
    if t.numel() == 0:
        return 0, 0
    lo, hi = torch.aminmax(t)
    return int(lo), int(hi)


def _check_values(lp, targets, il, tl, blank, padded):
    """Value checks: the lengths and the labels they count (reads the data)."""
    if not C.checks_enabled():
        return
    t_max, n, c = lp.shape
    with torch.no_grad():
        il_c, tl_c = il.cpu(), tl.cpu()
        # the bounds in one reduction each (the messages below name the bad values)
        il_lo, il_hi = _bounds(il_c)
        tl_lo, tl_hi = _bounds(tl_c)
        if il_lo < 0 or il_hi > t_max:
            bad = il_c[(il_c < 0) | (il_c > t_max)]
            C.fail(
                NAME,
                f"input_lengths must lie in 0..{t_max} (T, the frames of log_probs), found "
                f"{C.format_values(bad.tolist())} ({bad.numel()} of {n} outside).",
                "log_probs is (T, N, C): time first; an input length counts its frames.",
            )
        if tl_lo < 0:
            bad = tl_c[tl_c < 0]
            C.fail(
                NAME,
                f"target_lengths must be >= 0, found {C.format_values(bad.tolist())}.",
            )
        if padded:
            s = targets.shape[1]
            if tl_hi > s:
                bad = tl_c[tl_c > s]
                C.fail(
                    NAME,
                    f"target_lengths must be at most {s} (the width of the padded targets "
                    f"(N, S)), found {C.format_values(bad.tolist())}.",
                )
            counted = torch.arange(s)[None, :] < tl_c[:, None]
            every = targets.detach().cpu()
            # few ops when all is well (no boolean index): the uncounted padding read as a
            # valid label, then no label out of range or blank; the messages below count
            # and name the bad ones
            if c > 1:
                valid = torch.where(counted, every, 1 if blank == 0 else 0)
                lo, hi = _bounds(valid)
                if lo >= 0 and hi < c and not bool((valid == blank).any()):
                    return
            labels = every[counted]
        else:
            total = int(tl_c.sum())
            if total != targets.shape[0]:
                C.fail(
                    NAME,
                    f"concatenated targets hold {targets.shape[0]} labels, but target_lengths "
                    f"sum to {total}.",
                    "pass the labels of every sample one after the other (1-D), or padded "
                    "targets (N, S).",
                )
            labels = targets.detach().cpu()
        if labels.numel() == 0:
            return
        out = (labels < 0) | (labels >= c)
        if bool(out.any()):
            values = torch.unique(labels[out]).tolist()
            C.fail(
                NAME,
                f"targets hold label {C.format_values(values)}, but log_probs has {c} classes "
                f"(valid 0..{c - 1}); {int(out.sum())} of {labels.numel()} counted labels out "
                "of range.",
                "labels look 1-based with blank=0: keep them, and give log_probs C = "
                "max label + 1 classes."
                if labels.min() >= 1
                else None,
            )
        is_blank = labels == blank
        if bool(is_blank.any()):
            C.fail(
                NAME,
                f"targets hold the blank label {blank} ({int(is_blank.sum())} of "
                f"{labels.numel()} counted labels): blank marks 'no label' in an alignment "
                "and cannot be a target.",
                "shift the labels past blank (blank=0: labels 1..C-1), or choose another "
                "blank= index; padding after each target length is not read.",
            )


# --------------------------------------------------------------------------- the loss
def ctc_loss(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    *,
    blank=0,
    reduction="mean",
    zero_infinity=False,
    normalizer=None,
):
    r"""Connectionist temporal classification loss, as ``torch.nn.functional.ctc_loss``.

    For each sample ``n``, the loss is the negative log-probability of its target
    ``y_n`` (``S_n = target_lengths[n]`` labels) summed over every alignment of its
    ``T_n = input_lengths[n]`` frames that collapses to it (repeated labels merged, then
    blanks removed), computed by the forward algorithm:

    .. math::
        \ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_n)} \prod_{t=1}^{T_n}
                 p_{t, n, \pi_t}, \qquad
        \text{mean} = \frac{1}{N} \sum_n \frac{\ell_n}{\max(S_n, 1)}

    ``"mean"`` divides each loss by its target length, then averages over the batch (as
    torch does); ``"sum"`` adds the losses; ``"none"`` gives ``ell_n``. An impossible
    alignment (``T_n`` shorter than ``S_n`` plus its repeated labels) has the loss
    ``inf`` with a zero gradient; ``zero_infinity=True`` makes it 0.

    The gradient is the derivative with respect to ``log_probs`` (torch's kernel returns
    the gradient with respect to the logits of a ``log_softmax`` instead; the two agree
    through one). Checks: input lengths in ``0..T``, target lengths in ``0..S`` (padded)
    or summing to the number of concatenated labels, ``blank`` in ``0..C-1``, and no
    counted label out of range or equal to ``blank`` (the lengths and labels are value
    checks). Differentiable once.

    Args:
        log_probs: log-probabilities ``(T, N, C)`` (time first, as torch), or ``(T, C)``
            unbatched, e.g. ``logits.log_softmax(2)``; floating.
        targets: labels padded ``(N, S)`` or concatenated ``(sum(target_lengths),)``
            (``(S,)`` unbatched), any integer dtype; padding after each length is not read.
        input_lengths: frames of each sample ``(N,)``, a tensor or a sequence of ints.
        target_lengths: labels of each sample ``(N,)``, a tensor or a sequence of ints.
        blank: the blank label. Default: ``0``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        zero_infinity: an infinite loss (and its gradient) becomes 0. Default: ``False``.
        normalizer: with ``"mean"``, divide ``sum(ell_n / max(S_n, 1))`` by this
            instead of ``N``.

    Shape:
        log_probs ``(T, N, C)``, targets ``(N, S)`` or ``(sum(S_n),)``, lengths ``(N,)``;
        output scalar, or ``(N,)`` with ``reduction="none"`` (``()`` unbatched).

    Example:
        >>> import torch, losskit.functional as LF
        >>> # 2 frames, classes (blank, a, b): the target "a" aligns as "a-", "-a" or "aa"
        >>> p = torch.tensor([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1]])
        >>> LF.ctc_loss(p.log(), torch.tensor([1]), 2, 1, reduction="sum")
        tensor(0.6733)
        >>> -torch.log(p[0, 1] * p[1, 0] + p[0, 0] * p[1, 1] + p[0, 1] * p[1, 1])
        tensor(0.6733)

    References:
        Graves et al., "Connectionist Temporal Classification: Labelling Unsegmented
        Sequence Data with Recurrent Neural Networks", ICML 2006,
        https://doi.org/10.1145/1143844.1143891
    """
    C.check_call(
        NAME,
        log_probs,
        targets,
        reduction=reduction,
        normalizer=normalizer,
        input_name="log_probs",
    )
    if log_probs.dim() not in (2, 3):
        C.fail(
            NAME,
            f"log_probs must be (T, N, C), or (T, C) unbatched, got shape "
            f"{tuple(log_probs.shape)}.",
            "time first, then the batch: a (N, T, C) model output is output.transpose(0, 1)."
            if log_probs.dim() == 3
            else None,
        )
    C.check_integer(NAME, "targets", targets, what="labels")
    if isinstance(blank, bool) or not isinstance(blank, int):
        C.fail(NAME, f"blank must be an int, got {blank!r}.", cls=C.LossTypeError)
    if not isinstance(zero_infinity, bool):
        C.fail(
            NAME,
            f"zero_infinity must be True or False, got {zero_infinity!r}.",
            cls=C.LossTypeError,
        )
    unbatched = log_probs.dim() == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    t_max, n, c = lp.shape
    if not 0 <= blank < c:
        C.fail(
            NAME,
            f"blank={blank} is not a class of log_probs, which has {c} (valid 0..{c - 1}).",
        )
    if unbatched:
        if targets.dim() != 1:
            C.fail(
                NAME,
                f"targets of an unbatched input (T, C) must be (S,), got shape "
                f"{tuple(targets.shape)}.",
            )
        y = targets.unsqueeze(0)
        il = _lengths("input_lengths", input_lengths, None, lp.device)
        tl = _lengths("target_lengths", target_lengths, None, lp.device)
    else:
        if targets.dim() == 2 and targets.shape[0] != n:
            C.fail(
                NAME,
                f"padded targets (N, S) must have N = {n} rows (the batch of log_probs), got "
                f"shape {tuple(targets.shape)}.",
            )
        if targets.dim() not in (1, 2):
            C.fail(
                NAME,
                f"targets must be padded (N, S) or concatenated (sum(target_lengths),), got "
                f"shape {tuple(targets.shape)}.",
            )
        y = targets
        il = _lengths("input_lengths", input_lengths, n, lp.device)
        tl = _lengths("target_lengths", target_lengths, n, lp.device)
    y = y.long()
    _check_values(lp, y, il, tl, blank, padded=y.dim() == 2)
    dtype = compute_dtype(log_probs.dtype)
    lp = lp.to(dtype)
    if t_max == 0 or n == 0:  # torch refuses an empty log_probs
        # an empty input aligns only an empty target; connected to the graph
        nll = torch.where(tl.to(lp.device) == 0, 0.0, math.inf).to(dtype) + lp.sum() * 0
    else:
        nll = _CTC.apply(lp, y, il, tl, blank)[0]
    if zero_infinity:
        nll = torch.where(torch.isinf(nll), torch.zeros((), dtype=dtype, device=nll.device), nll)
    if unbatched:
        nll = nll.reshape(())
    if reduction == "none":
        return nll
    if reduction == "sum":
        return reduce(nll, "sum")
    per_label = nll / tl.to(device=nll.device, dtype=dtype).clamp(min=1).reshape(nll.shape)
    return reduce(per_label, "mean", normalizer=normalizer)
