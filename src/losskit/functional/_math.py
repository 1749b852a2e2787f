"""Numerical identities shared by the loss families."""

from __future__ import annotations

import math

import torch

from .. import _checks as C

_LOG2_E = 1.0 / math.log(2.0)


def q_log_p(q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``q * log p`` with ``0 log 0 = 0``: a class of target probability 0 contributes
    nothing, even where ``log p = -inf`` (a masked logit), to the value and the gradient."""
    return torch.where(q == 0, torch.zeros((), dtype=log_p.dtype, device=log_p.device), q * log_p)


def one_hot(t: torch.Tensor, classes: int, dtype: torch.dtype) -> torch.Tensor:
    """The one-hot ``(N, C, *)`` of class indices ``t (N, *)``, in ``dtype``: the indices
    compared as floats, straight into a float buffer.

    On the CPU a comparison of int64 indices costs about ten times one of floats (one
    thread, torch 2.13, 2^20 outputs: 1.02 against 0.12 ms, the cast 0.08 more), and one
    into ``bool`` and its cast 1.7 ms. The indices are cast to float32, exact up to 2^24
    (float64 past that): an index at or above ``classes`` stays at or above it, so no
    index is moved onto a class."""
    cmp = torch.float32 if classes <= 1 << 24 else torch.float64
    view = (1, classes, *(1,) * (t.dim() - 1))
    if not C.eager():  # torch.func batches no out= op; torch.compile fuses the cast
        every = torch.arange(classes, device=t.device).view(view)
        return (t.unsqueeze(1) == every).to(dtype)
    every = torch.arange(classes, dtype=cmp, device=t.device).view(view)
    shape = (t.shape[0], classes, *t.shape[1:])
    out = torch.empty(shape, dtype=dtype, device=t.device)
    return torch.eq(t.to(cmp).unsqueeze(1), every, out=out)


def log_add_exp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(exp(a) + exp(b))`` as ``m + log(exp(a - m) + exp(b - m))`` with ``m =
    max(a, b)`` held constant (the identity holds for any ``m``): exact first and second
    derivatives everywhere, ties included, and the sum in ``[1, 2]``, so no ``log 0``.

    ``torch.logaddexp``'s double backward is NaN once the gap passes the dtype's ``exp``
    range (about 88 in float32, 709 in float64: its ``1 / (1 + exp(gap))`` is
    differentiated as ``inf / inf``); max/min's derivatives are wrong at a tie. ``-inf``
    inputs count as ``finfo.min`` (``exp`` of them is 0, their gradient 0), so where both
    are ``-inf`` the value is ``finfo.min + log 2``, not ``-inf`` (callers mask it) and no
    ``-inf - -inf`` reaches a gradient. No selection (``torch.where``): on CPU this is
    about 2x ``torch.logaddexp``'s forward + backward, against 5.7x for the
    ``hi + log1p(exp(lo - hi))`` form picked by ``where`` (17, 8.4 and 48 ms at 2^20
    float32 elements, one thread)."""
    lowest = torch.finfo(a.dtype).min
    a, b = a.clamp_min(lowest), b.clamp_min(lowest)
    m = torch.maximum(a, b).detach()
    return m + torch.log(torch.exp(a - m) + torch.exp(b - m))


def softplus_of_minus_abs(x: torch.Tensor, *, negated: bool = False) -> torch.Tensor:
    """``log1p(exp(-|x|))`` in a fresh buffer (``negated=True``: its negative, one pass
    less): the logistic losses' term that is exact where a logit agrees with its target.

    Computed as ``-log1p(-sigmoid(-|x|))``, in place on ``-|x|``:
    torch's ``sigmoid`` and ``log1p`` are its own vectorised kernels, and together cost
    less than ``softplus`` (one thread, 2^20 float32 elements, AMD EPYC, torch 2.13:
    1.84 against 2.03 ms with the ``-|x|`` pass; a BCE-with-logits step 3.52 against
    3.93 ms). ``s = sigmoid(-|x|)`` is at most 1/2, where ``log1p(-s)`` is well
    conditioned (its relative error at most 1.4 times ``s``'s), so the result is within
    1.74 ulp in float32 (softplus: 1.46) and 2.2 ulp in float64 (1.23), over ``|x| <=
    120``; past ``|x| = 87`` in float32, where the value is below the smallest normal
    number, it is 0 (an absolute error under 3e-39). ``+-inf`` gives 0; NaN stays NaN."""
    buf = torch.abs(x).neg_()  # -|x|: on the CPU 0.19 ms per 2^20, copysign(x, -1) 0.35
    torch.sigmoid(buf, out=buf).neg_().log1p_()  # log(1 - sigmoid(-|x|)) = -log1p(exp(-|x|))
    return buf if negated else buf.neg_()


def exp_of_difference_(z: torch.Tensor) -> torch.Tensor:
    """``exp(z)`` in place, for ``z`` a rounded difference (a logit minus its row's
    largest): on CPU as ``exp2(z log2 e)``, elsewhere ``exp``.

    On CPU ``torch.exp`` of float32 is the math library's vector exponential where torch
    has one (MKL: 1.23 ms per 2^20 elements on this AMD EPYC machine, one thread, torch
    2.13) and ``torch.exp2`` torch's own vectorised one (0.36 ms; the scaling is one
    pass more, 0.05-0.1 ms). The product's rounding moves the result by at most ``|z|
    eps / 2`` relative, the size of the rounding of ``z = x - max`` itself, so the
    softmax built from it keeps the error of ``exp(x - max)`` (float32 against float64
    ``exp(x - max)`` of logits of scale 3 over 19 classes: 1.8e-6 against 1.0e-6 at
    ``|z| <= 21.5``); its absolute error is at most ``max(|z| e^z) eps / 2 = 0.18 eps``,
    a fifth of an ulp of 1. ``-inf`` gives 0 and NaN stays NaN, as ``exp``."""
    if z.device.type != "cpu":
        return z.exp_()
    return z.mul_(_LOG2_E).exp2_()


def exp_of_difference(z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`exp_of_difference_` in a fresh buffer, or in ``out`` (of ``z``'s shape;
    ``z`` unchanged): ``exp`` of log-probabilities, themselves rounded differences."""
    if z.device.type != "cpu":
        return torch.exp(z, out=out)
    return torch.mul(z, _LOG2_E, out=out).exp2_()


#: Elements per block of :func:`sum_of_squares`: float32 lanes stay accurate over 1024.
_BLOCK = 1024


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum(a * b)`` over every element, by torch's cascade sum of the products.

    ``torch.dot``, ``torch.linalg.vecdot`` of long vectors and ``torch.linalg.vector_norm``
    accumulate float32 in float32 lanes on CPU: at 2^20 standard normal products their
    relative error is about 7e-6 (dot) and 2e-5 (norm), against 1e-7 for this sum (torch
    2.13). A loss's sum over many rows or elements takes this one."""
    return torch.mul(a, b).sum()


def sum_of_squares(a: torch.Tensor) -> torch.Tensor:
    """``sum(a^2)`` over every element without a squared copy: the squared norms of
    blocks of :data:`_BLOCK` elements (one pass, float32 lanes accurate over a block),
    summed. At 2^20 float32 elements: relative error 1e-8, 0.20 ms against 0.29 ms for
    ``a.square().sum()`` (cache-cold, one thread) and 2e-5 for ``vector_norm(a)^2``. A
    non-contiguous ``a`` is copied."""
    flat = a.reshape(-1)
    whole = flat.numel() // _BLOCK * _BLOCK
    total = torch.linalg.vector_norm(flat[:whole].view(-1, _BLOCK), dim=1).square_().sum()
    if whole < flat.numel():
        total = total + torch.linalg.vector_norm(flat[whole:]).square_()
    return total
