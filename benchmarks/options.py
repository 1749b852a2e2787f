"""Options against the compositions that take them: ``python -m benchmarks.options``.

The CPU suite measures each loss at its defaults; an option can switch a loss onto
another path (ignored targets, ``log_target``, a focal ``gamma`` below 1, ``pos_weight``),
and a path can be slower than the few lines a user writes with that option. This runs
the cases below, each a registry row with options that its composition in
:mod:`benchmarks.compositions` takes too, through the CPU suite's measurement (same
inputs, interleaved rounds; ``ignore_index`` marks a third of the targets). A row
whose composition's value or gradient differs from losskit's (``value diff``, ``grad
diff``: relative, the gradient's in norm, above ``runner.SAME_LOSS`` = 1e-4) is not the
same loss: its ratio is shown, but not compared.

``python -m benchmarks.options [--size N] [--budget S] [--clock wall|thread]``
"""

from __future__ import annotations

import argparse
import time

import torch

from .runner import CpuWorkload, cpu_row, cpu_workloads, measure_cpu

#: (row, options): the options whose own paths the defaults do not run.
CASES: list[tuple[str, dict]] = [
    ("cross_entropy", {"ignore_index": 1}),
    ("cross_entropy", {"label_smoothing": 0.2}),
    ("cross_entropy", {"ignore_index": 0, "label_smoothing": 0.1}),
    ("nll_loss", {"ignore_index": 1}),
    ("softmax_focal_loss", {"ignore_index": 1}),
    ("softmax_focal_loss", {"gamma": 0.5}),
    ("softmax_focal_loss", {"label_smoothing": 0.1}),
    ("softmax_focal_loss", {"label_smoothing": 0.1, "ignore_index": 1}),
    ("generalized_cross_entropy", {"q": 0.3, "ignore_index": 1}),
    ("reverse_cross_entropy", {"ignore_index": 1}),
    ("sigmoid_focal_loss", {"gamma": 0.5, "alpha": 0.75}),
    ("sigmoid_focal_loss", {"gamma": 1.0}),
    ("poly1_focal_loss", {"gamma": 0.5, "epsilon": 2.0}),
    ("kl_div", {"log_target": True}),
    ("poisson_nll_loss", {"full": True}),
    ("huber_loss", {"delta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.5}),
    ("quantile_loss", {"quantile": 0.9}),
]


def run(size: int = 1 << 20, budget: float = 2.0, clock=None) -> list[dict]:
    shapes = {w.loss: w.shape for w in cpu_workloads(size)[0] if not w.layout}
    rows = []
    for name, options in CASES:
        label = ", ".join(f"{k}={v}" for k, v in options.items())
        w = CpuWorkload(name, shapes[name], layout=label, options=options)
        rows.append(cpu_row(w, measure_cpu(w, budget, clock=clock)))
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| loss (options) | shape | losskit median / min ms | composition | "
        "composition median / min ms | time ratio | memory ratio | value diff | grad diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['loss']}` | {r['shape']} | {r['error']} | | | | | | |")
            continue
        same = r["same_loss"]
        ratio = f"{r['time_ratio']:.2f}x"
        if not same:
            ratio = f"({ratio}: not the same loss)"
        lines.append(
            f"| `{r['loss']}` | {r['shape']} | {r['losskit_median_ms']:.3f} / "
            f"{r['losskit_min_ms']:.3f} | {r['composition']} | {r['composition_median_ms']:.3f} / "
            f"{r['composition_min_ms']:.3f} | {ratio} | {r['memory_ratio']:.2f}x | "
            f"{r['value_rel_diff']:.2g} | {r['grad_rel_diff']:.2g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.options", description=__doc__)
    parser.add_argument("--size", type=int, default=1 << 20, help="elements per input")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of rounds per case")
    parser.add_argument("--clock", choices=("wall", "thread"), default="thread")
    args = parser.parse_args(argv)
    if args.clock == "thread":
        torch.set_num_threads(1)  # this thread's CPU time is then all of the work
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    print(markdown(run(args.size, args.budget, clock)))


if __name__ == "__main__":
    main()
