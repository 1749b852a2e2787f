"""The module of linear cross entropy: it owns its linear layer, so it is written by hand."""

from __future__ import annotations

import torch
from torch import nn

from .. import functional as F
from .._checks import check_reduction, fail
from .._errors import LossTypeError

__all__ = ["LinearCrossEntropyLoss"]


class LinearCrossEntropyLoss(nn.Module):
    """A linear layer and the cross entropy of its output, without the logits in memory:
    module form of :func:`losskit.functional.linear_cross_entropy`.

    Holds ``self.linear = nn.Linear(in_features, num_classes, bias=bias)`` (the language
    model head, as in ``torch.nn.LinearCrossEntropyLoss``) and the loss options;
    ``forward(input, target, normalizer=None)`` takes hidden states ``(*, in_features)``
    and class indices ``(*)``. Unlike torch's module, there is no ``out_features``
    (K-dimensional) form: flatten the positions into ``*`` instead. ``chunk_size`` and
    ``backend`` are those of the functional.

    Example:
        >>> import torch, losskit
        >>> head = losskit.nn.LinearCrossEntropyLoss(8, 100, ignore_index=-100)
        >>> h = torch.randn(4, 6, 8, requires_grad=True)
        >>> y = torch.randint(0, 100, (4, 6))
        >>> loss = head(h, y)
        >>> loss.backward()
        >>> head.linear.weight.grad.shape
        torch.Size([100, 8])
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        weight: torch.Tensor | None = None,
        ignore_index: int | None = -100,
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        softcap: float | None = None,
        reduction: str = "mean",
        chunk_size: int | tuple[int, int] | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for what, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(
                    "LinearCrossEntropyLoss",
                    f"{what} must be a positive int, got {value!r}.",
                    cls=LossTypeError,
                )
        check_reduction("LinearCrossEntropyLoss", reduction)
        self.linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.softcap = softcap
        self.reduction = reduction
        self.chunk_size = chunk_size
        self.backend = backend

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        normalizer: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        return F.linear_cross_entropy(
            input,
            self.linear.weight,
            target,
            linear_bias=self.linear.bias,
            weight=self.weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            z_loss=self.z_loss,
            softcap=self.softcap,
            reduction=self.reduction,
            normalizer=normalizer,
            chunk_size=self.chunk_size,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        options = [f"reduction={self.reduction!r}"]
        if self.label_smoothing:
            options.append(f"label_smoothing={self.label_smoothing}")
        if self.z_loss:
            options.append(f"z_loss={self.z_loss}")
        if self.softcap is not None:
            options.append(f"softcap={self.softcap}")
        return ", ".join(options)
