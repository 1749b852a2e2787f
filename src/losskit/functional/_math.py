"""Numerical identities shared by the loss families."""

from __future__ import annotations

import torch


def q_log_p(q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """``q * log p`` with ``0 log 0 = 0``: a class of target probability 0 contributes
    nothing, even where ``log p = -inf`` (a masked logit), to the value and the gradient."""
    return torch.where(q == 0, torch.zeros((), dtype=log_p.dtype, device=log_p.device), q * log_p)
