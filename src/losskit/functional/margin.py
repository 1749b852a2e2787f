"""torch.nn's margin and embedding losses: ``margin_ranking_loss``,
``hinge_embedding_loss``, ``soft_margin_loss``, ``multilabel_margin_loss``,
``multilabel_soft_margin_loss``, ``cosine_embedding_loss``, ``multi_margin_loss``,
``triplet_margin_loss`` and ``triplet_margin_with_distance_loss``.

Each keeps torch's name, its positional inputs in torch's order (``(input1, input2,
target)``, ``(anchor, positive, negative)``), its hyperparameters' names and defaults,
and torch's values and gradients, with losskit's rules on top: the empty mean is 0
(torch returns NaN, and for ``multilabel_margin_loss`` and ``multi_margin_loss`` of an
empty batch uninitialised memory), a class-weighted mean is ``sum(w l) / sum(w)`` (torch's
``multi_margin_loss(weight=)`` divides by N), bad inputs raise a named error, and labels
are checked (value checks): the -1/1 labels of the pair losses, the -1-padded class lists
of ``multilabel_margin_loss``, the class indices of ``multi_margin_loss``. With value
checks off (``losskit.set_checks(False)``) any label value gives torch's formula.
Options come by keyword, or positionally in torch's order (``margin_ranking_loss(x1, x2,
y, 0.5)`` is ``margin=0.5``), as the registry rows declare.

Example:
    >>> import torch, losskit.functional as LF
    >>> x1, x2 = torch.tensor([0.5, 2.0]), torch.tensor([1.0, 1.0])
    >>> LF.margin_ranking_loss(x1, x2, torch.tensor([1.0, 1.0]), reduction="none")
    tensor([0.5000, 0.0000])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as TF

from .. import _checks as C
from .._reduction import compute_dtype, reduce
from . import _aten, _math
from ._fused import Kernels, fused, fused_reduce, fused_total, small

__all__ = [
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "cosine_embedding_loss",
    "multi_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

# torch's cosine_embedding_loss adds this to each squared norm (ATen's EPSILON)
COSINE_EPS = 1e-12
# torch.nn.functional.pairwise_distance's default eps, added to the difference
PAIRWISE_EPS = 1e-6


# --------------------------------------------------------------------------- shared
def _floating_input(name: str, arg: str, t: object) -> torch.Tensor:
    C.check_tensor(name, arg, t)
    C.check_floating(name, arg, t)
    return t


def _same_shape(name: str, tensors: dict[str, torch.Tensor], hint: str | None = None) -> None:
    """Every named tensor has the first one's shape (torch would broadcast some)."""
    (first, ref), *rest = tensors.items()
    for arg, t in rest:
        if t.shape != ref.shape:
            C.fail(
                name,
                f"{arg} shape {tuple(t.shape)} does not match {first} shape {tuple(ref.shape)}.",
                hint,
            )


def _dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The compute dtype of the floating inputs (promoted; half precision in float32)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return compute_dtype(dtype)


def _check_signs(name: str, y: torch.Tensor, pairs: str = "pair") -> None:
    """Value check: every label is -1 or 1."""
    if not C.checks_enabled() or y.numel() == 0:
        return
    v = y.detach()  # no graph: no grad mode to switch
    lo, hi = C.host_bounds(v.abs())  # one pass; NaN propagates into both
    if lo == 1 and hi == 1:
        return
    with torch.no_grad():
        good = (v == 1) | (v == -1)
        n_bad = int((~good).sum())
        values = torch.unique(v[~good]).tolist()
        zero_one = bool(((v == 0) | (v == 1)).all())
    if zero_one:
        hint = "the labels look 0/1: map them to -1/1 with 2 * target - 1."
    elif 0 in values:
        hint = (
            f"a 0 (a tie?) is neither label: drop those {pairs}s; with value checks off "
            "(losskit.set_checks(False)) torch's formula is used for any value."
        )
    else:
        hint = None
    plural = "value" if n_bad == 1 else "values"
    C.fail(
        name,
        f"target must hold the labels 1 and -1; found {C.format_values(values)} "
        f"({n_bad} {plural} of {v.numel()} other).",
        hint,
    )


def _weight(name: str, weight, shape, what: str):
    """``weight`` (``None``, or checked by :func:`check_call`) broadcastable to the loss's
    shape: one value per element, or per pair or triplet."""
    if weight is not None:
        C.check_broadcastable_to(
            name,
            "weight",
            weight,
            torch.Size(shape),
            f"weight is per {what}: give it the shape {tuple(shape)}, or one that broadcasts "
            "to it.",
        )
    return weight


def _check_margin_positive(name: str, margin: object) -> float:
    return C.check_number(name, "margin", margin, low=0.0, low_open=True)


def _batch_rows(name: str, x: torch.Tensor, what: str = "classes") -> tuple[torch.Tensor, int]:
    """A 0-, 1- or 2-dim input as ``(N, C)`` rows (torch's 0-dim input is one class),
    and C; more dimensions or no class is an error."""
    if x.dim() > 2:
        C.fail(
            name,
            f"input must be (C,) or (N, C), got shape {tuple(x.shape)}.",
            "flatten the leading dimensions: input.reshape(-1, input.shape[-1]) (and the "
            "target to match).",
        )
    rows = x.reshape(1, -1) if x.dim() < 2 else x
    if rows.shape[1] == 0:
        C.fail(name, f"input of shape {tuple(x.shape)} has no {what} (C = 0).")
    return rows, rows.shape[1]


# --------------------------------------------------------------------------- pairs
def margin_ranking_loss(
    input1, input2, target, *, margin=0.0, weight=None, reduction="mean", normalizer=None
):
    r"""Margin ranking loss, as ``torch.nn.functional.margin_ranking_loss``.

    .. math::
        \ell_i = \max(0,\ -y_i (x_{1,i} - x_{2,i}) + \text{margin})

    ``y = 1``: ``x1`` should rank higher than ``x2`` (by at least ``margin``); ``y = -1``:
    lower. Then the reduction over all elements: the mean (0 for an empty input) or sum.
    At the hinge's corner the gradient is torch's (``clamp_min``'s: that of the line).

    Args:
        input1: scores, any shape.
        input2: scores of ``input1``'s shape.
        target: labels 1 and -1 of ``input1``'s shape (checked; any real or integer dtype).
        margin: the margin, any finite number. Default: ``0``.
        weight: per-element weight, broadcastable to ``input1``'s shape (losskit's; the
            mean is ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the count.

    Shape:
        input1 ``(*)``, input2 ``(*)``, target ``(*)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Returns:
        The loss; float32 for float16/bfloat16 inputs, else the inputs' dtype.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.margin_ranking_loss(torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1.0, 1.0, 0.0]),
        ...                        torch.tensor([1.0, -1.0, -1.0]), margin=0.5)
        tensor(0.8333)
    """
    name = "margin_ranking_loss"
    C.check_call(
        name, input1, target, reduction=reduction, normalizer=normalizer,
        input_name="input1", input2=input2, weight=weight,
    )  # fmt: skip
    _floating_input(name, "input2", input2)
    margin = C.check_number(name, "margin", margin)
    _same_shape(name, {"input1": input1, "input2": input2, "target": target})
    _weight(name, weight, input1.shape, "element")
    dtype = _dtype(input1, input2)
    y = target.to(dtype)
    _check_signs(name, y)
    x1, x2 = input1.to(dtype), input2.to(dtype)
    if y.requires_grad or x1.is_meta:
        loss = _margin_ranking_plain(y, margin, x1, x2)
    else:
        plain = functools.partial(_margin_ranking_plain, y, margin)
        loss = fused(_MarginRanking(y, margin), plain, x1, x2)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _margin_ranking_plain(y, margin, x1, x2):
    return (-y * (x1 - x2) + margin).clamp_min(0.0)


class _MarginRanking:
    """``max(0, margin - y (x1 - x2))`` and its derivative ``-+ y [margin - y (x1 - x2)
    >= 0]`` (``clamp_min`` passes at its corner), kept as one tensor: autograd's
    ``clamp_min`` backward is a ``where`` (on CPU about four ``exp``'s worth)."""

    def __init__(self, y, margin):
        self.y, self.margin = y, margin

    def forward(self, x1, x2):
        z = torch.sub(x2, x1).mul_(self.y).add_(self.margin)  # -y (x1 - x2) + margin
        # d/dx2 (d/dx1 is its negative); the comparison into a float buffer, not bool
        # (on the CPU 0.10 against 0.64 ms per 1M elements)
        slope = torch.ge(z, 0.0, out=torch.empty_like(z)).mul_(self.y)
        return z.clamp_min_(0.0), slope

    def backward(self, state, grad, needs):
        g1 = torch.mul(state, grad).neg_() if needs[0] else None
        g2 = torch.mul(state, grad) if needs[1] else None
        return g1, g2


def hinge_embedding_loss(
    input, target, *, margin=1.0, weight=None, reduction="mean", normalizer=None
):
    r"""Hinge embedding loss, as ``torch.nn.functional.hinge_embedding_loss``.

    .. math::
        \ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0, \text{margin} - x_i) & y_i = -1
        \end{cases}

    ``x`` is a distance between the two members of a pair (e.g. an L1 distance), ``y = 1``
    a similar pair (pulled together), ``y = -1`` a dissimilar one (pushed beyond
    ``margin``). Then the mean over all elements (0 for an empty input) or the sum.

    Args:
        input: distances, any shape (torch's 0-dim input too).
        target: labels 1 and -1 of the input's shape (checked).
        margin: the margin, any finite number. Default: ``1.0``.
        weight: per-element weight, broadcastable to the input's shape (losskit's; the
            mean is ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the count.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.hinge_embedding_loss(torch.tensor([0.3, 0.3, 2.0]), torch.tensor([1.0, -1.0, -1.0]),
        ...                         reduction="none")
        tensor([0.3000, 0.7000, 0.0000])
    """
    name = "hinge_embedding_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    margin = C.check_number(name, "margin", margin)
    C.check_same_shape(name, input, target)
    _weight(name, weight, input.shape, "element")
    dtype = _dtype(input)
    x, y = input.to(dtype), target.to(dtype)
    _check_signs(name, y)
    if not C.checks_enabled() or x.is_meta:  # any label value: torch's formula
        loss = _hinge_embedding_plain(y, margin, x)
        return reduce(loss, reduction, weight=weight, normalizer=normalizer)
    plain = functools.partial(_hinge_embedding_plain, y, margin)
    return fused_reduce(
        _HingeEmbedding(y, margin), plain, x,
        reduction=reduction, weight=weight, normalizer=normalizer,
    )  # fmt: skip


def _hinge_embedding_plain(y, margin, x):
    # torch's two terms: the hinge where y != 1, the distance where y != -1
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.where(y != 1, (margin - x).clamp_min(0.0), zero) + torch.where(y != -1, x, zero)


class _HingeEmbedding:
    """``x`` where ``y = 1``, ``max(0, margin - x)`` where ``y = -1`` (labels checked), and
    its derivative: 1, or ``-[x <= margin]`` (``clamp_min`` passes at its corner).

    The choice is made without a boolean tensor: on the CPU a ``where`` costs about 25
    float passes and a comparison into ``bool`` 6 (1M float32 elements, one thread:
    ``where`` 3.8 ms, ``y != 1`` 0.64 ms, ``torch.ne(y, 1, out=float)`` 0.10 ms), and
    torch's formula takes four of them forward and more backward. Nor with a 0/1 float
    mask, whose product with an infinite distance is NaN: the loss is ``clamp(x, lo,
    hi)`` with ``lo = hi = h`` (the hinge) where ``y = -1`` and ``(-inf, inf)`` where
    ``y = 1``, the bounds ``min(h, -inf y)`` and ``max(h, inf y)``; exact for every
    ``x``, an infinite one too, and NaN stays NaN. The derivative is ``max(y [x <=
    margin], y)``."""

    def __init__(self, y, margin):
        self.y, self.margin = y, margin

    def forward(self, x):
        hinge = torch.sub(self.margin, x).clamp_min_(0.0)
        bound = torch.mul(self.y, -math.inf)  # -inf where y = 1, inf where y = -1
        lo = torch.minimum(hinge, bound)  # -inf, or the hinge
        hi = torch.maximum(hinge, bound.neg_(), out=hinge)  # inf, or the hinge
        return torch.clamp(x, lo, hi, out=lo), x

    def backward(self, x, grad, needs):
        slope = torch.le(x, self.margin, out=torch.empty_like(x)).mul_(self.y)  # y [x <= m]
        # 1 where y = 1, -[x <= margin] where y = -1
        return (torch.maximum(slope, self.y, out=slope).mul_(grad),)


def soft_margin_loss(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Soft margin loss (two-class logistic loss), as ``torch.nn.functional.soft_margin_loss``.

    .. math::
        \ell_i = \log(1 + e^{-y_i x_i}) = \operatorname{softplus}(-y_i x_i)

    computed as ``-log_sigmoid(y x)``: finite for scores of +-1e4, where torch's
    ``log(1 + exp(-y x))`` overflows to inf (and its gradient to NaN). Then the mean over
    all elements (0 for an empty input) or the sum.

    Args:
        input: scores (logits), any shape.
        target: labels 1 and -1 of the input's shape (checked).
        weight: per-element weight, broadcastable to the input's shape (losskit's; the
            mean is ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the count.

    Shape:
        input ``(*)``, target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.soft_margin_loss(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0]))
        tensor(0.7201)
    """
    name = "soft_margin_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    C.check_same_shape(name, input, target)
    _weight(name, weight, input.shape, "element")
    dtype = _dtype(input)
    y = target.to(dtype)
    _check_signs(name, y, "element")
    x = input.to(dtype)
    return fused_reduce(
        _SoftMargin, _soft_margin_plain, x, y,
        reduction=reduction, weight=weight, normalizer=normalizer,
    )  # fmt: skip


def _soft_margin_plain(x, y):
    # log(1 + exp(-z)) = -log_sigmoid(z)
    return -TF.logsigmoid(y * x)


class _SoftMargin:
    """``softplus(-z)``, ``z = y x``, and its derivatives ``-y sigmoid(-z)`` (input) and
    ``-x sigmoid(-z)`` (target), from two buffers: the loss as ``log1p(exp(-|z|)) -
    min(z, 0)`` (one ``sigmoid``, one ``log1p``), the gradient as ``sigmoid`` of ``-z`` in
    place of ``z``. torch's ``log(1 + exp(-y x))`` takes five passes forward, and
    computes ``exp(-y x)`` again in as many backward, each pass a new buffer."""

    @staticmethod
    def forward(x, y):
        z = torch.mul(x, y)
        loss = _math.softplus_of_minus_abs(z).sub_(z.clamp_max(0.0))
        # z is kept for the gradient (made into it in place); taken by the first backward
        # (a retained graph's next one computes its own)
        return loss, (x, y, [z])

    @staticmethod
    def sum_forward(x, y):
        z = torch.mul(x, y)
        buf = _math.softplus_of_minus_abs(z, negated=True)
        total = buf.sum().neg_()
        total -= torch.clamp_max(z, 0.0, out=buf).sum()
        return total, (x, y, [z])

    @staticmethod
    def backward(state, grad, needs):
        x, y, kept = state
        s = (kept.pop() if kept else torch.mul(x, y)).neg_().sigmoid_()  # sigmoid(-z)
        gy = torch.mul(s, x).mul_(grad).neg_() if needs[1] else None
        gx = s.mul_(y).mul_(grad).neg_() if needs[0] else None
        return gx, gy


def cosine_embedding_loss(
    input1, input2, target, *, margin=0.0, weight=None, reduction="mean", normalizer=None
):
    r"""Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss``.

    .. math::
        \cos_i = \frac{x_{1,i} \cdot x_{2,i}}
                      {\sqrt{\lVert x_{1,i} \rVert^2 + \epsilon}
                       \sqrt{\lVert x_{2,i} \rVert^2 + \epsilon}},
        \qquad
        \ell_i = \begin{cases} 1 - \cos_i & y_i = 1 \\ \max(0, \cos_i - \text{margin}) & y_i = -1
        \end{cases}

    with torch's ``epsilon = 1e-12`` inside each square root: a zero vector has cosine 0
    and a finite gradient (``1e6`` times the other unit vector). Written as a product of
    two roots rather than torch's root of the product, so that norms up to ``1e19`` in
    float32 do not overflow; the value is torch's to rounding. Then the mean over the
    pairs (0 for none) or the sum.

    Args:
        input1: vectors ``(N, D)``, or one vector ``(D,)``.
        input2: vectors of ``input1``'s shape.
        target: labels 1 (similar) and -1 (dissimilar), ``(N,)`` or ``()`` (checked).
        margin: for dissimilar pairs, any finite number (torch suggests 0 to 0.5).
            Default: ``0``.
        weight: per-pair weight, broadcastable to the target's shape (losskit's; the mean
            is ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the count.

    Shape:
        input1 ``(N, D)`` or ``(D,)``, input2 the same, target ``(N,)`` or ``()``; output
        scalar, or ``(N,)`` (``()``) with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
        >>> b = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
        >>> LF.cosine_embedding_loss(a, b, torch.tensor([1.0, -1.0]), reduction="none")
        tensor([0.2929, 1.0000])
    """
    name = "cosine_embedding_loss"
    C.check_call(
        name, input1, target, reduction=reduction, normalizer=normalizer,
        input_name="input1", input2=input2, weight=weight,
    )  # fmt: skip
    _floating_input(name, "input2", input2)
    margin = C.check_number(name, "margin", margin)
    if input1.dim() not in (1, 2):
        C.fail(
            name,
            f"input1 must be (N, D) or (D,), got shape {tuple(input1.shape)}.",
            "flatten the leading dimensions: input.reshape(-1, input.shape[-1]).",
        )
    _same_shape(name, {"input1": input1, "input2": input2})
    if target.shape != input1.shape[:-1]:
        C.fail(
            name,
            f"target shape {tuple(target.shape)} does not match the {input1.shape[:-1].numel()} "
            f"pairs of input1 shape {tuple(input1.shape)}: expected {tuple(input1.shape[:-1])}.",
            "one label per pair of vectors (the vectors lie along the last dimension).",
        )
    _weight(name, weight, target.shape, "pair")
    dtype = _dtype(input1, input2)
    a, b, y = input1.to(dtype), input2.to(dtype), target.to(dtype)
    _check_signs(name, y)
    plain = functools.partial(_cosine_plain, y, margin)
    loss = fused(_Cosine(y, margin), plain, a, b) if not a.is_meta else plain(a, b)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _cosine_plain(y, margin, a, b):
    """The cosine embedding loss per pair through autograd: the definition the closed
    form is checked against, and the one differentiated twice."""
    dot = (a * b).sum(dim=-1)
    # a * a, not a.square(): pow's backward is the slow one on CPU
    den = torch.sqrt((a * a).sum(dim=-1) + COSINE_EPS) * torch.sqrt(
        (b * b).sum(dim=-1) + COSINE_EPS
    )
    cos = dot / den
    zero = torch.zeros((), dtype=cos.dtype, device=cos.device)
    return torch.where(y == 1, 1.0 - cos, zero) + torch.where(
        y == -1, (cos - margin).clamp_min(0.0), zero
    )


class _Cosine:
    """The cosine embedding loss and its derivative from three reductions over the
    vectors (``a . b``, ``||a||``, ``||b||``: no ``(N, D)`` temporary) and, in the
    backward, one product and one ``addcmul`` per input. With ``r_a = sqrt(||a||^2 +
    eps)`` (``hypot(||a||, sqrt(eps))``: no overflow of the square), ``cos = a . b /
    (r_a r_b)`` and ``d cos / da = b / (r_a r_b) - cos a / r_a^2``; ``dl/dcos`` is -1
    for ``y = 1`` and ``[cos >= margin]`` for ``y = -1`` (``clamp_min`` passes at its
    corner), 0 for any other label (value checks off)."""

    def __init__(self, y, margin):
        self.y, self.margin = y, margin

    def forward(self, a, b):
        dot = torch.linalg.vecdot(a, b)
        root_eps = math.sqrt(COSINE_EPS)
        ra = torch.hypot(torch.linalg.vector_norm(a, dim=-1), torch.tensor(root_eps, dtype=a.dtype))
        rb = torch.hypot(torch.linalg.vector_norm(b, dim=-1), torch.tensor(root_eps, dtype=a.dtype))
        den = ra * rb
        cos = dot.div_(den)
        pos = (self.y == 1).to(cos.dtype)
        neg = (self.y == -1).to(cos.dtype)
        shifted = cos - self.margin
        # dl/dcos: -1 (similar), [cos >= margin] (dissimilar)
        slope = (shifted >= 0).to(cos.dtype).mul_(neg).sub_(pos)
        loss = torch.rsub(cos, 1.0).mul_(pos).addcmul_(shifted.clamp_min_(0.0), neg)
        return loss, (a, b, slope, den, cos, ra, rb)

    def backward(self, state, grad, needs):
        a, b, slope, den, cos, ra, rb = state
        k = slope.mul(grad)
        cross = torch.div(k, den).unsqueeze(-1)  # times the other vector
        kc = k.mul_(cos).neg_()  # times the vector itself, over its squared root
        ga = torch.mul(b, cross).addcmul_(a, (kc / (ra * ra)).unsqueeze(-1)) if needs[0] else None
        gb = torch.mul(a, cross).addcmul_(b, kc.div_(rb * rb).unsqueeze(-1)) if needs[1] else None
        return ga, gb


# --------------------------------------------------------------------------- classes
def multilabel_soft_margin_loss(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Multi-label soft margin loss, as ``torch.nn.functional.multilabel_soft_margin_loss``.

    .. math::
        \ell_{n} = \frac{1}{C} \sum_{c=1}^{C} w_c \left(-y_{nc} \log \sigma(x_{nc})
                   - (1 - y_{nc}) \log \sigma(-x_{nc})\right)

    one value per sample, over the last dimension (the classes): a binary cross entropy
    on logits per class, averaged. ``"sum"`` adds the samples' values, as torch does;
    ``"mean"`` divides that sum by ``sum_n (1/C) sum_c w_nc``, which without a weight is
    N (torch's mean) and with one makes it the weighted mean ``sum(w l) / sum(w)`` over
    all (sample, class) terms (torch divides by N). A sample with no classes gives 0.

    Args:
        input: logits ``(*, C)``.
        target: values in [0, 1] of the input's shape: 0/1 labels (any integer dtype) or
            soft labels (checked).
        weight: a class weight ``(C,)``, or any weight broadcastable to the input's shape.
            Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead.

    Shape:
        input ``(*, C)``, target ``(*, C)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.multilabel_soft_margin_loss(torch.tensor([[2.0, -1.0, 0.0]]),
        ...                                torch.tensor([[1, 0, 1]]))
        tensor(0.3778)
    """
    name = "multilabel_soft_margin_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    if input.dim() == 0:
        C.fail(name, "input must have a class dimension (the last), got a 0-dim tensor.")
    C.check_same_shape(name, input, target)
    if weight is not None:
        C.check_broadcastable_to(
            name,
            "weight",
            weight,
            input.shape,
            f"weight is per class, shape ({input.shape[-1]},), or broadcastable to the "
            f"input's shape {tuple(input.shape)}.",
        )
    dtype = _dtype(input)
    x, y = input.to(dtype), target.to(dtype)
    C.check_in_unit_interval(
        name,
        "target",
        y,
        hint="multi-label targets are 0/1 (or soft labels in [0, 1]) per class; for -1/1 "
        "labels pass (target + 1) / 2.",
    )
    n_classes = x.shape[-1]
    if weight is None and x.device.type == "cpu":  # its infinity check reads a number
        plain = functools.partial(_multilabel_soft_margin_plain, n_classes)
        per_sample = fused(_MultilabelSoftMargin(n_classes), plain, x, y)
        return reduce(per_sample, reduction, normalizer=normalizer)
    terms = -(y * TF.logsigmoid(x) + (1.0 - y) * TF.logsigmoid(-x))
    w = None if weight is None else torch.broadcast_to(weight.to(dtype), x.shape)
    if w is not None and reduction == "mean" and normalizer is None:
        # sum_n (1/C) sum_c w l / sum_n (1/C) sum_c w = the weighted mean over all terms
        return reduce(terms, "mean", weight=w)
    if w is not None:
        terms = terms * w
    per_sample = terms.sum(dim=-1) / n_classes if n_classes else terms.sum(dim=-1)
    return reduce(per_sample, reduction, normalizer=normalizer)


def _multilabel_soft_margin_plain(n_classes, x, y):
    """The per-sample loss through autograd (no weight): the closed form's definition,
    and the one differentiated twice."""
    terms = -(y * TF.logsigmoid(x) + (1.0 - y) * TF.logsigmoid(-x))
    return terms.sum(dim=-1) / n_classes if n_classes else terms.sum(dim=-1)


class _MultilabelSoftMargin:
    """``(1/C) sum_c softplus(x) - x y`` per sample and its derivative ``(sigmoid(x) -
    y) / C`` (``-x / C`` for the target): each term as ``max(x, 0) - x y +
    log1p(exp(-|x|))`` (exact for saturated logits: ``x - x y`` is 0 at ``y = 1``), from
    one ``log1p`` and two ``sigmoid`` (torch's composite takes two
    ``log_sigmoid`` passes forward and two backward, and a tape of products). A sample
    whose sum is not finite (an infinite logit: ``inf - inf``) takes the plain path's
    value; the gradient ``sigmoid(x) - y`` is finite there."""

    def __init__(self, n_classes):
        self.n_classes = n_classes
        self.scale = 1.0 / n_classes if n_classes else 1.0

    def forward(self, x, y):
        t = _math.softplus_of_minus_abs(x)  # log1p(exp(-|x|))
        buf = torch.clamp_min(x, 0.0)
        t.add_(buf).addcmul_(x, y, value=-1.0)
        per_sample = t.sum(dim=-1).mul_(self.scale)
        del t
        if not bool(torch.isfinite(per_sample).all()):  # infinite logits: the plain path's
            per_sample = _multilabel_soft_margin_plain(self.n_classes, x, y)  # values
        grad_x = torch.sigmoid(x, out=buf).sub_(y)
        return per_sample, (x, grad_x)

    def backward(self, state, grad, needs):
        x, grad_x = state
        k = (grad * self.scale).unsqueeze(-1)
        gx = grad_x * k if needs[0] else None
        gy = torch.mul(x, k).neg_() if needs[1] else None
        return gx, gy


def _check_class_lists(name: str, y: torch.Tensor, n_classes: int) -> None:
    """Value check: a multilabel_margin_loss target holds class indices 0..C-1 and -1."""
    if not C.checks_enabled() or y.numel() == 0:
        return
    lo, hi = C.host_bounds(y.detach())
    if lo >= -1 and hi < n_classes:
        return
    with torch.no_grad():
        bad = (y < -1) | (y >= n_classes)
        n_bad = int(bad.sum())
        values = torch.unique(y[bad]).tolist()
        first = [int(i) for i in bad.nonzero()[0]]
    example = [min(2, n_classes - 1), 0, -1, -1][: max(n_classes, 2)]
    hint = None
    if any(v < -1 for v in values):
        hint = "-1 is the only padding value (not an ignore_index such as -100)."
    elif min(values) >= 1 and max(values) == n_classes:
        hint = "class indices look 1-based: subtract 1 from the class entries (not the -1s)."
    C.fail(
        name,
        f"target has {C.format_values(values)} at {first} ({n_bad} of {y.numel()} entries), "
        f"but input has {n_classes} classes. Each row of target lists that sample's classes "
        f"as indices 0..{n_classes - 1}, padded with -1 to the input's width: "
        f"{example} means classes {example[0]} and 0; entries after the first -1 are ignored "
        f"but must still be in -1..{n_classes - 1}.",
        hint,
    )


def multilabel_margin_loss(input, target, *, weight=None, reduction="mean", normalizer=None):
    r"""Multi-label margin loss, as ``torch.nn.functional.multilabel_margin_loss``.

    .. math::
        \ell_n = \frac{1}{C} \sum_{j \in J_n} \sum_{i \notin J_n}
                 \max(0,\ 1 - (x_{n,j} - x_{n,i}))

    ``J_n`` holds the classes that row ``n`` of the target lists: its entries up to the
    first -1 (the target has the input's shape; a row ``[3, 0, -1, 1]`` of a 4-class input
    means classes 3 and 0, the 1 after the padding is ignored). A class listed twice
    counts twice, as in torch. Every true class's score should exceed every other one by
    a margin of 1. Then the mean over the samples (0 for an empty batch, where torch
    returns uninitialised memory) or the sum. Computed from the sorted scores in
    ``O(N C log C)`` time and ``O(N C)`` memory (the pairs are never formed).

    Args:
        input: scores ``(N, C)`` or ``(C,)`` (torch's 0-dim input is one class).
        target: class indices ``0..C-1`` padded with ``-1``, the input's shape, any
            integer dtype (checked; a multi-hot 0/1 target is a different format: use
            :func:`multilabel_soft_margin_loss` for it, or convert it).
        weight: per-sample weight, broadcastable to ``(N,)`` (losskit's; the mean is
            ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of N.

    Shape:
        input ``(N, C)`` or ``(C,)``, target the same; output scalar, or ``(N,)`` (``()``)
        with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> x = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> LF.multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 1]]))  # classes 3 and 0
        tensor(0.8500)
    """
    name = "multilabel_margin_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    if target.is_floating_point():
        C.fail(
            name,
            f"target must hold integer class indices padded with -1, got {C.describe(target)}.",
            "a multi-hot 0/1 target is multilabel_soft_margin_loss's format; this loss takes "
            "each row's class indices, then -1s: [1, 0, 1, 0] is [0, 2, -1, -1].",
            cls=C.LossTypeError,
        )
    C.check_integer(name, "target", target, "class indices padded with -1")
    C.check_same_shape(name, input, target)
    _weight(name, weight, input.shape[:-1], "sample")
    x, n_classes = _batch_rows(name, input.to(_dtype(input)))
    y = target.reshape(x.shape).long()
    _check_class_lists(name, y, n_classes)
    plain = functools.partial(_multilabel_margin_plain, n_classes)
    if x.device.type == "cpu":  # row blocks: one block's temporaries at a time
        rule = _MultilabelMargin(n_classes, x.requires_grad and torch.is_grad_enabled())
        per_sample = fused(rule, plain, x, y)
    else:
        per_sample = plain(x, y)
    if input.dim() < 2:
        per_sample = per_sample.reshape(())
    return reduce(per_sample, reduction, weight=weight, normalizer=normalizer)


def _multilabel_margin_terms(n_classes, x, y):
    """The per-sample loss (times C) of rows ``x`` (``(n, C)``) with class lists ``y``."""
    listed = torch.cumprod((y >= 0).to(torch.int8), dim=1).bool()  # before the first -1
    # is_target[n, c]: class c is listed in row n (a scatter into a spare column C)
    spare = torch.where(listed, y, n_classes)
    is_target = torch.zeros(x.shape[0], n_classes + 1, dtype=torch.bool, device=x.device)
    is_target = is_target.scatter(1, spare, True)[:, :n_classes]
    # For a listed score x_j, sum_{i unlisted} max(0, x_i - (x_j - 1)) is the sum of the k
    # unlisted scores above x_j - 1 minus k (x_j - 1): with the unlisted scores sorted
    # (largest first) and their running sums, O(N C log C) time and O(N C) memory, not the
    # (N, C, C) pairs. Strictly above, as max(0, .) counts (its corner has gradient 0).
    index = torch.where(listed, y, 0)
    threshold = x.gather(1, index) - 1.0  # (N, J)
    unlisted = torch.where(is_target, -torch.inf, x)
    ranked = torch.sort(unlisted, dim=1, descending=True).values
    top = torch.cumsum(torch.where(torch.isneginf(ranked), 0.0, ranked), dim=1)
    top = torch.cat([torch.zeros_like(top[:, :1]), top], dim=1)  # top[:, k]: the k largest
    # k: how many unlisted scores exceed the threshold (ranked is descending: -ranked ascends)
    k = torch.searchsorted(-ranked.detach(), -threshold.detach(), right=False)
    above = torch.where(k > 0, k.to(x.dtype) * threshold, 0.0)  # 0, not 0 * inf
    terms = torch.where(listed, top.gather(1, k) - above, 0.0)  # padding adds nothing
    return terms.sum(dim=1)


def _multilabel_margin_block(n_classes, x, y):
    """The per-sample loss (times C) of rows ``x`` (``(n, C)``) with class lists ``y``,
    and its derivative in ``x``, from one sort: the listed scores' thresholds ``x_j - 1``
    and the unlisted scores, merged (largest first; a threshold before an unlisted score
    that equals it, as ``max(0, .)`` counts strictly). A threshold's term is the sum of
    the ``k`` unlisted scores before it minus ``k (x_j - 1)``, its score's derivative
    ``-k``; an unlisted score's derivative is the count of thresholds after it."""
    n = x.shape[0]
    listed = torch.cumprod((y >= 0).to(torch.int8), dim=1).bool()  # before the first -1
    index = torch.where(listed, y, 0)
    is_target = torch.zeros(n, n_classes + 1, dtype=torch.bool, device=x.device)
    is_target = is_target.scatter_(1, torch.where(listed, y, n_classes), True)[:, :n_classes]
    distinct = int(listed.sum()) == int(is_target.sum())  # no class listed twice
    if distinct and x.dtype == torch.float32:
        return _multilabel_margin_keyed(n_classes, x, is_target)
    threshold = x.gather(1, index).sub_(1.0)
    real = torch.cat([listed, is_target.logical_not_()], dim=1)
    packed = torch.cat([threshold, x], dim=1)[real]
    if distinct:  # C entries a row, packed
        return _multilabel_margin_packed(n_classes, x, index, listed, real, packed)
    is_target.logical_not_()
    merged = torch.cat([threshold, x.masked_fill(is_target, 0.0)], dim=1)
    kind = torch.cat([listed.to(torch.int8), (~is_target).to(torch.int8).mul_(2)], dim=1)
    merged, order = torch.sort(merged, dim=1, descending=True, stable=True)
    kind = kind.gather(1, order)
    is_u, is_t = kind == 2, kind == 1
    k = torch.cumsum(is_u, dim=1, dtype=x.dtype)  # unlisted scores up to here
    top = torch.cumsum(merged.masked_fill(~is_u, 0.0), dim=1)  # and their sum
    use = is_t & (k > 0)  # 0, not 0 * inf
    per_sample = torch.where(use, top.sub_(k * merged), 0.0).sum(dim=1)
    del top
    after = torch.cumsum(is_t, dim=1, dtype=x.dtype).neg_().add_(is_t.sum(1, keepdim=True))
    step = torch.where(is_u, after, k.neg_().masked_fill_(~is_t, 0.0))
    classes = torch.cat([index, torch.arange(n_classes, device=x.device).expand(n, -1)], dim=1)
    g = torch.zeros_like(x, memory_format=torch.contiguous_format)
    return per_sample, g.scatter_add_(1, classes.gather(1, order), step)


def _multilabel_margin_keyed(n_classes, x, is_target):
    """:func:`_multilabel_margin_block` for float32 rows that list no class twice: one
    entry a class, in place (``x_c - 1`` for a listed class, ``x_c`` for another), sorted
    by an integer key, the float's bits in order, doubled, plus 1 for a threshold (so a
    threshold comes first among equal values; -0 after +0 is right too, as a
    threshold ``x_j - 1`` is never -0)."""
    merged = torch.sub(x, is_target.to(x.dtype))
    bits = merged.view(torch.int32)
    key = (bits >> 31).bitwise_and_(0x7FFFFFFF).bitwise_xor_(bits).to(torch.int64)
    key.mul_(2).add_(is_target)
    order = torch.sort(key, dim=1, descending=True).indices
    del key
    merged = merged.gather(1, order)
    is_u = is_target.logical_not().gather(1, order)
    n_listed = is_target.sum(dim=1, keepdim=True)
    per_sample, step = _sorted_sweep(merged, is_u, n_listed)
    g = torch.empty_like(x, memory_format=torch.contiguous_format)
    return per_sample, g.scatter_(1, order, step)


def _sorted_sweep(merged, is_u, n_listed):
    """The loss and gradient steps from one row-sorted merge (descending) of thresholds
    and unlisted scores (``is_u``): each threshold's hinge sum over the scores before it,
    and each entry's count (a threshold's ``-k``, a score's thresholds after it)."""
    k = torch.cumsum(is_u, dim=1, dtype=merged.dtype)  # unlisted scores up to here
    top = torch.cumsum(merged.masked_fill(~is_u, 0.0), dim=1)  # and their sum
    use = is_u.logical_not().logical_and_(k > 0)  # a threshold past a score (0, not 0 * inf)
    per_sample = torch.where(use, top.sub_(k * merged), 0.0).sum(dim=1)
    del top
    after = torch.cumsum(~is_u, dim=1, dtype=merged.dtype).neg_().add_(n_listed)
    return per_sample, torch.where(is_u, after, k.neg_())


def _multilabel_margin_packed(n_classes, x, index, listed, real, packed):
    """:func:`_multilabel_margin_block` where every row has ``C`` entries, its ``J``
    thresholds then its ``C - J`` unlisted scores (``packed``): one sort of ``C``."""
    n = x.shape[0]
    merged, order = torch.sort(packed.view(n, n_classes), dim=1, descending=True, stable=True)
    n_listed = listed.sum(dim=1, keepdim=True)
    is_u = order >= n_listed  # an unlisted score (they come after the thresholds)
    per_sample, step = _sorted_sweep(merged, is_u, n_listed)
    classes = torch.cat([index, torch.arange(n_classes, device=x.device).expand(n, -1)], dim=1)
    classes = classes[real].view(n, n_classes).gather(1, order)
    g = torch.zeros_like(x, memory_format=torch.contiguous_format)
    return per_sample, g.scatter_add_(1, classes, step)


def _multilabel_margin_plain(n_classes, x, y):
    """The per-sample loss through autograd: the closed form's definition, and the one
    differentiated twice."""
    return _multilabel_margin_terms(n_classes, x, y) / n_classes


class _MultilabelMargin:
    """:func:`_multilabel_margin_block` (:func:`_multilabel_margin_terms` without a
    gradient) over blocks of rows, so that the ``(n, C)`` temporaries (the sorted scores,
    their running sums, the counts) are one block's, never the batch's: the value and the
    gradient (counts of the pairs past the margin, over C) from one pass; the gradient is
    written into one ``(N, C)`` buffer, which the first backward scales in place and
    hands over (a retained graph's second backward computes it again)."""

    BLOCK = 1 << 15  # elements of a block

    def __init__(self, n_classes, want_grad):
        self.n_classes, self.want_grad = n_classes, want_grad

    def _run(self, x, y, grad):
        n = x.shape[0]
        step = max(1, self.BLOCK // max(self.n_classes, 1))
        per_sample = torch.empty(n, dtype=x.dtype, device=x.device)
        g = torch.empty_like(x, memory_format=torch.contiguous_format) if grad else None
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            if grad:
                per_sample[lo:hi], g[lo:hi] = _multilabel_margin_block(
                    self.n_classes, x[lo:hi], y[lo:hi]
                )
            else:
                per_sample[lo:hi] = _multilabel_margin_terms(self.n_classes, x[lo:hi], y[lo:hi])
        return per_sample.div_(self.n_classes), g

    def forward(self, x, y):
        per_sample, g = self._run(x, y, self.want_grad)
        return per_sample, (x, y, [g] if g is not None else [])

    def backward(self, state, grad, needs):
        x, y, spare = state
        if not needs[0]:
            return None, None
        g = spare.pop() if spare else self._run(x, y, True)[1]
        scale = grad / self.n_classes
        return g.mul_(scale.reshape(-1, 1) if scale.dim() else scale), None


def multi_margin_loss(
    input, target, *, p=1, margin=1.0, weight=None, reduction="mean", normalizer=None
):
    r"""Multi-class margin (hinge) loss, as ``torch.nn.functional.multi_margin_loss``.

    .. math::
        \ell_n = \frac{w_{y_n}}{C} \sum_{i \ne y_n} \max(0,\ \text{margin} - x_{n,y_n} + x_{n,i})^p

    the Weston-Watkins multi-class SVM loss: every other class's score should stay
    ``margin`` below the true one. ``"none"`` and ``"sum"`` are torch's; ``"mean"`` is
    ``sum(w_y l) / sum(w_y)`` (without a weight the mean over N, as torch; with one torch
    divides by N), 0 for an empty batch (torch returns uninitialised memory).

    Args:
        input: scores ``(N, C)`` or ``(C,)`` (torch's 0-dim input is one class).
        target: class indices ``(N,)`` or ``()``, any integer dtype (checked).
        p: 1 or 2, the hinge's power. Default: ``1``.
        margin: any finite number. Default: ``1.0``.
        weight: class weight ``(C,)``, applied as ``w[y_n]``. Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of ``sum(w_y)``.

    Shape:
        input ``(N, C)`` or ``(C,)``, target ``(N,)`` or ``()``; output scalar, or ``(N,)``
        (``()``) with ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> LF.multi_margin_loss(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([3]))
        tensor(0.3250)
    """
    name = "multi_margin_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer, weight=weight)
    if isinstance(p, bool) or p not in (1, 2):
        C.fail(name, f"p must be 1 or 2 (torch's two powers of the hinge), got {p!r}.")
    p = int(p)
    margin = C.check_number(name, "margin", margin)
    C.check_integer(name, "target", target)
    x, n_classes = _batch_rows(name, input.to(_dtype(input)))
    want = tuple(input.shape[:1]) if input.dim() == 2 else ()
    if tuple(target.shape) != want:
        C.fail(
            name,
            f"target shape {tuple(target.shape)} does not match input shape "
            f"{tuple(input.shape)}: expected {want}, one class index per sample.",
        )
    C.check_class_weight(name, weight, n_classes)
    y = target.reshape(-1, 1).long()
    C.check_class_indices(name, y, n_classes, None)
    plain = functools.partial(_multi_margin_plain, n_classes, p, margin)
    if x.device.type == "cpu" and weight is None and reduction != "none":
        # the sum of the hinges without a per-sample loss: one (N, C) buffer in all
        n = y.shape[0]
        if normalizer is None and n and small(x):
            # torch's value and backward kernels (the composition stays the plain path, for
            # second derivatives): below SMALL the closed form's Python costs more than
            # they do (forward + backward of 4 x 1000 on CPU, one thread: 190 against 58
            # us for torch's function)
            hyper = {"p": p, "margin": margin}
            node = Kernels(
                _aten.multi_margin_loss, _aten.multi_margin_loss_backward, reduction, hyper
            )
            divisor = n if reduction == "mean" else 1
            return fused(node, lambda a, b: _summed(plain)(a, b) / divisor, x, y)
        rule = _MultiMargin(n_classes, p, margin, summed=True)
        return fused_total(
            rule, _summed(plain), x, y, count=n, reduction=reduction, normalizer=normalizer
        )
    if x.device.type == "cpu":
        per_sample = fused(_MultiMargin(n_classes, p, margin), plain, x, y)
    else:
        per_sample = plain(x, y)
    w = None if weight is None else weight.to(x.dtype)[y.reshape(-1)]
    if input.dim() < 2:
        per_sample = per_sample.reshape(())
        w = None if w is None else w.reshape(())
    return reduce(per_sample, reduction, weight=w, normalizer=normalizer)


def _multi_margin_plain(n_classes, p, margin, x, y):
    """The per-sample loss through autograd: the closed form's definition, and the one
    differentiated twice."""
    true_score = x.gather(1, y)
    hinge = torch.relu(margin - true_score + x)
    if p == 2:
        hinge = hinge * hinge
    others = torch.arange(n_classes, device=x.device) != y
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.where(others, hinge, zero).sum(dim=1) / n_classes


def _summed(plain):
    """``plain``'s per-sample loss summed (the summed closed form's definition)."""
    return lambda *inputs: plain(*inputs).sum()


class _MultiMargin:
    """``(1/C) sum_{i != y} max(0, margin - x_y + x_i)^p`` per sample in one ``(N, C)``
    buffer: the hinges, their true class's set to 0, clamped in place; the value is their
    row sum (``p = 1``) or row dot product (``p = 2``). The first backward turns the
    buffer into the gradient in place (``[h > 0]`` or ``2 h``, over C, times the
    incoming gradient; minus its row sum at the true class) and hands it over; a
    retained graph's second backward makes the hinges again."""

    def __init__(self, n_classes, p, margin, summed=False):
        self.n_classes, self.p, self.margin, self.summed = n_classes, p, margin, summed
        self.scale = 1.0 / n_classes if n_classes else 1.0

    ROWS = 256  # rows of a block: the (rows, 1) columns of the true scores stay small

    def _hinges(self, x, y):
        h = torch.empty_like(x, memory_format=torch.contiguous_format)
        for lo in range(0, x.shape[0], self.ROWS):
            rows = slice(lo, lo + self.ROWS)
            # margin - x_y + x, as torch's (a - b is a + (-b) exactly)
            torch.add(x[rows], x[rows].gather(1, y[rows]).neg_().add_(self.margin), out=h[rows])
        return h.scatter_(1, y, 0.0).clamp_min_(0.0)

    def forward(self, x, y):
        h = self._hinges(x, y)
        if self.summed:  # the whole sum: no per-sample loss
            flat = h.reshape(-1)
            loss = flat.sum() if self.p == 1 else _math.sum_of_squares(flat)
        else:
            loss = h.sum(dim=1) if self.p == 1 else torch.linalg.vecdot(h, h)
        return loss.mul_(self.scale), (x, y, [h])

    def backward(self, state, grad, needs):
        x, y, spare = state
        if not needs[0]:
            return None, None
        g = spare.pop() if spare else self._hinges(x, y)
        scale = grad * (self.p * self.scale)
        if scale.dim():
            scale = scale.reshape(-1, 1)
        if self.p == 1:
            g.sign_()  # [h > 0]: the hinge's corner has gradient 0
        g.mul_(scale)
        for lo in range(0, g.shape[0], self.ROWS):  # minus the row sum at the true class
            rows = slice(lo, lo + self.ROWS)
            g[rows].scatter_(1, y[rows], g[rows].sum(dim=1, keepdim=True).neg_())
        return g, None


# --------------------------------------------------------------------------- triplets
def _triplet_inputs(name, anchor, positive, negative, weight, reduction, normalizer):
    C.check_call(
        name, anchor, positive, reduction=reduction, normalizer=normalizer,
        input_name="anchor", negative=negative, weight=weight,
    )  # fmt: skip
    _floating_input(name, "positive", positive)
    _floating_input(name, "negative", negative)
    if anchor.dim() == 0:
        C.fail(name, "anchor must have a feature dimension (the last), got a 0-dim tensor.")
    _same_shape(
        name,
        {"anchor": anchor, "positive": positive, "negative": negative},
        "anchor, positive and negative hold one embedding each per triplet, along the last "
        "dimension (torch would broadcast them).",
    )
    _weight(name, weight, anchor.shape[:-1], "triplet")
    dtype = _dtype(anchor, positive, negative)
    return anchor.to(dtype), positive.to(dtype), negative.to(dtype)


def _pairwise_distance(a, b, p, eps):
    """``torch.nn.functional.pairwise_distance``: ``||a - b + eps||_p`` over the last
    dimension (torch adds ``eps`` to the difference, so equal vectors are ``eps D^(1/p)``
    apart and the norm's gradient is defined).

    With ``eps=0`` and ``p=2`` a zero difference (``a == b``) is masked: its gradient and
    second derivative are 0 (torch's norm gives the gradient 0 and a NaN second
    derivative there)."""
    diff = a - b + eps
    if eps == 0 and p == 2:
        sq = (diff * diff).sum(dim=-1)
        zero = sq == 0
        root = torch.sqrt(torch.where(zero, torch.ones_like(sq), sq))
        return torch.where(zero, torch.zeros_like(sq), root)
    return torch.linalg.vector_norm(diff, ord=p, dim=-1)


def _triplet(d_pos, d_neg, d_swap, margin, weight, reduction, normalizer):
    if d_swap is not None:  # Balntas et al. 2016: the harder of the two negatives
        d_neg = torch.minimum(d_neg, d_swap)
    loss = (margin + d_pos - d_neg).clamp_min(0.0)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def _euclidean_triplet_plain(margin, eps, a, pos, neg):
    """The triplet loss per triplet with torch's pairwise distance (p = 2, no swap),
    through autograd: the closed form's definition, and the one differentiated twice."""
    d_pos = _pairwise_distance(a, pos, 2.0, eps)
    d_neg = _pairwise_distance(a, neg, 2.0, eps)
    return (margin + d_pos - d_neg).clamp_min(0.0)


class _EuclideanTriplet:
    """``max(0, margin + ||a - p + eps|| - ||a - n + eps||)`` and its derivative: the two
    differences made once (and kept for the backward), a norm of each, and in the
    backward one product and one ``addcmul`` per input, ``d ||u|| / du = u / ||u||`` (0
    at ``u = 0``, as torch's norm, and as the plain path's masked root for ``eps = 0``);
    ``clamp_min`` passes the gradient at its corner."""

    def __init__(self, margin, eps):
        self.margin, self.eps = margin, eps

    def forward(self, a, pos, neg):
        u = torch.sub(a, pos)
        w = torch.sub(a, neg)
        if self.eps:
            u.add_(self.eps)
            w.add_(self.eps)
        d_pos = torch.linalg.vector_norm(u, dim=-1)
        d_neg = torch.linalg.vector_norm(w, dim=-1)
        z = torch.add(d_pos, self.margin).sub_(d_neg)
        on = (z >= 0).to(z.dtype)
        tiny = torch.finfo(z.dtype).tiny
        # dl/d||u|| and -dl/d||w||, over the norm: u / ||u|| is the norm's derivative
        k_pos = on / d_pos.clamp_min_(tiny)
        k_neg = on.div_(d_neg.clamp_min_(tiny))
        return z.clamp_min_(0.0), (u, w, k_pos, k_neg)

    def backward(self, state, grad, needs):
        u, w, k_pos, k_neg = state
        kp = (k_pos * grad).unsqueeze(-1)
        kn = (k_neg * grad).unsqueeze(-1)
        ga = torch.mul(u, kp).addcmul_(w, kn, value=-1.0) if needs[0] else None
        gp = torch.mul(u, kp).neg_() if needs[1] else None
        gn = torch.mul(w, kn) if needs[2] else None
        return ga, gp, gn


def _euclidean_triplet(a, pos, neg, margin, eps, weight, reduction, normalizer):
    plain = functools.partial(_euclidean_triplet_plain, margin, eps)
    loss = fused(_EuclideanTriplet(margin, eps), plain, a, pos, neg)
    return reduce(loss, reduction, weight=weight, normalizer=normalizer)


def triplet_margin_loss(
    anchor,
    positive,
    negative,
    *,
    margin=1.0,
    p=2.0,
    eps=1e-6,
    swap=False,
    weight=None,
    reduction="mean",
    normalizer=None,
):
    r"""Triplet margin loss, as ``torch.nn.functional.triplet_margin_loss``.

    .. math::
        \ell_i = \max(0,\ d(a_i, p_i) - d(a_i, n_i) + \text{margin}),\qquad
        d(u, v) = \lVert u - v + \epsilon \rVert_p

    over the last dimension (torch's ``pairwise_distance``, with ``eps`` added to the
    difference). With ``swap=True`` the negative distance is
    ``min(d(a, n), d(p, n))`` (Balntas et al. 2016). Then the mean over the triplets (0
    for none; torch: NaN) or the sum.

    Args:
        anchor: embeddings ``(*, D)``.
        positive: embeddings of the anchor's shape (same class as the anchor).
        negative: embeddings of the anchor's shape (another class).
        margin: ``> 0``. Default: ``1.0``.
        p: the norm's order, ``> 0`` and finite (for the max norm pass
            ``distance_function`` to :func:`triplet_margin_with_distance_loss`). Default: ``2``.
        eps: added to each difference, ``>= 0``. Default: ``1e-6``.
        swap: use the distance swap. Default: ``False``.
        weight: per-triplet weight, broadcastable to ``(*)`` (losskit's; the mean is
            ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the count.

    Shape:
        anchor, positive, negative ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> a, pos = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
        >>> neg = torch.tensor([[0.0, 1.5]])
        >>> LF.triplet_margin_loss(a, pos, neg, eps=0.0)
        tensor(0.5000)

    References:
        Balntas et al., "Learning local feature descriptors with triplets and shallow
        convolutional neural networks", BMVC 2016.
    """
    name = "triplet_margin_loss"
    a, pos, neg = _triplet_inputs(name, anchor, positive, negative, weight, reduction, normalizer)
    margin = _check_margin_positive(name, margin)
    p = C.check_number(name, "p", p, low=0.0, low_open=True)
    eps = C.check_number(name, "eps", eps, low=0.0)
    if not isinstance(swap, bool):
        C.fail(name, f"swap must be True or False, got {swap!r}.", cls=C.LossTypeError)
    if p == 2 and not swap and not a.is_meta:
        return _euclidean_triplet(a, pos, neg, margin, eps, weight, reduction, normalizer)
    d_pos = _pairwise_distance(a, pos, p, eps)
    d_neg = _pairwise_distance(a, neg, p, eps)
    d_swap = _pairwise_distance(pos, neg, p, eps) if swap else None
    return _triplet(d_pos, d_neg, d_swap, margin, weight, reduction, normalizer)


def _distance(name, fn, u, v, want) -> torch.Tensor:
    d = fn(u, v)
    if not isinstance(d, torch.Tensor) or not d.is_floating_point():
        got = C.describe(d) if isinstance(d, torch.Tensor) else type(d).__name__
        C.fail(
            name,
            f"distance_function must return a floating-point tensor, got {got}.",
            cls=C.LossTypeError,
        )
    if d.shape != want:
        C.fail(
            name,
            f"distance_function returned shape {tuple(d.shape)} for inputs of shape "
            f"{tuple(u.shape)}; expected {tuple(want)}, one distance per triplet (a reduction "
            "over the last dimension).",
        )
    return d.to(u.dtype)


def triplet_margin_with_distance_loss(
    anchor,
    positive,
    negative,
    *,
    distance_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    margin=1.0,
    swap=False,
    weight=None,
    reduction="mean",
    normalizer=None,
):
    r"""Triplet margin loss with a distance of your choice, as
    ``torch.nn.functional.triplet_margin_with_distance_loss``.

    .. math::
        \ell_i = \max(0,\ d(a_i, p_i) - d(a_i, n_i) + \text{margin})

    ``d`` is ``distance_function(u, v)``, a callable on two ``(*, D)`` tensors that returns
    one non-negative distance per row, ``(*)``; ``None`` is torch's default,
    ``pairwise_distance`` (Euclidean, ``eps=1e-6`` added to the difference). It is called
    on the inputs in the compute dtype (float32 for half-precision inputs). With
    ``swap=True`` the negative distance is ``min(d(a, n), d(p, n))``. Then the mean over
    the triplets (0 for none) or the sum.

    Args:
        anchor, positive, negative: embeddings ``(*, D)`` of one shape.
        distance_function: ``(u, v) -> distances``, e.g.
            ``lambda u, v: 1 - torch.nn.functional.cosine_similarity(u, v)``. Default:
            ``None`` (``pairwise_distance``).
        margin: ``> 0``. Default: ``1.0``.
        swap: use the distance swap. Default: ``False``.
        weight: per-triplet weight, broadcastable to ``(*)`` (losskit's; the mean is
            ``sum(w l) / sum(w)``). Default: ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the count.

    Shape:
        anchor, positive, negative ``(*, D)``; output scalar, or ``(*)`` with
        ``reduction="none"``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> a, pos = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
        >>> neg = torch.tensor([[0.0, 1.5]])
        >>> l1 = lambda u, v: (u - v).abs().sum(dim=-1)
        >>> LF.triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1)
        tensor(0.5000)
    """
    name = "triplet_margin_with_distance_loss"
    a, pos, neg = _triplet_inputs(name, anchor, positive, negative, weight, reduction, normalizer)
    margin = _check_margin_positive(name, margin)
    if not isinstance(swap, bool):
        C.fail(name, f"swap must be True or False, got {swap!r}.", cls=C.LossTypeError)
    if distance_function is None and not swap and not a.is_meta:
        return _euclidean_triplet(a, pos, neg, margin, PAIRWISE_EPS, weight, reduction, normalizer)
    if distance_function is None:
        fn = lambda u, v: _pairwise_distance(u, v, 2.0, PAIRWISE_EPS)  # noqa: E731
    elif callable(distance_function):
        fn = distance_function
    else:
        C.fail(
            name,
            f"distance_function must be a callable (u, v) -> distances or None, got "
            f"{type(distance_function).__name__}.",
            cls=C.LossTypeError,
        )
    want = a.shape[:-1]
    d_pos = _distance(name, fn, a, pos, want)
    d_neg = _distance(name, fn, a, neg, want)
    d_swap = _distance(name, fn, pos, neg, want) if swap else None
    return _triplet(d_pos, d_neg, d_swap, margin, weight, reduction, normalizer)
