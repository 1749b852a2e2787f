r"""Lovász losses (Berman, Rannen Triki and Blaschko, CVPR 2018): the Lovász extension of
the Jaccard loss, a convex surrogate of ``1 - IoU`` that can be optimised directly.

For one class (or one binary mask) over a set of pixels, with ground truth ``g_i`` in
{0, 1} and errors ``e_i >= 0``, sort the errors in decreasing order, ``e_(1) >= e_(2) >= ...``,
and take the ground truth in that order. With ``G = Σ g``, the Jaccard loss of the first
``k`` pixels counted as mispredicted is

.. math::
    J_k = 1 - \frac{G - \sum_{i \le k} g_{(i)}}{G + \sum_{i \le k} (1 - g_{(i)})},

and the Lovász extension is the dot product of the sorted errors with its differences
(the Lovász gradient): ``loss = Σ_k e_(k) (J_k - J_(k-1))``, ``J_0 = 0``. It is piecewise
linear in the errors: exact gradients everywhere but at ties between errors, where the
function has a kink (its value does not depend on the order ties are broken in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .. import _checks as C
from .._reduction import compute_dtype, reduce
from . import _math
from ._fused import fused

__all__ = ["lovasz_softmax_loss", "lovasz_hinge_loss", "lovasz_softmax", "lovasz_hinge"]


def _jaccard_gradient(gt_sorted: torch.Tensor) -> torch.Tensor:
    """The Lovász gradient ``J_k - J_(k-1)`` along the last dimension, for ground truth
    sorted by decreasing error. The union ``G + #(background among the first k)`` is at
    least 1 at every position (``G = 0`` makes every pixel background), so never 0."""
    gts = gt_sorted.sum(-1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(-1)
    union = gts + (1.0 - gt_sorted).cumsum(-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _lovasz(errors: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``Σ_k e_(k) ΔJ_k`` over the last dimension. Pixels not counted (``valid`` False;
    ``None``: all counted) get error -1, so they sort after every counted pixel (errors
    are >= 0), and ground truth 0: they change no counted pixel's Lovász gradient, and
    their error, clamped to 0 after the sort, adds nothing. Masks instead of indexing
    keep one graph for every input (``torch.compile(fullgraph=True)``, ``vmap``)."""
    if valid is not None:
        errors = torch.where(valid, errors, -1.0)
        gt = torch.where(valid, gt, 0.0)
    ordered, order = torch.sort(errors, dim=-1, descending=True, stable=True)
    if valid is not None:
        ordered = ordered.clamp_min(0.0)
    # the Lovász gradient depends on the order only: a constant of the piecewise-linear map
    grad = _jaccard_gradient(gt.gather(-1, order))
    return (ordered * grad).sum(-1)


_LOW = (1 << 32) - 1  # the low 32 bits of a sort key: the reversed pixel position


def _sort_order(errors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort(errors, dim=-1, descending=True, stable=True)`` as (values, indices),
    for float32 rows of fewer than ``2**32`` pixels by one unstable sort of unique int64
    keys (faster than the stable float sort on CPU): the error's bits (ordered as the
    float for every error here: non-negative, or the uncounted pixels' -1) above the
    reversed position, so equal errors keep their order. Other rows: the stable sort."""
    s = errors.shape[-1]
    if errors.dtype != torch.float32 or s >= _LOW:
        return torch.sort(errors, dim=-1, descending=True, stable=True)
    rev = torch.arange(_LOW, _LOW - s, -1, device=errors.device)
    key = errors.view(torch.int32).to(torch.int64).bitwise_left_shift_(32).bitwise_or_(rev)
    key = torch.sort(key, dim=-1, descending=True)[0]
    ordered = torch.bitwise_right_shift(key, 32).to(torch.int32).view(torch.float32)
    order = key.bitwise_and_(_LOW).neg_().add_(_LOW)
    return ordered, order


def _lovasz_rows(errors: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None):
    """:func:`_lovasz`'s value ``(rows,)`` without a tape, and its derivative by each
    error ``(rows, S)``: the Lovász gradient at the error's rank (0 at uncounted pixels).
    ``errors`` is a temporary of the caller's, overwritten."""
    if valid is not None:
        errors.masked_fill_(~valid, -1.0)
        gt = gt * valid
    errors.add_(0.0)  # -0.0 -> 0.0: its bits sort as the float's
    ordered, order = _sort_order(errors)
    if valid is not None:
        ordered.clamp_min_(0.0)
    # J_k = 1 - (G - F_k) / (G + k - F_k), F_k = the foreground among the first k
    fg = gt.gather(-1, order).cumsum_(-1)
    total = fg[..., -1:].clone()
    rank = torch.arange(1, fg.shape[-1] + 1, device=fg.device, dtype=fg.dtype)
    ratio = torch.sub(total, fg)  # G - F_k
    ratio.div_(fg.neg_().add_(total).add_(rank))  # / (G + k - F_k)
    delta = torch.empty_like(ratio)  # J_k - J_(k-1) = ratio_(k-1) - ratio_k, J_0 = 0
    if delta.shape[-1]:
        delta[..., :1] = 1.0 - ratio[..., :1]
        torch.sub(ratio[..., :-1], ratio[..., 1:], out=delta[..., 1:])
    loss = torch.linalg.vecdot(ordered, delta)
    grad = torch.empty_like(delta).scatter_(-1, order, delta)
    if valid is not None:
        grad.mul_(valid)
    return loss, grad


class _LovaszSoftmax:
    """The per-class Lovász losses ``(rows, C)`` of softmax (or given) probabilities, with
    the gradient in closed form: the loss is linear in the sorted errors, so ``dL/de`` is
    the Lovász gradient at each pixel's rank, ``de/dp = sign(p - g)``, and through the
    softmax ``dL/dx = p (dL/dp - Σ_c p dL/dp)``. One class at a time, so a sort's
    temporaries are one class's."""

    def __init__(self, from_logits, valid, plain):
        self.from_logits, self.valid, self.plain = from_logits, valid, plain

    def forward(self, x, y):
        rows, k = x.shape[0], x.shape[1]
        p = torch.softmax(x, dim=1) if self.from_logits else x
        valid = None if self.valid is None else self.valid[:, 0]
        loss = x.new_empty(rows, k)
        grad = torch.empty_like(p)  # dL/dp per pixel, for an upstream gradient of 1
        for c in range(k):
            g = (y[:, 0] == c).to(p.dtype)
            d = torch.sub(p[:, c], g)
            loss[:, c], grad_c = _lovasz_rows(d.abs(), g, valid)
            torch.mul(grad_c, d.sign_(), out=grad[:, c])
        return loss, (p, grad)

    def backward(self, state, upstream, needs):
        p, grad = state
        dp = grad * upstream.unsqueeze(-1)
        if not self.from_logits:
            return dp, None
        r = (dp * p).sum(1, keepdim=True)
        return dp.sub_(r).mul_(p), None


class _LovaszSoftmaxPlain:
    def __init__(self, from_logits, valid):
        self.from_logits, self.valid = from_logits, valid

    def __call__(self, x, y):
        k = x.shape[1]
        p = torch.softmax(x, dim=1) if self.from_logits else x
        g = _math.one_hot(y[:, 0], k, p.dtype)  # y (N, 1, P)
        errors = (g - p).abs()
        valid = None if self.valid is None else self.valid.expand_as(errors)
        return _lovasz(errors, g, valid)


class _LovaszHinge:
    """The Lovász hinge of each row ``(rows,)``, with the gradient in closed form:
    ``dL/dx = -s dL/de`` where the hinge ``e = 1 - x s`` is positive (``s = 2g - 1``)."""

    def __init__(self, valid):
        self.valid = valid

    def forward(self, x, g):
        sign = g * 2.0 - 1.0
        errors = torch.mul(x, sign).neg_().add_(1.0)
        active = errors > 0
        loss, grad = _lovasz_rows(errors.clamp_min_(0.0), g, self.valid)
        return loss, grad.mul_(sign.neg_()).mul_(active)

    def backward(self, grad, upstream, needs):
        return grad * upstream.unsqueeze(-1), None


class _LovaszHingePlain:
    def __init__(self, valid):
        self.valid = valid

    def __call__(self, x, g):
        errors = torch.relu(1.0 - x * (2.0 * g - 1.0))
        return _lovasz(errors, g, self.valid)


def _present(y: torch.Tensor, k: int, valid: torch.Tensor | None) -> torch.Tensor:
    """``(images, C)``: whether each class has a counted pixel in each image's target."""
    counts = torch.zeros(y.shape[0], k, dtype=torch.int64, device=y.device)
    t = y[:, 0].long()
    t = t if valid is None else t.masked_fill(~valid[:, 0], 0)
    ones = torch.ones((), dtype=torch.int64, device=y.device).expand(t.shape)
    src = ones if valid is None else valid[:, 0].to(torch.int64)
    return counts.scatter_add(1, t, src) > 0  # out of place: vmap


def _image_shape(loss: str, input: torch.Tensor, lead: int, what: str) -> None:
    if input.dim() < lead:
        C.fail(loss, f"input must be {what}, got {C.describe(input)}.")


def _class_list(loss: str, classes: object, num_classes: int) -> list[int] | None:
    """``None`` for ``"present"``/``"all"``, else the class indices averaged over."""
    if isinstance(classes, str):
        if classes not in ("present", "all"):
            C.fail(
                loss,
                f"classes must be 'present', 'all' or a sequence of class indices, got "
                f"{classes!r}.",
            )
        return None
    if not isinstance(classes, Sequence) or not classes:
        C.fail(
            loss,
            f"classes must be 'present', 'all' or a non-empty sequence of class indices, "
            f"got {classes!r}.",
            cls=C.LossTypeError if not isinstance(classes, Sequence) else C.LossInputError,
        )
    picked = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, int):
            C.fail(loss, f"classes must hold ints, got {c!r}.", cls=C.LossTypeError)
        if not 0 <= c < num_classes:
            C.fail(
                loss,
                f"classes holds class {c}, but input has {num_classes} classes "
                f"(valid 0..{num_classes - 1}).",
            )
        picked.append(c)
    return picked


def lovasz_softmax_loss(
    input,
    target,
    *,
    classes="present",
    per_image=False,
    ignore_index=None,
    from_logits=True,
    reduction="mean",
    normalizer=None,
):
    r"""Lovász-Softmax loss (Berman et al. 2018): the Lovász extension of the Jaccard loss
    of each class, averaged over the classes.

    With ``p = softmax(input, dim=1)`` and the one-hot target ``g``, the errors of class
    ``c`` are ``e_i = |g_ic - p_ic|`` over the counted pixels of an image
    (``per_image=True``) or of the batch (``per_image=False``, the paper's default). Sorted
    in decreasing order, with ``G_c = Σ_i g_ic``:

    .. math::
        J_k = 1 - \frac{G_c - \sum_{i \le k} g_{(i)c}}{G_c + \sum_{i \le k} (1 - g_{(i)c})},
        \qquad
        \ell_c = \sum_k e_{(k)} (J_k - J_{k-1}),

    and the loss of the image (or batch) is the mean of ``ℓ_c`` over the classes:
    those present in its target (``classes="present"``; none present gives 0), all
    of them (``"all"``: an absent class's ``ℓ_c`` is its largest error), or the listed
    ones. ``ignore_index`` pixels leave every sum; an image with no counted pixel
    contributes 0. ``"mean"`` averages the per-image losses over the ``N`` images
    (every image counts, as in Berman's ``mean``); ``"sum"`` adds them.

    The loss is piecewise linear in the errors: its gradient is exact away from ties
    between errors, where it has a kink (the value does not depend on how ties are broken;
    the sort here is stable).

    Args:
        input: logits ``(N, C, *)`` (``from_logits=True``) or probabilities over dimension 1
            (``from_logits=False``, checked in [0, 1]).
        target: class indices ``(N, *)`` (checked in ``0..C-1`` or ``ignore_index``).
        classes: ``"present"`` | ``"all"`` | a sequence of class indices. Default:
            ``"present"``.
        per_image: one Lovász loss per image (``True``) or one for the batch. Default:
            ``False``.
        ignore_index: a target value whose pixels are not counted (e.g. 255). Default:
            ``None``.
        from_logits: the input holds logits (softmax inside). Default: ``True``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the image count.

    Shape:
        input ``(N, C, *)``, target ``(N, *)``; output scalar, or with ``reduction="none"``
        ``(N,)`` (``per_image=True``) or ``()``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> x = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 1.0, 1.0]]])  # 1 image, 2 classes, 3 px
        >>> LF.lovasz_softmax_loss(x, torch.tensor([[0, 1, 0]]))
        tensor(0.5499)

    References:
        Berman, Rannen Triki, Blaschko, "The Lovász-Softmax loss: A tractable surrogate for
        the optimization of the intersection-over-union measure in neural networks",
        CVPR 2018, https://arxiv.org/abs/1705.08790
    """
    name = "lovasz_softmax_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer)
    _image_shape(name, input, 2, "logits (N, C, *) (classes along dimension 1)")
    if target.is_floating_point() and target.shape == input.shape:
        C.fail(
            name,
            f"target must hold class indices (N, *), got probabilities or one-hot maps of "
            f"the input's shape {tuple(input.shape)}.",
            "the Lovász-Softmax loss takes hard labels: pass target.argmax(1).",
        )
    C.check_integer(name, "target", target)
    n, k, *space = input.shape
    if tuple(target.shape) != (n, *space):
        C.fail(
            name,
            f"target shape {tuple(target.shape)} does not match input shape "
            f"{tuple(input.shape)}: class indices (N, *) = {(n, *space)} expected.",
            "the target holds one class index per pixel, without the class dimension.",
        )
    picked = _class_list(name, classes, k)
    C.check_bool(name, "per_image", per_image)
    C.check_bool(name, "from_logits", from_logits)
    ignore = None if ignore_index is None else C.check_ignore_index(name, ignore_index)
    C.check_class_indices(name, target, k, ignore)

    pixels = math.prod(space)
    dtype = compute_dtype(input.dtype)
    x = input.to(dtype).reshape(n, k, pixels)
    y = target.reshape(n, 1, pixels)
    if not per_image:  # the batch as one image: (1, C, N * pixels)
        x, y = x.transpose(0, 1).reshape(1, k, n * pixels), y.reshape(1, 1, n * pixels)
    valid = None if ignore is None else y != ignore
    if not from_logits:
        C.check_in_unit_interval(
            name,
            "input",
            x,
            mask=None if valid is None else valid.expand_as(x),
            hint="from_logits=False takes probabilities; for logits use from_logits=True.",
        )
    if valid is not None:  # uncounted pixels leave the softmax too: NaN or inf reach nothing
        x = torch.where(valid, x, 0.0)
    plain = _LovaszSoftmaxPlain(from_logits, valid)
    per_class = fused(_LovaszSoftmax(from_logits, valid, plain), plain, x, y)  # (images, C)
    if picked is not None:
        per_class = per_class[:, picked]
        per_image_loss = reduce(per_class, "mean", dim=-1)
    elif classes == "present":
        present = _present(y, k, valid)
        per_image_loss = reduce(per_class, "mean", mask=present, dim=-1)
    else:
        per_image_loss = reduce(per_class, "mean", dim=-1)
    loss = per_image_loss if per_image else per_image_loss[0]
    return reduce(loss, reduction, normalizer=normalizer)


def lovasz_hinge_loss(
    input, target, *, per_image=True, ignore_index=None, reduction="mean", normalizer=None
):
    r"""Lovász hinge loss (Berman et al. 2018): the Lovász extension of the Jaccard loss
    of a binary mask on hinge errors.

    With binary logits ``x`` and labels ``y`` in {0, 1} (signs ``s = 2y - 1``), the errors
    are ``e_i = max(0, 1 - x_i s_i)`` over the counted pixels of an image
    (``per_image=True``, the paper's default) or of the batch. Sorted in decreasing order,
    with ``G = Σ_i y_i``:

    .. math::
        J_k = 1 - \frac{G - \sum_{i \le k} y_{(i)}}{G + \sum_{i \le k} (1 - y_{(i)})},
        \qquad
        \ell = \sum_k e_{(k)} (J_k - J_{k-1}).

    ``ignore_index`` pixels leave every sum; an image with no counted pixel contributes 0.
    ``"mean"`` averages the per-image losses over the ``N`` images (every image counts, as
    in Berman's ``mean``); ``"sum"`` adds them. Piecewise linear in the logits: the
    gradient is exact away from ties between errors and from the hinge's corner.

    Args:
        input: binary logits ``(N, *)``.
        target: labels 0 or 1 of the input's shape (integer, bool or float; checked), or
            ``ignore_index``.
        per_image: one Lovász loss per image (``True``) or one for the batch. Default:
            ``True``.
        ignore_index: a target value whose pixels are not counted (e.g. 255). Default:
            ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the sum by this instead of the image count.

    Shape:
        input ``(N, *)``, target ``(N, *)``; output scalar, or with ``reduction="none"``
        ``(N,)`` (``per_image=True``) or ``()``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> x = torch.tensor([[2.0, -0.5, 0.3, -3.0]])  # 1 image, 4 pixels
        >>> LF.lovasz_hinge_loss(x, torch.tensor([[1, 1, 0, 0]]))
        tensor(0.9667)

    References:
        Berman, Rannen Triki, Blaschko, "The Lovász-Softmax loss: A tractable surrogate for
        the optimization of the intersection-over-union measure in neural networks",
        CVPR 2018, https://arxiv.org/abs/1705.08790
    """
    name = "lovasz_hinge_loss"
    C.check_call(name, input, target, reduction=reduction, normalizer=normalizer)
    _image_shape(name, input, 1, "binary logits (N, *)")
    if (
        input.dim() >= 2
        and input.shape[1] == 1
        and input.shape[:1] + input.shape[2:] == target.shape
    ):
        C.fail(
            name,
            f"input {tuple(input.shape)} has a channel dimension that target "
            f"{tuple(target.shape)} lacks: binary logits (N, *) and labels (N, *) expected.",
            "pass input[:, 0] (kornia's and smp's (N, 1, H, W) logits).",
        )
    C.check_same_shape(name, input, target)
    C.check_bool(name, "per_image", per_image)
    ignore = C.check_ignore_value(name, ignore_index)  # labels may be floats
    _check_binary_labels(name, target, ignore)

    n = input.shape[0]
    pixels = math.prod(input.shape[1:])
    dtype = compute_dtype(input.dtype)
    x = input.to(dtype).reshape(n, pixels)
    y = target.reshape(n, pixels)
    if not per_image:
        x, y = x.reshape(1, n * pixels), y.reshape(1, n * pixels)
    valid = None if ignore is None else y != ignore
    if valid is not None:
        x = torch.where(valid, x, 0.0)  # NaN or inf at uncounted pixels reach nothing
        y = torch.where(valid, y, 0)
    g = y.to(dtype)
    loss = fused(_LovaszHinge(valid), _LovaszHingePlain(valid), x, g)
    loss = loss if per_image else loss[0]
    return reduce(loss, reduction, normalizer=normalizer)


def _check_binary_labels(loss: str, target: torch.Tensor, ignore: float | None) -> None:
    """Value check: labels 0 or 1 (or ``ignore``)."""
    if not C.checks_enabled() or target.numel() == 0:
        return
    with torch.no_grad():
        t = target.detach()
        bad = (t != 0) & (t != 1)
        if ignore is not None:
            bad &= t != ignore
        if not bool(bad.any()):
            return
        values = torch.unique(t[bad]).tolist()
        n_bad = int(bad.sum())
    ignore_text = f" or ignore_index={ignore:g}" if ignore is not None else ""
    hint = None
    if 255 in values and ignore is None:
        hint = "did you mean ignore_index=255? (255 marks void pixels in many segmentation sets)"
    elif t.is_floating_point():
        hint = "the Lovász hinge takes hard labels; for soft masks use a Dice loss."
    C.fail(
        loss,
        f"target must hold labels 0 or 1{ignore_text}, found {C.format_values(values)} "
        f"({n_bad} of {t.numel()} values).",
        hint,
    )


# Berman's names (aliases of the registry rows)
lovasz_softmax = lovasz_softmax_loss
lovasz_hinge = lovasz_hinge_loss
