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
import math
import platform
import statistics
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


# ----------------------------------------------------------------------------- CPU suite
@dataclass
class CpuWorkload:
    """One CPU measurement: a registry row at a shape (``layout`` names a second layout
    of the same row, e.g. a segmentation map)."""

    loss: str
    shape: tuple[int, ...]
    layout: str = ""
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.loss} ({self.layout})" if self.layout else self.loss


def cpu_workloads(size: int = 1 << 20, names=None) -> tuple[list[CpuWorkload], list[str]]:
    """A workload per registry row at about ``size`` elements, plus the segmentation-map
    layout of the softmax losses; and the rows skipped, with the reason."""
    from .compositions import COMPOSITIONS, NO_COMPOSITION

    work, skipped = [], []
    for spec in losskit.REGISTRY.values():
        if names and spec.name not in names:
            continue
        shape = spec.target_kind.typical_shape(size)
        if shape is None and spec.name in COMPOSITIONS:  # a kind without one: rows of 256
            shape = (size // 256, 256)
        if spec.name not in COMPOSITIONS or shape is None:
            reason = NO_COMPOSITION.get(spec.name, "no composition yet")
            skipped.append(f"{spec.name}: {reason}")
            continue
        work.append(CpuWorkload(spec.name, shape))
        if spec.name in ("cross_entropy", "softmax_focal_loss"):
            # (N, C, H, W) of about ``size`` elements: 19 classes (Cityscapes)
            hw = max(size // (2 * 19 * 2), 1)
            w = max(int(math.sqrt(hw)), 1)
            work.append(CpuWorkload(spec.name, (2, 19, hw // w, w), "segmentation map"))
        if spec.name == "ctc_loss":
            # a subword vocabulary of 1024 classes (T = 100 frames), about ``size``
            # elements: the targets name few of them
            work.append(CpuWorkload(spec.name, (100, max(size // 102400, 1), 1024), "vocabulary"))
    return work, skipped


def _cpu_inputs(spec, shape):
    from .compositions import PREPARE

    args = list(spec.sample(shape, torch.float32, seed=0))
    return PREPARE[spec.name](args) if spec.name in PREPARE else args


def peak_step_bytes(
    step: Callable[[], None], reset: Callable[[], None] | None = None, repeats: int = 3
) -> int:
    """Peak bytes the CPU allocator holds during ``step()`` beyond what it held before:
    the running sum of torch's allocation and free events (``torch.profiler`` with
    ``profile_memory=True``), in their order. Counts every tensor torch allocates (the
    autograd tape's saved tensors, temporaries, gradients), nothing Python allocates.
    The median over ``repeats`` profiled steps, each after ``reset()`` (what frees the last
    step's results, such as the input's gradient, outside the profile): the profiler now
    and then drops a step's events (a row once read 0.0 MB), which one step would report."""
    from torch.profiler import ProfilerActivity, profile

    peaks = []
    for _ in range(repeats):
        if reset is not None:
            reset()
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            step()
        events = sorted(
            (e.start_ns(), e.nbytes())
            for e in prof.profiler.kineto_results.events()
            if e.name() == "[memory]"
        )
        held = peak = 0
        for _, nbytes in events:
            held += nbytes
            peak = max(peak, held)
        peaks.append(peak)
    return sorted(peaks)[len(peaks) // 2]


def _stepper(fn, args):
    x = args[0].detach().clone().requires_grad_(True)
    rest = args[1:]

    def step():
        x.grad = None
        fn(x, *rest).backward()

    def value():
        with torch.no_grad():
            return float(fn(x, *rest))

    return step, value, x


def measure_cpu(
    w: CpuWorkload,
    budget: float = 3.0,
    min_repeats: int = 5,
    max_repeats: int | None = None,
    clock: Callable[[], float] | None = None,
):
    """Time, peak memory and value of losskit and the row's compositions on one workload.

    Interleaved: every round calls each provider once, in turn (ABAB...), so drift in the
    machine's load reaches all of them alike. The number of rounds fills ``budget``
    seconds (at least ``min_repeats``, at most ``max_repeats`` where given: a step of a
    millisecond gets about a thousand rounds, not a cap's 200). ``clock``:
    ``time.perf_counter`` (wall time) by default; ``time.thread_time`` (CPU time of this
    thread: with one torch thread, the work itself, robust to other jobs on a busy
    machine)."""
    import time

    from .compositions import COMPOSITIONS

    spec = losskit.spec(w.loss)
    args = _cpu_inputs(spec, w.shape)
    ignore = w.options.get("ignore_index")
    if ignore is not None:  # a third of the targets ignored, as in a padded batch
        args[1] = args[1].clone()
        args[1].view(-1)[::3] = ignore
    providers = {"losskit": lambda *a: spec.functional(*a, **w.options)}
    for label, fn in COMPOSITIONS[w.loss]:
        providers[label] = lambda *a, fn=fn: fn(*a, **w.options)
    steps = {}
    results = {}
    grads = {}
    for name, fn in providers.items():
        step, value, x = _stepper(fn, args)
        try:
            step()  # warm up (and fail here, not in the timed loop)
            grads[name] = None if x.grad is None else x.grad.detach().clone()
            v = value()
            peak = peak_step_bytes(step, reset=lambda x=x: setattr(x, "grad", None))
        except Exception as err:  # a composition that cannot take these inputs
            print(f"  {w.label}: {name} failed: {type(err).__name__}: {err}")
            continue
        steps[name] = step
        results[name] = {"value": v, "peak_mb": peak / 2**20, "times": []}
    mine = grads.get("losskit")
    for name, r in results.items():  # ||g - g_losskit|| / ||g_losskit||
        g = grads.pop(name)
        ok = g is not None and mine is not None and float(mine.norm()) > 0
        r["grad_diff"] = float((g - mine).norm() / mine.norm()) if ok else float("nan")
    del mine
    t0 = time.perf_counter()
    for step in steps.values():
        step()
    per_round = max(time.perf_counter() - t0, 1e-6)
    rounds = int(max(budget / per_round, min_repeats))
    if max_repeats is not None:
        rounds = min(rounds, max_repeats)
    clock = clock or time.perf_counter
    for _ in range(rounds):
        for name, step in steps.items():
            t = clock()
            step()
            results[name]["times"].append(clock() - t)
    for r in results.values():
        times = sorted(r.pop("times"))
        r["median_ms"] = statistics.median(times) * 1e3
        r["min_ms"] = times[0] * 1e3
        r["rounds"] = rounds
    return results


#: The largest relative value difference of one loss on two paths: a composition further
#: from losskit's value computes another loss (it ignores an option).
SAME_LOSS = 1e-4


def _rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def same_loss(mine: dict, peer: dict) -> bool:
    """A peer's measurement is of losskit's loss: the same value, and the same gradient
    (in norm) where both have one (a loss can agree in value by chance: a smoothed
    target's loss of random logits is close to the unsmoothed one)."""
    grad = peer.get("grad_diff", float("nan"))
    return _rel_diff(mine["value"], peer["value"]) <= SAME_LOSS and not grad > SAME_LOSS


def cpu_row(w: CpuWorkload, results: dict) -> dict[str, object]:
    """One table row: losskit against its best composition, the fastest by median of
    those that give losskit's value (of all, where none does)."""
    mine = results.get("losskit")
    peers = {k: v for k, v in results.items() if k != "losskit"}
    row: dict[str, object] = {"loss": w.label, "shape": "x".join(map(str, w.shape))}
    if mine is None or not peers:
        row["error"] = "losskit failed" if mine is None else "every composition failed"
        return row
    same = {k: v for k, v in peers.items() if same_loss(mine, v)}
    best = min(same or peers, key=lambda k: peers[k]["median_ms"])
    b = peers[best]
    row.update(
        {
            "losskit_median_ms": round(mine["median_ms"], 4),
            "losskit_min_ms": round(mine["min_ms"], 4),
            "losskit_peak_mb": round(mine["peak_mb"], 2),
            "composition": best,
            "composition_median_ms": round(b["median_ms"], 4),
            "composition_min_ms": round(b["min_ms"], 4),
            "composition_peak_mb": round(b["peak_mb"], 2),
            "time_ratio": round(mine["median_ms"] / b["median_ms"], 3),
            "min_time_ratio": round(mine["min_ms"] / b["min_ms"], 3),
            "memory_ratio": round(mine["peak_mb"] / b["peak_mb"], 3) if b["peak_mb"] else None,
            "value_rel_diff": float(f"{_rel_diff(mine['value'], b['value']):.2g}"),
            "grad_rel_diff": float(f"{b.get('grad_diff', float('nan')):.2g}"),
            "same_loss": same_loss(mine, b),
            "rounds": mine["rounds"],
            "others": {
                k: {kk: round(vv, 4) for kk, vv in v.items() if kk != "rounds"}
                for k, v in peers.items()
                if k != best
            },
        }
    )
    return row


def run_cpu(
    size: int = 1 << 20,
    budget: float = 3.0,
    names=None,
    recheck: float | None = 1.0,
    min_repeats: int = 5,
    clock: Callable[[], float] | None = None,
) -> tuple[list[dict[str, object]], list[str]]:
    """Every registry row against its best composition; rows whose time ratio is above
    ``recheck`` are measured a second time (``second_time_ratio``), the machine being
    noisy. Returns the rows and the rows skipped (with the reason)."""
    work, skipped = cpu_workloads(size, names)
    for s in skipped:
        print(f"  skipped {s}")
    rows = []
    for w in track(work, description="benchmarking"):
        rows.append(cpu_row(w, measure_cpu(w, budget, min_repeats, clock=clock)))
    if recheck is not None:
        for w, row in zip(work, rows, strict=True):
            if row.get("time_ratio", 0) > recheck:
                again = cpu_row(w, measure_cpu(w, budget, min_repeats, clock=clock))
                row["second_time_ratio"] = again.get("time_ratio")
                row["second_min_time_ratio"] = again.get("min_time_ratio")
    return rows, skipped


# ----------------------------------------------------------------------------- output
def markdown(rows: list[dict[str, object]]) -> str:
    """The GPU suite's table: one line per workload and provider."""
    ratio_key = next(k for k in rows[0] if k.startswith("time_vs_"))
    keys = ["workload", "shape", "dtype", "provider", "median_ms", "min_ms"]
    keys += [k for k in ("extra_mb", "gb_per_s", "of_copy_bandwidth") if k in rows[0]]
    keys.append(ratio_key)
    lines = ["| " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def cpu_markdown(rows: list[dict[str, object]], skipped: list[str], env: dict) -> str:
    """The CPU suite's table (the README's benchmark table), with its machine, versions
    and command."""
    v = env["versions"]
    lines = [
        f"Measured with `{env.get('command', CPU_COMMAND)}` on {env['device_name']} "
        f"({env['threads']} threads"
        f"{', CPU time of the thread' if env.get('clock') == 'thread' else ''}), "
        f"torch {v['torch']}, losskit {v['losskit']}, Python {v['python']}, {env['date']}: "
        "float32, forward + backward of the mean, the composition's value within "
        "`value diff` (relative) of losskit's. Times are the median and min over interleaved "
        "rounds (each round runs every provider once, in turn); peak MB is the most the CPU "
        "allocator held during one step beyond what it held before (torch.profiler's "
        "allocation events, summed in order). Ratios are losskit / the fastest "
        "composition of the same loss (value and gradient within 1e-4); a second ratio is "
        "a re-run of a row above 1.0x.",
        "",
        "| loss | shape | losskit ms (median / min) | peak MB | fastest composition | "
        "its ms (median / min) | peak MB | time ratio | memory ratio | value diff |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['loss']}` | {r['shape']} | {r['error']} |||||||| ")
            continue
        ratio = _x(r["time_ratio"])
        if r.get("second_time_ratio") is not None:
            ratio += f", {_x(r['second_time_ratio'])}"
        lines.append(
            f"| `{r['loss']}` | {r['shape']} | {r['losskit_median_ms']:.3f} / "
            f"{r['losskit_min_ms']:.3f} | {r['losskit_peak_mb']:.1f} | "
            f"{r['composition'].replace('|', chr(92) + '|')} | "
            f"{r['composition_median_ms']:.3f} / {r['composition_min_ms']:.3f} | "
            f"{r['composition_peak_mb']:.1f} | {ratio} | {_x(r['memory_ratio'])} | "
            f"{r['value_rel_diff']:.1g} |"
        )
    if skipped:
        lines += ["", "Rows without a CPU composition here:", ""]
        lines += [f"- `{s.split(':', 1)[0]}`:{s.split(':', 1)[1]}" for s in skipped]
    return "\n".join(lines)


CPU_COMMAND = "python -m benchmarks --suite cpu --write-readme"
README_BEGIN = (
    "<!-- benchmarks-cpu-begin: generated by python -m benchmarks --suite cpu --write-readme -->"
)
README_END = "<!-- benchmarks-cpu-end -->"


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with what lies between the CPU table's markers replaced by ``table``."""
    begin, end = text.index(README_BEGIN), text.index(README_END)
    return text[: begin + len(README_BEGIN)] + "\n" + table + "\n" + text[end:]


def environment(device: str) -> dict[str, object]:
    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = _cpu_name()
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


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write(out: Path, rows: list[dict[str, object]], env: dict, table: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    flat = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows]
    with open(out / "results.csv", "w", newline="") as f:
        fields = list(dict.fromkeys(k for r in flat for k in r))
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)
    (out / "results.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    (out / "results.md").write_text(table + "\n")


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
    parser.add_argument(
        "--budget", type=float, default=3.0, help="cpu: seconds of timed rounds per row"
    )
    parser.add_argument("--rows", nargs="*", help="cpu: only these registry rows")
    parser.add_argument("--threads", type=int, help="cpu: torch threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=("wall", "thread"),
        default="wall",
        help="cpu: wall time, or this thread's CPU time (implies --threads 1; robust to "
        "other jobs on the machine)",
    )
    parser.add_argument(
        "--write-readme", action="store_true", help="cpu: put the table into README.md"
    )
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
        table = markdown(rows)
    else:
        import time

        clock = time.thread_time if args.clock == "thread" else time.perf_counter
        if args.threads or args.clock == "thread":
            torch.set_num_threads(1 if args.clock == "thread" else args.threads)
        size = args.size // 64 if args.quick else args.size
        budget = args.budget / 10 if args.quick else args.budget
        rows, skipped = run_cpu(size, budget, args.rows, clock=clock)
        env = environment("cpu")
        env["clock"] = args.clock
        env["command"] = "python -m benchmarks --suite cpu" + "".join(
            f" {flag}"
            for flag, on in (
                ("--clock thread", args.clock == "thread"),
                (f"--threads {args.threads}", args.threads and args.clock != "thread"),
                (f"--budget {args.budget:g}", args.budget != 3.0),
                ("--write-readme", args.write_readme),
            )
            if on
        )
        table = cpu_markdown(rows, skipped, env)
        if args.write_readme:
            readme = Path(__file__).resolve().parents[1] / "README.md"
            readme.write_text(replace_between_markers(readme.read_text(), table))
    _write(args.out, rows, env, table)
    print(
        f"{env['device_name']} ({env['device']}), torch {env['versions']['torch']}, "
        f"{env['threads']} threads, {env['date']}"
    )
    print(table)
