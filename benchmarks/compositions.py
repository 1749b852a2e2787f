"""The compositions a user would write instead of calling losskit: the peers of the CPU
benchmark (``python -m benchmarks --suite cpu``).

Torch's built-in where torch has the loss; otherwise the published code, written here in
torch from its published definition (torchvision's ``sigmoid_focal_loss`` body, the
RetinaNet focal loss of the Keras RetinaNet code, the Keras 3 forms, the articles' code
in ``../shared/seeds/``). They are peers, not references: they need not be stable, only
the same loss at the benchmark's inputs (the runner compares their values with
losskit's and reports the difference).

``COMPOSITIONS[name]`` lists ``(label, fn)`` pairs, ``fn(input, target, *extra,
**options)`` with the row's default options; ``NO_COMPOSITION[name]`` says why a row has
none. A test fails when a registered row is in neither.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as TF

Composition = Callable[..., torch.Tensor]

_LOG2 = math.log(2.0)


# ----------------------------------------------------------------------------- regression
def _rmse(x, y, **_):
    return torch.sqrt(TF.mse_loss(x, y))


def _pseudo_huber(x, y, delta=1.0, **_):
    return (delta**2 * (torch.sqrt(1 + ((x - y) / delta) ** 2) - 1)).mean()


def _log_cosh_softplus(x, y, **_):
    a = (x - y).abs()
    return (a + TF.softplus(-2.0 * a) - _LOG2).mean()


def _log_cosh_naive(x, y, **_):
    return torch.log(torch.cosh(x - y)).mean()


def _quantile(x, y, quantile=0.5, **_):
    r = y - x
    return torch.max(quantile * r, (quantile - 1) * r).mean()


# ----------------------------------------------------------------------------- sigmoid
def _torchvision_focal(x, y, alpha=0.25, gamma=2.0, **_):
    """torchvision.ops.sigmoid_focal_loss's body (its published definition)."""
    p = torch.sigmoid(x)
    ce = TF.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * y + (1 - alpha) * (1 - y)
        loss = alpha_t * loss
    return loss.mean()


def _retinanet_focal(x, y, anchor_state, alpha=0.25, gamma=2.0, **_):
    """The Keras RetinaNet focal loss (keras-retinanet's ``losses.focal``) in torch, on
    logits: gather the anchors that are not ignored, alpha and focal weights by
    ``where``, binary cross entropy, normalised by the positive anchors (at least 1)."""
    keep = anchor_state != -1
    labels = y[keep]
    logits = x[keep]
    p = torch.sigmoid(logits)
    alpha_factor = torch.where(labels == 1, alpha, 1 - alpha)
    focal_weight = torch.where(labels == 1, 1 - p, p)
    focal_weight = alpha_factor * focal_weight**gamma
    cls_loss = focal_weight * TF.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    normalizer = (anchor_state == 1).sum().clamp_min(1)
    return cls_loss.sum() / normalizer


def _keras_hinge_labels(y):
    # Keras converts a target of only 0 and 1 to -1 and 1
    binary = ((y == 0) | (y == 1)).all()
    return torch.where(binary, 2 * y - 1, y)


def _keras_hinge(x, y, **_):
    return torch.clamp(1 - _keras_hinge_labels(y) * x, min=0).mean()


def _keras_squared_hinge(x, y, **_):
    return torch.clamp(1 - _keras_hinge_labels(y) * x, min=0).square().mean()


# ----------------------------------------------------------------------------- multi-class
def _masked_mean(per, t, ignore_index):
    keep = t != ignore_index
    return per[keep].mean()


def _softmax_focal(x, t, gamma=2.0, ignore_index=-100, **_):
    """``-(1 - p_t)^gamma log p_t`` with ``log p_t`` gathered from ``log_softmax``."""
    safe = torch.where(t == ignore_index, 0, t)
    logpt = TF.log_softmax(x, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
    pt = logpt.exp()
    per = -((1 - pt) ** gamma) * logpt
    return _masked_mean(per, t, ignore_index) if ignore_index in t else per.mean()


def _softmax_focal_every_class(x, t, gamma=2.0, label_smoothing=0.0, ignore_index=-100, **_):
    """``-sum_c q_c (1 - p_c)^gamma log p_c`` against the smoothed one-hot ``q`` (the
    focal term of every class, as label smoothing weighs them)."""
    safe = torch.where(t == ignore_index, 0, t)
    logp = TF.log_softmax(x, dim=1)
    n = x.shape[1]
    q = torch.full_like(x, label_smoothing / n)
    q = q.scatter_(1, safe.unsqueeze(1), 1 - label_smoothing + label_smoothing / n)
    per = -(q * (1 - logp.exp()) ** gamma * logp).sum(1)
    return _masked_mean(per, t, ignore_index) if ignore_index in t else per.mean()


def _tutorial_sce(x, t, alpha=1.0, beta=1.0, log_zero=-4.0, **_):
    """The symmetric CE article's code: CE + RCE through a clamped one-hot (the clamp's
    floor set to exp(log_zero), so that it is the same loss as losskit's default)."""
    ce = TF.cross_entropy(x, t)
    pred = torch.clamp(TF.softmax(x, dim=1), min=1e-7, max=1.0)
    one_hot = torch.clamp(TF.one_hot(t, x.shape[1]).float(), min=math.exp(log_zero), max=1.0)
    rce = -(pred * torch.log(one_hot)).sum(dim=1)
    return alpha * ce + beta * rce.mean()


def _tutorial_rce(x, t, log_zero=-4.0, **_):
    pred = torch.clamp(TF.softmax(x, dim=1), min=1e-7, max=1.0)
    one_hot = torch.clamp(TF.one_hot(t, x.shape[1]).float(), min=math.exp(log_zero), max=1.0)
    return -(pred * torch.log(one_hot)).sum(dim=1).mean()


def _keras_categorical_ce(x, q, eps=1e-7, **_):
    p = x / x.sum(-1, keepdim=True)
    p = torch.clamp(p, eps, 1 - eps)
    return -(q * torch.log(p)).sum(-1).mean()


def _keras_categorical_hinge(x, y, **_):
    pos = (y * x).sum(-1)
    neg = ((1 - y) * x).amax(-1)
    return torch.clamp(neg - pos + 1, min=0).mean()


# ----------------------------------------------------------------------------- Keras regression
def _keras_mape(x, y, eps=1e-7, **_):
    return 100 * ((y - x).abs() / torch.clamp(y.abs(), min=eps)).mean()


def _keras_msle(x, y, eps=1e-7, **_):
    first = torch.log(torch.clamp(x, min=eps) + 1)
    second = torch.log(torch.clamp(y, min=eps) + 1)
    return (first - second).square().mean()


def _keras_cosine(x, y, eps=1e-7, **_):
    return -(TF.normalize(x, dim=-1, eps=eps) * TF.normalize(y, dim=-1, eps=eps)).sum(-1).mean()


def _torch_cosine(x, y, eps=1e-7, **_):
    return -TF.cosine_similarity(x, y, dim=-1, eps=eps).mean()


def _keras_poisson(x, y, eps=1e-7, **_):
    return (x - y * torch.log(x + eps)).mean()


def _torch_poisson(x, y, eps=1e-7, **_):
    return TF.poisson_nll_loss(x, y, log_input=False, eps=eps, full=False)


# ----------------------------------------------------------------------------- boxes
def _box_iou_terms(x, y, eps):
    """torchvision's ``_loss_inter_union`` and IoU (``ops/_utils.py``), as published."""
    x1, y1, x2, y2 = x.unbind(-1)
    x1g, y1g, x2g, y2g = y.unbind(-1)
    xkis1, ykis1 = torch.max(x1, x1g), torch.max(y1, y1g)
    xkis2, ykis2 = torch.min(x2, x2g), torch.min(y2, y2g)
    intsct = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsct[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsct
    return intsct / (union + eps), union, (x1, y1, x2, y2, x1g, y1g, x2g, y2g)


def _torchvision_iou(x, y, eps=1e-7, **_):
    iou, _, _ = _box_iou_terms(x, y, eps)
    return (1 - iou).mean()


def _torchvision_giou(x, y, eps=1e-7, **_):
    iou, union, (x1, y1, x2, y2, x1g, y1g, x2g, y2g) = _box_iou_terms(x, y, eps)
    area_c = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    return (1 - (iou - (area_c - union) / (area_c + eps))).mean()


def _diou_terms(x, y, eps):
    iou, _, (x1, y1, x2, y2, x1g, y1g, x2g, y2g) = _box_iou_terms(x, y, eps)
    diag = (torch.max(x2, x2g) - torch.min(x1, x1g)) ** 2
    diag = diag + (torch.max(y2, y2g) - torch.min(y1, y1g)) ** 2 + eps
    centers = ((x1 + x2) / 2 - (x1g + x2g) / 2) ** 2 + ((y1 + y2) / 2 - (y1g + y2g) / 2) ** 2
    return 1 - iou + centers / diag, iou


def _torchvision_diou(x, y, eps=1e-7, **_):
    return _diou_terms(x, y, eps)[0].mean()


def _torchvision_ciou(x, y, eps=1e-7, **_):
    diou, iou = _diou_terms(x, y, eps)
    w_pred, h_pred = x[..., 2] - x[..., 0], x[..., 3] - x[..., 1]
    w_gt, h_gt = y[..., 2] - y[..., 0], y[..., 3] - y[..., 1]
    v = (4 / math.pi**2) * (torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return (diou + alpha * v).mean()


# ----------------------------------------------------------------------------- distillation
def _hinton_kd(x, t, teacher, temperature=1.0, alpha=0.5, ignore_index=-100, **_):
    """Hinton et al.'s distillation loss as it is usually written: ``alpha T^2
    KL(softmax(teacher / T) || softmax(x / T))`` (batchmean) ``+ (1 - alpha) CE``."""
    T = temperature
    kd = TF.kl_div(
        TF.log_softmax(x / T, dim=-1), TF.softmax(teacher / T, dim=-1), reduction="batchmean"
    )
    return alpha * T * T * kd + (1 - alpha) * TF.cross_entropy(x, t, ignore_index=ignore_index)


def _trl_gjsd(x, t, teacher, beta=0.5, temperature=1.0, ignore_index=-100, **_):
    """TRL's ``GKDTrainer.generalized_jsd_loss`` (Agarwal et al.) as published."""
    s_log = TF.log_softmax(x / temperature, dim=-1)
    t_log = TF.log_softmax(teacher / temperature, dim=-1)
    b = torch.tensor(beta, dtype=s_log.dtype)
    mix = torch.logsumexp(torch.stack([s_log + torch.log(1 - b), t_log + torch.log(b)]), dim=0)
    kl_teacher = TF.kl_div(mix, t_log, reduction="none", log_target=True)
    kl_student = TF.kl_div(mix, s_log, reduction="none", log_target=True)
    jsd = beta * kl_teacher + (1 - beta) * kl_student
    mask = t != ignore_index
    return jsd[mask].sum() / mask.sum()


def _total_variation(x, t, teacher, temperature=1.0, ignore_index=-100, **_):
    p = TF.softmax(x / temperature, dim=-1)
    q = TF.softmax(teacher / temperature, dim=-1)
    tv = 0.5 * (p - q).abs().sum(-1)
    return tv[t != ignore_index].mean()


# ----------------------------------------------------------------------------- multi-label, poly
def _timm_asymmetric(x, y, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, eps=1e-8, **_):
    """timm's ``AsymmetricLossMultiLabel.forward`` body, averaged over elements."""
    xs_pos = torch.sigmoid(x)
    xs_neg = 1 - xs_pos
    if clip is not None and clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    los_pos = y * torch.log(xs_pos.clamp(min=eps))
    los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
    loss = los_pos + los_neg
    if gamma_neg > 0 or gamma_pos > 0:
        pt = xs_pos * y + xs_neg * (1 - y)
        one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
        loss = loss * torch.pow(1 - pt, one_sided_gamma)
    return -loss.mean()


def _poly1_focal(x, y, epsilon=1.0, alpha=0.25, gamma=2.0, **_):
    """PolyLoss (Leng et al. 2022), the Poly-1 focal loss of its published code."""
    p = torch.sigmoid(x)
    ce = TF.binary_cross_entropy_with_logits(x, y, reduction="none")
    pt = y * p + (1 - y) * (1 - p)
    fl = ce * (1 - pt) ** gamma
    if alpha >= 0:
        fl = (alpha * y + (1 - alpha) * (1 - y)) * fl
    return (fl + epsilon * (1 - pt) ** (gamma + 1)).mean()


def _poly1_ce(x, t, epsilon=1.0, **_):
    ce = TF.cross_entropy(x, t, reduction="none")
    pt = TF.softmax(x, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
    return (ce + epsilon * (1 - pt)).mean()


def _gce(x, t, q=0.7, **_):
    """Generalized cross entropy (Zhang and Sabuncu 2018): ``(1 - p_t^q) / q``."""
    pt = TF.softmax(x, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)
    return ((1 - pt**q) / q).mean()


# ----------------------------------------------------------------------------- torch.nn built-ins
def _kl_div(x, y, log_target=False, **_):
    return TF.kl_div(x, y, reduction="mean", log_target=log_target)


def _margin_ranking(x1, y, x2, margin=0.0, **_):
    return TF.margin_ranking_loss(x1, x2, y, margin=margin)


def _cosine_embedding(x1, y, x2, margin=0.0, **_):
    return TF.cosine_embedding_loss(x1, x2, y, margin=margin)


def _triplet(a, p, n, margin=1.0, **_):
    return TF.triplet_margin_loss(a, p, n, margin=margin)


def _triplet_distance(a, p, n, margin=1.0, **_):
    return TF.triplet_margin_with_distance_loss(a, p, n, margin=margin)


# ----------------------------------------------------------------------------- segmentation
def _monai(cls_name, **options):
    """A MONAI loss on logits and index maps, as a user calls it (softmax, one-hot
    targets, per image, no smoothing: losskit's defaults)."""
    loss = None

    def call(x, t, **_):
        nonlocal loss
        if loss is None:
            import monai.losses

            cls = getattr(monai.losses, cls_name)
            loss = cls(softmax=True, to_onehot_y=True, smooth_nr=0.0, smooth_dr=0.0, **options)
        return loss(x, t.unsqueeze(1))

    return call


def _monai_focal_tversky(x, t, alpha=0.5, beta=0.5, gamma=0.75, **_):
    """Abraham and Khan's focal Tversky loss, ``mean((1 - TI)^gamma)``, on MONAI's
    Tversky loss per image and class."""
    import monai.losses

    per = monai.losses.TverskyLoss(
        softmax=True,
        to_onehot_y=True,
        smooth_nr=0.0,
        smooth_dr=0.0,
        alpha=alpha,
        beta=beta,
        reduction="none",
    )(x, t.unsqueeze(1))
    return per.pow(gamma).mean()


def _lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def _berman_lovasz_softmax(x, t, **_):
    """Berman et al.'s ``lovasz_softmax`` (``lovasz_losses.py``; classes='present',
    per_image=False), in torch."""
    probas = TF.softmax(x, dim=1).movedim(1, -1).reshape(-1, x.shape[1])
    labels = t.reshape(-1)
    losses = []
    for c in range(x.shape[1]):
        fg = (labels == c).to(probas.dtype)
        if fg.sum() == 0:
            continue
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, 0, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    return torch.stack(losses).mean()


def _kornia_lovasz_hinge(x, y, **_):
    import kornia

    return kornia.losses.lovasz_hinge_loss(x.unsqueeze(1), y.long())


def _builtin(fn: Callable, **fixed) -> Composition:
    def call(x, y, *extra, **options):
        return fn(x, y, *extra, **{**options, **fixed})

    return call


COMPOSITIONS: dict[str, list[tuple[str, Composition]]] = {
    "l1_loss": [("torch F.l1_loss", _builtin(TF.l1_loss))],
    "mse_loss": [("torch F.mse_loss", _builtin(TF.mse_loss))],
    "rmse_loss": [("sqrt(F.mse_loss)", _rmse)],
    "smooth_l1_loss": [("torch F.smooth_l1_loss", _builtin(TF.smooth_l1_loss))],
    "huber_loss": [("torch F.huber_loss", _builtin(TF.huber_loss))],
    "pseudo_huber_loss": [("delta^2 (sqrt(1 + (r/delta)^2) - 1)", _pseudo_huber)],
    "log_cosh_loss": [
        ("|r| + softplus(-2|r|) - log 2", _log_cosh_softplus),
        ("log(cosh(r))", _log_cosh_naive),
    ],
    "quantile_loss": [("max(q r, (q - 1) r)", _quantile)],
    "binary_cross_entropy": [("torch F.binary_cross_entropy", _builtin(TF.binary_cross_entropy))],
    "binary_cross_entropy_with_logits": [
        ("torch F.binary_cross_entropy_with_logits", _builtin(TF.binary_cross_entropy_with_logits))
    ],
    "sigmoid_focal_loss": [("torchvision sigmoid_focal_loss body", _torchvision_focal)],
    "cross_entropy": [("torch F.cross_entropy", _builtin(TF.cross_entropy))],
    "nll_loss": [("torch F.nll_loss", _builtin(TF.nll_loss))],
    "softmax_focal_loss": [
        ("-(1 - p_t)^g log p_t, log_softmax gather", _softmax_focal),
        ("-sum_c q_c (1 - p_c)^g log p_c, smoothed one-hot", _softmax_focal_every_class),
    ],
    "symmetric_cross_entropy": [("tutorial CE + clamped one-hot RCE", _tutorial_sce)],
    "reverse_cross_entropy": [("tutorial clamped one-hot RCE", _tutorial_rce)],
    "categorical_cross_entropy": [("Keras form in torch", _keras_categorical_ce)],
    "detection_focal_loss": [("Keras RetinaNet focal in torch", _retinanet_focal)],
    "mean_absolute_percentage_error": [("Keras form in torch", _keras_mape)],
    "mean_squared_logarithmic_error": [("Keras form in torch", _keras_msle)],
    "hinge": [("Keras form in torch", _keras_hinge)],
    "squared_hinge": [("Keras form in torch", _keras_squared_hinge)],
    "categorical_hinge": [("Keras form in torch", _keras_categorical_hinge)],
    "cosine_similarity_loss": [
        ("Keras form in torch (l2_normalize)", _keras_cosine),
        ("-F.cosine_similarity", _torch_cosine),
    ],
    "poisson_loss": [
        ("torch F.poisson_nll_loss(log_input=False)", _torch_poisson),
        ("Keras form in torch", _keras_poisson),
    ],
    "box_iou_loss": [("torchvision-style 1 - IoU", _torchvision_iou)],
    "generalized_box_iou_loss": [("torchvision generalized_box_iou_loss body", _torchvision_giou)],
    "distance_box_iou_loss": [("torchvision distance_box_iou_loss body", _torchvision_diou)],
    "complete_box_iou_loss": [("torchvision complete_box_iou_loss body", _torchvision_ciou)],
    "distillation_loss": [("Hinton KD: T^2 KL(batchmean) + CE", _hinton_kd)],
    "generalized_jsd_loss": [("TRL generalized_jsd_loss body", _trl_gjsd)],
    "total_variation_loss": [("0.5 |softmax - softmax|_1", _total_variation)],
    "asymmetric_loss": [("timm AsymmetricLossMultiLabel body", _timm_asymmetric)],
    "poly1_focal_loss": [("PolyLoss Poly-1 focal code", _poly1_focal)],
    "poly1_cross_entropy": [("CE + eps (1 - p_t)", _poly1_ce)],
    "generalized_cross_entropy": [("(1 - p_t^q) / q", _gce)],
    "kl_div": [("torch F.kl_div", _kl_div)],
    "poisson_nll_loss": [("torch F.poisson_nll_loss", _builtin(TF.poisson_nll_loss))],
    "gaussian_nll_loss": [("torch F.gaussian_nll_loss", _builtin(TF.gaussian_nll_loss))],
    "ctc_loss": [("torch F.ctc_loss", _builtin(TF.ctc_loss))],
    "margin_ranking_loss": [("torch F.margin_ranking_loss", _margin_ranking)],
    "hinge_embedding_loss": [("torch F.hinge_embedding_loss", _builtin(TF.hinge_embedding_loss))],
    "soft_margin_loss": [("torch F.soft_margin_loss", _builtin(TF.soft_margin_loss))],
    "multilabel_margin_loss": [
        ("torch F.multilabel_margin_loss", _builtin(TF.multilabel_margin_loss))
    ],
    "multilabel_soft_margin_loss": [
        ("torch F.multilabel_soft_margin_loss", _builtin(TF.multilabel_soft_margin_loss))
    ],
    "cosine_embedding_loss": [("torch F.cosine_embedding_loss", _cosine_embedding)],
    "multi_margin_loss": [("torch F.multi_margin_loss", _builtin(TF.multi_margin_loss))],
    "triplet_margin_loss": [("torch F.triplet_margin_loss", _triplet)],
    "triplet_margin_with_distance_loss": [
        ("torch F.triplet_margin_with_distance_loss", _triplet_distance)
    ],
    "dice_loss": [("MONAI DiceLoss", _monai("DiceLoss"))],
    "jaccard_loss": [("MONAI DiceLoss(jaccard=True)", _monai("DiceLoss", jaccard=True))],
    "tversky_loss": [("MONAI TverskyLoss", _monai("TverskyLoss"))],
    "focal_tversky_loss": [("MONAI TverskyLoss per image, ^gamma", _monai_focal_tversky)],
    "generalized_dice_loss": [("MONAI GeneralizedDiceLoss", _monai("GeneralizedDiceLoss"))],
    "lovasz_softmax_loss": [("Berman lovasz_softmax in torch", _berman_lovasz_softmax)],
    "lovasz_hinge_loss": [("kornia lovasz_hinge_loss", _kornia_lovasz_hinge)],
}


def _background_zero(args):
    # the RetinaNet code is given labels that are zero on background anchors
    x, y, state = args
    return [x, torch.where(state.unsqueeze(-1) == 1, y, torch.zeros_like(y)), state]


def _hard_targets(args):
    # multi-label targets of 0 and 1 (timm's form differs from the paper's on soft ones)
    return [args[0], (args[1] > 0.5).to(args[1].dtype), *args[2:]]


#: inputs as the composition's code expects them (both sides get the same)
PREPARE: dict[str, Callable[[list], list]] = {
    "detection_focal_loss": _background_zero,
    "asymmetric_loss": _hard_targets,
}

#: compositions whose gradient is another quantity (the values agree)
GRADIENT_DIFFERS: dict[str, str] = {
    "ctc_loss": "torch's CTC kernel returns the gradient with respect to the logits of a "
    "log_softmax, losskit the derivative with respect to log_probs",
}

NO_COMPOSITION: dict[str, str] = {
    "linear_cross_entropy": (
        "its cost is the (N, D) x (D, V) products and the logits' memory: "
        "python -m benchmarks.linear times it against the materialised loss and torch's "
        "chunked F.linear_cross_entropy"
    ),
}
