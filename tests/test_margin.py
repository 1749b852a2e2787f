"""torch.nn's margin and embedding losses: torch parity across the options (values and
the gradients of every input), the modules in torch's forward order, the edges where
losskit's rules differ from torch (empty mean, overflow, labels), the errors, and
identities with the binary losses."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from conftest import TOL

D = torch.float64
REDUCTIONS = ("none", "mean", "sum")


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, scale=2.0):
    return (torch.randn(shape, generator=_g(seed), dtype=D) * scale).requires_grad_(True)


def _signs(*shape, seed=0):
    return torch.where(torch.rand(shape, generator=_g(seed)) > 0.5, 1.0, -1.0).double()


def _close(actual, expected):
    rtol, atol = TOL[D]
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def _same(ours, theirs, inputs):
    """Equal values, and equal gradients with respect to every input that needs one."""
    _close(ours, theirs)
    leaves = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    g_ours = torch.autograd.grad(ours.sum(), leaves, allow_unused=True)
    g_theirs = torch.autograd.grad(theirs.sum(), leaves, allow_unused=True)
    for a, b, t in zip(g_ours, g_theirs, leaves, strict=True):
        _close(torch.zeros_like(t) if a is None else a, torch.zeros_like(t) if b is None else b)


# --------------------------------------------------------------------------- torch parity
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.3])
@pytest.mark.parametrize("shape", [(7,), (3, 4), ()], ids=str)
def test_margin_ranking_matches_torch(shape, margin, reduction):
    x1, x2, y = _randn(*shape), _randn(*shape, seed=1), _signs(*shape, seed=2)
    ours = LF.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction)
    theirs = TF.margin_ranking_loss(x1, x2, y, margin=margin, reduction=reduction)
    _same(ours, theirs, (x1, x2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.5])
@pytest.mark.parametrize("shape", [(10,), (3, 4), ()], ids=str)
def test_hinge_embedding_matches_torch(shape, margin, reduction):
    x, y = _randn(*shape).abs().detach().requires_grad_(True), _signs(*shape, seed=1)
    ours = LF.hinge_embedding_loss(x, y, margin=margin, reduction=reduction)
    _same(ours, TF.hinge_embedding_loss(x, y, margin=margin, reduction=reduction), (x,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 5), (7,), ()], ids=str)
def test_soft_margin_matches_torch(shape, reduction):
    x, y = _randn(*shape), _signs(*shape, seed=1)
    _same(
        LF.soft_margin_loss(x, y, reduction=reduction),
        TF.soft_margin_loss(x, y, reduction=reduction),
        (x,),
    )


# rows: padding after some classes, a repeated class, every class, none, a value after -1
LISTS = torch.tensor(
    [[3, 0, -1, 1, 4], [2, 2, 4, -1, -1], [0, 1, 2, 3, 4], [-1, 3, 3, 3, 3], [4, -1, 0, 0, 0]]
)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("rows", [slice(None), 0, 1, 3], ids=lambda r: f"rows{r}")
def test_multilabel_margin_matches_torch(rows, reduction):
    x = _randn(5, 5)[rows].detach().requires_grad_(True)
    y = LISTS[rows]
    ours = LF.multilabel_margin_loss(x, y, reduction=reduction)
    _same(ours, TF.multilabel_margin_loss(x, y, reduction=reduction), (x,))


def test_multilabel_margin_random_lists_and_any_integer_dtype():
    x = _randn(16, 9)
    order = torch.argsort(torch.rand(16, 9, generator=_g(3)), dim=1)
    count = torch.randint(0, 10, (16, 1), generator=_g(4))
    y = torch.where(torch.arange(9) < count, order, -1)
    _same(LF.multilabel_margin_loss(x, y.int()), TF.multilabel_margin_loss(x, y), (x,))


def test_multilabel_margin_many_classes_and_infinite_scores():
    """Sorted scores, not the (N, C, C) pairs: 2000 classes; a listed score of +inf beats
    every other (0, not 0 * inf), a -inf one loses to all (inf), as in torch."""
    x = _randn(8, 2000)
    y = torch.full((8, 2000), -1)
    y[:, :50] = torch.randint(0, 2000, (8, 50), generator=_g(5))
    _same(LF.multilabel_margin_loss(x, y), TF.multilabel_margin_loss(x, y), (x,))
    inf = torch.tensor([[math.inf, 0.0, 1.0], [-math.inf, 0.0, 1.0]], dtype=D)
    lists = torch.tensor([[0, -1, -1], [0, -1, -1]])
    want = TF.multilabel_margin_loss(inf, lists, reduction="none")
    torch.testing.assert_close(LF.multilabel_margin_loss(inf, lists, reduction="none"), want)
    assert want[0] == 0 and torch.isinf(want[1])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "class", "element"])
@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 4)], ids=str)
def test_multilabel_soft_margin_matches_torch(shape, weight, reduction):
    x = _randn(*shape)
    y = (torch.rand(shape, generator=_g(1)) > 0.5).long()  # torch's samples: integer 0/1
    w = {
        None: None,
        "class": torch.rand(shape[-1], generator=_g(2), dtype=D) + 0.5,
        "element": torch.rand(shape, generator=_g(2), dtype=D) + 0.5,
    }[weight]
    ours = LF.multilabel_soft_margin_loss(x, y, weight=w, reduction=reduction)
    theirs = TF.multilabel_soft_margin_loss(x, y, weight=w, reduction=reduction)
    if w is not None and reduction == "mean":
        # losskit's weighted mean: torch's sum over the samples' mean weights, not over N
        theirs = TF.multilabel_soft_margin_loss(x, y, weight=w, reduction="sum") / (
            torch.broadcast_to(w, shape).sum() / shape[-1]
        )
    _same(ours, theirs, (x,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.5])
@pytest.mark.parametrize("shape", [(6, 5), (5,)], ids=str)
def test_cosine_embedding_matches_torch(shape, margin, reduction):
    x1, x2, y = _randn(*shape), _randn(*shape, seed=1), _signs(*shape[:-1], seed=2)
    ours = LF.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction)
    theirs = TF.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction)
    _same(ours, theirs, (x1, x2))


def test_cosine_embedding_zero_vectors_are_torchs_finite_values():
    """torch's epsilon (1e-12) inside each root: a zero vector has cosine 0 and a finite
    gradient, as in torch; both vectors zero too."""
    x1 = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 0.0]], dtype=D)
    x2 = torch.tensor([[1.0, -1.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=D)
    for y in (torch.ones(3, dtype=D), -torch.ones(3, dtype=D)):
        a, b = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
        ours = LF.cosine_embedding_loss(a, b, y, margin=-0.5, reduction="none")
        theirs = TF.cosine_embedding_loss(a, b, y, margin=-0.5, reduction="none")
        # the two roots apart round differently from torch's root of the product: the
        # gradients of about 1e6 at a zero vector agree to 1e-8, not 1e-10
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
        ga, gb = torch.autograd.grad(ours.sum(), (a, b))
        ta, tb = torch.autograd.grad(theirs.sum(), (a, b))
        torch.testing.assert_close(ga, ta, rtol=1e-8, atol=1e-12)
        torch.testing.assert_close(gb, tb, rtol=1e-8, atol=1e-12)
        assert torch.isfinite(ga).all() and torch.isfinite(gb).all()


def test_cosine_embedding_large_norms_do_not_overflow_float32():
    """The two roots apart, not torch's root of the product: norms of 1e15 in float32."""
    x1 = torch.tensor([[1e15, 1e15]], requires_grad=True)
    x2 = torch.tensor([[1e15, 0.0]])
    out = LF.cosine_embedding_loss(x1, x2, torch.ones(1))
    assert out.item() == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-6)
    (grad,) = torch.autograd.grad(out, x1)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("p, margin", [(1, 1.0), (2, 1.0), (1, 0.5), (2, -0.2), (1, 3.0)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(5, 10), (10,)], ids=str)
def test_multi_margin_matches_torch(shape, weighted, p, margin):
    x = _randn(*shape)
    y = torch.randint(0, shape[-1], shape[:-1], generator=_g(1))
    w = torch.rand(shape[-1], generator=_g(2), dtype=D) + 0.5 if weighted else None
    for reduction in REDUCTIONS:
        ours = LF.multi_margin_loss(x, y, p=p, margin=margin, weight=w, reduction=reduction)
        theirs = TF.multi_margin_loss(x, y, p=p, margin=margin, weight=w, reduction=reduction)
        if weighted and reduction == "mean":  # losskit's weighted mean: over sum(w[y]), not N
            theirs = TF.multi_margin_loss(x, y, p=p, margin=margin, weight=w, reduction="sum")
            theirs = theirs / w[y].sum()
        _same(ours, theirs, (x,))


def test_multi_margin_zero_dim_input_is_one_class():
    x = torch.tensor(0.3, dtype=D, requires_grad=True)
    y = torch.tensor(0)
    _same(LF.multi_margin_loss(x, y), TF.multi_margin_loss(x, y), (x,))
    _same(LF.multilabel_margin_loss(x, y), TF.multilabel_margin_loss(x, y), (x,))


@pytest.mark.parametrize("p, eps", [(2.0, 1e-6), (1.0, 1e-6), (3.0, 0.0), (1.5, 0.1)])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("shape", [(6, 5), (5,), (2, 3, 4)], ids=str)
def test_triplet_margin_matches_torch(shape, swap, p, eps):
    a, pos, neg = _randn(*shape), _randn(*shape, seed=1), _randn(*shape, seed=2)
    for reduction in REDUCTIONS:
        options = dict(margin=1.5, p=p, eps=eps, swap=swap, reduction=reduction)
        ours = LF.triplet_margin_loss(a, pos, neg, **options)
        _same(ours, TF.triplet_margin_loss(a, pos, neg, **options), (a, pos, neg))


def _l1(u, v):
    return (u - v).abs().sum(dim=-1)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "distance",
    [None, _l1, lambda u, v: 1.0 - TF.cosine_similarity(u, v)],
    ids=["euclidean", "l1", "cosine"],  # stable ids: pytest-xdist's workers must agree
)
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_matches_torch(swap, distance, reduction):
    a, pos, neg = _randn(6, 5), _randn(6, 5, seed=1), _randn(6, 5, seed=2)
    options = dict(distance_function=distance, margin=0.7, swap=swap, reduction=reduction)
    ours = LF.triplet_margin_with_distance_loss(a, pos, neg, **options)
    theirs = TF.triplet_margin_with_distance_loss(a, pos, neg, **options)
    _same(ours, theirs, (a, pos, neg))


def test_equal_anchor_and_positive_with_eps_zero_have_finite_second_derivatives():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], dtype=D, requires_grad=True)
    pos = a.detach().clone().requires_grad_(True)
    neg = (a.detach() + 1.0).requires_grad_(True)
    out = LF.triplet_margin_loss(a, pos, neg, eps=0.0, margin=2.0)
    _close(out, TF.triplet_margin_loss(a, pos, neg, eps=0.0, margin=2.0))
    grads = torch.autograd.grad(out, (a, pos, neg), create_graph=True)
    want = torch.autograd.grad(
        TF.triplet_margin_loss(a, pos, neg, eps=0.0, margin=2.0), (a, pos, neg)
    )
    for g, w in zip(grads, want, strict=True):
        _close(g, w)  # torch's gradient: 0 from the zero distance
    second = torch.autograd.grad(sum(g.sum() for g in grads), (a, pos, neg), allow_unused=True)
    assert all(h is None or torch.isfinite(h).all() for h in second)
    assert torch.autograd.gradgradcheck(
        lambda *t: LF.triplet_margin_loss(*t, eps=0.0, margin=2.0), (a, pos + 0.3, neg)
    )


def test_pairwise_distance_adds_eps_to_the_difference():
    """torch's pairwise_distance is ||a - b + eps||: equal vectors are eps sqrt(D) apart."""
    a = torch.ones(1, 4, dtype=D)
    out = LF.triplet_margin_loss(a, a, a + 10.0, margin=1.0, eps=1e-3, reduction="none")
    d_pos = 1e-3 * 2.0  # eps sqrt(4)
    d_neg = torch.linalg.vector_norm(torch.full((4,), -10.0 + 1e-3, dtype=D)).item()
    assert out.item() == 0.0 and d_pos - d_neg + 1.0 < 0
    near = LF.triplet_margin_loss(a, a, a + 0.1, margin=1.0, eps=1e-3, reduction="none")
    want = 1.0 + d_pos - torch.linalg.vector_norm(torch.full((4,), -0.1 + 1e-3, dtype=D))
    _close(near, want.reshape(1))
    _close(near, TF.triplet_margin_loss(a, a, a + 0.1, eps=1e-3, reduction="none"))


# --------------------------------------------------------------------------- modules
def test_modules_take_torchs_forward_order():
    x1, x2, y = _randn(4, 3), _randn(4, 3, seed=1), _signs(4, seed=2)
    for name, inputs in [
        ("MarginRankingLoss", (x1[:, 0], x2[:, 0], y)),
        ("CosineEmbeddingLoss", (x1, x2, y)),
        ("TripletMarginLoss", (x1, x2, _randn(4, 3, seed=3))),
        ("TripletMarginWithDistanceLoss", (x1, x2, _randn(4, 3, seed=3))),
    ]:
        ours = getattr(losskit.nn, name)(margin=0.5)(*inputs)
        theirs = getattr(torch.nn, name)(margin=0.5)(*inputs)
        _same(ours, theirs, inputs)


def test_triplet_modules_match_torchs_with_every_option():
    """The triplet modules are not in torch's module_db: their options here."""
    a, pos, neg = _randn(5, 4), _randn(5, 4, seed=1), _randn(5, 4, seed=2)
    for options in itertools.product([0.5, 2.0], [1.0, 2.0], [False, True], REDUCTIONS):
        kw = dict(zip(("margin", "p", "swap", "reduction"), options, strict=True))
        ours = losskit.nn.TripletMarginLoss(**kw)(a, pos, neg)
        _same(ours, torch.nn.TripletMarginLoss(**kw)(a, pos, neg), (a, pos, neg))
        kw.pop("p")
        dist = torch.nn.PairwiseDistance(p=1.0)  # an nn.Module as the distance
        ours = losskit.nn.TripletMarginWithDistanceLoss(distance_function=dist, **kw)(a, pos, neg)
        theirs = torch.nn.TripletMarginWithDistanceLoss(distance_function=dist, **kw)(a, pos, neg)
        _same(ours, theirs, (a, pos, neg))


# --------------------------------------------------------------------------- losskit's rules
def _empty_calls():
    e = torch.zeros(0, 4, dtype=D, requires_grad=True)
    n = torch.zeros(0, dtype=D)
    return [
        ("margin_ranking_loss", (e[:, 0], e[:, 1], n)),
        ("hinge_embedding_loss", (e[:, 0], n)),
        ("soft_margin_loss", (e, torch.zeros(0, 4, dtype=D))),
        ("multilabel_margin_loss", (e, torch.zeros(0, 4, dtype=torch.long))),
        ("multilabel_soft_margin_loss", (e, torch.zeros(0, 4, dtype=D))),
        ("cosine_embedding_loss", (e, e, n)),
        ("multi_margin_loss", (e, torch.zeros(0, dtype=torch.long))),
        ("triplet_margin_loss", (e, e, e)),
        ("triplet_margin_with_distance_loss", (e, e, e)),
    ]


@pytest.mark.parametrize(
    "name, inputs", _empty_calls(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_empty_batch_mean_is_zero_where_torch_is_nan_or_garbage(name, inputs):
    out = getattr(LF, name)(*inputs)
    assert out.item() == 0.0
    (grad,) = torch.autograd.grad(out, inputs[0])
    assert grad.numel() == 0
    theirs = getattr(TF, name)(*inputs)
    # torch: NaN (0 / 0), or for the two margin kernels uninitialised memory
    assert not (theirs.item() == 0.0 and name in ("cosine_embedding_loss", "triplet_margin_loss"))


def test_soft_margin_is_finite_where_torchs_overflows():
    x = torch.tensor([-1e4, 1e4, 0.0], requires_grad=True)
    y = torch.tensor([1.0, -1.0, 1.0])
    out = LF.soft_margin_loss(x, y, reduction="none")
    torch.testing.assert_close(out, torch.tensor([1e4, 1e4, math.log(2.0)]))
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad, torch.tensor([-1.0, 1.0, -0.5]))
    assert torch.isinf(TF.soft_margin_loss(x, y, reduction="none")).any()  # torch: inf


def test_soft_margin_is_logistic_bce_and_multilabel_soft_margin_is_bce():
    x, y = _randn(4, 6), _signs(4, 6, seed=1)
    q = (y + 1) / 2
    _close(LF.soft_margin_loss(x, y), LF.binary_cross_entropy_with_logits(x, q))
    _close(LF.multilabel_soft_margin_loss(x, q), LF.binary_cross_entropy_with_logits(x, q))
    w = torch.rand(6, generator=_g(3), dtype=D) + 0.1  # the weighted means agree too
    _close(
        LF.multilabel_soft_margin_loss(x, q, weight=w),
        LF.binary_cross_entropy_with_logits(x, q, weight=w.expand(4, 6)),
    )


def test_triplet_with_default_distance_is_triplet_margin_loss():
    a, pos, neg = _randn(5, 3), _randn(5, 3, seed=1), _randn(5, 3, seed=2)
    for swap in (False, True):
        _close(
            LF.triplet_margin_with_distance_loss(a, pos, neg, swap=swap, reduction="none"),
            LF.triplet_margin_loss(a, pos, neg, swap=swap, reduction="none"),
        )


@pytest.mark.parametrize(
    "name, args, shape",
    [
        ("margin_ranking_loss", lambda: (_randn(4, 3), _randn(4, 3, seed=1), _signs(4, 3)), (4, 3)),
        ("hinge_embedding_loss", lambda: (_randn(4, 3).abs(), _signs(4, 3)), (4, 3)),
        ("soft_margin_loss", lambda: (_randn(4, 3), _signs(4, 3)), (4, 3)),
        ("cosine_embedding_loss", lambda: (_randn(4, 3), _randn(4, 3, seed=1), _signs(4)), (4,)),
        (
            "multilabel_margin_loss",
            lambda: (_randn(4, 3), torch.tensor([[0, -1, -1], [1, 2, -1], [2, -1, 0], [0, 1, 2]])),
            (4,),
        ),
        (
            "triplet_margin_loss",
            lambda: (_randn(4, 3), _randn(4, 3, seed=1), _randn(4, 3, seed=2)),
            (4,),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_losskits_weight_where_torch_has_none(name, args, shape):
    """A weight per element (per pair, sample or triplet): "none" is w l, "sum" its sum,
    "mean" sum(w l) / sum(w); a weight of ones is the unweighted loss."""
    fn, inputs = getattr(LF, name), args()
    w = torch.rand(shape, generator=_g(7), dtype=D) + 0.5
    none = fn(*inputs, reduction="none")
    _close(fn(*inputs, weight=w, reduction="none"), w * none)
    _close(fn(*inputs, weight=w, reduction="sum"), (w * none).sum())
    _close(fn(*inputs, weight=w), (w * none).sum() / w.sum())
    _close(fn(*inputs, weight=torch.ones(shape, dtype=D)), fn(*inputs))
    with pytest.raises(losskit.LossInputError, match="weight of shape \\(5,\\)"):
        fn(*inputs, weight=torch.ones(5, dtype=D))


def test_weighted_means_are_sum_w_l_over_sum_w():
    x = _randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 3, 3])
    w = torch.tensor([1.0, 2.0, 3.0, 0.5], dtype=D)
    none = LF.multi_margin_loss(x, y, weight=w, reduction="none")
    _close(LF.multi_margin_loss(x, y, weight=w), none.sum() / w[y].sum())
    # invariant to the weights' scale, as every losskit weighted mean
    _close(LF.multi_margin_loss(x, y, weight=w * 1e300), LF.multi_margin_loss(x, y, weight=w))


# --------------------------------------------------------------------------- labels
@pytest.mark.parametrize(
    "name, args",
    [
        ("margin_ranking_loss", lambda y: (torch.ones(4), torch.zeros(4), y)),
        ("hinge_embedding_loss", lambda y: (torch.ones(4), y)),
        ("soft_margin_loss", lambda y: (torch.ones(4), y)),
        ("cosine_embedding_loss", lambda y: (torch.ones(4, 2), torch.ones(4, 2), y)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_labels_other_than_one_and_minus_one_raise_with_a_hint(name, args):
    fn = getattr(LF, name)
    with pytest.raises(losskit.LossInputError, match="labels 1 and -1.*0/1.*2 \\* target - 1"):
        fn(*args(torch.tensor([0.0, 1.0, 1.0, 0.0])))
    with pytest.raises(losskit.LossInputError, match=f"^{name}: .*found 0.0.*tie"):
        fn(*args(torch.tensor([0.0, 1.0, -1.0, 1.0])))
    with pytest.raises(losskit.LossInputError, match="found 2.0"):
        fn(*args(torch.tensor([2.0, 1.0, -1.0, 1.0])))
    y = torch.tensor([0.0, 1.0, -1.0, 2.0])  # value checks off: torch's formula, any label
    with losskit.set_checks(False):
        torch.testing.assert_close(
            fn(*args(y), reduction="none"), getattr(TF, name)(*args(y), reduction="none")
        )


def test_integer_labels_are_accepted_as_torch_does():
    x1, x2 = _randn(6), _randn(6, seed=1)
    y = torch.tensor([1, -1, 1, 1, -1, -1])
    _same(LF.margin_ranking_loss(x1, x2, y), TF.margin_ranking_loss(x1, x2, y), (x1, x2))


# --------------------------------------------------------------------------- errors
def test_multilabel_margin_bad_target_explains_the_padded_format():
    x = torch.randn(2, 4)
    with pytest.raises(losskit.LossInputError) as info:
        LF.multilabel_margin_loss(x, torch.tensor([[3, 0, -1, 7], [0, 1, 2, 3]]))
    text = str(info.value)
    assert text.startswith("multilabel_margin_loss: target has 7")
    assert "padded with -1" in text and "[2, 0, -1, -1]" in text and "ignored" in text
    with pytest.raises(losskit.LossInputError, match="-1 is the only padding value"):
        LF.multilabel_margin_loss(x, torch.tensor([[3, 0, -100, -100], [0, 1, 2, 3]]))
    with pytest.raises(losskit.LossInputError, match="1-based"):
        LF.multilabel_margin_loss(x, torch.tensor([[4, 1, -1, -1], [1, 2, 3, 4]]))
    with pytest.raises(losskit.LossTypeError, match="multilabel_soft_margin_loss's format"):
        LF.multilabel_margin_loss(x, torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]]))
    with pytest.raises(losskit.LossInputError, match="does not match input shape"):
        LF.multilabel_margin_loss(x, torch.tensor([[0, -1], [1, -1]]))
    with pytest.raises(losskit.LossInputError, match=r"\(C,\) or \(N, C\)"):
        LF.multilabel_margin_loss(torch.randn(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(losskit.LossInputError, match="no classes"):
        LF.multilabel_margin_loss(torch.randn(2, 0), torch.zeros(2, 0, dtype=torch.long))


def test_multi_margin_errors():
    x = torch.randn(5, 10)
    with pytest.raises(losskit.LossInputError, match="expected \\(5,\\), one class index"):
        LF.multi_margin_loss(x, torch.tensor([0, 1, 2]))  # module_db's error input
    with pytest.raises(losskit.LossInputError, match="p must be 1 or 2"):
        LF.multi_margin_loss(x, torch.zeros(5, dtype=torch.long), p=3)
    with pytest.raises(losskit.LossInputError, match="class index 10"):
        LF.multi_margin_loss(x, torch.tensor([0, 1, 2, 3, 10]))
    with pytest.raises(losskit.LossInputError, match="one value per class"):
        LF.multi_margin_loss(x, torch.zeros(5, dtype=torch.long), weight=torch.ones(2, 5))
    with pytest.raises(losskit.LossTypeError, match="integer"):
        LF.multi_margin_loss(x, torch.zeros(5))


def test_pair_and_triplet_errors():
    a = torch.randn(4, 3)
    with pytest.raises(losskit.LossInputError, match="input2 shape"):
        LF.margin_ranking_loss(a, a[:2], torch.ones(4, 3))
    with pytest.raises(losskit.LossTypeError, match="input2 must be a floating"):
        LF.cosine_embedding_loss(a, a.long(), torch.ones(4))
    with pytest.raises(losskit.LossInputError, match="expected \\(4,\\)"):
        LF.cosine_embedding_loss(a, a, torch.ones(4, 3))
    with pytest.raises(losskit.LossInputError, match="\\(N, D\\) or \\(D,\\)"):
        LF.cosine_embedding_loss(a[None], a[None], torch.ones(1, 4))
    with pytest.raises(losskit.LossInputError, match="negative shape"):
        LF.triplet_margin_loss(a, a, a[:1])
    for fn in (LF.triplet_margin_loss, LF.triplet_margin_with_distance_loss):
        with pytest.raises(losskit.LossInputError, match="margin must be > 0"):
            fn(a, a, a, margin=0.0)
        with pytest.raises(losskit.LossTypeError, match="swap must be True or False"):
            fn(a, a, a, swap=1)
    with pytest.raises(losskit.LossInputError, match="p must be > 0"):
        LF.triplet_margin_loss(a, a, a, p=0.0)
    with pytest.raises(losskit.LossInputError, match="p must be finite"):
        LF.triplet_margin_loss(a, a, a, p=math.inf)  # hyperparameters are finite
    with pytest.raises(losskit.LossTypeError, match="callable"):
        LF.triplet_margin_with_distance_loss(a, a, a, distance_function="cosine")
    with pytest.raises(losskit.LossInputError, match="one distance per triplet"):
        LF.triplet_margin_with_distance_loss(a, a, a, distance_function=lambda u, v: u - v)
    with pytest.raises(losskit.LossTypeError, match="floating-point tensor, got int"):
        LF.triplet_margin_with_distance_loss(a, a, a, distance_function=lambda u, v: 1)


def test_multilabel_soft_margin_errors():
    x = torch.randn(2, 3)
    with pytest.raises(losskit.LossInputError, match=r"\[0, 1\].*\(target \+ 1\) / 2"):
        LF.multilabel_soft_margin_loss(x, torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]))
    with pytest.raises(losskit.LossInputError, match="weight of shape \\(2,\\)"):
        LF.multilabel_soft_margin_loss(x, torch.ones(2, 3), weight=torch.ones(2))


def test_a_learned_distance_is_a_submodule():
    """As in torch: a distance_function that is a module is registered, so its parameters
    are the loss module's (an optimizer sees them) and follow .to()."""

    class Learned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)

        def forward(self, a, b):
            return (self.proj(a) - self.proj(b)).norm(dim=-1)

    dist = Learned()
    ours = losskit.nn.TripletMarginWithDistanceLoss(distance_function=dist)
    theirs = torch.nn.TripletMarginWithDistanceLoss(distance_function=dist)
    assert [id(p) for p in ours.parameters()] == [id(p) for p in theirs.parameters()] != []
    a, p, n = (torch.randn(5, 4, generator=torch.Generator().manual_seed(i)) for i in range(3))
    torch.testing.assert_close(ours(a, p, n), theirs(a, p, n))
    ours.double()
    assert dist.proj.weight.dtype == torch.float64


# --------------------------------------------------------------------------- closed forms
def _fused_against_plain(fast, plain, inputs, weight):
    """Closed form (``fused``) vs the plain autograd path in float64: values, the
    gradient of every input under an upstream gradient != 1 and under a weighted mean,
    and second derivatives (which run the plain path)."""
    a = [t.detach().clone().requires_grad_(True) for t in inputs]
    b = [t.detach().clone().requires_grad_(True) for t in inputs]
    got, want = fast(*a, reduction="none"), plain(*b)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    g = torch.randn(got.shape, generator=_g(5), dtype=D)
    grads = torch.autograd.grad((got * g).sum(), a), torch.autograd.grad((want * g).sum(), b)
    for x, y in zip(*grads, strict=True):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    if weight is None:
        got_w, want_w = fast(*a), plain(*b).mean()
    else:
        got_w = fast(*a, weight=weight)
        want_w = (plain(*b) * weight).sum() / weight.sum()
    ga = torch.autograd.grad(got_w, a, create_graph=True)
    gb = torch.autograd.grad(want_w, b, create_graph=True)
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    s_a = sum((x * x).sum() for x in ga)
    s_b = sum((y * y).sum() for y in gb)
    assert s_a.requires_grad == s_b.requires_grad
    if not s_a.requires_grad:  # a piecewise-linear loss: no second derivative's graph
        return
    for x, y in zip(torch.autograd.grad(s_a, a), torch.autograd.grad(s_b, b), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("margin", [0.0, 0.3, -0.5])
def test_cosine_embedding_closed_form_matches_plain_path(margin):
    from losskit.functional import margin as M

    a, b = _randn(12, 5).detach(), _randn(12, 5, seed=1).detach()
    a[0] = 0.0  # a zero vector: cosine 0, finite gradient
    b[1] = 0.0
    a[2] = b[2]  # cosine 1
    a[3] = -b[3]  # cosine -1
    a[4] *= 1e8  # large and small norms
    b[5] *= 1e-8
    y = _signs(12)
    y[:6] = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    w = torch.rand(12, generator=_g(2), dtype=D) + 0.5
    _fused_against_plain(
        lambda p, q, **kw: LF.cosine_embedding_loss(p, q, y, margin=margin, **kw),
        lambda p, q: M._cosine_plain(y, margin, p, q),
        (a, b),
        w,
    )
    # one pair, unbatched
    torch.testing.assert_close(
        LF.cosine_embedding_loss(a[6], b[6], y[6], margin=margin, reduction="none"),
        M._cosine_plain(y[6], margin, a[6], b[6]),
    )


@pytest.mark.parametrize("eps", [0.0, 1e-6, 1e-3])
def test_euclidean_triplet_closed_form_matches_plain_path(eps):
    from losskit.functional import margin as M

    a, pos, neg = (_randn(3, 10, 6, seed=s).detach() for s in (0, 1, 2))
    pos[0, 0] = a[0, 0]  # a zero difference (with eps = 0: the masked root)
    neg[0, 1] = a[0, 1]
    pos[0, 2] = a[0, 2] + 1e-7
    neg[1] = a[1] + 100.0  # hinge closed
    w = torch.rand(3, 10, generator=_g(3), dtype=D) + 0.5
    for margin in (1.0, 0.1):
        _fused_against_plain(
            lambda *t, m=margin, **kw: LF.triplet_margin_loss(*t, margin=m, eps=eps, **kw),
            lambda *t, m=margin: M._euclidean_triplet_plain(m, eps, *t),
            (a, pos, neg),
            w,
        )
    _fused_against_plain(
        lambda *t, **kw: LF.triplet_margin_with_distance_loss(*t, **kw),
        lambda *t: M._euclidean_triplet_plain(1.0, M.PAIRWISE_EPS, *t),
        (a, pos, neg),
        w,
    )


def test_multilabel_soft_margin_closed_form_matches_plain_path():
    from losskit.functional import margin as M

    x = _randn(9, 6).detach() * 3
    x[0] = torch.tensor([1e4, -1e4, 40.0, -40.0, 0.0, 1e-9], dtype=D)  # saturated logits
    y = torch.rand(9, 6, generator=_g(1), dtype=D)
    y[:3] = (y[:3] > 0.5).to(D)  # 0/1 labels beside soft ones
    y[0] = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0], dtype=D)
    _fused_against_plain(
        lambda p, q, **kw: LF.multilabel_soft_margin_loss(p, q, **kw),
        lambda p, q: M._multilabel_soft_margin_plain(6, p, q),
        (x, y),
        None,
    )
    # an infinite logit: the plain path's value (inf for the wrong label), finite gradient
    x_inf = torch.tensor([[math.inf, -math.inf, 1.0]], dtype=D, requires_grad=True)
    y_inf = torch.tensor([[0.0, 1.0, 0.5]], dtype=D)
    out = LF.multilabel_soft_margin_loss(x_inf, y_inf)
    assert out == math.inf
    out.backward()
    assert torch.isfinite(x_inf.grad).all()


@pytest.mark.parametrize("dtype", [D, torch.float32], ids=str)
def test_soft_margin_closed_form_matches_plain_path(dtype):
    """``softplus(-y x)`` from one exp and one log1p (``_SoftMargin``; its own sum for a
    plain mean or sum) against ``-log_sigmoid(y x)``: values, both inputs' gradients, a
    retained graph's second backward, second derivatives; saturated and infinite scores."""
    from losskit.functional import margin as M

    x = _randn(9, 7).detach() * 10
    x[0] = torch.tensor([1e4, -1e4, 40.0, -40.0, 0.0, 1e-9, -1e-30], dtype=D)
    y = _signs(9, 7, seed=3)
    w = torch.rand(9, 7, generator=_g(2), dtype=D) + 0.5
    _fused_against_plain(
        lambda p, q, **kw: LF.soft_margin_loss(p, q, **kw), M._soft_margin_plain, (x, y), w
    )
    for reduction in REDUCTIONS:
        a = x.to(dtype).requires_grad_(True)
        b = x.to(dtype).requires_grad_(True)
        got = LF.soft_margin_loss(a, y.to(dtype), reduction=reduction)
        assert type(got.grad_fn).__name__ == "_FusedBackward"
        want = M._soft_margin_plain(b, y.to(dtype))
        want = want if reduction == "none" else getattr(want, reduction)()
        torch.testing.assert_close(got, want)
        first = torch.autograd.grad(got.sum(), a, retain_graph=True)[0]
        torch.testing.assert_close(first, torch.autograd.grad(want.sum(), b)[0])
        torch.testing.assert_close(torch.autograd.grad(got.sum(), a)[0], first)
    s = torch.tensor([math.inf, -math.inf, math.inf, -math.inf, 0.0], requires_grad=True)
    t = torch.tensor([1.0, 1.0, -1.0, -1.0, -1.0])
    got = LF.soft_margin_loss(s, t, reduction="none")
    assert got[:4].tolist() == [0.0, math.inf, math.inf, 0.0]
    assert got[4] == torch.tensor(math.log(2.0))
    (grad,) = torch.autograd.grad(got.sum(), s)
    assert grad.tolist() == [0.0, -1.0, 1.0, 0.0, 0.5]


@pytest.mark.parametrize("margin", [0.0, 0.5, -1.0])
def test_margin_ranking_closed_form_matches_plain_path(margin):
    from losskit.functional import margin as M

    x1, x2 = _randn(7, 5).detach(), _randn(7, 5, seed=1).detach()
    y = _signs(7, 5)
    x1[0] = x2[0] + margin * y[0]  # at the hinge's corner: torch's gradient passes
    x1[1] = x2[1]
    w = torch.rand(7, 5, generator=_g(4), dtype=D) + 0.5
    _fused_against_plain(
        lambda p, q, **kw: LF.margin_ranking_loss(p, q, y, margin=margin, **kw),
        lambda p, q: M._margin_ranking_plain(y, margin, p, q),
        (x1, x2),
        w,
    )
    # a target that requires grad takes the plain path
    yr = y.clone().requires_grad_(True)
    LF.margin_ranking_loss(x1, x2, yr, margin=margin).backward()
    assert yr.grad is not None


def _label_lists(n, c, seed, repeated):
    order = torch.argsort(torch.rand(n, c, generator=_g(seed)), dim=1)
    count = torch.randint(0, c + 1, (n, 1), generator=_g(seed + 1))
    y = torch.where(torch.arange(c) < count, order, -1)
    y[4, :] = -1  # no class
    y[5, :] = order[5]  # every class
    if repeated and c > 2:
        y[3, 1] = y[3, 0]  # a class listed twice counts twice
        y[3, 2] = -1
    return y


@pytest.mark.parametrize("dtype", [D, torch.float32], ids=str)
@pytest.mark.parametrize("repeated", [False, True], ids=["distinct", "repeated"])
@pytest.mark.parametrize("c", [1, 2, 7, 40])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_closed_form_is_the_plain_path(
    monkeypatch, c, reduction, repeated, dtype
):
    """The row blocks' merged sort (value and gradient in one pass) against the plain
    autograd path and torch: integer scores (pairs exactly at the margin, where the
    hinge's corner has gradient 0), +-0 scores (their thresholds -1, a score 1 whose
    threshold is +0), infinite scores, rows listing no class and every class, a repeated
    class (the unpacked merge), float32 (its sort by integer keys), blocks of rows."""
    from losskit.functional import _fused, margin

    monkeypatch.setattr(margin._MultilabelMargin, "BLOCK", 3 * c)  # several blocks
    x = (torch.randn(37, c, generator=_g(7), dtype=dtype) * 2).round()
    x[0, 0], x[1, 0], x[2] = math.inf, -math.inf, math.inf
    x[6], x[7, 0], x[8] = -0.0, 1.0, 0.0
    y = _label_lists(37, c, 8, repeated)
    w = torch.rand(37, generator=_g(9), dtype=dtype) if reduction == "none" else None
    grads = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(_fused, "eager", lambda: False)
            a = x.clone().requires_grad_(True)
            out = LF.multilabel_margin_loss(a, y, reduction=reduction)
            (g,) = torch.autograd.grad(out, a, w, retain_graph=True)
            if fast:  # a retained graph's second backward computes the gradient again
                assert torch.equal(torch.autograd.grad(out, a, w)[0], g)
            grads.append((out.detach(), g))
    want = TF.multilabel_margin_loss(x, y, reduction=reduction)
    tol = 1e-12 if dtype == D else 1e-5
    torch.testing.assert_close(grads[0][0], want, rtol=tol, atol=tol)
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=tol, atol=tol)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-14 if dtype == D else 1e-6, atol=0)


@pytest.mark.parametrize("p, margin", [(1, 1.0), (2, 1.0), (1, 0.0), (2, -0.5), (1, 2.0)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multi_margin_closed_form_is_the_plain_path(monkeypatch, p, margin, weighted, reduction):
    """The hinges' buffer turned into the gradient in place, against the plain autograd
    path: integer scores (hinges exactly 0, where the corner has gradient 0), infinite
    scores, a class weight, a normalizer, the retained graph's second backward."""
    from losskit.functional import _fused
    from losskit.functional import margin as module

    monkeypatch.setattr(module._MultiMargin, "ROWS", 4)  # several blocks of rows
    x = (torch.randn(23, 6, generator=_g(11), dtype=D) * 2).round()
    x[0, 0], x[1, 2] = math.inf, -math.inf
    y = torch.randint(0, 6, (23,), generator=_g(12))
    y[0], y[1] = 3, 2  # an infinite other score (inf loss), an infinite true one
    w = torch.rand(6, generator=_g(13), dtype=D) + 0.5 if weighted else None
    seed = torch.rand(23, generator=_g(14), dtype=D) if reduction == "none" else None
    kw = {"p": p, "margin": margin, "weight": w, "reduction": reduction}
    runs = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(_fused, "eager", lambda: False)
            a = x.clone().requires_grad_(True)
            out = LF.multi_margin_loss(a[2:], y[2:], **kw)
            (g,) = torch.autograd.grad(out, a, seed[2:] if seed is not None else None)
            inf = LF.multi_margin_loss(a[:2], y[:2], **{**kw, "reduction": "none"})
            (g_inf,) = torch.autograd.grad(inf.sum(), a)
            if fast:  # a retained graph's second backward makes the hinges again
                out2 = LF.multi_margin_loss(a, y, **{**kw, "reduction": "sum"})
                (h1,) = torch.autograd.grad(out2, a, retain_graph=True)
                assert torch.equal(torch.autograd.grad(out2, a)[0], h1)
            runs.append((out.detach(), g, inf.detach(), g_inf))
    (v, g, vi, gi), (pv, pg, pvi, pgi) = runs
    torch.testing.assert_close(v, pv, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(g, pg, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(vi, pvi, rtol=0, atol=0)
    # infinite scores: torch's gradient (the plain path's is NaN at an infinite true
    # score with p = 2: 0 * NaN from the true class's own hinge, inf - inf)
    b = x.clone().requires_grad_(True)
    theirs = TF.multi_margin_loss(b[:2], y[:2], p=p, margin=margin, weight=w, reduction="none")
    (tg,) = torch.autograd.grad(theirs.sum(), b)
    torch.testing.assert_close(vi, theirs.detach(), rtol=0, atol=0)
    torch.testing.assert_close(gi, tg, rtol=1e-13, atol=1e-15)
    assert not pgi[:, [0, 1, 3, 4, 5]].isnan().any()
    if not weighted and reduction == "mean":
        n = LF.multi_margin_loss(x, y, p=p, margin=margin, normalizer=4.0)
        torch.testing.assert_close(
            n, LF.multi_margin_loss(x, y, p=p, margin=margin, reduction="sum") / 4.0
        )
