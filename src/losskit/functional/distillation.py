"""Distillation losses: a student's logits against a teacher's, class by class.

Student ``input`` and ``teacher`` logits share one shape, ``(N, C)``, ``(N, C, d1, ...,
dk)`` (classes on dim 1: token positions of a language model, pixels) or ``(C,)``. Per
position the divergence is summed over the classes; ``"mean"`` averages over the counted
positions. The optional ``target`` holds class indices ``(N, d1, ..., dk)``: positions
whose target equals ``ignore_index`` are not counted (their logits, even NaN, reach
nothing), and :func:`distillation_loss` adds the hard-label cross entropy.

Everything runs on log-probabilities (``log_softmax``) with ``0 log 0 = 0``: a class that
both distributions give probability 0 (a ``-inf`` logit in both, a masked vocabulary)
adds nothing to the value or the gradient. Half-precision logits are computed in float32
(the loss is float32).

Gradient to the teacher: like ``torch.nn.functional.kl_div``'s target, the teacher gets a
gradient when it requires one. A frozen teacher's logits usually do not (computed under
``torch.no_grad()``); otherwise pass ``teacher.detach()``.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as TF

from .. import _checks as C
from .._reduction import compute_dtype, reduce
from ._classes import prepare_classes
from ._fused import fused
from ._math import log_add_exp

__all__ = ["distillation_loss", "generalized_jsd_loss", "total_variation_loss"]


# --------------------------------------------------------------------------- inputs
def _check_logits(name, input, reduction, normalizer):
    C.check_reduction(name, reduction)
    C.check_tensor(name, "input", input)
    C.check_floating(name, "input", input)
    C.check_normalizer(name, normalizer, reduction)
    if input.dim() == 0:
        C.fail(
            name,
            "input must have a class dimension: (N, C), (N, C, d1, ...) or (C,), got a "
            "0-dim tensor.",
        )
    class_dim = 0 if input.dim() == 1 else 1
    if input.shape[class_dim] == 0:
        C.fail(
            name,
            f"input of shape {tuple(input.shape)} has 0 classes (dimension {class_dim}); at "
            "least one is needed.",
        )
    return class_dim


def _prepare(
    name, input, teacher, target, temperature, ignore_index, reduction, normalizer, fill=True
):
    """Validate a call; returns the student's and the teacher's logits (ignored positions
    set to 0 unless ``fill=False``: a closed form then masks its gradient itself), the
    class dimension, the mask of counted positions (``None``: all) and the class indices
    (ignored ones set to 0), in the compute dtype."""
    t = C.check_number(name, "temperature", temperature, low=0.0, low_open=True)
    mask = index = None
    if target is None:
        class_dim = _check_logits(name, input, reduction, normalizer)
    else:
        ii = C.check_ignore_index(name, ignore_index)
        c, mask = prepare_classes(
            name,
            input,
            target,
            ignore_index=ii,
            reduction=reduction,
            normalizer=normalizer,
            allow_probs=False,
        )
        class_dim = c.class_dim
        index = c.target if mask is None else torch.where(mask, c.target, 0)
    C.check_tensor(name, "teacher", teacher)
    C.check_floating(name, "teacher", teacher, "teacher logits are floating: teacher.float().")
    C.check_same_device(name, input=input, teacher=teacher)
    if teacher.shape != input.shape:
        C.fail(
            name,
            f"teacher must hold logits of the input's shape {tuple(input.shape)}, got "
            f"{tuple(teacher.shape)}.",
            "student and teacher score the same classes at the same positions (classes on "
            "dim 1); for a teacher with more classes, slice it to the student's vocabulary.",
        )
    dtype = torch.promote_types(compute_dtype(input.dtype), compute_dtype(teacher.dtype))
    x, z = input.to(dtype), teacher.to(dtype)
    if fill and mask is not None:  # ignored positions are inert: a NaN or inf reaches nothing
        rows = ~mask.unsqueeze(class_dim)
        x, z = x.masked_fill(rows, 0.0), z.masked_fill(rows, 0.0)
    return x, z, class_dim, mask, index, t


def _log_probs(x, z, t, dim):
    """The student's and the teacher's tempered log-probabilities."""
    log_p = TF.log_softmax(x / t if t != 1.0 else x, dim=dim)
    log_q = TF.log_softmax(z / t if t != 1.0 else z, dim=dim)
    return log_p, log_q


def _kl(log_a, log_b, dim):
    """``KL(a || b) = sum_c a_c (log a_c - log b_c)`` with ``0 log 0 = 0``: a class of
    ``a_c = 0`` adds nothing, to the value or the gradient, even where ``log b_c = -inf``
    too (the difference is masked before it can be ``-inf - -inf``)."""
    a = log_a.exp()
    diff = torch.where(a == 0, torch.zeros((), dtype=a.dtype, device=a.device), log_a - log_b)
    return (a * diff).sum(dim)


# --------------------------------------------------------------------------- losses
def distillation_loss(
    input,
    teacher,
    target=None,
    *,
    temperature=1.0,
    alpha=0.5,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    r"""Knowledge distillation (Hinton et al. 2015): the KL divergence from the teacher's
    softened distribution to the student's, times ``T^2``, mixed with the hard-label cross
    entropy when a ``target`` is given.

    .. math::
        q = \operatorname{softmax}(z / T), \quad p = \operatorname{softmax}(x / T), \qquad
        \mathrm{KD}_i = T^2 \sum_c q_{i,c} (\log q_{i,c} - \log p_{i,c})
        = T^2\, \mathrm{KL}(q_i \,\|\, p_i)

    .. math::
        \ell_i = (1 - \alpha)\, \mathrm{CE}(x_i, y_i) + \alpha\, \mathrm{KD}_i
        \ \text{(with a target)}, \qquad \ell_i = \mathrm{KD}_i \ \text{(without)}, \qquad
        \text{mean} = \frac{1}{|\{i: y_i \ne \text{ignore}\}|} \sum_i \ell_i

    The cross entropy is at temperature 1, on the student's raw logits. ``T^2`` keeps the
    soft term's gradient on the scale of the hard one as ``T`` grows. The direction is
    ``KL(teacher || student)``, what ``F.kl_div(log_softmax(x / T), log_softmax(z / T),
    log_target=True)`` computes (``F.kl_div`` takes the student first and the teacher as
    the *target*: swapping them gives the reverse KL, the pitfall of pytorch #57459).
    Positions whose target equals ``ignore_index`` count in neither term.

    Args:
        input: student logits ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        teacher: teacher logits of the input's shape. It receives a gradient when it
            requires one (as ``F.kl_div``'s target does): detach a frozen teacher.
        target: class indices ``(N, d1, ..., dk)`` or ``None`` (KD alone). Default: ``None``.
        temperature: ``T > 0``. Default: ``1.0``.
        alpha: weight of the KD term in [0, 1] (used with a target). Default: ``0.5``.
        ignore_index: a target value not counted. Default: ``-100``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.

    Shape:
        input and teacher ``(N, C, *)``, target ``(N, *)``; output scalar, or ``(N, *)``
        with ``reduction="none"`` (0 at ignored positions).

    Example:
        >>> import torch, losskit.functional as LF
        >>> student = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
        >>> teacher = torch.tensor([[3.0, 1.0, 0.2], [0.0, 3.0, -2.0]])
        >>> LF.distillation_loss(student, teacher, temperature=2.0)
        tensor(0.1239)
        >>> LF.distillation_loss(student, teacher, torch.tensor([0, 1]), temperature=2.0)
        tensor(0.2045)

    References:
        Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015,
        https://arxiv.org/abs/1503.02531
    """
    name = "distillation_loss"
    a = C.check_number(name, "alpha", alpha, low=0.0, high=1.0)
    x, z, cd, mask, index, t = _prepare(
        name, input, teacher, target, temperature, ignore_index, reduction, normalizer, False
    )
    rows = None if mask is None else ~mask.unsqueeze(cd)
    # the weights of the two terms; a term of weight 0 is left out (0 * inf)
    kd_w, ce_w = (1.0, 0.0) if target is None else (a, 1.0 - a)
    plain = partial(_distillation_plain, kd_w=kd_w, ce_w=ce_w, t=t, dim=cd, rows=rows, index=index)
    if kd_w == 0.0:
        per = plain(x, z)
    else:
        per = fused(_Distillation(kd_w, ce_w, t, cd, rows, index), plain, x, z)
    return reduce(per, reduction, mask=mask, normalizer=normalizer)


def _distillation_plain(x, z, *, kd_w, ce_w, t, dim, rows, index):
    """``kd_w T^2 KL(q || p) + ce_w CE`` per position through autograd: the definition
    the closed form is checked against, and the one differentiated twice."""
    x, z = _fill(x, z, rows)
    log_p, log_q = _log_probs(x, z, t, dim)
    kd = (t * t) * _kl(log_q, log_p, dim)
    if ce_w == 0.0:
        return kd
    # hard-label cross entropy at T = 1
    ce = -TF.log_softmax(x, dim=dim).gather(dim, index.unsqueeze(dim)).squeeze(dim)
    return ce if kd_w == 0.0 else ce_w * ce + kd_w * kd


class _Distillation:
    """``kd_w T^2 KL(q || p) + ce_w CE(x, y)`` (``kd_w > 0``) and its derivative:
    ``d/dx = kd_w T (p - q) + ce_w (softmax(x) - onehot(y))`` and
    ``d/dz_j = kd_w T (w_j - q_j sum_c w_c)``, ``w = q (log q - log p)`` (0 where ``q =
    0``, as :func:`_kl`). Ignored positions (``rows``) as in :class:`_TotalVariation`."""

    def __init__(self, kd_w, ce_w, t, dim, rows, index):
        self.kd_w, self.ce_w, self.t, self.dim = kd_w, ce_w, t, dim
        self.rows, self.index = rows, index

    def forward(self, x, z):
        t, dim = self.t, self.dim
        log_p, log_q = _log_probs(x, z, t, dim)
        q = log_q.exp()
        zero = torch.zeros((), dtype=q.dtype, device=q.device)
        w = torch.where(q == 0, zero, log_q.sub_(log_p)).mul_(q)  # 0 log 0 = 0
        kl = w.sum(dim, keepdim=True)
        per = kl.squeeze(dim) * (self.kd_w * t * t)
        log_s = None
        if self.ce_w != 0.0:
            log_s = log_p if t == 1.0 else TF.log_softmax(x, dim=dim)
            ce = log_s.gather(dim, self.index.unsqueeze(dim)).squeeze(dim)
            per = per.sub_(ce, alpha=self.ce_w)
        return per, (log_p, q, log_s, w, kl)

    def backward(self, state, grad, needs):
        log_p, q, log_s, w, kl = state
        dim, g, c = self.dim, grad.unsqueeze(self.dim), self.kd_w * self.t
        gx = gz = None
        if needs[0]:
            p = log_p.exp()
            gx = (p - q).mul_(c)
            if log_s is not None:  # softmax(x) - onehot(y)
                gx.add_(p if log_s is log_p else log_s.exp(), alpha=self.ce_w)
                at = self.index.unsqueeze(dim)
                gx.scatter_add_(dim, at, torch.full_like(at, 0, dtype=gx.dtype).fill_(-self.ce_w))
            gx.mul_(g)
            gx = gx if self.rows is None else gx.masked_fill_(self.rows, 0.0)
        if needs[1]:
            gz = torch.addcmul(w, q, kl, value=-1.0).mul_(g * c)
            gz = gz if self.rows is None else gz.masked_fill_(self.rows, 0.0)
        return gx, gz


def generalized_jsd_loss(
    input,
    teacher,
    target=None,
    *,
    beta=0.5,
    temperature=1.0,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    r"""The generalized Jensen-Shannon divergence of on-policy distillation (GKD,
    Agarwal et al. 2024), with TRL's endpoints.

    .. math::
        M = (1 - \beta)\, p + \beta\, q, \qquad
        \ell_i = \beta\, \mathrm{KL}(q_i \,\|\, M_i) + (1 - \beta)\, \mathrm{KL}(p_i \,\|\, M_i)

    with ``p = softmax(x / T)`` the student and ``q = softmax(z / T)`` the teacher.
    ``beta=0`` is the forward ``KL(q || p)`` and ``beta=1`` the reverse ``KL(p || q)``,
    computed as those divergences: the formula above tends to 0, not to them, as beta
    reaches 0 or 1 (its weight on the KL that survives vanishes). ``beta=0.5`` is the
    Jensen-Shannon divergence, bounded by ``log 2``. ``log M`` is a ``logaddexp`` of the
    two log-probabilities. No ``T^2`` factor. ``target`` only masks positions (those equal
    to ``ignore_index`` are not counted); there is no cross-entropy term.

    Args:
        input: student logits ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        teacher: teacher logits of the input's shape (it gets a gradient when it requires
            one; detach a frozen teacher).
        target: class indices ``(N, d1, ..., dk)`` that mask positions, or ``None``.
        beta: in [0, 1]. Default: ``0.5``.
        temperature: ``T > 0``. Default: ``1.0``.
        ignore_index, reduction, normalizer: as :func:`distillation_loss`.

    Shape:
        as :func:`distillation_loss`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> student = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
        >>> teacher = torch.tensor([[3.0, 1.0, 0.2], [0.0, 3.0, -2.0]])
        >>> LF.generalized_jsd_loss(student, teacher, beta=0.5)
        tensor(0.0165)
        >>> LF.generalized_jsd_loss(student, teacher, beta=0.0)  # forward KL(q || p)
        tensor(0.0603)

    References:
        Agarwal et al., "On-Policy Distillation of Language Models: Learning from
        Self-Generated Mistakes", ICLR 2024, https://arxiv.org/abs/2306.13649
    """
    name = "generalized_jsd_loss"
    b = C.check_number(name, "beta", beta, low=0.0, high=1.0)
    x, z, cd, mask, _, t = _prepare(
        name, input, teacher, target, temperature, ignore_index, reduction, normalizer, False
    )
    rows = None if mask is None else ~mask.unsqueeze(cd)
    if b in (0.0, 1.0):
        log_p, log_q = _log_probs(*_fill(x, z, rows), t, cd)
        # forward KL(teacher || student) at 0, reverse KL(student || teacher) at 1
        per = _kl(log_q, log_p, cd) if b == 0.0 else _kl(log_p, log_q, cd)
    else:
        plain = partial(_jsd_plain, b=b, t=t, dim=cd, rows=rows)
        per = fused(_GeneralizedJSD(b, t, cd, rows), plain, x, z)
    return reduce(per, reduction, mask=mask, normalizer=normalizer)


def _jsd_plain(x, z, *, b, t, dim, rows):
    """The generalized JSD per position for ``0 < b < 1`` through autograd: the definition
    the closed form is checked against, and the one differentiated twice."""
    log_p, log_q = _log_probs(*_fill(x, z, rows), t, dim)
    log_m = log_add_exp(log_p + math.log1p(-b), log_q + math.log(b))
    return b * _kl(log_q, log_m, dim) + (1.0 - b) * _kl(log_p, log_m, dim)


class _GeneralizedJSD:
    """``b KL(q || M) + (1 - b) KL(p || M)``, ``M = (1 - b) p + b q``, ``0 < b < 1``, and
    its derivative: with ``u = p (log p - log M)`` and ``v = q (log q - log M)`` (0 where
    the distribution is 0: ``log p`` is clamped to the largest negative finite value and
    ``M`` to the smallest normal one before its log, exact wherever ``p > 0``, which
    makes ``M > 0`` a normal number or the product negligible),
    ``d/dx_j = (1 - b) (u_j - p_j sum_c u_c) / T`` and
    ``d/dz_j = b (v_j - q_j sum_c v_c) / T`` (``d KL(p || M) / d p_j = log p_j - log
    M_j`` as ``sum_c M_c = 1``). Ignored positions (``rows``) as in
    :class:`_TotalVariation`."""

    def __init__(self, b, t, dim, rows):
        self.b, self.t, self.dim, self.rows = b, t, dim, rows

    def forward(self, x, z):
        b, dim = self.b, self.dim
        log_p, log_q = _log_probs(x, z, self.t, dim)
        p, q = log_p.exp(), log_q.exp()
        info = torch.finfo(p.dtype)
        log_m = torch.lerp(p, q, b).clamp_min_(info.tiny).log_()
        u = log_p.clamp_min_(info.min).sub_(log_m).mul_(p)
        v = log_q.clamp_min_(info.min).sub_(log_m).mul_(q)
        su, sv = u.sum(dim, keepdim=True), v.sum(dim, keepdim=True)
        per = (sv * b).add_(su, alpha=1.0 - b).squeeze(dim)
        return per, (p, q, u, v, su, sv)

    def backward(self, state, grad, needs):
        p, q, u, v, su, sv = state
        g = grad.unsqueeze(self.dim) / self.t
        out = []
        for n, r, w, s, c in ((needs[0], p, u, su, 1.0 - self.b), (needs[1], q, v, sv, self.b)):
            if not n:
                out.append(None)
                continue
            gr = torch.addcmul(w, r, s, value=-1.0).mul_(g * c)  # the state stays intact
            out.append(gr if self.rows is None else gr.masked_fill_(self.rows, 0.0))
        return tuple(out)


def total_variation_loss(
    input,
    teacher,
    target=None,
    *,
    temperature=1.0,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    r"""Total variation distance between the student's and the teacher's distributions.

    .. math::
        \ell_i = \tfrac{1}{2} \sum_c |p_{i,c} - q_{i,c}|, \qquad
        p = \operatorname{softmax}(x / T), \quad q = \operatorname{softmax}(z / T)

    In [0, 1]: 0 for equal distributions, 1 for disjoint ones. ``target`` only masks
    positions (those equal to ``ignore_index`` are not counted). At ``p_c = q_c`` the
    gradient of ``|p_c - q_c|`` is taken as 0.

    Args:
        input: student logits ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        teacher: teacher logits of the input's shape (it gets a gradient when it requires
            one; detach a frozen teacher).
        target: class indices ``(N, d1, ..., dk)`` that mask positions, or ``None``.
        temperature: ``T > 0``. Default: ``1.0``.
        ignore_index, reduction, normalizer: as :func:`distillation_loss`.

    Shape:
        as :func:`distillation_loss`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> student = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
        >>> teacher = torch.tensor([[3.0, 1.0, 0.2], [0.0, 3.0, -2.0]])
        >>> LF.total_variation_loss(student, teacher)
        tensor(0.1328)

    References:
        Wen et al., "f-Divergence Minimization for Sequence-Level Knowledge
        Distillation", ACL 2023, https://arxiv.org/abs/2307.15190
    """
    name = "total_variation_loss"
    x, z, cd, mask, _, t = _prepare(
        name, input, teacher, target, temperature, ignore_index, reduction, normalizer, False
    )
    rows = None if mask is None else ~mask.unsqueeze(cd)
    plain = partial(_total_variation_plain, t=t, dim=cd, rows=rows)
    per = fused(_TotalVariation(t, cd, rows), plain, x, z)
    return reduce(per, reduction, mask=mask, normalizer=normalizer)


def _fill(x, z, rows):
    """Ignored positions' logits set to 0 (inert: a NaN or inf there reaches nothing)."""
    if rows is None:
        return x, z
    return x.masked_fill(rows, 0.0), z.masked_fill(rows, 0.0)


def _total_variation_plain(x, z, *, t, dim, rows):
    """The total variation per position through autograd: the definition the closed form
    is checked against, and the one differentiated twice."""
    log_p, log_q = _log_probs(*_fill(x, z, rows), t, dim)
    return 0.5 * (log_p.exp() - log_q.exp()).abs().sum(dim)


class _TotalVariation:
    """``1/2 sum_c |p_c - q_c|`` and its derivative from the two softmaxes: with ``s =
    sign(p - q)`` (0 at a tie),
    ``d/dx_j = p_j (s_j - sum_c p_c s_c) / (2T)`` and
    ``d/dz_j = -q_j (s_j - sum_c q_c s_c) / (2T)``. The logits of ignored positions
    (``rows``) are left as they are (one pass over the gradient zeroes them instead of two
    over the inputs): the value there is masked by the reduction, the gradient here."""

    def __init__(self, t, dim, rows):
        self.t, self.dim, self.rows = t, dim, rows

    def forward(self, x, z):
        t, dim = self.t, self.dim
        p = torch.softmax(x / t if t != 1.0 else x, dim=dim)
        q = torch.softmax(z / t if t != 1.0 else z, dim=dim)
        d = p - q
        s = d.sign()
        per = d.mul_(s).sum(dim).mul_(0.5)
        return per, (p, q, s)

    def backward(self, state, grad, needs):
        p, q, s = state
        g = grad.unsqueeze(self.dim) * (0.5 / self.t)
        out = []
        for n, r, sign in ((needs[0], p, 1.0), (needs[1], q, -1.0)):
            if not n:
                out.append(None)
                continue
            # r (s - sum_c r_c s_c): softmax's backward of s, one fused pass
            gr = torch._softmax_backward_data(s, r, self.dim, r.dtype)
            gr.mul_(g if sign > 0 else -g)
            out.append(gr if self.rows is None else gr.masked_fill_(self.rows, 0.0))
        return tuple(out)
