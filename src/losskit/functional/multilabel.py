"""Multi-label and noise-robust classification losses: the asymmetric loss and poly-1
focal (sigmoid, a target of the input's shape in [0, 1]), poly-1 cross entropy and the
generalized cross entropy (softmax over dim 1, class indices; poly-1 also probabilities).

The sigmoid forms share the sigmoid family's validation (:mod:`._sigmoid`: weight
broadcast to the input, ``ignore_index`` on target values), the softmax forms the class
handling of the multi-class losses (:mod:`._classes`: class weights, ``ignore_index``, K-dim
maps, the weighted mean ``sum(w l) / sum(w)``). All of them work in log space from the
logits, so logits of +-1e4 give finite values and gradients.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as TF

from .. import _checks as C
from .._reduction import finish_sum, reduce
from ._classes import prepare_classes
from ._fused import eager, fused
from ._math import q_log_p
from ._sigmoid import (
    infinite_where,
    log_one_minus_pt,
    minus_log_pt,
    prepare_sigmoid,
    sigmoid_focal_rule,
)

__all__ = [
    "asymmetric_loss",
    "poly1_cross_entropy",
    "poly1_focal_loss",
    "generalized_cross_entropy",
]


def _zero(t: torch.Tensor) -> torch.Tensor:
    return torch.zeros((), dtype=t.dtype, device=t.device)


# --------------------------------------------------------------------------- sigmoid
def asymmetric_loss(
    input,
    target,
    *,
    gamma_pos=0.0,
    gamma_neg=4.0,
    clip=0.05,
    weight=None,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
):
    r"""Asymmetric loss for multi-label classification (Ridnik et al. 2021): separate
    focusing of positives and negatives, and a probability margin that discards easy
    negatives.

    .. math::
        p = \sigma(x), \quad p_m = \max(p - m, 0), \qquad
        \ell = -\left[y\, (1 - p)^{\gamma_+} \log p
               + (1 - y)\, p_m^{\gamma_-} \log(1 - p_m)\right]

    then the weighted mean ``sum(w l) / sum(w)`` over the elements whose target is not
    ``ignore_index``. In log space: ``log p = log_sigmoid(x)``, ``(1 - p)^γ =
    exp(γ log_sigmoid(-x))``, and ``1 - p_m = min(σ(-x) + m, 1)``, so logits of +-1e4 give
    finite values and gradients. ``gamma_pos=gamma_neg=clip=0`` is
    :func:`binary_cross_entropy_with_logits`. For {0, 1} targets the ``"sum"`` equals
    timm's ``AsymmetricLossMultiLabel`` where timm's ``eps`` clamp is inactive (timm
    puts one focal weight on both terms, so soft targets differ; its ``gamma_pos``
    defaults to 1, the paper's and losskit's to 0).

    Args:
        input: logits of any shape.
        target: values in [0, 1] of the input's shape (multi-label, one column per class).
        gamma_pos: ``γ+ >= 0``, focusing of the positives. Default: ``0.0``.
        gamma_neg: ``γ- >= 0``, focusing of the negatives. Default: ``4.0``.
        clip: the probability margin ``m`` in [0, 1] (``0``: none). Default: ``0.05``.
        weight: per-element weight, broadcast to the input. Default: ``None``.
        ignore_index: a target value not counted. Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.

    Shape:
        input ``(*)``, target the same; output scalar, or ``(*)`` with ``"none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.5, -0.2]])
        >>> labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> LF.asymmetric_loss(logits, labels, reduction="sum")
        tensor(0.8161)

    References:
        Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021,
        https://arxiv.org/abs/2009.14119
    """
    name = "asymmetric_loss"
    gp = C.check_number(name, "gamma_pos", gamma_pos, low=0.0)
    gn = C.check_number(name, "gamma_neg", gamma_neg, low=0.0)
    m = C.check_number(name, "clip", clip, low=0.0, high=1.0)
    x, y, w, mask, saturated = prepare_sigmoid(
        name,
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    plain = functools.partial(_asymmetric_plain, y, gp, gn, m)
    if gp == 0.0 and m > 0.0 and not y.requires_grad and not x.is_meta:
        loss = fused(_AsymmetricClipped(y, gn, m), plain, x)
    else:
        loss = plain(x)
    out = reduce(loss, reduction, weight=w, mask=mask, normalizer=normalizer)
    if saturated is None:
        return out
    # an infinite logit (computed as +-finfo.max) against its target: the limit is +inf
    # for a positive at -inf, and for a negative at +inf without the clip (1 - p_m = 0)
    infinite = saturated & (((x < 0) & (y > 0)) | ((x > 0) & (y < 1) & (m == 0.0)))
    return infinite_where(out, infinite)


def _asymmetric_plain(y, gp, gn, m, x):
    """The asymmetric loss per element through autograd: the definition
    :class:`_AsymmetricClipped` is checked against, and the one differentiated twice."""
    log_p = TF.logsigmoid(x)
    pos = log_p if gp == 0.0 else torch.exp(gp * TF.logsigmoid(-x)) * log_p
    if m == 0.0:
        log_1m = TF.logsigmoid(-x)  # log(1 - p) = log_sigmoid(-x)
        factor = torch.exp(gn * log_p) if gn else None  # p^γ- = exp(γ- log p)
    else:
        # 1 - p_m = min(1 - p + m, 1) >= m > 0: its log is finite
        log_1m = torch.log((torch.sigmoid(-x) + m).clamp_max(1.0))
        factor = None
        if gn:
            p_m = torch.sigmoid(x) - m
            # p_m^γ- = exp(γ- log p_m) where p_m > 0, else 0 (no 0^(γ-1) in a gradient)
            on = p_m > 0
            safe = torch.where(on, p_m, torch.ones((), dtype=x.dtype, device=x.device))
            factor = torch.where(on, torch.exp(gn * torch.log(safe)), _zero(x))
    neg = log_1m if factor is None else factor * log_1m
    return -(y * pos + (1.0 - y) * neg)


class _AsymmetricClipped:
    r"""The asymmetric loss with ``gamma_pos = 0`` and a clip ``m > 0`` (timm's and the
    paper's defaults), ``-[y log p + (1 - y) p_m^g log(1 - p_m)]``, and its derivative

    .. math::
        -\left[y (1 - p) + (1 - y)\, p (1 - p) \left(g \frac{p_m^g}{p_m}
        \log(1 - p_m) - \frac{p_m^g}{1 - p_m} [1 - p + m \le 1]\right)\right]

    made in the forward with its value (one buffer kept), without a ``where``: ``p_m^g /
    p_m`` over ``max(p_m, tiny)`` is 0 where ``p_m = 0`` for ``g > 0`` (and times ``g =
    0`` otherwise), and the clamp's mask is a float comparison. ``1 - p`` is ``sigmoid(-x)``
    and ``log p`` is ``log_sigmoid(x)``, as the definition's; the target takes no
    gradient."""

    CONSUMES_STATE = True

    def __init__(self, y, gn, m):
        self.y, self.gn, self.m = y, gn, m

    def forward(self, x):
        y, gn, m = self.y, self.gn, self.m
        p = torch.sigmoid(x)
        q = torch.neg(x).sigmoid_()  # 1 - p
        r = torch.add(q, m)  # 1 - p + m
        on = torch.le(r, 1.0, out=torch.empty_like(r))  # where the clamp passes
        r.clamp_max_(1.0)  # 1 - p_m
        log_r = torch.log(r)
        pm = torch.sub(p, m).clamp_min_(0.0)
        f = pm.square().square_() if gn == 4.0 else torch.pow(pm, gn)  # p_m^g
        neg = torch.mul(f, log_r)
        loss = neg.addcmul_(y, TF.logsigmoid(x).sub_(neg)).neg_()  # in neg's buffer
        # the derivative: p q (g f / p_m log(1 - p_m) - f / (1 - p_m) on) on the negatives
        tiny = torch.finfo(x.dtype).tiny
        d = torch.div(f, pm.clamp_min_(tiny), out=pm).mul_(log_r).mul_(gn)
        d.sub_(f.div_(r).mul_(on)).mul_(p).mul_(q)
        slope = d.addcmul_(y, q.sub_(d)).neg_()  # -(y q + (1 - y) d)
        return loss, [slope]

    def backward(self, state, grad, needs):
        return (state.pop().mul_(grad),)


def poly1_focal_loss(
    input,
    target,
    *,
    epsilon=1.0,
    alpha=0.25,
    gamma=2.0,
    weight=None,
    ignore_index=None,
    reduction="mean",
    normalizer=None,
):
    r"""Poly-1 focal loss (Leng et al. 2022): the sigmoid focal loss plus ``epsilon``
    times the first polynomial term of its expansion in ``1 - p_t``.

    .. math::
        \ell = -\alpha_t (1 - p_t)^\gamma \log p_t + \epsilon\, (1 - p_t)^{\gamma + 1},
        \qquad p_t = p y + (1 - p)(1 - y), \quad \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    ``alpha`` weights the focal term only, as in the paper's code (timm weights both).
    ``(1 - p_t)^k = exp(k log(1 - p_t))`` with ``log(1 - p_t)`` from the logits, so logits
    of +-1e4 are finite. ``epsilon=0`` is :func:`sigmoid_focal_loss`; ``alpha=None``
    disables alpha. The mean is ``sum(w l) / sum(w)`` over elements whose target is not
    ``ignore_index``.

    Args:
        input: logits of any shape.
        target: values in [0, 1] of the input's shape.
        epsilon: coefficient of the poly-1 term, ``>= -1``. Default: ``1.0``.
        alpha: weight of the positives in [0, 1], ``None`` (or negative) to disable.
            Default: ``0.25``.
        gamma: focusing parameter, ``>= 0``. Default: ``2.0``.
        weight, ignore_index, reduction, normalizer: as :func:`asymmetric_loss`.

    Shape:
        input ``(*)``, target the same; output scalar, or ``(*)`` with ``"none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.5, -0.2]])
        >>> labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> LF.poly1_focal_loss(logits, labels)
        tensor(0.0499)

    References:
        Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions", ICLR 2022, https://arxiv.org/abs/2204.12511
    """
    name = "poly1_focal_loss"
    eps = C.check_number(name, "epsilon", epsilon, low=-1.0)
    g = C.check_number(name, "gamma", gamma, low=0.0)
    if alpha is not None:
        alpha = C.check_number(name, "alpha", alpha, high=1.0)
        if alpha < 0:
            alpha = None
    x, y, w, mask, saturated = prepare_sigmoid(
        name,
        input,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    if g > 0.0 and not y.requires_grad and x.device.type == "cpu" and eager():
        # the sigmoid focal loss's closed form, with the poly-1 term (one autograd node)
        plain = functools.partial(_poly1_focal_plain, alpha=alpha, gamma=g, epsilon=eps)
        loss = fused(sigmoid_focal_rule(alpha, g, eps), plain, x, y)
    else:
        loss = _poly1_focal_plain(x, y, alpha=alpha, gamma=g, epsilon=eps)
    out = reduce(loss, reduction, weight=w, mask=mask, normalizer=normalizer)
    if saturated is None:
        return out
    # an infinite logit (computed as +-finfo.max) against its target: -log p_t -> +inf
    # (the poly term stays within |epsilon|), unless alpha_t takes the focal term away
    infinite = saturated & (y != (x > 0).to(y.dtype))
    if alpha is not None:
        infinite = infinite & ((alpha * y + (1.0 - alpha) * (1.0 - y)) > 0)
    return infinite_where(out, infinite)


def _poly1_focal_plain(x, y, *, alpha, gamma, epsilon):
    """The poly-1 focal loss per element through autograd, finite logits: the definition
    the closed form is checked against, and the one differentiated twice."""
    log_1m_pt = log_one_minus_pt(x, y)  # log(1 - p_t), in log space
    loss = minus_log_pt(x, y)
    if gamma:
        loss = torch.exp(gamma * log_1m_pt) * loss
    if alpha is not None:
        loss = (alpha * y + (1.0 - alpha) * (1.0 - y)) * loss
    if epsilon:
        loss = loss + epsilon * torch.exp((gamma + 1.0) * log_1m_pt)
    return loss


# --------------------------------------------------------------------------- softmax
def _prepare_classes(name, input, target, weight, ignore_index, reduction, normalizer, **kw):
    ii = C.check_ignore_index(name, ignore_index)
    c, mask = prepare_classes(
        name,
        input,
        target,
        weight=weight,
        ignore_index=ii,
        reduction=reduction,
        normalizer=normalizer,
        **kw,
    )
    if c.kind == "probs" and ii != -100:
        C.refuse_ignore_index_on_probabilities(name, ii)
    index = None
    if c.kind == "index":
        index = c.target if mask is None else torch.where(mask, c.target, 0)
    return c, mask, ii, index


def _finish(per, den, mask, reduction, normalizer):
    """A per-sample loss that holds its class weight, over the summed weight ``den`` of
    the counted samples."""
    if mask is not None:
        per = torch.where(mask, per, _zero(per))
    if reduction == "none":
        return per
    return finish_sum(per.sum(), den, reduction, normalizer)


def _index_weight(c, index, mask):
    """``w[y]`` of each sample (``None`` without a class weight) and the mean's
    denominator: the summed weight of the counted samples, or their number."""
    if c.weight is None:
        den = mask.sum() if mask is not None else index.numel()
        return None, den
    w_y = c.weight[index]
    return w_y, (w_y if mask is None else torch.where(mask, w_y, 0)).sum()


class _TargetProbability:
    """A per-sample loss of the target class's log-probability alone, ``l(log p_y)``, with
    its closed-form gradient ``dl/dx = f(p_y) (p - onehot(y))`` (``f = -dl/dlog p_y``),
    from one ``softmax``: ``log p_y`` is ``log`` of the gathered ``p_y``, and where some
    ``p_y`` underflows (logits of +-1e4), ``(x_y - max x) + log max p`` (``max p >= 1/C``
    never underflows), as exact as ``log_softmax``'s. The forward keeps ``p``
    (as autograd's ``log_softmax`` keeps its output) and ``f``; the backward turns ``p``
    into the gradient in place (one product and a scatter, no new buffer), and a second
    backward (``retain_graph=True``) makes ``p`` again from the logits."""

    def __init__(self, cd, value, factor):
        self.cd, self.value, self.factor = cd, value, factor

    def forward(self, x, index):
        cd = self.cd
        idx = index.unsqueeze(cd)
        p = torch.softmax(x, dim=cd)
        p_y = p.gather(cd, idx)
        if bool((p_y < torch.finfo(p.dtype).tiny).any()):  # CPU only: no device sync
            # an underflowed p_y: log p_y from max p (>= 1/C), exact as log_softmax's
            logp_y = (x.gather(cd, idx) - x.amax(cd, keepdim=True)).add_(
                p.amax(cd, keepdim=True).log_()
            )
        else:
            logp_y = p_y.log()
        return self.value(logp_y).squeeze(cd), [p, self.factor(logp_y), idx, x]

    def backward(self, state, grad, needs):
        p, f, idx, x = state
        if p is None:  # a second backward (retain_graph=True): p was used in place
            p = torch.softmax(x, dim=self.cd)
        state[0] = None  # the first backward turns p into the gradient, no new buffer
        s = f * grad.unsqueeze(self.cd)
        return p.mul_(s).scatter_add_(self.cd, idx, s.neg_()), None  # f (p - onehot(y)) grad


def _target_probability_loss(x, index, cd, value, factor):
    """``value(log p_y)`` per sample: the closed form on CPU in eager mode, else (and
    for double backward) autograd through ``log_softmax``."""

    def plain(x, index):
        return value(TF.log_softmax(x, dim=cd).gather(cd, index.unsqueeze(cd))).squeeze(cd)

    if x.device.type != "cpu":
        return plain(x, index)
    return fused(_TargetProbability(cd, value, factor), plain, x, index)


def poly1_cross_entropy(
    input,
    target,
    *,
    epsilon=1.0,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    target_type="auto",
    reduction="mean",
    normalizer=None,
):
    r"""Poly-1 cross entropy (Leng et al. 2022): the cross entropy plus ``epsilon`` times
    the first polynomial term of its expansion in ``1 - p_t``.

    .. math::
        \ell_i = \mathrm{CE}_i + \epsilon\, w_i (1 - p_{t,i}), \qquad
        p_{t,i} = \sum_c q_{i,c}\, p_{i,c}, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_i}

    with ``p = softmax(x)`` over dim 1, ``q`` the (smoothed) target: one-hot for an index
    target, ``q (1 - ls) + ls / C`` with ``label_smoothing``, and ``CE`` exactly
    :func:`cross_entropy` per sample (class weights, smoothing, ``ignore_index``). The
    sample weight ``w_i`` is ``w[y_i]`` (``sum_c w_c q_{i,c}`` for probability targets,
    1 without a weight), so the poly term is weighted as the cross entropy and
    ``epsilon=0`` is :func:`cross_entropy` exactly. ``1 - p_t = sum_c q_c (1 - p_c)`` is
    computed as ``-expm1(log p)``, accurate as ``p_t`` nears 1. ``z_loss`` adds
    ``z logsumexp(x)^2`` per counted sample, not class weighted, as in
    :func:`cross_entropy`. There is no Triton kernel (no ``backend``).

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        target: class indices ``(N, d1, ..., dk)`` or probabilities of the input's shape.
        epsilon: coefficient of the poly-1 term, ``>= -1`` (the paper's range). Default:
            ``1.0``.
        weight, ignore_index, label_smoothing, z_loss, target_type, reduction,
            normalizer: as :func:`cross_entropy`.

    Shape:
        as :func:`cross_entropy`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
        >>> LF.poly1_cross_entropy(logits, torch.tensor([0, 2]))
        tensor(1.0452)

    References:
        Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions", ICLR 2022, https://arxiv.org/abs/2204.12511
    """
    name = "poly1_cross_entropy"
    eps = C.check_number(name, "epsilon", epsilon, low=-1.0)
    ls = C.check_number(name, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    z = C.check_number(name, "z_loss", z_loss, low=0.0)
    c, mask, ii, index = _prepare_classes(
        name,
        input,
        target,
        weight,
        ignore_index,
        reduction,
        normalizer,
        target_type=target_type,
        homogeneous=not z,
    )
    cd, n = c.class_dim, c.num_classes
    if c.kind == "index" and eps and not ls and not z:
        # CE + eps (1 - p_y) = -log p_y - eps expm1(log p_y); d/dx = (1 + eps p_y)(p - 1_y)
        per = _target_probability_loss(
            c.input,
            index,
            cd,
            lambda logp: -eps * torch.expm1(logp) - logp,
            lambda logp: eps * torch.exp(logp) + 1.0,
        )
        w_i, den = _index_weight(c, index, mask)
        return _finish(per if w_i is None else w_i * per, den, mask, reduction, normalizer)
    if c.kind == "index":
        ce = TF.cross_entropy(
            c.input,
            c.target,
            weight=c.weight,
            ignore_index=ii,
            reduction="none",
            label_smoothing=ls,
        )
        w_i, den = _index_weight(c, index, mask)
        logp = TF.log_softmax(c.input, dim=cd)
        # 1 - p_t = (1 - ls)(1 - p_y) + ls (1 - 1/C): the smoothed one-hot q against p
        one_minus_py = -torch.expm1(logp.gather(cd, index.unsqueeze(cd)).squeeze(cd))
        one_minus_pt = (1.0 - ls) * one_minus_py + ls * (1.0 - 1.0 / n) if ls else one_minus_py
    else:
        logp = TF.log_softmax(c.input, dim=cd)
        q = c.target * (1.0 - ls) + ls / n if ls else c.target
        qw = q if c.weight is None else q * c.class_view(c.weight)
        ce = -q_log_p(qw, logp).sum(cd)
        w_i = None if c.weight is None else (c.class_view(c.weight) * c.target).sum(cd)
        den = ce.numel() if w_i is None else w_i.sum()
        one_minus_pt = (q * -torch.expm1(logp)).sum(cd)
    poly = one_minus_pt if w_i is None else w_i * one_minus_pt
    per = ce + eps * poly if eps else ce
    if z:  # PaLM's z-loss, as in cross_entropy
        per = per + z * torch.logsumexp(c.input, dim=cd).square()
    return _finish(per, den, mask, reduction, normalizer)


def generalized_cross_entropy(
    input,
    target,
    *,
    q=0.7,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    normalizer=None,
):
    r"""Generalized cross entropy (Zhang & Sabuncu 2018): the negative Box-Cox transform of
    ``p_y``, between cross entropy (``q -> 0``) and the noise-robust MAE (``q = 1``).

    .. math::
        \ell_i = w_{y_i} \frac{1 - p_{i,y_i}^{\,q}}{q}, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    over the targets not equal to ``ignore_index``, ``p = softmax(x)`` over dim 1. It is
    ``-expm1(q log p_y) / q``: exact for small ``q``, and ``q = 0`` is the limit, the
    cross entropy ``-log p_y`` (no ``0 / 0``); ``q = 1`` is ``1 - p_y``. Bounded by
    ``1 / q``, so logits of +-1e4 are finite.

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ..., dk)`` or ``(C,)``.
        target: class indices ``(N, d1, ..., dk)``, any integer dtype.
        q: in [0, 1]. Default: ``0.7`` (the paper's).
        weight: class weights ``(C,)``. Default: ``None``.
        ignore_index, reduction, normalizer: as :func:`cross_entropy`.

    Shape:
        as :func:`cross_entropy`.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
        >>> LF.generalized_cross_entropy(logits, torch.tensor([0, 2]))
        tensor(0.4711)

    References:
        Zhang and Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
        Networks with Noisy Labels", NeurIPS 2018, https://arxiv.org/abs/1805.07836
    """
    name = "generalized_cross_entropy"
    qq = C.check_number(name, "q", q, low=0.0, high=1.0)
    c, mask, _, index = _prepare_classes(
        name, input, target, weight, ignore_index, reduction, normalizer, allow_probs=False
    )
    cd = c.class_dim

    # (1 - p^q) / q = -expm1(q log p) / q; its limit at q = 0 is -log p; d/dx = p_y^q (p - 1_y)
    def value(logp):
        return -logp if qq == 0.0 else torch.expm1(qq * logp) / -qq

    per = _target_probability_loss(c.input, index, cd, value, lambda logp: torch.exp(qq * logp))
    w_y, den = _index_weight(c, index, mask)
    if w_y is not None:
        per = w_y * per
    return _finish(per, den, mask, reduction, normalizer)
