"""The module of linear cross entropy: it owns its linear layer, so it is written by hand."""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import functional as F
from .._checks import (
    check_class_weight,
    check_ignore_index,
    check_number,
    check_reduction,
    check_weight_tensor,
    fail,
)
from .._errors import LossTypeError

__all__ = ["LinearCrossEntropyLoss"]

NAME = "LinearCrossEntropyLoss"


class LinearCrossEntropyLoss(nn.Module):
    """A linear layer and the cross entropy of its output, without the logits in memory:
    module form of :func:`losskit.functional.linear_cross_entropy`.

    torch 2.13's constructor, ``LinearCrossEntropyLoss(in_features, num_classes, *,
    out_features=(), bias=False, device=None, dtype=None, reduction="mean", weight=None,
    ignore_index=None, label_smoothing=0.0, options=None)``, and its forward, plus
    losskit's ``z_loss``, ``softcap``, ``chunk_size`` and ``backend`` and a per-call
    ``normalizer``. It holds ``self.linear = nn.Linear(in_features, num_classes *
    prod(out_features), bias=bias)`` (the language model head, stored flat as torch's is)
    and calls the functional with ``linear.weight`` viewed as ``(num_classes,
    *out_features, in_features)``. ``forward(input, target, normalizer=None)`` takes hidden
    states ``(*, in_features)`` and class indices ``(*)``, or probabilities ``(*,
    num_classes)``; with ``out_features`` (a K-dimensional loss) hidden states ``(N,
    in_features)`` and targets ``(N, *out_features)`` or ``(N, num_classes,
    *out_features)``. ``ignore_index=None`` counts every class index except -100, as in
    torch. ``options`` (a ``torch.nn.LinearCrossEntropyOptions``) gives the rows of a chunk
    through its ``batch_chunk_size``; its other fields tune torch's own chunking and change
    nothing here.

    Example:
        >>> import torch, losskit
        >>> head = losskit.nn.LinearCrossEntropyLoss(8, 100)
        >>> h = torch.randn(4, 6, 8, requires_grad=True)
        >>> y = torch.randint(0, 100, (4, 6))
        >>> loss = head(h, y)
        >>> loss.backward()
        >>> head.linear.weight.grad.shape
        torch.Size([100, 8])
        >>> grid = losskit.nn.LinearCrossEntropyLoss(8, 10, out_features=(3, 2))  # K-dim
        >>> grid(torch.randn(4, 8), torch.randint(0, 10, (4, 3, 2)), reduction="none")
        Traceback (most recent call last):
        ...
        TypeError: LinearCrossEntropyLoss.forward() got an unexpected keyword argument 'reduction'
        >>> grid.linear.weight.shape, grid(torch.randn(4, 8), torch.randint(0, 10, (4, 3, 2))).shape
        (torch.Size([60, 8]), torch.Size([]))
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        reduction: str = "mean",
        weight: torch.Tensor | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: object = None,
        z_loss: float = 0.0,
        softcap: float | None = None,
        chunk_size: int | tuple[int, int] | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        for what, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                fail(NAME, f"{what} must be a positive int, got {value!r}.", cls=LossTypeError)
        if isinstance(out_features, int) and not isinstance(out_features, bool):
            out_features = (out_features,)
        if not isinstance(out_features, (tuple, list)) or not all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in out_features
        ):
            fail(
                NAME,
                f"out_features must be a tuple of positive ints (d1, ..., dK), got "
                f"{out_features!r}.",
                "() (the default) is one loss per input row.",
                cls=LossTypeError,
            )
        check_reduction(NAME, reduction)
        if weight is not None:
            check_weight_tensor(NAME, weight)
            check_class_weight(NAME, weight, num_classes)
        check_number(NAME, "label_smoothing", label_smoothing, low=0.0, high=1.0)
        if ignore_index is not None:
            check_ignore_index(NAME, ignore_index)
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.linear = nn.Linear(
            in_features,
            math.prod(self.out_features, start=num_classes),
            bias=bias,
            device=device,
            dtype=dtype,
        )
        self.register_buffer("weight", weight)
        self.reduction = reduction
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.options = options
        self.z_loss = z_loss
        self.softcap = softcap
        self.chunk_size = chunk_size
        self.backend = backend

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        normalizer: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        shape = (self.num_classes, *self.out_features)
        linear_bias = self.linear.bias
        return F.linear_cross_entropy(
            input,
            self.linear.weight.reshape(*shape, self.linear.in_features),
            target,
            linear_bias=linear_bias.reshape(shape) if linear_bias is not None else None,
            weight=self.weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            z_loss=self.z_loss,
            softcap=self.softcap,
            reduction=self.reduction,
            normalizer=normalizer,
            chunk_size=self.chunk_size,
            options=self.options,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        options = [
            f"in_features={self.linear.in_features}",
            f"num_classes={self.num_classes}",
        ]
        if self.out_features:
            options.append(f"out_features={self.out_features}")
        options.append(f"bias={self.linear.bias is not None}")
        options.append(f"reduction={self.reduction!r}")
        if self.ignore_index is not None:
            options.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            options.append(f"label_smoothing={self.label_smoothing}")
        if self.z_loss:
            options.append(f"z_loss={self.z_loss}")
        if self.softcap is not None:
            options.append(f"softcap={self.softcap}")
        if self.options is not None:
            options.append(f"options={self.options}")
        return ", ".join(options)
