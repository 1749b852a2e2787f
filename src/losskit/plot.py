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
    options = {**row.target_kind.plot_options(), **options, "reduction": "none"}
    axis, _ = row.target_kind.plot_grid()
    x, y, extra, leaf, entry = row.target_kind.plot_inputs(row.input_kind, axis)
    loss = row.functional(x, y, *extra, **options).reshape(axis.shape[0], -1)[:, 0]
    (grad,) = torch.autograd.grad(loss.sum(), leaf)
    return axis, loss.detach(), grad, f"d loss / d {entry}"


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
    paper. An option a loss does not take is left out of that loss's curves; an option of
    one value taken by every loss is shown once, in the title. The figure is 640 x 480
    pixels at ``dpi=100``, twice as wide with ``grad``. ``out`` without a suffix gets
    ``.png``; the path written is returned.
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
    if len({r.target_kind.plot_grid()[1] for r in rows}) > 1:
        C.fail(
            "plot",
            "cannot overlay regression losses (against the residual) and classification "
            "losses (against p_t) in one figure.",
        )
    options = dict(options or {})
    taken_by = {r.name: _option_names(r) for r in rows}
    unknown = sorted(k for k in options if not any(k in taken_by[r.name] for r in rows))
    if unknown:
        import difflib

        known = sorted(set().union(*taken_by.values()) - {"reduction"})
        close = difflib.get_close_matches(unknown[0], known, n=1)
        C.fail(
            "plot",
            f"no loss named here takes {', '.join(unknown)}; they take {', '.join(known)}.",
            f"did you mean {close[0]}?" if close else None,
            cls=C.LossTypeError,
        )
    fig, axes = plt.subplots(
        1, 2 if grad else 1, figsize=(12.8 if grad else 6.4, 4.8), dpi=dpi, squeeze=False
    )
    grad_labels = set()
    # an option of one value, taken by every loss drawn, is the same on every curve: it goes
    # in the title once, not in every label
    shared = {
        k: v[0]
        for k, v in options.items()
        if len(v) == 1 and all(k in taken_by[r.name] for r in rows)
    }
    for row in rows:
        taken = {k: v for k, v in options.items() if k in taken_by[row.name]}
        for variant in _combinations(taken):
            x, loss, g, grad_label = curve(row.name, **variant)
            grad_labels.add(grad_label)
            varying = [f"{k}={v}" for k, v in variant.items() if k not in shared]
            label = ", ".join(([row.name] if len(rows) > 1 or not varying else []) + varying)
            axes[0, 0].plot(x.numpy(), loss.numpy(), label=label)
            if grad:
                axes[0, 1].plot(x.numpy(), g.numpy(), label=label)
    xlabel = rows[0].target_kind.plot_grid()[1]
    axes[0, 0].set(xlabel=xlabel, ylabel="loss", title="loss")
    if grad:
        grad_label = grad_labels.pop() if len(grad_labels) == 1 else "d loss / d input"
        axes[0, 1].set(xlabel=xlabel, ylabel=grad_label, title="gradient")
        axes[0, 1].axhline(0.0, color="0.7", linewidth=0.8)
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    title = "losskit: " + ", ".join(r.name for r in rows)
    if shared:
        title += " (" + ", ".join(f"{k}={v}" for k, v in shared.items()) + ")"
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    if not out.suffix:  # matplotlib writes PNG and adds the suffix; say the file it wrote
        out = out.with_name(out.name + ".png")
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
