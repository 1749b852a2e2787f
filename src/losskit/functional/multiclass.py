"""Multi-class losses: softmax over a class dimension, class-index or probability targets.

Input ``(N, C)``, ``(N, C, d1, ..., dk)`` (segmentation maps: no permuted copy needed) or
torch's unbatched ``(C,)``. Targets: class indices ``(N, d1, ..., dk)`` of any integer
dtype, or probabilities of the input's shape (``target_type="auto" | "index" | "probs"``).

One weighted-mean rule for both target forms: ``"mean"`` divides the summed (class
weighted) loss by the summed weight of the counted targets, ``sum_i w[y_i]`` for indices
and ``sum_i sum_c w_c y_ic`` for probabilities, so a one-hot probability target gives
exactly the loss of its index. (torch divides probability targets by N instead.)
Targets equal to ``ignore_index`` are not counted; if none is counted, the mean is 0.0
with a zero gradient (torch returns NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF

from .. import _checks as C
from .. import kernels
from .._reduction import UNCAST, compute_dtype, finish_sum, reduce
from . import _aten
from ._classes import Classes, prepare_classes
from ._common import finite_on_cpu
from ._fused import eager, fused, small
from ._math import dot, exp_of_difference_, q_log_p

__all__ = [
    "cross_entropy",
    "nll_loss",
    "softmax_focal_loss",
    "symmetric_cross_entropy",
    "reverse_cross_entropy",
    "categorical_cross_entropy",
]


def _gather(t: torch.Tensor, index: torch.Tensor, dim: int) -> torch.Tensor:
    return t.gather(dim, index.unsqueeze(dim)).squeeze(dim)


def _safe_index(c: Classes, mask: torch.Tensor | None) -> torch.Tensor:
    """Class indices with ignored targets replaced by 0, so that gathers stay in range."""
    return c.target if mask is None else torch.where(mask, c.target, 0)


def _sample_weight(c: Classes, mask: torch.Tensor | None) -> torch.Tensor | None:
    """Weight of each counted target: ``w[y_i]`` for indices, ``sum_c w_c y_ic`` for probs."""
    if c.weight is None:
        return None
    if c.kind == "index":
        return c.weight[_safe_index(c, mask)]
    return (c.class_view(c.weight) * c.target).sum(c.class_dim)


def _ce_per_sample(c: Classes, mask, label_smoothing: float, ignore_index: int):
    """Per-sample cross entropy with torch's semantics (class weight already applied)."""
    if c.kind == "index":
        return TF.cross_entropy(
            c.input,
            c.target,
            weight=c.weight,
            ignore_index=ignore_index,
            reduction="none",
            label_smoothing=label_smoothing,
        )
    logp = TF.log_softmax(c.input, dim=c.class_dim)
    y = c.target
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / c.num_classes
    if c.weight is not None:
        y = y * c.class_view(c.weight)
    return -q_log_p(y, logp).sum(c.class_dim)


def _z_term(c: Classes, z_loss: float) -> torch.Tensor:
    return z_loss * torch.logsumexp(c.input, dim=c.class_dim).square()


def _counted_weight(c: Classes, mask) -> torch.Tensor | int:
    """The mean's denominator: the summed weight of the counted targets (their number
    without a class weight)."""
    weight = _sample_weight(c, mask)
    if weight is None:
        if mask is None or c.all_counted:  # a number on the host: no tensor division
            return c.raw.numel() // c.num_classes
        return mask.sum()
    return weight.sum() if mask is None else torch.where(mask, weight, 0).sum()


def _torch_mean_is_ours(c: Classes, reduction, normalizer) -> bool:
    """torch's ``"mean"`` of index targets is losskit's here: no class weight (torch's
    weighted mean differs at weights' scale), no normalizer, nothing ignored, not empty
    (torch's NaN)."""
    return (
        reduction == "mean"
        and normalizer is None
        and c.weight is None
        and c.target.numel() > 0
        and c.all_counted
    )


def _finish_sum(total, reduction, c, mask, normalizer):
    """Finish a summed loss (class weight applied) over the counted weight."""
    return finish_sum(total, _counted_weight(c, mask), reduction, normalizer)


def _finish(per, reduction, c, mask, normalizer):
    """Finish a per-sample loss that already holds its class weight (torch's weighted,
    smoothed cross entropy is not one weight times one number)."""
    if mask is not None:
        per = torch.where(mask, per, torch.zeros((), dtype=per.dtype, device=per.device))
    if reduction == "none":
        return per
    return _finish_sum(per.sum(), reduction, c, mask, normalizer)


def _kernel_unsupported(c: Classes):
    """What the softmax kernel cannot do for this call (``None``: it can)."""
    if c.kind != "index":
        return "probability targets"
    if c.raw.dtype == torch.float64:
        return "float64 inputs"
    return None


def _softmax_kernel(c: Classes, ignore_index, reduction, normalizer, **options):
    from ..kernels.softmax import softmax_loss

    loss, den = softmax_loss(c.raw, c.target, weight=c.weight, ignore_index=ignore_index, **options)
    if reduction == "none":
        return loss
    return finish_sum(loss.sum(), den.sum(), reduction, normalizer)


def _prepare(loss, input, target, weight, ignore_index, reduction, normalizer, target_type, **kw):
    ignore_index = C.check_ignore_index(loss, ignore_index)
    c, mask = prepare_classes(
        loss,
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
        target_type=target_type,
        **kw,
    )
    if c.kind == "probs" and ignore_index != -100:
        C.refuse_ignore_index_on_probabilities(loss, ignore_index)
    return c, mask, ignore_index


def cross_entropy(
    input,
    target,
    *,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    target_type="auto",
    reduction="mean",
    normalizer=None,
    backend="auto",
):
    r"""Cross entropy on logits, as ``torch.nn.functional.cross_entropy``, plus ``z_loss``.

    For a class-index target ``y_i``, with ``p = softmax(x)`` over the class dimension,
    class weights ``w`` and label smoothing ``epsilon`` (torch's exact semantics):

    .. math::
        \ell_i = (1 - \epsilon)\, w_{y_i} (-\log p_{i, y_i})
                 + \frac{\epsilon}{C} \sum_c w_c (-\log p_{i,c})
                 + z \,(\operatorname{logsumexp}_c x_{i,c})^2, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    over the targets not equal to ``ignore_index``. For a probability target ``q``:
    ``\ell_i = -\sum_c w_c q'_{i,c} \log p_{i,c}`` with ``q' = q (1 - \epsilon) +
    \epsilon / C``, and the mean divides by ``\sum_i \sum_c w_c q_{i,c}`` (``N`` without
    a weight), so one-hot targets give the index loss exactly. The ``z_loss`` term (PaLM)
    is not class-weighted and shares the denominator.

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        target: class indices ``(N, d1, ..., dk)`` (``()`` for ``(C,)``), any integer
            dtype, or probabilities of the input's shape.
        weight: class weights ``(C,)``. Default: ``None``.
        ignore_index: a class index not counted (index targets). Default: ``-100``.
        label_smoothing: ``epsilon`` in [0, 1]. Default: ``0.0``.
        z_loss: coefficient of ``logsumexp^2``, ``>= 0``. Default: ``0.0``.
        target_type: ``"auto"`` (integer dtype: indices; floating of the input's shape:
            probabilities), ``"index"`` or ``"probs"``. Default: ``"auto"``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.
        backend: ``"auto"`` (the fused Triton kernel on CUDA when Triton imports and the
            options allow, else torch), ``"torch"`` or ``"triton"``. Default: ``"auto"``.

    Shape:
        input ``(N, C, *)``, target ``(N, *)`` or ``(N, C, *)``; output scalar, or
        ``(N, *)`` with ``reduction="none"`` (ignored targets give 0).

    Example:
        >>> import torch, losskit.functional as LF
        >>> pred = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
        >>> LF.cross_entropy(pred, torch.tensor([0, 1, 0]), weight=torch.tensor([1., 2.]))
        tensor(0.7398)
    """
    return cross_entropy_as(
        "cross_entropy",
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        target_type=target_type,
        reduction=reduction,
        normalizer=normalizer,
        backend=backend,
    )


def cross_entropy_as(
    name,
    input,
    target,
    *,
    weight,
    ignore_index,
    label_smoothing,
    z_loss,
    target_type,
    reduction,
    normalizer,
    backend="auto",
):
    """The cross entropy, its errors reported under ``name`` (for the losses built on it:
    ``softmax_focal_loss`` at gamma 0, linear cross entropy of given logits); not exported."""
    if (
        type(label_smoothing) in (float, int)
        and label_smoothing == 0
        and type(z_loss) in (float, int)
        and z_loss == 0
        and (target_type == "auto" or target_type == "index")
        and (backend == "auto" or backend == "torch")
        and _plain_cpu_call(input, target, weight, ignore_index, reduction, normalizer)
        and small(input)
        # the check itself (its message for a bad target); True: no target ignored (an
        # ignored row's NaN or inf would reach torch's log_softmax backward; losskit
        # masks those rows on the checked path)
        and C.check_class_indices(name, target, input.shape[1], ignore_index)
    ):
        return _aten.cross_entropy(input, target, ignore_index, reduction)
    ls = C.check_number(name, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    z = C.check_number(name, "z_loss", z_loss, low=0.0)
    c, mask, ii = _prepare(
        name,
        input,
        target,
        weight,
        ignore_index,
        reduction,
        normalizer,
        target_type,
        homogeneous=not z,
    )
    if kernels.select(name, backend, c.raw, _kernel_unsupported(c)):
        return _softmax_kernel(c, ii, reduction, normalizer, label_smoothing=ls, z_loss=z)
    if c.kind == "index" and not z and not _weight_needs_grad(c):
        return _index_cross_entropy(c, mask, reduction, normalizer, ls)
    if c.kind == "index" and not z and reduction != "none":
        # torch's fused sum, over the denominator of counted targets: the same value as
        # reducing the per-sample loss, with one pass less (torch's own mean where it is
        # that: no class weight, nothing ignored, not empty)
        red = "mean" if _torch_mean_is_ours(c, reduction, normalizer) else "sum"
        total = TF.cross_entropy(
            c.input, c.target, weight=c.weight, ignore_index=ii, reduction=red, label_smoothing=ls
        )
        return total if red == "mean" else _finish_sum(total, reduction, c, mask, normalizer)
    per = _ce_per_sample(c, mask, ls, ii)
    if z:
        per = per + _z_term(c, z)
    return _finish(per, reduction, c, mask, normalizer)


def _weight_needs_grad(c: Classes) -> bool:
    return c.weight is not None and c.weight.requires_grad


def _index_cross_entropy(c: Classes, mask, reduction, normalizer, ls=0.0):
    """Cross entropy of class indices, label smoothing ``ls`` too, without z-loss, in
    closed form: the value without a tape, the gradient ``s (softmax - q)`` in place on
    the softmax (or log-probabilities) the forward kept (see :class:`_IndexCE`). Class
    weights that require a gradient keep torch's path, which refuses them (this node
    would drop it)."""
    t = _safe_index(c, mask)
    cw = _sample_weight(c, mask)  # w[y_i], None without a class weight
    counted = None
    if mask is not None and not c.all_counted:
        counted = mask.to(c.input.dtype)
        cw = counted if cw is None else cw * counted
    smooth = _Smoothing(ls, c, counted) if ls else None
    cd = c.class_dim

    def node(count):
        return fused(
            _IndexCE(t, cw, cd, count, smooth), _IndexCEPlain(t, cw, cd, count, smooth), c.input
        )

    if reduction == "none":
        return node(None)
    if _torch_mean_is_ours(c, reduction, normalizer):  # the mean over a count on the host
        return node(c.target.numel())
    return _finish_sum(node(1), reduction, c, mask, normalizer)


class _Smoothing:
    """Label smoothing ``eps`` of an index target: the loss adds ``-(eps / C) rowc_i
    sum_c w_c log p_c`` to ``-(1 - eps) cw_i log p_t`` (torch's smoothed, weighted cross
    entropy; ``rowc``: 1 where the target is counted, 0 where ignored, ``None``: all 1;
    ``w``: the class weight, ``None``: 1)."""

    def __init__(self, eps, c: Classes, counted):
        self.eps, self.spread = eps, eps / c.num_classes
        self.rowc = counted
        self.w = None if c.weight is None else c.class_view(c.weight)
        self.total_w = c.num_classes if c.weight is None else c.weight.sum()

    def weighted_sum(self, t: torch.Tensor, cd: int) -> torch.Tensor:
        """``sum_c w_c t_c`` over the class dimension."""
        return t.sum(cd) if self.w is None else torch.mul(t, self.w).sum(cd)

    def per_sample(self, nlogp_t, cw, sum_logp):
        """The smoothed loss of each sample from ``-log p_t`` and ``sum_c w_c log p_c``."""
        target = nlogp_t.mul_(1.0 - self.eps)
        if cw is not None:
            target = target.mul_(cw)
        spread = sum_logp.mul_(-self.spread)
        if self.rowc is not None:
            spread = spread.mul_(self.rowc)
        return target.add_(spread)


class _IndexCEPlain:
    """``-sum_i cw_i log p_{i, t_i} / count`` (unreduced when ``count`` is ``None``), with
    its label smoothing, through autograd (second derivatives)."""

    def __init__(self, t, cw, cd, count=None, smooth=None):
        self.t, self.cw, self.cd, self.count, self.smooth = t, cw, cd, count, smooth

    def __call__(self, x):
        logp = TF.log_softmax(x, dim=self.cd)
        per = -_gather(logp, self.t, self.cd)
        if self.smooth is not None:
            per = self.smooth.per_sample(per, self.cw, self.smooth.weighted_sum(logp, self.cd))
        elif self.cw is not None:
            per = per * self.cw
        return per if self.count is None else per.sum() / self.count


class _IndexCE:
    """The cross entropy of class indices ``t``, ``-cw_i log p_{i, t_i}`` per row
    (``cw``: the class weight of the target, 0 where it is ignored; ``None``: 1),
    divided by ``count`` (``None``: unreduced), and its gradient
    ``s_i (p_i - onehot(t_i))`` with ``s_i = g cw_i / count``. With label smoothing
    (``smooth``, :class:`_Smoothing`) the loss adds ``-(eps / C) rowc_i sum_c w_c log
    p_c``, whose gradient is ``(eps / C) rowc_i (W p - w)`` (``W = sum_c w_c``): the
    backward scales ``p`` by ``s_i (1 - eps) cw_i + (eps / C) s_i rowc_i W``, scatters
    ``-s_i (1 - eps) cw_i`` at the targets and subtracts ``(eps / C) s_i rowc_i w`` (one
    pass more). ``sum_c w_c log p_c = sum_c w_c x_c - W lse`` takes one read of the
    logits, with ``lse = x_t - log p_t`` (the softmax route) or ``max + log S`` (maps).

    The forward keeps what makes ``p`` without another exponential, so the backward is
    one multiplication in place on that buffer (which becomes the gradient) and a
    scatter at the targets, where torch's takes a zero fill, a scatter and
    log_softmax_backward's exponential into a fresh result:

    * CPU, classes in the last dimension: torch's softmax (as fast as its log_softmax
      there) and ``log p_t`` of the targets alone; where a ``p_t`` is below the smallest
      normal number (a loss above about 87 in float32, where ``log p_t`` would lose
      digits or be ``-inf``), log_softmax's exact value.
    * CPU, maps (classes in dimension 1, where torch's softmax is twice as slow):
      ``e = exp(x - max)`` and its sum ``S`` over the classes; ``log p_t = (x_t - max) -
      log S``, log_softmax's own formula; the gradient is ``e s / S``.
    * elsewhere (no host read of ``p_t``): log_softmax, and its ``exp`` in place in the
      backward.

    A second backward through a retained graph recomputes the buffer."""

    def __init__(self, t, cw, cd, count, smooth=None):
        self.t, self.cw, self.cd, self.count, self.smooth = t, cw, cd, count, smooth

    def _probabilities(self, x):
        """``(buffer, log p_t, route, S, lse)``: see the class docstring (``lse``: the
        log-sum-exp of each row where the route has it without a pass, else ``None``)."""
        cd = self.cd
        if x.device.type != "cpu":
            logp = torch.log_softmax(x, cd)
            return logp, _gather(logp, self.t, cd), "log_softmax", None, None
        if cd == x.dim() - 1:
            p = torch.softmax(x, cd)
            p_t = _gather(p, self.t, cd)
            if not bool((p_t < torch.finfo(p_t.dtype).tiny).any()):
                return p, p_t.log_(), "softmax", None, None
            return p, _gather(torch.log_softmax(x, cd), self.t, cd), "softmax", None, None
        m = x.amax(cd, keepdim=True)
        e = exp_of_difference_(torch.sub(x, m))
        total = e.sum(cd, keepdim=True)
        log_total = total.log().squeeze(cd)
        m = m.squeeze(cd)
        # (x_t - max) - log S, log_softmax's own rounding (exact -log S at the max)
        logp_t = _gather(x, self.t, cd).sub_(m).sub_(log_total)
        return e, logp_t, "exp", total, log_total.add_(m)

    def _sum_logp(self, x, buf, logp_t, route, lse):
        """``sum_c w_c log p_c`` of each row (label smoothing)."""
        sm, cd = self.smooth, self.cd
        if route == "log_softmax":
            return sm.weighted_sum(buf, cd)
        if lse is None:  # lse = x_t - log p_t
            lse = _gather(x, self.t, cd).sub_(logp_t)
        return sm.weighted_sum(x, cd).sub_(lse * sm.total_w)

    def forward(self, x):
        buf, logp_t, route, total, lse = self._probabilities(x)
        if self.smooth is not None:
            sum_logp = self._sum_logp(x, buf, logp_t, route, lse)
            per = self.smooth.per_sample(logp_t.neg_(), self.cw, sum_logp)
            loss = per if self.count is None else per.sum().div_(self.count)
        elif self.count is None:
            loss = logp_t.neg_() if self.cw is None else logp_t.mul_(self.cw).neg_()
        elif self.cw is None:
            loss = logp_t.sum().neg_().div_(self.count)
        else:
            loss = dot(logp_t, self.cw).neg_().div_(self.count)
        return loss, [buf, x, route, total]

    def backward(self, state, grad, needs):
        cd, sm = self.cd, self.smooth
        buf, x, route, total = state
        state[0] = None  # the buffer becomes the gradient
        if buf is None:  # a retained graph's second backward
            buf, _, route, total, _ = self._probabilities(x)
        if route == "log_softmax":
            buf.exp_()
        s = grad if self.count is None else grad / self.count
        st = s if self.cw is None else s * self.cw  # the target's coefficient
        scale = st
        if sm is not None:
            row = s if sm.rowc is None else s * sm.rowc  # (eps / C) row (W p - w)
            st = st * (1.0 - sm.eps)
            scale = st + row * (sm.spread * sm.total_w)
        if scale.dim():
            scale, st = scale.unsqueeze(cd), st.unsqueeze(cd)
        tt = self.t.unsqueeze(cd)
        dx = buf.mul_(scale if total is None else scale / total)
        dx = dx.scatter_add_(cd, tt, st.neg().expand(tt.shape))
        if sm is not None:
            row = row * sm.spread
            row = row.unsqueeze(cd) if row.dim() else row
            dx = dx.sub_(row) if sm.w is None else dx.addcmul_(row, sm.w, value=-1.0)
        return (dx,)


_INT64 = 1 << 63  # the kernels' ignore_index is an int64


def _plain_cpu_call(input, target, weight, ignore_index, reduction, normalizer) -> bool:
    """The common class-index call on CPU: ``(N, C, *)`` float32/float64 input, ``(N, *)``
    int64 target, no class weight or normalizer, a mean or a sum, in eager mode, which
    may run torch's kernel (:mod:`._aten`). ``nll_loss`` lets the kernel check the
    targets (on CPU it raises before returning; losskit's check then runs for the
    message); cross entropy runs losskit's check first. Anything else takes the checked
    path."""
    return (
        weight is None
        and normalizer is None
        and (reduction == "mean" or reduction == "sum")
        and type(ignore_index) is int
        and -_INT64 <= ignore_index < _INT64
        and type(input) is torch.Tensor
        and type(target) is torch.Tensor
        and input.is_cpu
        and target.is_cpu
        and target.dtype is torch.int64
        and input.dtype in UNCAST
        and input.numel() > 0
        and _index_shaped(input, target)
        and eager()
    )


def _index_shaped(input, target) -> bool:
    """``target`` has the class indices' shape of ``input``: ``(N,)`` for ``(N, C)``,
    ``(N, d1, ...)`` for ``(N, C, d1, ...)``."""
    if input.dim() == 2:
        # shape[0], not len(): Tensor.__len__ is a Python method (1.9 against 0.3 us)
        return target.dim() == 1 and target.shape[0] == input.shape[0]
    return input.dim() > 2 and target.shape == input.shape[:1] + input.shape[2:]


def nll_loss(input, target, *, weight=None, ignore_index=-100, reduction="mean", normalizer=None):
    r"""Negative log-likelihood of log-probabilities, as ``torch.nn.functional.nll_loss``.

    .. math::
        \ell_i = -w_{y_i}\, x_{i, y_i}, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    over targets not equal to ``ignore_index``. ``nll_loss(log_softmax(x), y)`` equals
    ``cross_entropy(x, y)``. The K-dim form ``(N, C, d1, ..., dk)`` is what older torch
    called ``NLLLoss2d``.

    Args:
        input: log-probabilities ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        target: class indices ``(N, d1, ..., dk)``, any integer dtype.
        weight, ignore_index, reduction, normalizer: as :func:`cross_entropy`.

    Shape:
        input ``(N, C, *)``, target ``(N, *)``; output scalar, or ``(N, *)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> p = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]])
        >>> LF.nll_loss(p.log(), torch.tensor([0, 1, 2]))
        tensor(1.4229)
    """
    if _plain_cpu_call(input, target, weight, ignore_index, reduction, normalizer):
        out = _aten.nll_loss_cpu(input, target, ignore_index, reduction)
        if out is not None:
            return out
    name = "nll_loss"
    c, mask, ii = _prepare(
        name,
        input,
        target,
        weight,
        ignore_index,
        reduction,
        normalizer,
        "index",
        input_name="input",
        allow_probs=False,
    )
    if reduction != "none":
        red = "mean" if _torch_mean_is_ours(c, reduction, normalizer) else "sum"
        total = TF.nll_loss(c.input, c.target, weight=c.weight, ignore_index=ii, reduction=red)
        return total if red == "mean" else _finish_sum(total, reduction, c, mask, normalizer)
    per = TF.nll_loss(c.input, c.target, weight=c.weight, ignore_index=ii, reduction="none")
    return _finish(per, reduction, c, mask, normalizer)


def _log_one_minus_softmax(x: torch.Tensor, logp: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(1 - p_c)`` for every class, finite and with finite gradients.

    For the largest logit ``1 - p`` can round to 0, so it is the softmax mass of the
    other classes, ``logsumexp(x without x_max) - logsumexp(x)``; every other class has
    ``p <= 1/2``, where ``log1p(-p)`` is exact.
    """
    if x.shape[dim] == 1:  # one class: p = 1, so 1 - p = 0 and the loss is 0 anyway
        return torch.full_like(x, float("-inf")).detach()
    top = x.argmax(dim, keepdim=True)
    is_top = torch.zeros_like(x, dtype=torch.bool).scatter_(dim, top, True)
    rest = x.masked_fill(is_top, float("-inf"))
    # every other class masked (-inf): 1 - p = 0 exactly, and logsumexp's gradient over
    # all -inf inputs (0 / 0) must not reach them
    alone = torch.isneginf(rest).all(dim, keepdim=True)
    others = torch.logsumexp(torch.where(alone, torch.zeros_like(rest), rest), dim, keepdim=True)
    others = torch.where(alone, torch.full_like(others, float("-inf")), others)
    lse = torch.logsumexp(x, dim, keepdim=True)
    p_rest = torch.where(is_top, torch.zeros_like(logp), logp.exp())  # finite off-branch
    return torch.where(is_top, others - lse, torch.log1p(-p_rest))


def softmax_focal_loss(
    input,
    target,
    *,
    gamma=2.0,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    target_type="auto",
    reduction="mean",
    normalizer=None,
    backend="auto",
):
    r"""Softmax (multi-class) focal loss: cross entropy scaled by ``(1 - p_t)^gamma``.

    .. math::
        \ell_i = \sum_c w_c\, q_{i,c}\, (1 - p_{i,c})^\gamma\, (-\log p_{i,c}), \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    where ``q`` is the (smoothed) target: for an index target without smoothing,
    ``\ell_i = -w_{y_i} (1 - p_t)^\gamma \log p_t``. The mean counts only the targets not
    equal to ``ignore_index``, with class balancing through ``weight`` (the
    ``alpha`` of the binary form). ``gamma=0`` equals :func:`cross_entropy` exactly.
    ``(1 - p)^\gamma`` is ``exp(gamma * log(1 - p))`` with ``log(1 - p)`` computed from
    the logits, so logits of +-1e4 and every ``gamma >= 0`` give finite values and
    gradients.

    Args:
        gamma: focusing parameter, ``>= 0``. Default: ``2.0``.
        others: as :func:`cross_entropy`.

    Shape:
        as :func:`cross_entropy`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
        >>> LF.softmax_focal_loss(logits, torch.tensor([0, 2]), gamma=2.0)
        tensor(0.2062)

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
        https://arxiv.org/abs/1708.02002
    """
    name = "softmax_focal_loss"
    gamma = C.check_number(name, "gamma", gamma, low=0.0)
    ls = C.check_number(name, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    if gamma == 0.0:  # the identity, bit for bit
        return cross_entropy_as(
            name,
            input,
            target,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=ls,
            z_loss=0.0,
            target_type=target_type,
            reduction=reduction,
            normalizer=normalizer,
            backend=backend,
        )
    c, mask, ii = _prepare(
        name, input, target, weight, ignore_index, reduction, normalizer, target_type
    )
    if kernels.select(name, backend, c.raw, _kernel_unsupported(c)):
        from ..kernels.softmax import MODE_FOCAL

        return _softmax_kernel(
            c, ii, reduction, normalizer, mode=MODE_FOCAL, gamma=gamma, label_smoothing=ls
        )
    cd = c.class_dim
    if c.kind == "index" and not ls:
        # the target class alone: one exp per logit, the gradient in closed form
        t = _safe_index(c, mask)
        if _torch_mean_is_ours(c, reduction, normalizer):  # the mean in the node itself
            count = t.numel()
            rule, plain = _SoftmaxFocal(gamma, cd, count), _IndexFocalPlain(gamma, cd, count)
            return fused(rule, plain, c.input, t)
        per = fused(_SoftmaxFocal(gamma, cd), _IndexFocalPlain(gamma, cd), c.input, t)
        if c.weight is not None:
            per = per * c.weight[t]
        return _finish(per, reduction, c, mask, normalizer)
    if (
        not _weight_needs_grad(c)
        and not (c.kind == "probs" and c.target.requires_grad)
        and finite_on_cpu(c.input)
    ):
        # every class weighted (label smoothing, probability targets): the closed form
        return _all_class_focal(c, mask, gamma, ls, reduction, normalizer)
    focal_ce = _focal_ce(c.input, gamma, cd)
    if c.kind == "index":
        t = _safe_index(c, mask)
        per = _gather(focal_ce, t, cd)
        if c.weight is not None:
            per = per * c.weight[t]
        if ls:
            spread = focal_ce if c.weight is None else focal_ce * c.class_view(c.weight)
            per = (1.0 - ls) * per + (ls / c.num_classes) * spread.sum(cd)
    else:
        q = c.target
        if ls:
            q = q * (1.0 - ls) + ls / c.num_classes
        if c.weight is not None:
            q = q * c.class_view(c.weight)
        per = (q * focal_ce).sum(cd)
    return _finish(per, reduction, c, mask, normalizer)


def _focal_ce(x: torch.Tensor, gamma: float, cd: int) -> torch.Tensor:
    """``-(1 - p_c)^gamma log p_c`` for every class: the autograd definition."""
    logp = TF.log_softmax(x, dim=cd)
    # (1 - p)^gamma = exp(gamma * log(1 - p)), finite for every gamma >= 0
    # a class masked with a -inf logit has log p = -inf: clamp so that its zero upstream
    # gradient times log p stays 0 instead of NaN (the clamp passes it no gradient)
    finite_logp = logp.clamp_min(torch.finfo(logp.dtype).min)
    return -torch.exp(gamma * _log_one_minus_softmax(x, logp, cd)) * finite_logp


class _IndexFocalPlain:
    """The focal loss of each target class through autograd (second derivatives)."""

    def __init__(self, gamma, cd, count=None):
        self.gamma, self.cd, self.count = gamma, cd, count

    def __call__(self, x, t):
        per = _gather(_focal_ce(x, self.gamma, self.cd), t, self.cd)
        return per if self.count is None else per.sum() / self.count


class _SoftmaxFocal:
    """``-(1 - p_t)^gamma log p_t`` of the target class ``t`` alone, and its gradient
    ``g A (onehot_t - p)`` with ``A = -(1 - p_t)^gamma (1 + gamma p_t r)``, ``r = -log p_t
    / (1 - p_t)`` (``-> 1`` as ``p_t -> 1``).

    From ``e = exp(x - max)``, one exponential per logit, kept for the gradient (the
    softmax is ``e / sum(e)``), which the backward computes in place in ``e`` (a
    retained graph's second backward recomputes it). ``1 - p_t`` is the sum of ``e``
    over the other classes over the sum of all (the target's entry zeroed for that
    sum, not subtracted), so it is exact when ``p_t`` rounds to 1. With the mean (no
    weight, nothing ignored, no normalizer) the node returns the mean itself."""

    def __init__(self, gamma, cd, count=None):
        self.gamma, self.cd, self.count = gamma, cd, count  # count: the mean's

    def forward(self, x, t):
        cd, gamma = self.cd, self.gamma
        tt = t.unsqueeze(cd)
        if x.device.type == "cpu" and cd == x.dim() - 1:
            e, nlogp, q, p, total = self._softmax_route(x, tt, cd)
        else:
            e, nlogp, q, p, total = self._exp_route(x, tt, cd)
        focal = q.square() if gamma == 2.0 else q.pow(gamma)
        if self.count is None:
            loss = (focal * nlogp).squeeze(cd)
        else:
            loss = dot(focal, nlogp).div_(self.count)
        # r = -log p_t / (1 - p_t); where 1 - p_t underflows to 0, so does the focal term
        r = nlogp.div_(q.clamp_min(torch.finfo(x.dtype).tiny))
        # -A = (1 - p_t)^gamma (1 + gamma p_t r)
        a = torch.addcmul(torch.ones((), dtype=r.dtype), r, p, value=gamma).mul_(focal)
        return loss, [e, x, t, total, a, tt, q]

    @staticmethod
    def _exp_route(x, tt, cd):
        """``(e, -log p_t, 1 - p_t, p_t, total)`` from ``e = exp(x - max)`` (its target
        entries 0), ``p = e / total``."""
        m = x.amax(cd, keepdim=True)
        e = exp_of_difference_(torch.sub(x, m))
        e_t = e.gather(cd, tt)
        # the targets' entries stay 0 in e: the backward adds the whole target term (a
        # zero tensor as the source: torch's scatter of a scalar value is slower)
        others = e.scatter_(cd, tt, e_t.new_zeros(()).expand(tt.shape)).sum(cd, keepdim=True)
        total = others + e_t
        # log(total) = log1p(others + (e_t - 1)): exact where the target is a largest
        # logit (e_t - 1 = 0), where total - 1 = others can be far below eps
        log_total = e_t.sub(1.0).add_(others).log1p_()
        # -log p_t = (m - x_t) + log(total), capped where p_t = 0 (a -inf logit)
        nlogp = x.gather(cd, tt).sub_(m).neg_().add_(log_total).clamp_max_(torch.finfo(x.dtype).max)
        # 1 - p_t: others / total, no cancellation
        return e, nlogp, others.div_(total), e_t.div_(total), total

    @staticmethod
    def _softmax_route(x, tt, cd):
        """``(p, -log p_t, 1 - p_t, p_t, None)`` from torch's softmax (its target entries 0):
        classes in the last dimension on CPU, where its kernel's exponential is about
        twice as fast as ``torch.exp`` (measured 0.78 against 1.6 ms for ``exp(x - max)``
        at 1048 x 1000, one thread, torch 2.13, AMD EPYC). ``1 - p_t`` is the sum of the
        other classes' ``p``, ``-log p_t = -log1p(-(1 - p_t))`` where ``p_t >= 1/2`` (exact
        as ``p_t -> 1``) and ``-log p_t`` below; where a ``p_t`` is under the smallest
        normal number, log_softmax's exact value (as :class:`_IndexCE`)."""
        p = torch.softmax(x, cd)
        p_t = p.gather(cd, tt)
        others = p.scatter_(cd, tt, p_t.new_zeros(()).expand(tt.shape)).sum(cd, keepdim=True)
        info = torch.finfo(x.dtype)
        if bool((p_t < info.tiny).any()):
            nlogp = torch.log_softmax(x, cd).gather(cd, tt).neg_().clamp_max_(info.max)
        else:
            nlogp = torch.where(others <= 0.5, torch.log1p(-others), p_t.log()).neg_()
        return p, nlogp, others, p_t, None

    def backward(self, state, grad, needs):
        e, x, t, total, a, tt, rest = state
        state[0] = None  # e becomes the gradient
        if e is None:  # a retained graph's second backward
            e, _, _, total, a, tt, rest = self.forward(x, t)[1]
        ga = a * (grad.unsqueeze(self.cd) if self.count is None else grad / self.count)
        # dx = g A (onehot - p), p = e / total: e * (-g A / total) in place, the target's
        # entry (0 in e) g A (1 - p_t)
        dx = e.mul_(ga if total is None else ga.div(total))
        return dx.scatter_(self.cd, tt, ga.mul_(rest).neg_()), None


def _all_class_focal(c: Classes, mask, gamma, ls, reduction, normalizer):
    """The softmax focal loss whose target weighs every class (label smoothing of an
    index target, or probability targets), in closed form (:class:`_AllClassFocal`):
    finite logits on CPU in eager mode (the caller reads that)."""
    if c.kind == "index":
        counted = None
        t = _safe_index(c, mask)
        cw = _sample_weight(c, mask)
        if mask is not None and not c.all_counted:
            counted = mask.to(c.input.dtype)
            cw = counted if cw is None else cw * counted
        q = _IndexTargetWeights(t, cw, ls, c, counted)
    else:
        dense = c.target
        if ls:
            dense = dense * (1.0 - ls) + ls / c.num_classes
        if c.weight is not None:
            dense = dense * c.class_view(c.weight)
        q = _DenseTargetWeights(dense)
    cd = c.class_dim
    if c.kind == "index" and _torch_mean_is_ours(c, reduction, normalizer):
        count = c.target.numel()
        return fused(
            _AllClassFocal(gamma, cd, q, count), _AllClassFocalPlain(gamma, cd, q, count), c.input
        )
    if reduction == "none":
        return fused(_AllClassFocal(gamma, cd, q), _AllClassFocalPlain(gamma, cd, q), c.input)
    total = fused(_AllClassFocal(gamma, cd, q, 1), _AllClassFocalPlain(gamma, cd, q, 1), c.input)
    return _finish_sum(total, reduction, c, mask, normalizer)


class _IndexTargetWeights:
    """``Q_ic`` of a smoothed index target: ``(1 - eps) cw_i`` at the target class ``t_i``
    plus ``(eps / C) w_c rowc_i`` at every class (``cw``: the target's class weight, 0
    where ignored, ``None``: 1; ``rowc``: 1 where counted, ``None``: all)."""

    def __init__(self, t, cw, eps, c: Classes, rowc):
        self.t, self.cw, self.rowc = t, cw, rowc
        self.on_target, self.spread = 1.0 - eps, eps / c.num_classes
        self.w = None if c.weight is None else c.class_view(c.weight)

    def _row(self, v, cd):
        return v.unsqueeze(cd) if v.dim() else v

    def combine(self, f: torch.Tensor, cd: int) -> torch.Tensor:
        """``sum_c Q_ic f_ic`` of each row."""
        spread = (f if self.w is None else torch.mul(f, self.w)).sum(cd).mul_(self.spread)
        if self.rowc is not None:
            spread = spread.mul_(self.rowc)
        at_t = _gather(f, self.t, cd).mul_(self.on_target)
        if self.cw is not None:
            at_t = at_t.mul_(self.cw)
        return spread.add_(at_t)

    def weigh_(self, b: torch.Tensor, g: torch.Tensor, cd: int) -> torch.Tensor:
        """``g_i Q_ic b_ic`` in place in ``b`` (``g``: a scalar or one per row)."""
        tt = self.t.unsqueeze(cd)
        b_t = b.gather(cd, tt)
        row = g * self.spread if self.rowc is None else g * self.rowc * self.spread
        b = b.mul_(self._row(row, cd))
        if self.w is not None:
            b = b.mul_(self.w)
        at_t = g * self.on_target if self.cw is None else g * self.cw * self.on_target
        return b.scatter_add_(cd, tt, b_t.mul_(self._row(at_t, cd)))


class _DenseTargetWeights:
    """``Q``: a (smoothed, class-weighted) probability target of the input's shape."""

    def __init__(self, q):
        self.q = q

    def combine(self, f: torch.Tensor, cd: int) -> torch.Tensor:
        return torch.mul(f, self.q).sum(cd)

    def weigh_(self, b: torch.Tensor, g: torch.Tensor, cd: int) -> torch.Tensor:
        b = b.mul_(self.q)
        return b.mul_(g.unsqueeze(cd) if g.dim() else g)


class _AllClassFocalPlain:
    """``sum_c Q_c (-(1 - p_c)^gamma log p_c)`` per row through autograd (second
    derivatives), divided by ``count`` (``None``: unreduced)."""

    def __init__(self, gamma, cd, q, count=None):
        self.gamma, self.cd, self.q, self.count = gamma, cd, q, count

    def __call__(self, x):
        per = self.q.combine(_focal_ce(x, self.gamma, self.cd), self.cd)
        return per if self.count is None else per.sum() / self.count


class _AllClassFocal:
    """``l_i = sum_c Q_ic f_ic``, ``f_c = -(1 - p_c)^gamma log p_c``, over ``count``
    (``None``: unreduced), for finite logits, with the gradient in closed form:

        dl/dx_j = Q_j b_j - p_j sum_c Q_c b_c,
        b_c = p_c df/dp_c = (1 - p_c)^gamma (gamma p_c log p_c / (1 - p_c) - 1)

    (``b_c = (1 - p_c) (2 p_c log p_c - (1 - p_c))`` at gamma 2, no division; below,
    ``1 - p_c`` is floored at the smallest normal number, where ``p log p = 0`` too).

    ``e = exp(x - max)`` once; its sum without the largest entry gives ``1 - p`` of the
    largest class without cancellation (every other class has ``p <= 1/2``, where ``1 -
    p`` is exact), and ``log p = (x - max) - log1p(rest)``. The forward keeps ``p`` and
    ``b`` (the backward turns ``b`` into the gradient in place); a retained graph's
    second backward recomputes them."""

    def __init__(self, gamma, cd, q, count=None):
        self.gamma, self.cd, self.q, self.count = gamma, cd, q, count

    def forward(self, x):
        cd, gamma = self.cd, self.gamma
        m, top = x.max(cd, keepdim=True)
        logp = torch.sub(x, m)
        p = logp.exp()
        rest = p.scatter_(cd, top, 0.0).sum(cd, keepdim=True)  # the others' mass
        total = rest + 1.0
        logp = logp.sub_(rest.log1p())
        omp = torch.rsub(p.scatter_(cd, top, 1.0).div_(total), 1.0)
        omp = omp.scatter_(cd, top, rest.div_(total))  # 1 - p of the largest logit
        if gamma == 2.0:
            buf = omp.square()
            per = self.q.combine(buf.mul_(logp), cd).neg_()
            b = torch.mul(p, logp, out=buf).mul_(2.0).sub_(omp).mul_(omp)
        else:
            focal = omp.pow(gamma)
            buf = torch.mul(focal, logp)
            per = self.q.combine(buf, cd).neg_()
            b = (
                torch.mul(p, logp, out=buf)
                .mul_(gamma)
                .div_(omp.clamp_min_(torch.finfo(x.dtype).tiny))
            )
            b = b.sub_(1.0).mul_(focal)
        loss = per if self.count is None else per.sum().div_(self.count)
        return loss, [b, p, x]

    def backward(self, state, grad, needs):
        b, p, x = state
        state[0] = None  # b becomes the gradient
        if b is None:  # a retained graph's second backward
            b, p, _ = self.forward(x)[1]
        g = grad if self.count is None else grad / self.count
        qb = self.q.weigh_(b, g, self.cd)
        return (qb.addcmul_(p, qb.sum(self.cd, keepdim=True), value=-1.0),)


def _clipped_log_probabilities(x, dim, eps):
    """Keras's ``log(clip(x / sum(x), eps, 1 - eps))``: each row rescaled to sum to 1,
    then clipped. The clip is ``hardtanh``, whose gradient is 0 at the bounds themselves
    (``clamp``'s passes there), as the closed form's (:class:`_CategoricalCE`): one
    answer on every path."""
    p = x / x.sum(dim, keepdim=True).clamp_min(eps)
    return torch.log(TF.hardtanh(p, eps, 1.0 - eps))


class _CategoricalCEPlain:
    """``-sum_c q_c log(clip(x_c / sum(x)))`` per row, through autograd (second
    derivatives); summed over ``count`` (``None``: unreduced)."""

    def __init__(self, q, dim, eps, count):
        self.q, self.dim, self.eps, self.count = q, dim, eps, count

    def __call__(self, x):
        per = -(self.q * _clipped_log_probabilities(x, self.dim, self.eps)).sum(self.dim)
        return per if self.count is None else per.sum() / self.count


class _CategoricalCE:
    """Keras's categorical cross entropy of probabilities, ``-sum_c q_c log pc_c`` with
    ``pc = clip(x / S, eps, 1 - eps)``, ``S = max(sum_c x_c, eps)``, divided by ``count``
    (``None``: unreduced), and its gradient in closed form: with ``u_c`` = 1 where the
    clip is inactive (``eps < p_c < 1 - eps``), 0 where it holds,

        dl/dx_j = -q_j u_j / (S p_j) + [sum x >= eps] (sum_c q_c u_c) / S

    (``x_c / p_c = S`` where ``u_c = 1``). Forward: the row sums, ``p``, the clipped log
    and the row sums of ``q log pc``; backward: ``q / p`` in the log's buffer, zeroed
    where the clip holds (torch's hardtanh_backward: a select, so ``q / 0`` never
    reaches the result), ``sum_c q_c u_c`` as ``sum_c (u q / p)_c p_c``, then one scale
    and one shift per row in place: 5 passes against autograd's 9 (and its 8 saved or
    temporary tensors). At ``p_c`` exactly ``eps`` or ``1 - eps`` the clip holds (a zero
    gradient), on this path and the plain one alike."""

    def __init__(self, q, dim, eps, count):
        self.q, self.dim, self.eps, self.count = q, dim, eps, count

    def forward(self, x):
        dim, eps = self.dim, self.eps
        raw = x.sum(dim, keepdim=True)
        s = raw.clamp_min(eps)
        p = torch.div(x, s)
        buf = p.clamp(eps, 1.0 - eps).log_()
        per = torch.mul(self.q, buf).sum(dim).neg_()
        loss = per if self.count is None else per.sum().div_(self.count)
        return loss, [buf, p, s, raw >= eps, x]

    def backward(self, state, grad, needs):
        dim, eps = self.dim, self.eps
        buf, p, s, rescaled, x = state
        state[0] = None  # the buffer becomes the gradient
        if buf is None:  # a retained graph's second backward
            buf, p, s, rescaled, _ = self.forward(x)[1]
        w = torch.div(self.q, p, out=buf)  # q / p; where p = 0 the select below drops it
        w = torch.ops.aten.hardtanh_backward.grad_input(w, p, eps, 1.0 - eps, grad_input=w)
        g = grad if self.count is None else grad / self.count
        g = g.unsqueeze(dim) if g.dim() else g
        shift = torch.mul(w, p).sum(dim, keepdim=True).mul_(rescaled)  # sum_c q_c u_c
        scale = g / s
        return (w.mul_(scale.neg()).add_(shift.mul_(scale)),)


def _rce_per_sample(c: Classes, mask, log_zero: float) -> torch.Tensor:
    """Reverse cross entropy ``-sum_k p_k log q_k`` with ``log 0 := log_zero``."""
    logp = TF.log_softmax(c.input, dim=c.class_dim)
    if c.kind == "index":
        # one-hot q: log q_y = 0, log q_k = log_zero elsewhere -> -log_zero * (1 - p_y)
        one_minus_py = -torch.expm1(_gather(logp, _safe_index(c, mask), c.class_dim))
        per = -log_zero * one_minus_py
    else:
        log_q = torch.log(c.target).clamp_min(log_zero)
        per = -(logp.exp() * log_q).sum(c.class_dim)
    weight = _sample_weight(c, mask)
    return per if weight is None else per * weight


def reverse_cross_entropy(
    input,
    target,
    *,
    log_zero=-4.0,
    weight=None,
    ignore_index=-100,
    target_type="auto",
    reduction="mean",
    normalizer=None,
    backend="auto",
):
    r"""Reverse cross entropy (Wang et al. 2019): the cross entropy with prediction and
    label swapped, robust to noisy labels.

    .. math::
        \ell_i = -w_{y_i} \sum_k p_{i,k} \log q_{i,k}, \qquad \log 0 := A
        \quad(\texttt{log\_zero})

    For a one-hot (index) target this is ``-A (1 - p_y)``. ``A = -4`` is the paper's
    choice; it is an argument here, not a clamp hidden in the code. The mean divides by
    ``sum_i w_{y_i}`` over targets not equal to ``ignore_index``.

    Args:
        log_zero: the value ``A`` taken for ``log 0``, ``< 0``. Default: ``-4.0``.
        others: as :func:`cross_entropy`.

    Shape:
        as :func:`cross_entropy`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> y_pred = torch.tensor([[10.0, 5.0, -6.0], [8.0, 8.0, 8.0]])
        >>> LF.reverse_cross_entropy(y_pred, torch.tensor([0, 2]), reduction="none")
        tensor([0.0268, 2.6667])

    References:
        Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels",
        ICCV 2019, https://arxiv.org/abs/1908.06112
    """
    name = "reverse_cross_entropy"
    a = C.check_number(name, "log_zero", log_zero, high=0.0, high_open=True)
    c, mask, ii = _prepare(
        name, input, target, weight, ignore_index, reduction, normalizer, target_type
    )
    if kernels.select(name, backend, c.raw, _kernel_unsupported(c)):
        from ..kernels.softmax import MODE_SYMMETRIC

        return _softmax_kernel(
            c, ii, reduction, normalizer, mode=MODE_SYMMETRIC, alpha=0.0, beta=1.0, log_zero=a
        )
    return _finish(_rce_per_sample(c, mask, a), reduction, c, mask, normalizer)


def symmetric_cross_entropy(
    input,
    target,
    *,
    alpha=1.0,
    beta=1.0,
    log_zero=-4.0,
    weight=None,
    ignore_index=-100,
    target_type="auto",
    reduction="mean",
    normalizer=None,
    backend="auto",
):
    r"""Symmetric cross entropy (Wang et al. 2019): ``alpha * CE + beta * RCE``.

    .. math::
        \ell_i = \alpha\, \mathrm{CE}_i + \beta\, \mathrm{RCE}_i, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    with :func:`cross_entropy` and :func:`reverse_cross_entropy` per sample; ``weight``,
    ``ignore_index`` and the reduction apply to both terms. ``beta=0`` gives
    ``alpha * cross_entropy``.

    Args:
        alpha: weight of the cross entropy, ``>= 0``. Default: ``1.0``.
        beta: weight of the reverse cross entropy, ``>= 0``. Default: ``1.0``.
        log_zero: ``A``, the value taken for ``log 0`` in the RCE. Default: ``-4.0``.
        others: as :func:`cross_entropy`.

    Shape:
        as :func:`cross_entropy`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> y_pred = torch.tensor([[10.0, 5.0, -6.0], [8.0, 8.0, 8.0]])
        >>> LF.symmetric_cross_entropy(y_pred, torch.tensor([0, 2]))
        tensor(1.8994)

    References:
        Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels",
        ICCV 2019, https://arxiv.org/abs/1908.06112
    """
    name = "symmetric_cross_entropy"
    a = C.check_number(name, "alpha", alpha, low=0.0)
    b = C.check_number(name, "beta", beta, low=0.0)
    lz = C.check_number(name, "log_zero", log_zero, high=0.0, high_open=True)
    c, mask, ii = _prepare(
        name, input, target, weight, ignore_index, reduction, normalizer, target_type
    )
    if kernels.select(name, backend, c.raw, _kernel_unsupported(c)):
        from ..kernels.softmax import MODE_SYMMETRIC

        return _softmax_kernel(
            c, ii, reduction, normalizer, mode=MODE_SYMMETRIC, alpha=a, beta=b, log_zero=lz
        )
    per = a * _ce_per_sample(c, mask, 0.0, ii) + b * _rce_per_sample(c, mask, lz)
    return _finish(per, reduction, c, mask, normalizer)


def categorical_cross_entropy(
    input,
    target,
    *,
    from_logits=False,
    label_smoothing=0.0,
    dim=-1,
    eps=1e-7,
    reduction="mean",
    normalizer=None,
):
    r"""Categorical cross entropy in the Keras form: one-hot or probability targets along
    ``dim`` (default: the last), probabilities or logits as input.

    .. math::
        \ell_i = -\sum_c q'_{i,c} \log \hat p_{i,c}, \qquad
        \hat p = \operatorname{clip}\left(\frac{x}{\sum_c x_c}, \epsilon, 1 - \epsilon\right),
        \qquad q' = q (1 - s) + s / C

    With ``from_logits=True``, ``\log \hat p = \operatorname{log\_softmax}(x)`` (no clip).
    Rows of probabilities are rescaled to sum to 1 and clipped as Keras does, so their
    gradient is 0 where the clip is active.

    Args:
        input: probabilities in [0, 1] (checked; the error suggests ``from_logits=True``)
            or, with ``from_logits=True``, logits.
        target: one-hot or probabilities, the input's shape.
        from_logits: the input holds logits. Default: ``False``.
        label_smoothing: ``s`` in [0, 1]. Default: ``0.0``.
        dim: the class dimension. Default: ``-1``.
        eps: the clip of the probabilities, in (0, 0.5). Default: ``1e-7``.
        reduction, normalizer: as :func:`cross_entropy`.

    Shape:
        input ``(*, C, *)``, target the same; output scalar, or the input's shape without
        ``dim`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> y_hat = torch.tensor([[0.920, 0.080], [0.020, 0.80]])
        >>> y_true = torch.tensor([[1., 0.], [0., 1.]])
        >>> LF.categorical_cross_entropy(y_hat, y_true, reduction="none")
        tensor([0.0834, 0.0247])
    """
    name = "categorical_cross_entropy"
    ls = C.check_number(name, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    eps = C.check_number(name, "eps", eps, low=0.0, high=0.5, low_open=True, high_open=True)
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer)
    from_logits = C.check_bool(name, "from_logits", from_logits)
    if input.dim() == 0:
        C.fail(name, "input must have a class dimension, got a 0-dim tensor.")
    dim = C.check_dim(name, "dim", dim, input)
    if input.shape[dim] == 0:
        C.fail(name, f"input of shape {tuple(input.shape)} has 0 classes (dim={dim}).")
    if target.shape != input.shape:
        C.fail(
            name,
            f"target must be one-hot or probabilities of the input's shape "
            f"{tuple(input.shape)}, got {tuple(target.shape)}.",
            "for class indices use cross_entropy, or one-hot encode with "
            "torch.nn.functional.one_hot(target, C).float().",
        )
    dtype = compute_dtype(input.dtype)
    x = input.to(dtype)
    q = target.to(dtype)
    C.check_prob_rows(name, q, dim % input.dim(), target.dtype)
    if from_logits:
        logp = TF.log_softmax(x, dim=dim)
    else:
        C.check_in_unit_interval(
            name,
            "input",
            x,
            hint="input holds values outside [0, 1], so it looks like logits: pass "
            "from_logits=True.",
        )
    if ls:
        q = q * (1.0 - ls) + ls / x.shape[dim]
    if not from_logits and not q.requires_grad:
        count = None  # the mean's count, or 1 for the sum, taken in the node itself
        if reduction == "sum" or (reduction == "mean" and normalizer is None and x.numel()):
            count = 1 if reduction == "sum" else x.numel() // x.shape[dim]
        rule = _CategoricalCE(q, dim, eps, count)
        out = fused(rule, _CategoricalCEPlain(q, dim, eps, count), x)
        return out if count is not None else reduce(out, reduction, normalizer=normalizer)
    if not from_logits:
        logp = _clipped_log_probabilities(x, dim, eps)
    # clipped probabilities have a finite log: 0 log p is 0 without the select
    per = -(q_log_p(q, logp) if from_logits else q * logp).sum(dim)
    return reduce(per, reduction, normalizer=normalizer)
