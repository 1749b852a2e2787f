"""Kinds of the rest of torch.nn's losses: distributions (KL divergence), Poisson and
Gaussian likelihoods, and CTC's sequences.

* ``DISTRIBUTION``: a target distribution of the input's shape along the class dimension
  (dim 1, or 0 for a 1-D input), for log-probability inputs; ``extreme`` gives one-hot
  rows, so ``0 log 0`` is exercised.
* ``POISSON_INPUT`` and ``COUNT_TARGET``: a Poisson mean (its log with ``log_input=True``,
  the rate itself with ``log_input=False``; samples are ``> 0`` so that they are valid
  both ways) and counts of the input's shape, a weight per element.
* ``GAUSSIAN``: real targets of the input's shape and the extra input ``var``, positive
  variances of the input's shape (kept well above ``eps``: below it torch clamps the
  variance and passes the gradient straight through, which no numerical check can see).
* ``CTC``: log-probabilities ``(T, N, C)`` (time first, as torch's ``ctc_loss``), padded
  targets ``(N, S)`` of labels ``1..C-1`` (blank 0) and the extra inputs
  ``input_lengths`` and ``target_lengths`` ``(N,)``, every alignment feasible
  (``2 S_n <= T_n``). The batch is dimension 1 of the input (:meth:`batch_dim`).

Example:
    >>> import torch
    >>> from losskit._kinds import LOGPROBS
    >>> from losskit._kinds.torch_nn import CTC, CTC_LOGPROBS
    >>> lp, y, il, tl = CTC.sample(CTC_LOGPROBS, (4, 3), torch.float64, seed=0)
    >>> tuple(lp.shape), tuple(y.shape), CTC.none_shape(lp.shape)
    ((6, 4, 3), (4, 3), (4,))
    >>> bool((2 * tl <= il).all())
    True
"""

from __future__ import annotations

import torch

from . import ExtraInput, InputKind, TargetKind, _class_dim, _RealTarget, _true

__all__ = [
    "DISTRIBUTION",
    "POISSON_INPUT",
    "COUNT_TARGET",
    "GAUSSIAN",
    "CTC_LOGPROBS",
    "CTC",
]


# --------------------------------------------------------------------------- KL divergence
class _Distribution(TargetKind):
    def shape_from(self, dims, last):
        # the class dimension: 1 (or 0 for a 1-D input), as the log-probabilities' kind
        shape = (*dims, last)
        return (shape[0], last, *shape[1:-1]) if len(shape) > 1 else shape

    def sample_target(self, shape, g, *, extreme, dtype):
        if not shape:
            return torch.ones((), dtype=torch.float64), ()
        dim = _class_dim(shape)
        q = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64) * 2, dim=dim)
        if extreme and shape[dim]:
            q = torch.nn.functional.one_hot(q.argmax(dim), shape[dim]).movedim(-1, dim).double()
        return q, ()


DISTRIBUTION = _Distribution(
    "distribution",
    "probabilities of the input's shape (log-probabilities with log_target=True)",
    weight_kind=None,
)


# --------------------------------------------------------------------------- Poisson
class _PoissonInput(InputKind):
    def sample(self, shape, g, *, extreme):
        if extreme:  # rates of 0 (log(0 + eps)) and log-rates of 20 (a rate of 5e8)
            return torch.where(torch.rand(shape, generator=g) > 0.5, 20.0, 0.0).double()
        return torch.rand(shape, generator=g, dtype=torch.float64) * 3.0 + 0.05

    def interior(self, x):
        return x > 0

    def true_entry(self, p):
        return torch.log(p)


POISSON_INPUT = _PoissonInput(
    "poisson_input",
    "the Poisson mean's log (log_input=True) or the mean itself, >= 0 (log_input=False)",
    "log-rate",
    scalable=False,
)


class _Counts(_RealTarget):
    def sample_target(self, shape, g, *, extreme, dtype):
        top = 100 if extreme else 6
        return torch.randint(0, top, shape, generator=g).double(), ()

    def plot_grid(self):
        return torch.linspace(-3.0, 3.0, 801, dtype=torch.float64), "log-rate x, for a count of 1"

    def plot_inputs(self, input_kind, r):
        x = r.clone().requires_grad_(True)
        return x, torch.ones_like(r), (), x, input_kind.entry


COUNT_TARGET = _Counts("count", "counts (values >= 0) of the input's shape", plot_axis="residual")


# --------------------------------------------------------------------------- Gaussian
class _Gaussian(_RealTarget):
    def sample_target(self, shape, g, *, extreme, dtype):
        y = torch.randn(shape, generator=g, dtype=torch.float64)
        if extreme:  # small and large variances, both above eps
            var = torch.where(torch.rand(shape, generator=g) > 0.5, 1e3, 1e-3).double()
        else:
            var = torch.rand(shape, generator=g, dtype=torch.float64) * 2.0 + 0.25
        return y, (var.to(dtype),)

    def plot_inputs(self, input_kind, r):
        x = r.clone().requires_grad_(True)
        return x, torch.zeros_like(r), (torch.ones_like(r),), x, input_kind.entry


GAUSSIAN = _Gaussian(
    "gaussian",
    "real values of the input's shape, and var: variances > 0 of the input's shape (or "
    "one per sample: the shape without the last dimension, or 1 there)",
    plot_axis="residual",
    extra_inputs=(ExtraInput("var", integer=False, per_sample=True),),
)


# --------------------------------------------------------------------------- CTC
class _CtcLogProbs(InputKind):
    def sample(self, shape, g, *, extreme):
        if extreme:
            scores = torch.where(torch.rand(shape, generator=g) > 0.5, 50.0, -50.0).double()
        else:
            scores = 2 * torch.randn(shape, generator=g, dtype=torch.float64)
        return torch.log_softmax(scores, dim=-1)

    def true_entry(self, p):
        return torch.log(p)

    def other_entry(self, p):
        return torch.log1p(-p)


CTC_LOGPROBS = _CtcLogProbs(
    "ctc_logprobs", "log-probabilities (T, N, C), time first", "log-probability", scalable=False
)


class _Ctc(TargetKind):
    def input_shape(self, shape):
        shape = tuple(shape)
        if len(shape) >= 3:
            return shape[:3]
        if len(shape) == 2:  # (N, C): T from C, at least two classes (blank and a label)
            return (shape[1] + 3, shape[0], max(shape[1], 2))
        if len(shape) == 1:
            return (shape[0] + 2, 2, 3)
        return (4, 2, 3)

    def none_shape(self, shape):
        return (shape[1],) if len(shape) == 3 else ()

    def num_classes(self, shape):
        return shape[-1]

    def shape_from(self, dims, last):
        t, n = (*dims, 3, 2)[:2]
        return (t, n, last + 1)

    def typical_shape(self, size):
        return (50, max(size // 50 // 32, 1), 32)

    def batch_dim(self, position):
        return 1 if position == 0 else 0

    def sample_target(self, shape, g, *, extreme, dtype):
        t, n, c = shape
        il = torch.randint((t + 1) // 2, t + 1, (n,), generator=g) if t else torch.zeros(n)
        il = il.long()
        if n:
            il[0] = t  # the longest input has all T frames
        s_max = t // 2
        tl = (torch.rand(n, generator=g) * (il // 2 + 1).double()).long().clamp(max=s_max)
        y = torch.randint(1, c, (n, s_max), generator=g) if c > 1 else torch.zeros(n, s_max)
        return y.long(), (il, tl)

    def plot_inputs(self, input_kind, p):
        # one frame, one label (the true class): the loss is -log p_t, beside the
        # classification losses
        first = input_kind.true_entry(p).clone().requires_grad_(True)
        lp = torch.stack([input_kind.other_entry(p), first], dim=-1).unsqueeze(0)  # (1, n, 2)
        n = p.shape[0]
        y = torch.ones(n, 1, dtype=torch.long)
        one = torch.ones(n, dtype=torch.long)
        return lp, y, (one, one), first, _true(input_kind.entry)


CTC = _Ctc(
    "ctc",
    "label sequences (N, S) padded, or concatenated (sum of target_lengths,), with "
    "input_lengths and target_lengths (N,)",
    weight_kind=None,
    integer=True,
    extra_inputs=(
        ExtraInput("input_lengths", integer=True, per_sample=True),
        ExtraInput("target_lengths", integer=True, per_sample=True),
    ),
)
