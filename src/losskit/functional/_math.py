"""Numerical identities shared by the loss families."""

from __future__ import annotations

import torch


def q_log_p(q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``q * log p`` with ``0 log 0 = 0``: a class of target probability 0 contributes
    nothing, even where ``log p = -inf`` (a masked logit), to the value and the gradient."""
    return torch.where(q == 0, torch.zeros((), dtype=log_p.dtype, device=log_p.device), q * log_p)


def log_add_exp(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(exp(a) + exp(b))`` as ``hi + log1p(exp(lo - hi))``, the larger one chosen by
    a comparison (no gradient): exact first and second derivatives everywhere, ties
    included. ``torch.logaddexp``'s double backward is NaN once the gap passes the
    dtype's ``exp`` range (about 88 in float32, 709 in float64: its ``1 / (1 + exp(gap))``
    is differentiated as ``inf / inf``), and max/min's is wrong at a tie. Where both are
    ``-inf`` the inputs become 0: that value is not ``-inf`` (callers mask it), and no
    ``-inf - -inf`` reaches a gradient."""
    both = torch.isneginf(a) & torch.isneginf(b)
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    a, b = torch.where(both, zero, a), torch.where(both, zero, b)
    first = a >= b
    hi, lo = torch.where(first, a, b), torch.where(first, b, a)
    return hi + torch.log1p(torch.exp(lo - hi))
