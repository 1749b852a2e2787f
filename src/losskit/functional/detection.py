"""Detection losses."""

from __future__ import annotations

import torch

from .. import _checks as C
from .._reduction import reduce
from ._fused import eager
from ._sigmoid import sigmoid_focal

__all__ = ["detection_focal_loss"]


def detection_focal_loss(
    input,
    target,
    anchor_state,
    *,
    alpha=0.25,
    gamma=2.0,
    reduction="mean",
    normalizer=None,
):
    r"""RetinaNet focal loss over anchors, with ignored anchors and the positive-count
    normaliser (the Keras RetinaNet form).

    .. math::
        \ell_{b,a,k} = -\alpha_t (1 - p_t)^\gamma \log p_t \ \text{(sigmoid focal)}, \qquad
        \text{mean} = \frac{\sum_{b, a:\ s_{b,a} \ne -1} \sum_k \ell_{b,a,k}}
                           {\max(1, \#\{s_{b,a} = 1\})}

    ``anchor_state`` ``s`` is -1 (ignored: no loss, no gradient), 0 (background: every
    class target is taken as 0) or 1 (object: ``target`` holds its one-hot classes). The
    summed loss is divided by the number of object anchors, at least 1 (computed on the
    device). With no ignored anchors this is ``sigmoid_focal_loss(..., reduction="sum") /
    max(1, positives)``.

    Args:
        input: logits ``(B, A, K)``.
        target: one-hot ``(B, A, K)``, values in [0, 1].
        anchor_state: ``(B, A)``, values in {-1, 0, 1}.
        alpha: weight of the positive class in [0, 1], ``None`` to disable. Default: 0.25.
        gamma: focusing parameter, ``>= 0``. Default: ``2.0``.
        reduction: ``"mean"`` (the normalised sum above), ``"sum"`` or ``"none"``
            (``(B, A, K)``, zeros on ignored anchors). Default: ``"mean"``.
        normalizer: with ``"mean"``, divide by this instead of ``max(1, positives)``.

    Example:
        >>> import torch, losskit.functional as LF
        >>> logits = torch.tensor([[[2.0, -1.0], [-3.0, -2.0], [0.5, 0.5]]])
        >>> target = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
        >>> state = torch.tensor([[1, 0, -1]])
        >>> LF.detection_focal_loss(logits, target, state)
        tensor(0.0189)

    References:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017,
        https://arxiv.org/abs/1708.02002
    """
    name = "detection_focal_loss"
    C.check_call(
        name, input, target, reduction=reduction, normalizer=normalizer, anchor_state=anchor_state
    )
    if input.dim() != 3:
        C.fail(name, f"input must be logits of shape (B, A, K), got {tuple(input.shape)}.")
    if tuple(anchor_state.shape) != tuple(input.shape[:2]):
        C.fail(
            name,
            f"anchor_state must have shape (B, A) = {tuple(input.shape[:2])}, got "
            f"{tuple(anchor_state.shape)}.",
            "in Keras RetinaNet code it is the last channel of y_true: y_true[..., -1].",
        )
    if C.checks_enabled() and anchor_state.numel():
        bad = ~((anchor_state == -1) | (anchor_state == 0) | (anchor_state == 1))
        if bool(bad.any()):
            found = torch.unique(anchor_state[bad]).tolist()
            C.fail(name, f"anchor_state must hold -1, 0 or 1, found {C.format_values(found)}.")
    state = anchor_state.unsqueeze(-1)
    # background anchors: every class target is 0, whatever target holds there
    if target.shape != input.shape:
        C.fail(
            name,
            f"target must be one-hot classes of the input's shape "
            f"{tuple(input.shape)}, got {tuple(target.shape)}.",
        )
    if input.device.type == "cpu" and eager():  # the counted anchors alone, gathered
        return _counted_anchors(
            name, input, target, anchor_state, alpha, gamma, reduction, normalizer
        )
    # ignored anchors are inert: a NaN or inf in their logits or targets reaches nothing
    counted = state != -1
    per = sigmoid_focal(
        name,
        torch.where(counted, input, torch.zeros((), dtype=input.dtype, device=input.device)),
        torch.where(state == 1, target, torch.zeros((), dtype=target.dtype, device=target.device)),
        alpha=alpha,
        gamma=gamma,
        weight=None,
        pos_weight=None,
        ignore_index=None,
        reduction="none",
        normalizer=None,
    )
    mask = counted.expand_as(per)
    if reduction != "mean" or normalizer is not None:
        return reduce(per, reduction, mask=mask, normalizer=normalizer)
    positives = (anchor_state == 1).sum().clamp_min(1)
    return reduce(per, "mean", mask=mask, normalizer=positives)


def _counted_anchors(name, input, target, anchor_state, alpha, gamma, reduction, normalizer):
    """The loss over the anchors that are not ignored, gathered (a copy of those rows:
    ignored anchors are never read, so a NaN or inf there reaches nothing); background
    rows of the target set to 0, as the Keras code does. The counted rows are found once
    and taken by ``index_select`` (a boolean index finds them again on every use: 1x13107x80,
    one thread, 0.68x against 0.86x the Keras code's step). Their count is
    data-dependent (a device sync on CUDA, no shape on meta tensors): plain eager on
    CPU only; torch.compile, torch.func and other devices take the ``where`` form."""
    counted = anchor_state != -1
    k = input.shape[-1]
    rows = counted.reshape(-1).nonzero().squeeze(1)  # once: a boolean index finds it per call
    x = input.reshape(-1, k).index_select(0, rows)
    y = target.reshape(-1, k).index_select(0, rows)
    background = (anchor_state.reshape(-1).index_select(0, rows) == 0).nonzero().squeeze(1)
    y.index_fill_(0, background, 0.0)  # whole rows: no (R, K) mask
    if reduction == "mean" and normalizer is None:
        normalizer = (anchor_state == 1).sum().clamp_min(1)
    per = sigmoid_focal(
        name,
        x,
        y,
        alpha=alpha,
        gamma=gamma,
        weight=None,
        pos_weight=None,
        ignore_index=None,
        reduction=reduction,
        normalizer=normalizer if reduction == "mean" else None,
    )
    if reduction != "none":
        return per
    out = per.new_zeros(input.shape)
    out.view(-1, k).index_copy_(0, rows, per)
    return out
