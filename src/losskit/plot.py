"""Loss and gradient curves for ``losskit plot``: regression losses against the residual,
classification losses against the probability of the true class ``p_t``."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from . import _checks as C
from ._registry import LossSpec, spec

__all__ = ["curve", "plot"]

_GRID = 801


def _true_class_inputs(row: LossSpec, p: torch.Tensor):
    """Inputs whose true class has probability ``p``.

    Returns ``(input, target, extra, the input entry of the true class, its name)``.
    """
    logit = torch.log(p) - torch.log1p(-p)
    if row.target_kind == "linear":
        # hidden states through an identity layer: the hidden state of the true class's
        # row is its logit, the other one is 0, as for the two-class logits below
        first = logit.clone().requires_grad_(True)
        x = torch.stack([first, torch.zeros_like(p)], dim=1)
        y = torch.zeros(p.shape[0], dtype=torch.long)
        return x, y, (torch.eye(2, dtype=p.dtype),), first, "logit"
    if row.target_kind in ("unit", "anchors"):
        x = (p if row.input_kind == "probs" else logit).clone().requires_grad_(True)
        y = torch.ones_like(p)
        if row.target_kind == "anchors":
            n = p.shape[0]
            state = torch.ones(1, n, dtype=torch.long)
            return x.view(1, n, 1), y.view(1, n, 1), (state,), x, "logit"
        return x, y, (), x, "probability" if row.input_kind == "probs" else "logit"
    # two classes, the true one first: p_t = softmax([x_t, x_other])[0]
    if row.input_kind == "logits":
        first, name = logit.clone().requires_grad_(True), "logit"
        x = torch.stack([first, torch.zeros_like(p)], dim=1)
    elif row.input_kind == "logprobs":
        first, name = torch.log(p).requires_grad_(True), "log-probability"
        x = torch.stack([first, torch.log1p(-p)], dim=1)
    else:
        first, name = p.clone().requires_grad_(True), "probability"
        x = torch.stack([first, 1 - p], dim=1)
    if row.target_kind == "rows":
        y = torch.tensor([1.0, 0.0], dtype=p.dtype).expand(p.shape[0], 2)
    else:
        y = torch.zeros(p.shape[0], dtype=torch.long)
    return x, y, (), first, name


def _option_names(row: LossSpec) -> set[str]:
    """The options a loss takes: its functional's keyword-only arguments."""
    params = inspect.signature(row.functional).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY}


def curve(name: str, **options: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """``(axis values, loss, gradient, gradient label)`` of a loss along its plot axis.

    The axis is the residual ``prediction - target`` in [-3, 3] for regression losses and
    ``p_t`` in (0, 1) for classification losses; the gradient is taken with respect to
    the prediction (regression) or to the input entry of the true class.

    Example:
        >>> from losskit.plot import curve
        >>> r, loss, grad, _ = curve("huber_loss", delta=1.0)
        >>> float(loss[-1]), float(grad[-1])  # at r = 3
        (2.5, 1.0)
    """
    row = spec(name)
    options = {**options, "reduction": "none"}
    if row.plot_axis == "residual":
        r = torch.linspace(-3.0, 3.0, _GRID, dtype=torch.float64)
        x = r.clone().requires_grad_(True)
        loss = row.functional(x, torch.zeros_like(r), **options)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        return r, loss.detach(), grad, "d loss / d prediction"
    p = torch.linspace(0.0, 1.0, _GRID + 2, dtype=torch.float64)[1:-1]
    x, y, extra, first, entry = _true_class_inputs(row, p)
    loss = row.functional(x, y, *extra, **options).reshape(p.shape[0], -1)[:, 0]
    (grad,) = torch.autograd.grad(loss.sum(), first)
    return p, loss.detach(), grad, f"d loss / d {entry} of the true class"


def _combinations(options: Mapping[str, Sequence[object]]) -> Iterable[dict[str, object]]:
    keys = list(options)
    for values in itertools.product(*(options[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def plot(
    names: Sequence[str],
    options: Mapping[str, Sequence[object]] | None = None,
    *,
    grad: bool = False,
    out: str | Path = "losskit.png",
    dpi: int = 100,
) -> Path:
    """Draw the loss (and, with ``grad``, its gradient) of one or more losses to ``out``.

    ``options`` maps an option to the values to draw, one curve per combination, e.g.
    ``{"gamma": [0, 0.5, 1, 2, 5], "alpha": [None]}`` redraws Figure 1 of the focal loss
    paper. An option a loss does not take is left out of that loss's curves. The figure
    is 640 x 480 pixels at ``dpi=100``, twice as wide with ``grad``.
    """
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - the cli extra installs it
        raise ImportError("losskit plot needs matplotlib: pip install 'losskit[cli]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = [spec(n) for n in names]
    if not rows:
        C.fail("plot", "name at least one loss.")
    if len({r.plot_axis for r in rows}) > 1:
        C.fail(
            "plot",
            "cannot overlay regression losses (against the residual) and classification "
            "losses (against p_t) in one figure.",
        )
    options = dict(options or {})
    taken_by = {r.name: _option_names(r) for r in rows}
    unknown = sorted(k for k in options if not any(k in taken_by[r.name] for r in rows))
    if unknown:
        C.fail("plot", f"no loss named here takes {', '.join(unknown)}.")
    fig, axes = plt.subplots(
        1, 2 if grad else 1, figsize=(12.8 if grad else 6.4, 4.8), dpi=dpi, squeeze=False
    )
    grad_labels = set()
    for row in rows:
        taken = {k: v for k, v in options.items() if k in taken_by[row.name]}
        for variant in _combinations(taken):
            x, loss, g, grad_label = curve(row.name, **variant)
            grad_labels.add(grad_label)
            label = row.name + "".join(f", {k}={v}" for k, v in variant.items())
            axes[0, 0].plot(x.numpy(), loss.numpy(), label=label)
            if grad:
                axes[0, 1].plot(x.numpy(), g.numpy(), label=label)
    if rows[0].plot_axis == "residual":
        xlabel = "residual r = prediction - target"
    else:
        xlabel = "p_t, probability of the true class"
    axes[0, 0].set(xlabel=xlabel, ylabel="loss", title="loss")
    if grad:
        grad_label = grad_labels.pop() if len(grad_labels) == 1 else "d loss / d input"
        axes[0, 1].set(xlabel=xlabel, ylabel=grad_label, title="gradient")
        axes[0, 1].axhline(0.0, color="0.7", linewidth=0.8)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("losskit: " + ", ".join(r.name for r in rows))
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
