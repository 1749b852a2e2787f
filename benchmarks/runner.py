"""Benchmark runner: forward+backward time and memory of losskit beside its peers.

``python -m benchmarks [--suite gpu|cpu|linear] [--out DIR] [--quick]``

(``--suite linear`` runs ``python -m benchmarks.linear`` with its defaults for the
device, ``--quick`` passed on; it prints its own table and writes no files.)

* ``gpu`` (the default on CUDA): the workloads of the kernels issue (sigmoid focal,
  LLM-vocabulary and segmentation cross entropy, softmax focal, symmetric CE); providers
  losskit (triton), losskit (torch path), torch eager, ``torch.compile`` and, when
  installed, torchvision (``sigmoid_focal_loss``) and Liger-Kernel
  (``LigerCrossEntropyLoss``). Timing with ``triton.testing.do_bench`` (median and min
  of forward+backward), peak extra memory from ``torch.cuda.max_memory_allocated``, and
  achieved GB/s (logits read + gradient written) against the measured device copy
  bandwidth.
* ``cpu`` (the default without CUDA): every registered loss that torch also has, losskit's
  torch path (value checks on and off) against torch's built-in, with
  ``torch.utils.benchmark``, so the overhead of checks and dispatch is visible
  (``linear_cross_entropy`` has its own time and memory benchmark,
  ``python -m benchmarks.linear``).

Ratios are against peers measured in the same run. Results go to ``results.csv``,
``results.json`` (device, versions, date) and ``results.md`` (a table for the README).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.util
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as TF

import losskit

try:  # a progress display while a sweep runs
    from rich.progress import track
except ImportError:  # pragma: no cover - rich comes with the cli extra

    def track(items, description=""):
        return items


# ----------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    name: str
    loss: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    options: dict = field(default_factory=dict)
    kind: str = "index"  # "index" (class targets) or "binary" (targets of the input's shape)
    ignore_fraction: float = 0.0


def _gpu_workloads(quick: bool) -> list[Workload]:
    s = 16 if quick else 1
    return [
        Workload(
            "sigmoid focal fp32",
            "sigmoid_focal_loss",
            (2_000_000 // s, 80),
            torch.float32,
            kind="binary",
        ),
        Workload(
            "sigmoid focal bf16",
            "sigmoid_focal_loss",
            (2_000_000 // s, 80),
            torch.bfloat16,
            kind="binary",
        ),
        Workload("CE 128k vocab bf16", "cross_entropy", (8192 // s, 128256), torch.bfloat16),
        Workload("CE 32k vocab bf16", "cross_entropy", (8192 // s, 32000), torch.bfloat16),
        Workload(
            "segmentation CE fp32",
            "cross_entropy",
            (8 // min(s, 8), 19, 512, 1024),
            torch.float32,
            {"ignore_index": 255},
            ignore_fraction=0.05,
        ),
        Workload(
            "segmentation softmax focal fp32",
            "softmax_focal_loss",
            (8 // min(s, 8), 19, 512, 1024),
            torch.float32,
            {"ignore_index": 255, "gamma": 2.0},
            ignore_fraction=0.05,
        ),
        Workload("symmetric CE fp32", "symmetric_cross_entropy", (65536 // s, 1000), torch.float32),
    ]


def _inputs(w: Workload, device: str):
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(w.shape, generator=g).to(device, w.dtype)
    if w.kind == "binary":
        y = (torch.rand(w.shape, generator=g) < 0.01).to(device, w.dtype)
        return x, y
    classes = w.shape[1]
    t_shape = (w.shape[0], *w.shape[2:])
    t = torch.randint(0, classes, t_shape, generator=g)
    if w.ignore_fraction:
        t[torch.rand(t_shape, generator=g) < w.ignore_fraction] = w.options["ignore_index"]
    return x, t.to(device)


# ----------------------------------------------------------------------------- providers
def _seed_sce(x, t, alpha=1.0, beta=1.0, **_):
    """A published tutorial's composition: CE + RCE through one-hot and clamp."""
    ce = TF.cross_entropy(x, t)
    pred = torch.clamp(TF.softmax(x, dim=1), min=1e-7, max=1.0)
    one_hot = torch.clamp(TF.one_hot(t, x.shape[1]).float(), min=1e-4, max=1.0)
    rce = -(pred * torch.log(one_hot)).sum(dim=1)
    return alpha * ce + beta * rce.mean()


def _eager_softmax_focal(x, t, gamma=2.0, ignore_index=-100, **_):
    logp = TF.log_softmax(x.float(), dim=1)
    nll = TF.nll_loss(logp, t, ignore_index=ignore_index, reduction="none")
    pt = torch.exp(-nll)
    keep = t != ignore_index
    return (((1 - pt) ** gamma) * nll)[keep].mean()


def _peers(w: Workload, device: str) -> dict[str, Callable]:
    fn = losskit.spec(w.loss).functional
    opts = w.options
    peers: dict[str, Callable] = {}
    if device == "cuda" and losskit.kernels.triton_importable():
        peers["losskit (triton)"] = lambda x, y: fn(x, y, backend="triton", **opts)
    peers["losskit (torch path)"] = lambda x, y: fn(x, y, backend="torch", **opts)
    torch_path = peers["losskit (torch path)"]
    peers["torch.compile (losskit torch path)"] = torch.compile(torch_path)
    if w.loss == "cross_entropy":
        peers["torch eager"] = lambda x, y: TF.cross_entropy(x.float(), y, **opts)
        if importlib.util.find_spec("liger_kernel") and device == "cuda" and not w.shape[2:]:
            from liger_kernel.transformers import LigerCrossEntropyLoss

            liger = LigerCrossEntropyLoss(**opts)
            peers["liger-kernel"] = lambda x, y: liger(x, y)
    elif w.loss == "sigmoid_focal_loss":
        if importlib.util.find_spec("torchvision"):
            from torchvision.ops import sigmoid_focal_loss as tv_focal

            peers["torchvision eager"] = lambda x, y: tv_focal(x, y, reduction="mean")
    elif w.loss == "softmax_focal_loss":
        peers["torch eager composition"] = lambda x, y: _eager_softmax_focal(x, y, **opts)
    elif w.loss == "symmetric_cross_entropy":
        peers["tutorial composition"] = lambda x, y: _seed_sce(x, y, **opts)
        peers["plain CE eager"] = lambda x, y: TF.cross_entropy(x, y)
    return peers


# ----------------------------------------------------------------------------- measurement
def copy_bandwidth_gbs(device: str) -> float:
    """Measured device copy bandwidth (read + write), GB/s."""
    import triton.testing

    n = 1 << 28
    a = torch.empty(n, dtype=torch.float32, device=device)
    b = torch.empty_like(a)
    ms = triton.testing.do_bench(lambda: b.copy_(a), return_mode="median")
    return 2 * a.numel() * a.element_size() / ms / 1e6


def _gpu_time(fn: Callable, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    import triton.testing

    x = x.detach().requires_grad_(True)

    def step():
        x.grad = None
        fn(x, y).backward()

    step()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    median, best = triton.testing.do_bench(step, quantiles=[0.5, 0.0])
    return {"median_ms": median, "min_ms": best, "extra_mb": extra / 2**20}


def run_gpu(quick: bool = False) -> list[dict[str, object]]:
    device = "cuda"
    bandwidth = copy_bandwidth_gbs(device)
    rows = []
    for w in track(_gpu_workloads(quick), description="benchmarking"):
        x, y = _inputs(w, device)
        moved = x.numel() * x.element_size() * 2 + y.numel() * y.element_size()
        results = {}
        for name, fn in _peers(w, device).items():
            try:
                results[name] = _gpu_time(fn, x, y)
            except Exception as err:  # a peer that cannot run this workload
                print(f"  {w.name}: {name} failed: {type(err).__name__}: {err}")
        first = next(iter(results))
        for name, r in results.items():
            rows.append(
                {
                    "workload": w.name,
                    "shape": "x".join(map(str, w.shape)),
                    "dtype": str(w.dtype).removeprefix("torch."),
                    "provider": name,
                    "median_ms": round(r["median_ms"], 4),
                    "min_ms": round(r["min_ms"], 4),
                    "extra_mb": round(r["extra_mb"], 1),
                    "gb_per_s": round(moved / r["median_ms"] / 1e6, 1),
                    "of_copy_bandwidth": round(moved / r["median_ms"] / 1e6 / bandwidth, 3),
                    f"time_vs_{first}": round(r["median_ms"] / results[first]["median_ms"], 3),
                }
            )
        del x, y
        torch.cuda.empty_cache()
    return rows


def run_cpu(size: int = 1 << 20, min_run_time: float = 0.5) -> list[dict[str, object]]:
    import torch.utils.benchmark as tb

    rows = []
    specs = [s for s in losskit.REGISTRY.values() if s.torch_builtin is not None]
    for spec in [s for s in specs if s.target_kind.typical_shape(size) is None]:
        # linear cross entropy: its cost is the (N, D) x (D, V) products and the memory
        # of the logits, not the checks and dispatch this suite times on (N, C) inputs
        print(f"  {spec.name}: skipped here; python -m benchmarks.linear measures it")
    specs = [s for s in specs if s.target_kind.typical_shape(size) is not None]
    for spec in track(specs, description="benchmarking"):
        shape = spec.target_kind.typical_shape(size)
        x, y = spec.sample(shape, torch.float32)[:2]
        providers = {
            "losskit (torch path)": lambda a, b, s=spec: s.functional(a, b),
            "losskit (torch path, checks off)": None,
            "torch built-in": lambda a, b, s=spec: s.torch_builtin(a, b),
        }
        times = {}
        for name, fn in providers.items():
            checks = name != "losskit (torch path, checks off)"
            fn = fn or (lambda a, b, s=spec: s.functional(a, b))
            xg = x.detach().requires_grad_(True)

            def step(fn=fn, xg=xg, y=y):
                xg.grad = None
                fn(xg, y).backward()

            with losskit.set_checks(checks):
                step()
                m = tb.Timer(stmt="step()", globals={"step": step}).blocked_autorange(
                    min_run_time=min_run_time
                )
            times[name] = (m.median * 1e3, min(m.raw_times) / m.number_per_run * 1e3)
        base = times["torch built-in"][0]
        for name, (median, best) in times.items():
            rows.append(
                {
                    "workload": spec.name,
                    "shape": "x".join(map(str, shape)),
                    "dtype": "float32",
                    "provider": name,
                    "median_ms": round(median, 4),
                    "min_ms": round(best, 4),
                    "time_vs_torch built-in": round(median / base, 3),
                }
            )
    return rows


# ----------------------------------------------------------------------------- output
def markdown(rows: list[dict[str, object]]) -> str:
    ratio_key = next(k for k in rows[0] if k.startswith("time_vs_"))
    keys = ["workload", "shape", "dtype", "provider", "median_ms", "min_ms"]
    keys += [k for k in ("extra_mb", "gb_per_s", "of_copy_bandwidth") if k in rows[0]]
    keys.append(ratio_key)
    lines = ["| " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def environment(device: str) -> dict[str, object]:
    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
    versions = {
        "torch": torch.__version__,
        "losskit": losskit.__version__,
        "python": platform.python_version(),
    }
    for lib in ("triton", "torchvision", "liger_kernel"):
        if importlib.util.find_spec(lib):
            module = __import__(lib)
            versions[lib] = getattr(module, "__version__", "?")
    return {
        "device": device,
        "device_name": name,
        "threads": torch.get_num_threads(),
        "versions": versions,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--suite",
        choices=("gpu", "cpu", "linear"),
        default="gpu" if torch.cuda.is_available() else "cpu",
    )
    parser.add_argument("--quick", action="store_true", help="smaller shapes (a smoke run)")
    parser.add_argument("--size", type=int, default=1 << 20, help="cpu: elements per input")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="cpu: seconds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    if args.suite == "linear":
        from .linear import main as linear_main

        status = linear_main(["--quick"] if args.quick else [])
        if status:
            raise SystemExit(status)
        return
    if args.suite == "gpu":
        rows = run_gpu(args.quick)
        env = environment("cuda")
    else:
        rows = run_cpu(args.size, args.min_run_time)
        env = environment("cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "results.csv", "w", newline="") as f:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "results.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    table = markdown(rows)
    (args.out / "results.md").write_text(table + "\n")
    print(
        f"{env['device_name']} ({env['device']}), torch {env['versions']['torch']}, "
        f"{env['threads']} threads, {env['date']}"
    )
    print(table)
