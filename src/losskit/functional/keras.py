"""Keras 3's loss forms that torch lacks: ``mean_absolute_percentage_error``,
``mean_squared_logarithmic_error``, ``hinge``, ``squared_hinge``, ``categorical_hinge``,
``cosine_similarity_loss`` and ``poisson_loss``.

Each equals the Keras 3 loss of the same name (``keras.losses.*``), epsilon handling
included, with losskit's argument order ``(input, target)`` where Keras takes
``(y_true, y_pred)``. As in Keras, a sample's loss is a mean over the last axis (the
features or classes; cosine similarity sums its normalised product over ``dim``), so
``reduction="none"`` gives one value per sample: the input's shape without its last
dimension. ``weight`` is per sample, as Keras' ``sample_weight``, and ``"mean"`` is
losskit's ``sum(w L) / sum(w)`` (Keras' ``reduction="mean_with_sample_weight"``). Keras'
default ``"sum_over_batch_size"`` divides a weighted sum by the number of samples
instead: pass ``normalizer=`` that number to get it. Without a weight the two agree.

Example:
    >>> import torch, losskit.functional as LF
    >>> y_pred = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    >>> y_true = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    >>> LF.hinge(y_pred, y_true, reduction="none")  # keras.losses.hinge(y_true, y_pred)
    tensor([1.1000, 1.5000])
"""

from __future__ import annotations

import functools
import math

import torch

from .. import _checks as C
from .._reduction import compute_dtype, reduce
from ._fused import eager, fused
from .distributions import _Poisson, _poisson_plain

__all__ = [
    "mean_absolute_percentage_error",
    "mape_loss",
    "mean_squared_logarithmic_error",
    "msle_loss",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity_loss",
    "poisson_loss",
]

#: ``keras.backend.epsilon()``'s default, the fuzz factor of every Keras form here.
KERAS_EPSILON = 1e-7


# --------------------------------------------------------------------------- shared
def _prepare(name, input, target, weight, reduction, normalizer, broadcast=False, dim=-1):
    """Validate a Keras-form call and return ``(x, y, w)`` in the compute dtype.

    Input and target have one shape (or broadcast, with ``broadcast=True``), at least one
    dimension (the last holds a sample's features or classes); ``weight`` is per sample:
    it broadcasts to the shape without dimension ``dim``.
    """
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    if isinstance(dim, bool) or not isinstance(dim, int):
        C.fail(name, f"dim must be an int, got {dim!r}.", cls=C.LossTypeError)
    if input.dim() == 0:
        C.fail(
            name,
            "input must have at least one dimension, got a 0-dim tensor.",
            "Keras' forms average over the last dimension (a sample's features): give a "
            "single value the shape (1,).",
        )
    shape = C.check_same_shape(name, input, target, broadcast)
    if not -len(shape) <= dim < len(shape):
        C.fail(name, f"dim={dim} is out of range for input of shape {tuple(shape)}.")
    per_sample = shape[: dim % len(shape)] + shape[dim % len(shape) + 1 :]
    if weight is not None:
        C.check_broadcastable_to(
            name,
            "weight",
            weight,
            per_sample,
            f"weight is per sample, as Keras' sample_weight: give it the shape "
            f"{tuple(per_sample)} (the input's shape without dimension {dim}), or one that "
            "broadcasts to it.",
        )
    dtype = compute_dtype(input.dtype)
    x = input.to(dtype)
    y = target.to(dtype)
    if x.shape != shape or y.shape != shape:
        x, y = torch.broadcast_tensors(x, y)
    w = weight.to(dtype) if weight is not None else None
    return x, y, w


def _mean_last(l: torch.Tensor) -> torch.Tensor:
    """The mean over the last dimension: one value per sample (0 for no features, by the
    empty-mean rule; Keras gives NaN there)."""
    n = l.shape[-1]
    total = l.sum(dim=-1)
    return total / n if n else total


def _finish(per_sample, reduction, w, normalizer):
    """Reduce the per-sample losses: ``sum(w L) / sum(w)`` for ``"mean"``."""
    return reduce(per_sample, reduction, weight=w, normalizer=normalizer)


def _eps(name, eps, *, zero_ok=False):
    return C.check_number(name, "eps", eps, low=0.0, low_open=not zero_ok)


# --------------------------------------------------------------------------- value checks
def _check_nonnegative(name, tensors: dict, hint: str) -> None:
    """Value check: every element of each named tensor is ``>= 0`` (and not NaN)."""
    if not C.checks_enabled():
        return
    tensors = {k: t for k, t in tensors.items() if t.numel()}
    if not tensors:
        return
    with torch.no_grad():
        ok = None
        for t in tensors.values():
            flag = t.detach().amin() >= 0
            ok = flag if ok is None else ok & flag
        if bool(ok):  # one synchronisation when all is well
            return
        for arg, t in tensors.items():
            v = t.detach()
            bad = ~(v >= 0)
            n_bad = int(bad.sum())
            if n_bad == 0:
                continue
            finite = v[~torch.isnan(v)]
            lo = f"{float(finite.min()):.6g}" if finite.numel() else "nan"
            n_nan = v.numel() - finite.numel()
            found = f"found min {lo}" + (f", {n_nan} NaN" if n_nan else "")
            C.fail(
                name,
                f"{arg} must hold values >= 0, {found} ({n_bad} of {v.numel()} values "
                "negative or NaN).",
                hint,
            )


def _check_hinge_labels(name, y: torch.Tensor) -> None:
    """Value check: labels -1 and 1, or 0 and 1 (all of them, as Keras converts)."""
    if not C.checks_enabled() or y.numel() == 0:
        return
    with torch.no_grad():
        v = y.detach()
        zero_one = (v == 0) | (v == 1)
        signs = (v == -1) | (v == 1)
        if bool(zero_one.all() | signs.all()):
            return
        other = ~(zero_one | signs)
        n_other = int(other.sum())
        if n_other:
            values = torch.unique(v[other]).tolist()
            soft = all(0 < u < 1 for u in values)
    if n_other:
        plural = "value" if n_other == 1 else "values"
        hint = (
            "hinge losses take hard labels: threshold soft ones, e.g. (target > 0.5).float()."
            if soft
            else "for class indices, use categorical_hinge with one-hot rows "
            "(torch.nn.functional.one_hot)."
        )
        C.fail(
            name,
            f"target must hold labels -1 and 1, or 0 and 1 (converted to -1 and 1, as "
            f"Keras does); found {C.format_values(values)} ({n_other} {plural} of "
            f"{v.numel()} outside).",
            hint,
        )
    C.fail(
        name,
        "target mixes the labels -1 and 0: Keras converts 0/1 labels to -1/1 only when "
        "every value is 0 or 1, so these 0s would stay 0 (a margin of 0, not a negative).",
        "map 0 to -1 (target.where(target != 0, -1.0)), or turn value checks off "
        "(losskit.set_checks(False)) to compute Keras' unconverted form.",
    )


# --------------------------------------------------------------------------- regression
def mean_absolute_percentage_error(
    input,
    target,
    *,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    r"""Mean absolute percentage error, as ``keras.losses.mean_absolute_percentage_error``.

    .. math::
        L_s = \frac{100}{D} \sum_{j=1}^{D}
              \frac{|y_{sj} - x_{sj}|}{\max(|y_{sj}|, \epsilon)}

    over the last dimension (``D`` values per sample). The ``max`` is Keras' guard
    against a zero target: a target of 0 divides by ``eps`` (so an error of 1 costs
    ``1e9`` percent), never by 0. The gradient, ``100 / (D max(|y|, eps))`` per element,
    overflows a float16 input's gradient for ``|y|`` below about ``1.5e-3 / D``.

    Args:
        input: predictions (Keras' ``y_pred``), at least one dimension.
        target: same shape as ``input`` (Keras' ``y_true``).
        eps: the floor of ``|target|``, ``> 0``. Default: ``1e-7`` (``keras.backend.epsilon()``).
        weight: per-sample weight, broadcastable to the input's shape without its last
            dimension (Keras' ``sample_weight``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide ``sum(w L)`` by this instead of ``sum(w)``
            (the number of samples gives Keras' weighted ``"sum_over_batch_size"``).
        broadcast: allow input and target shapes that broadcast. Default: ``False``.

    Shape:
        input ``(*, D)``, target ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Returns:
        The loss; float32 for float16/bfloat16 inputs, else the input's dtype.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.mean_absolute_percentage_error(
        ...     torch.tensor([90.0, 210.0, 310.0]), torch.tensor([100.0, 200.0, 300.0]))
        tensor(6.1111)
    """
    name = "mean_absolute_percentage_error"
    eps = _eps(name, eps)
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer, broadcast)
    plain = functools.partial(_mape_plain, y, eps)
    if y.requires_grad or x.is_meta:
        per_element = plain(x)
    else:
        per_element = fused(_MAPE(y, eps), plain, x)
    return _finish(100.0 * _mean_last(per_element), reduction, w, normalizer)


def _mape_plain(y, eps, x):
    return (y - x).abs() / y.abs().clamp_min(eps)


class _MAPE:
    """``|x - y| / max(|y|, eps)`` and its derivative ``sgn(x - y) / max(|y|, eps)`` (0 at
    ``x = y``, as ``abs``'), the target without a gradient: three buffers forward, the
    residual made the gradient in place (a step's peak at 4096 x 256 float32: 12 MB
    against the composition's 16)."""

    CONSUMES_STATE = True

    def __init__(self, y, eps):
        self.y, self.eps = y, eps

    def forward(self, x):
        floor = torch.abs(self.y).clamp_min_(self.eps)
        r = torch.sub(x, self.y)
        return torch.abs(r).div_(floor), (r, floor)

    def backward(self, state, grad, needs):
        r, floor = state
        return (r.sgn_().div_(floor).mul_(grad),)


#: Alias of :func:`mean_absolute_percentage_error` (Keras' ``MAPE``).
mape_loss = mean_absolute_percentage_error


def mean_squared_logarithmic_error(
    input,
    target,
    *,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    r"""Mean squared logarithmic error, as ``keras.losses.mean_squared_logarithmic_error``.

    .. math::
        L_s = \frac{1}{D} \sum_{j=1}^{D}
              \left(\log(\max(x_{sj}, \epsilon) + 1) - \log(\max(y_{sj}, \epsilon) + 1)\right)^2

    Values below ``eps`` (zeros and negatives) are replaced by ``eps``, as Keras does, so
    the gradient there is 0. ``log(v + 1)`` is computed as ``log1p(v)``: equal in exact
    arithmetic, and exact for small ``v`` (Keras' float32 ``log(v + 1)`` rounds ``1 + v``
    first).

    Args:
        eps: the floor of input and target, ``>= 0``. Default: ``1e-7``.
        others: as :func:`mean_absolute_percentage_error`.

    Shape:
        input ``(*, D)``, target ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.mean_squared_logarithmic_error(
        ...     torch.tensor([[1.0, 1.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
        tensor(0.1201)
    """
    name = "mean_squared_logarithmic_error"
    eps = _eps(name, eps, zero_ok=True)
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer, broadcast)
    plain = functools.partial(_msle_plain, eps=eps)
    if x.device.type == "cpu" and not y.requires_grad and eager():
        per_element = fused(_MSLE(eps), plain, x, y)
    else:
        per_element = plain(x, y)
    return _finish(_mean_last(per_element), reduction, w, normalizer)


def _msle_plain(x, y, *, eps):
    """``(log1p(max(x, eps)) - log1p(max(y, eps)))^2`` through autograd: the closed form's
    definition, and the one differentiated twice."""
    return (torch.log1p(x.clamp_min(eps)) - torch.log1p(y.clamp_min(eps))).square()


class _MSLE:
    """``d^2``, ``d = log1p(max(x, eps)) - log1p(max(y, eps))``, and its derivative ``2 d /
    (1 + max(x, eps))`` where ``x >= eps`` (the clamp's, as autograd's: 0 below), from
    ``d`` and the inputs kept: one autograd node where the tape holds five.

    Two fresh buffers forward, one backward, and the clamp's mask as a float product,
    not a boolean ``masked_fill`` (profiled at 4096 x 256, one thread: the float comparison
    and product about 0.2 ms, against 0.57 for the ``bool`` comparison, 0.76 for its
    ``all()`` and 4.0 for ``masked_fill``): a product differs from the mask only where the
    unmasked derivative is not finite (a NaN input, an infinite target), which one sum
    shows; there the ``where`` form is computed instead."""

    CONSUMES_STATE = True  # the backward writes its mask into d

    def __init__(self, eps):
        self.eps = eps

    def _d(self, x, y):
        d = torch.clamp_min(x, self.eps).log1p_()
        other = torch.clamp_min(y, self.eps).log1p_()
        return d.sub_(other), other

    def forward(self, x, y):
        d, buf = self._d(x, y)
        return torch.mul(d, d, out=buf), (x, y, d)

    def sum_forward(self, x, y):
        d, buf = self._d(x, y)
        return torch.mul(d, d, out=buf).sum(), (x, y, d)

    def backward(self, state, grad, needs):
        x, y, d = state
        scale = torch.clamp_min(x, self.eps).add_(1.0)  # 1 + max(x, eps)
        dx = torch.div(d, scale, out=scale).mul_(grad).mul_(2.0)
        dx.mul_(torch.ge(x, self.eps, out=d))  # the clamp passes x >= eps (NaN: not)
        if not math.isfinite(float(dx.sum())):  # a product with a mask of 0 may be NaN
            d = self._d(x, y)[0]
            unmasked = d.div_(torch.clamp_min(x, self.eps).add_(1.0)).mul_(grad).mul_(2.0)
            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            dx = torch.where(x >= self.eps, unmasked, zero)
        return dx, None


#: Alias of :func:`mean_squared_logarithmic_error` (Keras' ``MSLE``).
msle_loss = mean_squared_logarithmic_error


def _l2_normalize(v: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    """``v / max(||v||, eps)`` along ``dim`` (Keras' ``normalize``), in a scaled form.

    With ``m = max |v|`` (a constant to autograd), ``v / max(||v||, eps)`` equals
    ``u / max(||u||, eps / m)`` for ``u = v / m``: ``||u||`` lies in ``[1, sqrt(D)]``, so
    the squares neither overflow (``v`` of 1e20 in float32) nor underflow; the two are the
    same function of ``v`` for every fixed ``m``, so the gradient is exact too. A zero
    vector gives 0 with the finite gradient ``1 / eps`` (Keras' torch backend: NaN).
    """
    if v.shape[dim] == 0:
        return v
    m = v.detach().abs().amax(dim=dim, keepdim=True)
    m = torch.where(m > 0, m, torch.ones_like(m))  # a zero vector (or NaN) as it is
    u = v / m
    s = u.square().sum(dim=dim, keepdim=True)
    floor = eps / m
    big = s > floor * floor  # ||u|| > eps / m: Keras' min(rsqrt(s), 1 / eps) picks rsqrt
    inv = torch.where(big, torch.rsqrt(torch.where(big, s, torch.ones_like(s))), 1.0 / floor)
    return u * inv


def cosine_similarity_loss(
    input,
    target,
    *,
    dim=-1,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    r"""Negative cosine similarity, as ``keras.losses.cosine_similarity`` (and
    ``keras.losses.CosineSimilarity(axis=dim)``).

    .. math::
        L_s = -\sum_j \frac{x_{sj}}{\max(\lVert x_s \rVert, \epsilon)}
                      \frac{y_{sj}}{\max(\lVert y_s \rVert, \epsilon)}

    along ``dim``: ``-1`` for vectors pointing the same way, ``1`` for opposite ones, ``0``
    for orthogonal ones and wherever either vector is 0. Unlike every other losskit loss
    it is negative, in ``[-1, 1]`` per sample. Keras' ``l2_normalize`` floors the norm at
    ``eps``; here it is computed in a scaled form, so vectors whose squares overflow
    (1e20 in float32) or underflow still give the true value, and a zero vector has the
    finite gradient ``-y / (eps ||y||)`` where Keras' torch backend returns NaN.

    Args:
        dim: the dimension of the vectors. Default: ``-1`` (Keras' ``axis``).
        eps: the floor of each vector's norm, ``> 0``. Default: ``1e-7``.
        weight: per-sample weight, broadcastable to the input's shape without ``dim``.
        others: as :func:`mean_absolute_percentage_error`.

    Shape:
        input ``(*, D)``, target ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"`` (the input's shape without ``dim``).

    Example:
        >>> import torch, losskit.functional as LF
        >>> y_true = torch.tensor([[0., 1.], [1., 1.], [1., 1.]])
        >>> y_pred = torch.tensor([[1., 0.], [1., 1.], [-1., -1.]])
        >>> LF.cosine_similarity_loss(y_pred, y_true, reduction="none")
        tensor([-0.0000, -1.0000,  1.0000])
    """
    name = "cosine_similarity_loss"
    eps = _eps(name, eps)
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer, broadcast, dim=dim)
    plain = functools.partial(_cosine_plain, dim=dim, eps=eps)
    if x.device.type == "cpu" and x.shape[dim] and x.numel() and eager():
        with torch.no_grad():
            n = torch.linalg.vector_norm(x.detach(), dim=dim)
            m = torch.linalg.vector_norm(y.detach(), dim=dim)
            lo, hi = C.host_bounds(torch.stack((n, m)))
        # every norm above the floor eps (and below 1e18, where no square or product
        # overflows): the closed form; else (a zero vector, huge or tiny ones, NaN) the
        # scaled form. Reading that is no device sync on CPU
        if lo > eps and hi < 1e18:
            per_sample = fused(_Cosine(dim, n, m), plain, x, y)
            return _finish(per_sample, reduction, w, normalizer)
    return _finish(plain(x, y), reduction, w, normalizer)


def _cosine_plain(x, y, *, dim, eps):
    """The negative cosine similarity through autograd, in the scaled form: the
    definition :class:`_Cosine` is checked against, and the one differentiated twice."""
    return -(_l2_normalize(x, dim, eps) * _l2_normalize(y, dim, eps)).sum(dim=dim)


class _Cosine:
    """``L = -x.y / (|x| |y|)`` per vector, for norms above the floor ``eps`` (given:
    ``n = |x|``, ``m = |y|``), and its derivatives ``dL/dx = -(y - (x.y / n^2) x) / (n m)``
    (``y`` likewise): one dot product per vector forward, one pass for each gradient,
    where the composition normalises both vectors, multiplies and differentiates all of
    it."""

    def __init__(self, dim, n, m):
        self.dim, self.n, self.m = dim, n, m

    def forward(self, x, y):
        d = torch.linalg.vecdot(x, y, dim=self.dim)
        nm = self.n * self.m
        return (d / nm).neg_(), (x, y, d, nm)

    def backward(self, state, grad, needs):
        x, y, d, nm = state
        inv = grad / nm
        gx = gy = None
        if needs[0]:
            a = (-inv).unsqueeze(self.dim)
            b = (inv * d / self.n / self.n).unsqueeze(self.dim)
            gx = torch.mul(y, a).addcmul_(x, b)
        if needs[1]:
            a = (-inv).unsqueeze(self.dim)
            b = (inv * d / self.m / self.m).unsqueeze(self.dim)
            gy = torch.mul(x, a).addcmul_(y, b)
        return gx, gy


def poisson_loss(
    input,
    target,
    *,
    eps=KERAS_EPSILON,
    weight=None,
    reduction="mean",
    normalizer=None,
    broadcast=False,
):
    r"""Poisson loss on a rate, as ``keras.losses.poisson``.

    .. math::
        L_s = \frac{1}{D} \sum_{j=1}^{D} \left(x_{sj} - y_{sj} \log(x_{sj} + \epsilon)\right)

    ``input`` is the rate (the Poisson mean, ``x >= 0``), not its log; ``eps`` keeps a rate
    of 0 finite. This is ``torch.nn.functional.poisson_nll_loss(input, target,
    log_input=False, eps=eps)`` averaged per sample. It is the negative log-likelihood
    without the ``log(y!)`` term, so it can be negative (its least value over ``x`` is
    ``y - y log y``, at ``x = y``).

    Args:
        input: rates, ``>= 0`` (checked), at least one dimension. For log-rates pass
            ``input.exp()``.
        target: counts (or any values ``>= 0``, checked), the input's shape.
        eps: added to the rate inside the log, ``> 0``. Default: ``1e-7``.
        others: as :func:`mean_absolute_percentage_error`.

    Shape:
        input ``(*, D)``, target ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.poisson_loss(torch.tensor([[1., 1.], [0., 0.]]), torch.tensor([[0., 1.], [0., 0.]]))
        tensor(0.5000)
    """
    name = "poisson_loss"
    eps = _eps(name, eps)
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer, broadcast)
    _check_nonnegative(
        name,
        {"input": x, "target": y},
        "poisson_loss takes rates (the Poisson mean) and counts; for a log-rate input "
        "pass input.exp().",
    )
    if x.device.type == "cpu" and not y.requires_grad and eager():
        per_element = fused(_Poisson(eps), functools.partial(_poisson_plain, eps=eps), x, y)
    else:
        per_element = _poisson_plain(x, y, eps=eps)
    return _finish(_mean_last(per_element), reduction, w, normalizer)


# --------------------------------------------------------------------------- classification
def _hinge_margin(name, input, target, weight, reduction, normalizer):
    """``1 - y x`` with Keras' labels: a target of only 0s and 1s becomes ``2 y - 1``."""
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer)
    _check_hinge_labels(name, y)
    zero_one = ((y == 0) | (y == 1)).all()  # on the device: no host read
    y = torch.where(zero_one, 2.0 * y - 1.0, y)
    return 1.0 - y * x, w


def _fast_hinge(input, target) -> bool:
    """The closed forms run on CPU tensors in eager mode (where the labels' kind is read
    on the host without a sync), for a target without a gradient."""
    return (
        isinstance(input, torch.Tensor)
        and input.device.type == "cpu"
        and not (isinstance(target, torch.Tensor) and target.requires_grad)
        and eager()
    )


def _zero_one_labels(name, y: torch.Tensor) -> bool:
    """Whether every label is 0 or 1 (Keras then converts them to -1 and 1), under value
    checks also that they are -1 and 1 otherwise, read on the host (on CPU: no sync) from
    float passes: torch's comparisons to bool cost about six times an ``abs``.

    In [0, 1] the labels are 0 or 1 where ``frac(y)`` is 0 throughout; in [-1, 1] they are
    -1 or 1 where ``|y|`` is 1 throughout. Anything else is reported by
    :func:`_check_hinge_labels`."""
    if y.numel() == 0:
        return True
    with torch.no_grad():
        v = y.detach()
        lo, hi = (float(t) for t in torch.aminmax(v))  # NaN: neither range
        zero_one = lo >= 0 and hi <= 1 and float(torch.frac(v).amax()) == 0
        if zero_one or not C.checks_enabled():
            return zero_one
        if lo >= -1 and hi <= 1 and float(v.abs().amin()) == 1:
            return False
    _check_hinge_labels(name, y)  # raises, with the values found
    return False


def _hinge_fast(name, input, target, weight, reduction, normalizer, squared):
    """:func:`hinge` (``squared``: :func:`squared_hinge`) through :class:`_Hinge`."""
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer)
    zero_one = _zero_one_labels(name, y)
    plain = functools.partial(_hinge_plain, zero_one=zero_one, squared=squared)
    per_element = fused(_Hinge(zero_one, squared), plain, x, y)
    return _finish(_mean_last(per_element), reduction, w, normalizer)


def _hinge_plain(x, y, *, zero_one, squared):
    """``max(1 - y x, 0)`` (squared) through autograd, labels converted: the definition
    :class:`_Hinge` is checked against, and the one differentiated twice."""
    r = torch.relu(1.0 - (2.0 * y - 1.0 if zero_one else y) * x)
    return r.square() if squared else r


class _Hinge:
    """``r = max(1 - s x, 0)`` per element (``s = 2 y - 1`` for 0/1 labels, else ``y``),
    or ``r^2``, and the derivative ``-s [r > 0]`` (``-2 s r``): the margin in one buffer,
    kept for the backward, whose gradient is one pass over it and the target."""

    def __init__(self, zero_one, squared):
        self.zero_one, self.squared = zero_one, squared

    def forward(self, x, y):
        if self.zero_one:
            r = torch.mul(y, 2.0).sub_(1.0).mul_(x)  # s x, exactly +-x
        else:
            r = torch.mul(y, x)
        r.neg_().add_(1.0).clamp_min_(0.0)  # max(1 - s x, 0)
        return (r.square() if self.squared else r), (r, y)

    def backward(self, state, grad, needs):
        r, y = state
        t = torch.mul(r, 2.0) if self.squared else torch.sign(r)  # 2 r, or [r > 0]
        if self.zero_one:
            t.addcmul_(t, y, value=-2.0)  # -s t = (1 - 2 y) t
        else:
            t.mul_(y).neg_()
        return t.mul_(grad), None


def hinge(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Hinge loss, as ``keras.losses.hinge``.

    .. math::
        L_s = \frac{1}{D} \sum_{j=1}^{D} \max(1 - y_{sj} x_{sj}, 0)

    ``target`` holds labels -1 and 1, or 0 and 1: a target whose values are all 0 or 1
    is converted to ``2 y - 1`` first, as Keras does (the rule looks at the whole target,
    so a target of only 1s is the same in both forms). A target that mixes -1 and 0, or
    holds other values, is an error (value check); with value checks off it is used
    unconverted, as in Keras.

    Args:
        input: scores (Keras' ``y_pred``: raw, not probabilities), at least one dimension.
        target: labels of the input's shape, -1/1 or 0/1 (checked).
        weight: per-sample weight, broadcastable to the input's shape without its last
            dimension (Keras' ``sample_weight``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide ``sum(w L)`` by this instead of ``sum(w)``.

    Shape:
        input ``(*, D)``, target ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Returns:
        The loss; float32 for float16/bfloat16 inputs, else the input's dtype.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.hinge(torch.tensor([[0.6, 0.4], [0.4, 0.6]]), torch.tensor([[0., 1.], [0., 0.]]))
        tensor(1.3000)
    """
    if _fast_hinge(input, target):
        return _hinge_fast("hinge", input, target, weight, reduction, normalizer, False)
    margin, w = _hinge_margin("hinge", input, target, weight, reduction, normalizer)
    return _finish(_mean_last(torch.relu(margin)), reduction, w, normalizer)


def squared_hinge(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Squared hinge loss, as ``keras.losses.squared_hinge``.

    .. math::
        L_s = \frac{1}{D} \sum_{j=1}^{D} \max(1 - y_{sj} x_{sj}, 0)^2

    The square of :func:`hinge`'s per-element term before the mean; the same labels
    (-1/1, or 0/1 converted).

    Args: as :func:`hinge`.

    Shape:
        input ``(*, D)``, target ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.squared_hinge(torch.tensor([[0.6, 0.4], [0.4, 0.6]]),
        ...                  torch.tensor([[0., 1.], [0., 0.]]))
        tensor(1.8600)
    """
    if _fast_hinge(input, target):
        return _hinge_fast("squared_hinge", input, target, weight, reduction, normalizer, True)
    margin, w = _hinge_margin("squared_hinge", input, target, weight, reduction, normalizer)
    return _finish(_mean_last(torch.relu(margin).square()), reduction, w, normalizer)


def categorical_hinge(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Categorical (Crammer-Singer) hinge loss, as ``keras.losses.categorical_hinge``.

    .. math::
        L_s = \max\left(\max_j (1 - y_{sj}) x_{sj} - \sum_j y_{sj} x_{sj} + 1,\ 0\right)

    over the class dimension (the last): the best wrong score must stay a margin of 1
    below the true one. For a one-hot target the true class's term in the max is 0, as in
    Keras. Ties in the max share the gradient equally.

    Args:
        input: scores ``(*, C)`` (Keras' ``y_pred``), ``C >= 1``.
        target: one-hot (or probability) rows of the input's shape, values in [0, 1]
            (checked; Keras' docstring also mentions -1/+1 rows, which give another
            function: compute them with value checks off).
        weight: per-sample weight, broadcastable to ``(*)``. Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide ``sum(w L)`` by this instead of ``sum(w)``.

    Shape:
        input ``(*, C)``, target ``(*, C)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.categorical_hinge(torch.tensor([[0.6, 0.4], [0.4, 0.6]]),
        ...                      torch.tensor([[0., 1.], [0., 0.]]))
        tensor(1.4000)
    """
    name = "categorical_hinge"
    if (
        isinstance(input, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and input.dim() >= 1
        and tuple(target.shape) == tuple(input.shape[:-1])
        and not target.is_floating_point()
        and not target.is_complex()
    ):
        C.fail(
            name,
            f"target of shape {tuple(target.shape)} looks like class indices; "
            f"categorical_hinge takes one-hot rows of the input's shape {tuple(input.shape)}.",
            f"one-hot encode it: torch.nn.functional.one_hot(target, {input.shape[-1]}).",
        )
    x, y, w = _prepare(name, input, target, weight, reduction, normalizer)
    if x.shape[-1] == 0:
        C.fail(name, f"input of shape {tuple(x.shape)} has 0 classes (the last dimension).")
    C.check_in_unit_interval(
        name,
        "target",
        y,
        hint="categorical_hinge takes one-hot (or probability) rows; for -1/1 labels per "
        "output use hinge.",
    )
    if x.device.type == "cpu" and not y.requires_grad and eager():
        per_sample = fused(_CategoricalHinge, _categorical_hinge_plain, x, y)
        return _finish(per_sample, reduction, w, normalizer)
    return _finish(_categorical_hinge_plain(x, y), reduction, w, normalizer)


def _categorical_hinge_plain(x, y):
    """The categorical hinge through autograd: the definition :class:`_CategoricalHinge`
    is checked against, and the one differentiated twice."""
    pos = (y * x).sum(dim=-1)
    neg = ((1.0 - y) * x).amax(dim=-1)
    return torch.relu(neg - pos + 1.0)


class _CategoricalHinge:
    """``L = max(max_j (1 - y_j) x_j - sum_j y_j x_j + 1, 0)`` per row and its derivative
    ``[L > 0] ((1 - y) e / k - y)``, ``e`` the indicator of the row's maxima and ``k``
    their number (``amax``'s backward shares the max among ties so): ``e`` from one
    ``sign`` of ``(1 - y) x - max`` plus 1, in the buffer of ``(1 - y) x`` (torch's
    comparison to bool and its conversion cost several times that), kept for the
    backward's two passes. Where that is not finite (an infinite score: ``inf - inf``),
    ``e`` is the comparison itself."""

    @staticmethod
    def forward(x, y):
        t = torch.rsub(y, 1.0).mul_(x)  # (1 - y) x, rounded as the composition does
        neg = t.amax(dim=-1)
        loss = (neg - torch.linalg.vecdot(y, x, dim=-1)).add_(1.0)
        top = t.sub_(neg.unsqueeze(-1)).sign_().add_(1.0)  # 1 at the maxima, else 0
        count = top.sum(dim=-1)
        if not math.isfinite(count.sum().item()):
            top = torch.rsub(y, 1.0).mul_(x).eq_(neg.unsqueeze(-1))  # in place: float, not bool
            count = top.sum(dim=-1)
        active = torch.le(loss, 0.0).logical_not_()  # relu's backward passes NaN rows too
        return loss.clamp_min_(0.0), (y, [top], x, neg, count, active)

    @staticmethod
    def backward(state, grad, needs):
        y, spare, x, neg, count, active = state
        act = (grad * active).unsqueeze(-1)
        if spare:  # the first backward takes the indicator (a retained graph's next: again)
            top = spare.pop()
        else:
            top = torch.rsub(y, 1.0).mul_(x).eq_(neg.unsqueeze(-1))  # in place: float, not bool
        share = top.addcmul_(top, y, value=-1.0)  # (1 - y) e
        gx = torch.mul(y, act).neg_()  # -y [L > 0]
        return gx.addcmul_(share, act / count.unsqueeze(-1)), None
