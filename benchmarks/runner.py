"""Benchmark runner over the registry: forward+backward time of losskit beside its peers.

``python -m benchmarks [--size N] [--out DIR]`` times, for every registered loss that
torch also has, losskit's torch path (value checks on and off) against torch's built-in,
on the current device, and writes ``results.csv``, ``results.json`` (with device, versions
and date) and a markdown table. On CPU it uses ``torch.utils.benchmark``; ratios are
against peers measured in the same run. Providers for Triton kernels, ``torch.compile``
and third-party libraries plug into ``PROVIDERS``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
from collections.abc import Callable
from pathlib import Path

import torch
import torch.utils.benchmark as tb

import losskit
from losskit._registry import LossSpec
from losskit._samples import sample_inputs


def _losskit(checks: bool) -> Callable:
    def run(spec, x, y):
        with losskit.set_checks(checks):
            return spec.functional(x, y)

    return run


def _torch_builtin(spec, x, y):
    return spec.torch_builtin(x, y)


PROVIDERS: dict[str, Callable] = {
    "losskit (torch path)": _losskit(True),
    "losskit (torch path, checks off)": _losskit(False),
    "torch built-in": _torch_builtin,
}


def _time(
    fn: Callable, spec: LossSpec, x: torch.Tensor, y: torch.Tensor, min_run_time: float
) -> tuple[float, float]:
    x = x.detach().requires_grad_(True)

    def step():
        x.grad = None
        fn(spec, x, y).backward()

    step()  # warm-up
    m = tb.Timer(stmt="step()", globals={"step": step}).blocked_autorange(min_run_time=min_run_time)
    return m.median * 1e3, min(m.raw_times) / m.number_per_run * 1e3


def run(
    size: int = 1 << 20,
    min_run_time: float = 0.5,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[dict[str, object]]:
    torch.manual_seed(0)
    rows = []
    for spec in losskit.REGISTRY.values():
        if spec.torch_builtin is None:
            continue
        # multi-class rows: N x 1000 classes; elementwise rows: N x 256
        width = 1000 if spec.target_kind == "index" else 256
        shape = (size // width, width)
        x, y = sample_inputs(spec, shape, dtype, device=device)[:2]
        times = {name: _time(fn, spec, x, y, min_run_time) for name, fn in PROVIDERS.items()}
        base = times["torch built-in"][0]
        for name, (median, best) in times.items():
            rows.append(
                {
                    "loss": spec.name,
                    "shape": "x".join(map(str, shape)),
                    "dtype": str(dtype).replace("torch.", ""),
                    "provider": name,
                    "median_ms": round(median, 4),
                    "min_ms": round(best, 4),
                    "vs_torch": round(median / base, 3),
                }
            )
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    providers = list(dict.fromkeys(r["provider"] for r in rows))
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    head = "| loss | " + " | ".join(f"{p} ms" for p in providers) + " | losskit / torch |"
    lines = [head, "|" + "---|" * (len(providers) + 2)]
    for loss in losses:
        cells = {r["provider"]: r for r in rows if r["loss"] == loss}
        ms = " | ".join(f"{cells[p]['median_ms']:.3f}" for p in providers)
        lines.append(f"| `{loss}` | {ms} | {cells['losskit (torch path)']['vs_torch']:.2f}x |")
    return "\n".join(lines)


def environment(device: str) -> dict[str, object]:
    name = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else platform.processor() or platform.machine()
    )
    return {
        "device": device,
        "device_name": name,
        "torch": torch.__version__,
        "losskit": losskit.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--size", type=int, default=1 << 20, help="elements per input")
    parser.add_argument("--min-run-time", type=float, default=0.5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    rows = run(args.size, args.min_run_time, args.device)
    env = environment(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "results.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    table = markdown(rows)
    (args.out / "results.md").write_text(table + "\n")
    print(
        f"{env['device_name']} ({env['device']}), torch {env['torch']}, "
        f"{env['threads']} threads, {env['date']}"
    )
    print(table)
