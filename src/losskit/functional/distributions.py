"""torch.nn's likelihood and divergence losses: ``kl_div``, ``poisson_nll_loss`` and
``gaussian_nll_loss``, with torch's names, arguments, defaults, values and gradients.

Where torch returns NaN, losskit gives the defined value or a named error: ``0 log 0 = 0``
in the KL divergence (a target probability of 0 adds nothing, even against an input of
``-inf``), an empty mean is 0, a negative variance or a negative Poisson rate is a
:class:`~losskit.LossInputError` (value checks), and a variance of the wrong shape says
which shapes are accepted. Like every losskit loss they take ``normalizer=``; the two
likelihoods take a per-element ``weight`` (torch has none), and all three raise on an
input/target shape mismatch unless ``broadcast=True``.

Example:
    >>> import torch, losskit.functional as LF
    >>> logp = torch.log_softmax(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), dim=1)
    >>> q = torch.tensor([[0.6, 0.4], [0.1, 0.9]])
    >>> LF.kl_div(logp, q, reduction="batchmean")  # the mean over the batch of KL(q || p)
    tensor(0.1710)
"""

from __future__ import annotations

import functools
import math

import torch

from .. import _checks as C
from .._reduction import compute_dtype, reduce
from ._fused import eager, fused, fused_reduce

__all__ = ["kl_div", "poisson_nll_loss", "gaussian_nll_loss"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _reductions(*more: str):
    """Declare reductions a loss takes besides none/mean/sum (its module checks them)."""

    def mark(fn):
        fn.reductions = (*C.REDUCTIONS, *more)
        return fn

    return mark


def _pair(name, input, target, weight, reduction, normalizer, broadcast, reductions=C.REDUCTIONS):
    """Validate an input/target pair (and an element weight); both in the compute dtype."""
    C.check_call(
        name,
        input,
        target,
        reduction=reduction,
        normalizer=normalizer,
        reductions=reductions,
        weight=weight,
    )
    C.check_floating(name, "target", target)
    shape = C.check_same_shape(name, input, target, broadcast)
    if weight is not None:
        C.check_broadcastable_to(
            name,
            "weight",
            weight,
            shape,
            "weight is per element: give it the input's shape, or a shape that broadcasts to it.",
        )
    dtype = compute_dtype(input.dtype)
    x, y = input.to(dtype), target.to(dtype)
    if x.shape != shape or y.shape != shape:
        x, y = torch.broadcast_tensors(x, y)
    return x, y, (weight.to(dtype) if weight is not None else None)


def _check_nonnegative(name, arg, t, hint):
    """Value check: every element of ``t`` is ``>= 0`` (and not NaN)."""
    if not C.checks_enabled() or t.numel() == 0:
        return
    with torch.no_grad():
        v = t.detach()
        if bool(v.amin() >= 0):
            return
        bad = ~(v >= 0)
        n_bad = int(bad.sum())
        finite = v[~torch.isnan(v)]
        lo = f"{float(finite.min()):.6g}" if finite.numel() else "nan"
        n_nan = v.numel() - finite.numel()
    found = f"found min {lo}" + (f", {n_nan} NaN" if n_nan else "")
    C.fail(
        name, f"{arg} must hold values >= 0, {found} ({n_bad} of {v.numel()} values outside).", hint
    )


def _kl_plain(x, y):
    """``q (log q - x)``, and 0 where ``q = 0`` whatever the input (0 log 0 = 0)."""
    counted = y > 0
    q = torch.where(counted, y, 1.0)
    return torch.where(counted, q * (torch.log(q) - x), 0.0)


class _KL:
    """The pointwise KL divergence and its closed-form gradient (one autograd node):
    ``d/dx = -q``, ``d/dq = log q + 1 - x``, both 0 where ``q = 0``."""

    @staticmethod
    def forward(x, y):
        counted = y > 0
        log_q = torch.where(counted, y, 1.0).log_()
        loss = (log_q - x).mul_(y).masked_fill_(~counted, 0.0)
        return loss, (counted, log_q, x, y)

    @staticmethod
    def backward(state, grad, needs):
        counted, log_q, x, y = state
        gx = gy = None
        if needs[0]:
            gx = y.masked_fill(~counted, 0.0).mul_(grad).neg_()
        if needs[1]:
            gy = (log_q - x).add_(1.0).mul_(grad).masked_fill_(~counted, 0.0)
        return gx, gy


class _KLUnmasked:
    """:class:`_KL` without its masks (its comparison to bool, ``where`` and
    ``masked_fill`` cost several times the ``log``): ``q (log max(q, 2^-149) - x)`` is
    ``q (log q - x)`` for ``q > 0`` (every positive float is at least the least subnormal)
    and 0 at ``q = 0`` for a finite input; ``d/dx = -q`` is 0 there by itself. Only for
    inputs whose loss comes out finite (:func:`kl_div` checks its sum); no target
    gradient."""

    @staticmethod
    def forward(x, y):
        tiny = 2.0**-1074 if y.dtype == torch.float64 else 2.0**-149
        loss = torch.clamp_min(y, tiny).log_().sub_(x).mul_(y)
        return loss.add_(0.0), y  # -0.0 (0 times a negative) made 0, all else unchanged

    @staticmethod
    def backward(y, grad, needs):
        return torch.mul(y, grad).neg_(), None


def _kl_log_plain(x, ly):
    """``exp(ly) (ly - x)``, and 0 where ``ly = -inf`` (``q = 0``) whatever the input."""
    counted = ly != -math.inf  # log q = -inf: q = 0 adds nothing
    ly = torch.where(counted, ly, 0.0)
    return torch.where(counted, torch.exp(ly) * (ly - x), 0.0)


class _KLLogTarget:
    """:func:`_kl_log_plain` without its masks (two ``where`` and a comparison, each
    about the ``exp``'s cost), ``q = exp(ly)`` kept for ``d/dx = -q``. Only for inputs
    whose loss comes out finite (a log-target of ``-inf`` gives ``0 (-inf)``: NaN, and
    :func:`kl_div` computes it again with the masks); no target gradient."""

    @staticmethod
    def forward(x, ly):
        q = torch.exp(ly)
        return torch.sub(ly, x).mul_(q), q

    @staticmethod
    def backward(q, grad, needs):
        return torch.mul(q, grad).neg_(), None


def _check_not_nan(name, arg, t, hint):
    """Value check: no element of ``t`` is NaN."""
    if not C.checks_enabled() or t.numel() == 0:
        return
    with torch.no_grad():
        v = t.detach()
        # one pass when all is well: a sum without NaN proves no NaN (+inf with -inf
        # also sums to NaN; then they are counted)
        if not math.isnan(float(v.sum())):
            return
        n_nan = int(torch.isnan(v).sum())
    if n_nan:
        C.fail(name, f"{arg} must not hold NaN, found {n_nan} of {t.numel()}.", hint)


# --------------------------------------------------------------------------- KL divergence
@_reductions("batchmean")
def kl_div(
    input,
    target,
    *,
    reduction="mean",
    log_target=False,
    normalizer=None,
    broadcast=False,
):
    r"""Kullback-Leibler divergence, as ``torch.nn.functional.kl_div``.

    The input holds log-probabilities ``x = log p``, the target probabilities ``q`` (their
    logs ``log q`` with ``log_target=True``); per element

    .. math::
        \ell_i = q_i (\log q_i - x_i), \qquad 0 \log 0 = 0,

    so that ``sum`` over a row is ``KL(q || p)``. ``"batchmean"`` divides the sum by the
    batch size ``input.shape[0]`` (the KL divergence of each sample, averaged: the
    reduction that matches the math); ``"mean"`` divides by the number of elements, as
    torch does (the batch mean over the number of classes too).

    A target of 0 adds exactly 0 and no gradient, even where the input is ``-inf`` (a
    masked class; torch gives NaN there), and so does a log-target of ``-inf``. Under
    value checks, a negative or NaN probability target (a NaN log-target) is an error.

    Args:
        input: log-probabilities, any shape.
        target: probabilities of the input's shape (``log_target=True``: log-probabilities).
        reduction: ``"none"`` | ``"batchmean"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        log_target: the target holds ``log q``. Default: ``False``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.
        broadcast: allow input and target shapes that broadcast. Default: ``False``.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logp = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
        >>> q = torch.tensor([[0.75, 0.25], [1.0, 0.0]])
        >>> LF.kl_div(logp, q, reduction="none")
        tensor([[ 0.3041, -0.1733],
                [ 0.1054,  0.0000]])
        >>> LF.kl_div(logp, q, reduction="batchmean")  # (KL row 0 + KL row 1) / 2
        tensor(0.1181)

    References:
        Kullback & Leibler, "On Information and Sufficiency", 1951,
        https://doi.org/10.1214/aoms/1177729694
    """
    name = "kl_div"
    x, y, _ = _pair(
        name,
        input,
        target,
        None,
        reduction,
        normalizer,
        broadcast,
        reductions=kl_div.reductions,
    )
    if not isinstance(log_target, bool):
        C.fail(name, f"log_target must be True or False, got {log_target!r}.", cls=C.LossTypeError)
    if log_target:
        _check_not_nan(name, "target", target, "log_target=True: the target holds log q.")
        if x.device.type == "cpu" and not y.requires_grad and eager():
            out = _kl_reduce(fused(_KLLogTarget, _kl_log_plain, x, y), x, reduction, normalizer)
            if math.isfinite((out if out.dim() == 0 else out.sum()).detach().item()):
                return out
        loss = _kl_log_plain(x, y)
    else:
        _check_nonnegative(
            name,
            "target",
            target,
            "target holds probabilities; for log-probabilities pass log_target=True.",
        )
        if x.device.type == "cpu" and not y.requires_grad and eager():
            # the closed form without masks; a value that is not finite (an input of
            # -inf where q = 0, a subnormal q) is computed again with them
            out = _kl_reduce(fused(_KLUnmasked, _kl_plain, x, y), x, reduction, normalizer)
            if math.isfinite((out if out.dim() == 0 else out.sum()).detach().item()):
                return out
        loss = fused(_KL, _kl_plain, x, y)
    return _kl_reduce(loss, x, reduction, normalizer)


def _kl_reduce(loss, x, reduction, normalizer):
    if reduction == "batchmean":
        total = reduce(loss, "sum")
        n = x.shape[0] if x.dim() else 1
        return total / n if n else total
    return reduce(loss, reduction, normalizer=normalizer)


# --------------------------------------------------------------------------- Poisson
def poisson_nll_loss(
    input,
    target,
    *,
    log_input=True,
    full=False,
    eps=1e-8,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    r"""Poisson negative log-likelihood, as ``torch.nn.functional.poisson_nll_loss``.

    For a Poisson mean ``lambda`` and a count ``y``, per element

    .. math::
        \ell_i = \begin{cases} e^{x_i} - y_i x_i & \texttt{log\_input} \ (x = \log\lambda)
                 \\ x_i - y_i \log(x_i + \epsilon) & \text{otherwise} \ (x = \lambda)
                 \end{cases}
                 \; + \; [y_i > 1] \big(y_i \log y_i - y_i + \tfrac12 \log(2 \pi y_i)\big)

    the last term (Stirling's approximation of ``log y!``) only with ``full=True``;
    ``"mean"`` is ``sum(w l) / sum(w)``. With ``log_input=False`` the input is the rate
    itself: under value checks a negative rate is an error (torch gives NaN).

    Args:
        input: the log of the Poisson mean (``log_input=True``) or the mean, ``>= 0``.
        target: counts of the input's shape.
        log_input: the input is ``log lambda``. Default: ``True``.
        full: add Stirling's term. Default: ``False``.
        eps: ``> 0``, added to the rate inside the log (``log_input=False``). Default: ``1e-8``.
        weight: optional per-element weight, broadcastable to the input. Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.
        broadcast: allow input and target shapes that broadcast. Default: ``False``.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> log_rate = torch.tensor([0.0, 1.0, 2.0])
        >>> counts = torch.tensor([1.0, 2.0, 9.0])
        >>> LF.poisson_nll_loss(log_rate, counts, reduction="none")
        tensor([  1.0000,   0.7183, -10.6109])
        >>> LF.poisson_nll_loss(log_rate, counts, full=True, reduction="none")
        tensor([1.0000, 1.3701, 2.1816])
    """
    name = "poisson_nll_loss"
    x, y, w = _pair(name, input, target, weight, reduction, normalizer, broadcast)
    for arg, value in (("log_input", log_input), ("full", full)):
        if not isinstance(value, bool):
            C.fail(name, f"{arg} must be True or False, got {value!r}.", cls=C.LossTypeError)
    eps = C.check_number(name, "eps", eps, low=0.0, low_open=True)
    if log_input:
        rule, plain = _PoissonLog, _poisson_log_plain
    else:
        _check_nonnegative(
            name,
            "input",
            input,
            "with log_input=False the input is the Poisson rate itself (>= 0); for a "
            "log-rate pass log_input=True.",
        )
        rule, plain = _Poisson(eps), functools.partial(_poisson_plain, eps=eps)
    if x.is_meta:
        rule = None
    if not full:
        if rule is None:
            return reduce(plain(x, y), reduction, weight=w, normalizer=normalizer)
        return fused_reduce(rule, plain, x, y, reduction=reduction, weight=w, normalizer=normalizer)
    loss = plain(x, y) if rule is None else fused(rule, plain, x, y)
    big = y > 1
    ys = torch.where(big, y, 2.0)
    stirling = ys * torch.log(ys) - ys + 0.5 * torch.log(2.0 * math.pi * ys)
    loss = loss + torch.where(big, stirling, 0.0)
    return reduce(loss, reduction, weight=w, normalizer=normalizer)


def _poisson_log_plain(x, y):
    """``exp(x) - y x`` through autograd: the definition :class:`_PoissonLog` is checked
    against, and the one differentiated twice."""
    return torch.exp(x) - y * x


class _PoissonLog:
    """``exp(x) - y x`` (a log-rate ``x``) and its derivatives ``exp(x) - y`` (input) and
    ``-x`` (target): ``exp(x)`` made once and kept, turned into the input's gradient in
    place by the first backward (a retained graph's second makes it again)."""

    CONSUMES_STATE = True

    @staticmethod
    def forward(x, y):
        rate = torch.exp(x)
        return torch.addcmul(rate, y, x, value=-1.0), (x, y, rate)

    @staticmethod
    def backward(state, grad, needs):
        x, y, rate = state
        gy = torch.mul(x, grad).neg_() if needs[1] else None
        gx = rate.sub_(y).mul_(grad) if needs[0] else None
        return gx, gy


def _poisson_plain(x, y, *, eps):
    """``x - y log(x + eps)`` (a rate ``x``) through autograd: the definition
    :class:`_Poisson` is checked against, and the one differentiated twice."""
    return x - y * torch.log(x + eps)


class _Poisson:
    """``x - y log(x + eps)`` (a rate ``x``: torch's ``log_input=False``, Keras' ``poisson``)
    in one buffer and its derivatives ``1 - y / (x + eps)`` (input) and ``-log(x + eps)``
    (target) in another, from the inputs alone (the composition keeps ``x + eps`` and
    ``log`` of it for its backward, and takes four kernels more)."""

    def __init__(self, eps):
        self.eps = eps

    def forward(self, x, y):
        t = torch.add(x, self.eps).log_().mul_(y)  # y log(x + eps)
        return t.neg_().add_(x), (x, y)  # x - y log(x + eps), rounded as x - t

    def backward(self, state, grad, needs):
        x, y = state
        gy = torch.add(x, self.eps).log_().mul_(grad).neg_() if needs[1] else None
        gx = None
        if needs[0]:
            d = torch.add(x, self.eps)
            gx = torch.div(y, d, out=d).neg_().add_(1.0).mul_(grad)
        return gx, gy


# --------------------------------------------------------------------------- Gaussian
def _variance(name, var, x_shape, dtype, device):
    """``var`` as a tensor that broadcasts to the loss: a number, the input's shape, the
    input's shape without its last dimension (unsqueezed), or the input's shape with one
    dimension of size 1 (torch's rules)."""
    if isinstance(var, torch.Tensor):
        C.check_floating(name, "var", var)
        C.check_same_device(name, input=torch.empty(0, device=device), var=var)
        shape = tuple(var.shape)
        if shape == tuple(x_shape):
            return var.to(dtype)
        if shape == tuple(x_shape[:-1]) and len(x_shape):
            return var.to(dtype).unsqueeze(-1)
        differ = [
            d for d in range(len(x_shape)) if len(shape) == len(x_shape) and shape[d] != x_shape[d]
        ]
        if len(shape) == len(x_shape) and len(differ) == 1 and shape[differ[0]] == 1:
            return var.to(dtype)
        fail_shape = tuple(x_shape)
        C.fail(
            name,
            f"var of shape {shape} does not fit the input of shape {fail_shape}.",
            f"var is one variance per element {fail_shape}, one per sample "
            f"{fail_shape[:-1]} (the input's shape without its last dimension), the input's "
            "shape with one dimension of size 1 (shared along it), or a number.",
        )
    if isinstance(var, bool) or not isinstance(var, (int, float)):
        C.fail(
            name,
            f"var must be a tensor or a number, got {type(var).__name__}.",
            cls=C.LossTypeError,
        )
    v = C.check_number(name, "var", var, low=0.0)
    return torch.full((), v, dtype=dtype, device=device)


def gaussian_nll_loss(
    input,
    target,
    var,
    *,
    full=False,
    eps=1e-6,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    r"""Gaussian negative log-likelihood, as ``torch.nn.functional.gaussian_nll_loss``.

    For a predicted mean ``x`` and variance ``v`` of a target ``y``, per element

    .. math::
        \ell_i = \tfrac12 \Big(\log \max(v_i, \epsilon) + \frac{(x_i - y_i)^2}{\max(v_i,
        \epsilon)}\Big) \; \big(+ \tfrac12 \log 2\pi \text{ with } \texttt{full}\big)

    and ``"mean"`` is ``sum(w l) / sum(w)``. As in torch, the clamp at ``eps`` holds the
    value only: the variance's gradient passes through it unchanged (torch clamps a copy
    under ``no_grad``), so a variance below ``eps`` still gets the gradient of ``eps``.

    ``var`` is one variance per element (heteroscedastic), one per sample (the input's
    shape without its last dimension, or with 1 there), the input's shape with one
    dimension of size 1, or a number (homoscedastic). A variance of another shape is an
    error that lists these; a negative or NaN variance is an error under value checks
    (torch raises for a negative one and returns NaN for NaN).

    Args:
        input: the predicted means, any shape.
        target: samples of the input's shape.
        var: the predicted variances (``>= 0``), a tensor of a shape above or a number.
        full: add the constant ``0.5 log(2 pi)``. Default: ``False``.
        eps: ``> 0``, the least variance. Default: ``1e-6``.
        weight: optional per-element weight, broadcastable to the input. Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.
        broadcast: allow input and target shapes that broadcast. Default: ``False``.

    Shape:
        input ``(*)``, target ``(*)``, var ``(*)``, ``(*)`` without the last dimension,
        ``(*)`` with one dimension 1, or a number; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> mu = torch.tensor([[0.0, 1.0], [2.0, 0.5]])
        >>> y = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
        >>> LF.gaussian_nll_loss(mu, y, torch.tensor([1.0, 4.0]), reduction="none")
        tensor([[0.1250, 0.0000],
                [0.8181, 0.7244]])

    References:
        Nix & Weigend, "Estimating the mean and variance of the target probability
        distribution", 1994, https://doi.org/10.1109/ICNN.1994.374138
    """
    name = "gaussian_nll_loss"
    x, y, w = _pair(name, input, target, weight, reduction, normalizer, broadcast)
    if isinstance(var, torch.Tensor):
        C.check_tensor(name, "var", var)
    v = _variance(name, var, x.shape, x.dtype, x.device)
    if isinstance(var, torch.Tensor):
        _check_nonnegative(
            name, "var", var, "var holds variances; for a log-variance pass var=log_var.exp()."
        )
    eps = C.check_number(name, "eps", eps, low=0.0, low_open=True)
    if not isinstance(full, bool):
        C.fail(name, f"full must be True or False, got {full!r}.", cls=C.LossTypeError)
    plain = functools.partial(_gaussian_nll_plain, eps, full)
    if x.is_meta:
        return reduce(plain(x, y, v), reduction, weight=w, normalizer=normalizer)
    return fused_reduce(
        _GaussianNLL(eps, full), plain, x, y, v.expand(x.shape),
        reduction=reduction, weight=w, normalizer=normalizer,
    )  # fmt: skip


def _gaussian_nll_plain(eps, full, x, y, v):
    """The autograd definition: max(v, eps) in value, the identity in gradient (torch
    clamps a copy under no_grad)."""
    fixed = v.detach()
    v = (v - fixed) + fixed.clamp(min=eps)
    loss = 0.5 * (torch.log(v) + (x - y) ** 2 / v)
    return loss + _HALF_LOG_2PI if full else loss


class _GaussianNLL:
    """``(log m + r q) / 2`` with ``m = max(v, eps)``, ``r = x - y``, ``q = r / m``, and its
    derivatives ``q`` (mean), ``-q`` (target) and ``(1 / m - q^2) / 2`` (variance, through
    the clamp as torch's): three buffers forward and the two kept, ``m`` and ``q`` (a step's
    peak at 4096 x 256 float32: 12 MB against torch's 20); ``r q`` is ``r^2 / m`` without
    squaring ``r`` first, so it overflows only where the value does."""

    def __init__(self, eps, full):
        self.eps, self.full = eps, full

    def _parts(self, x, y, v):
        m = torch.clamp_min(v, self.eps)
        q = torch.sub(x, y)
        term = torch.div(q, m).mul_(q)  # r^2 / m
        return m, q.div_(m), term

    def forward(self, x, y, v):
        m, q, term = self._parts(x, y, v)
        loss = term.add_(torch.log(m)).mul_(0.5)
        return (loss.add_(_HALF_LOG_2PI) if self.full else loss), (m, q)

    def sum_forward(self, x, y, v):
        m, q, term = self._parts(x, y, v)
        total = term.sum() + torch.log(m, out=term).sum()
        total = total.mul_(0.5)
        return (total.add_(_HALF_LOG_2PI * x.numel()) if self.full else total), (m, q)

    def backward(self, state, grad, needs):
        m, q = state
        gx = torch.mul(q, grad) if needs[0] else None
        gy = torch.mul(q, grad).neg_() if needs[1] else None
        gv = None
        if needs[2]:
            gv = torch.reciprocal(m).addcmul_(q, q, value=-1.0).mul_(grad).mul_(0.5)
        return gx, gy, gv
