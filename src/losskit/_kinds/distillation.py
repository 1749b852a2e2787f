"""The distillation losses' target kind: class indices that mask positions, and the
teacher's logits as an extra input.

In the registry's order a row is called ``(input, target, teacher)`` (input and target
first, as every row); the public functions take ``(input, teacher, target=None)``, the
order distillation code writes, and their modules the same (:meth:`module_call`).

Example:
    >>> import torch
    >>> from losskit._kinds import LOGITS
    >>> from losskit._kinds.distillation import TEACHER
    >>> x, y, teacher = TEACHER.sample(LOGITS, (4, 3, 2), seed=0)
    >>> tuple(y.shape), tuple(teacher.shape), TEACHER.none_shape((4, 3, 2))
    ((4, 2), (4, 3, 2), (4, 2))
"""

from __future__ import annotations

import math

import torch

from . import ExtraInput, TargetKind, _class_dim, _index_shape

__all__ = ["TEACHER", "PLOT_TEACHER_P"]

# The teacher's probability of the true class on a plot: the student's curves have their
# minimum there (KL, JSD, TV), not at p_t = 1.
PLOT_TEACHER_P = 0.8


class _Teacher(TargetKind):
    def none_shape(self, shape):
        return _index_shape(tuple(shape))

    def shape_from(self, dims, last):
        shape = (*dims, last)
        return (shape[0], last, *shape[1:-1]) if len(shape) > 1 else shape

    def typical_shape(self, size):
        return (size // 1000, 1000)

    def sample_target(self, shape, g, *, extreme, dtype):
        n_classes = shape[_class_dim(shape)]
        y = torch.randint(0, n_classes, _index_shape(shape), generator=g)
        if extreme:
            # +-1e4, apart by a little: no tie with the student's extremes (equal
            # probabilities are the kink of |p - q|, measure zero elsewhere)
            z = torch.where(torch.rand(shape, generator=g) > 0.5, 1e4, -1e4).double()
            z = z + torch.rand(shape, generator=g, dtype=torch.float64) - 0.5
        else:
            z = torch.randn(shape, generator=g, dtype=torch.float64) * 3.0
        return y, (z.to(dtype),)

    def plot_grid(self):
        p = torch.linspace(0.0, 1.0, 803, dtype=torch.float64)[1:-1]
        return p, (
            f"p_t, the student's probability of the true class (the teacher's: {PLOT_TEACHER_P:g})"
        )

    def plot_inputs(self, input_kind, p):
        # two classes, the true one first: the student's p_t = softmax([x_t, 0])[0], the
        # teacher's fixed at PLOT_TEACHER_P
        first = input_kind.true_entry(p).clone().requires_grad_(True)
        x = torch.stack([first, torch.zeros_like(p)], dim=1)
        logit = math.log(PLOT_TEACHER_P / (1.0 - PLOT_TEACHER_P))
        z = torch.tensor([logit, 0.0], dtype=p.dtype).expand(p.shape[0], 2)
        y = torch.zeros(p.shape[0], dtype=torch.long)
        return x, y, (z,), first, f"{input_kind.entry} of the true class"

    def module_call(self, factory, args, options):
        # the modules take the public order: forward(input, teacher, target)
        x, y, z = args
        return factory(**options), (x, z, y)


TEACHER = _Teacher(
    "teacher",
    "class indices (N, d1, ..., dk) that mask positions (ignore_index) and give "
    "distillation_loss its hard-label term; teacher logits of the input's shape "
    "(N, C, d1, ..., dk) after them",
    weight_kind=None,
    integer=True,
    extra_inputs=(ExtraInput("teacher", integer=False, per_sample=True),),
)
