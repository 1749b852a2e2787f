"""Benchmark of linear cross entropy, forward+backward: time and memory, CPU or CUDA.

``python -m benchmarks.linear [--device cpu|cuda] [--tokens N] [--dim D] [--classes V]
[--dtype float32|bfloat16|float64] [--repeats R] [--rounds K] [--chunks 32,64,128]
[--providers a,b,...] [--no-bias] [--quick] [--json FILE] [--check]``

(``python -m benchmarks --suite linear`` runs it with the defaults of the device.)
``--device`` defaults to ``cuda`` when torch sees a GPU, else ``cpu``. Every step is
``loss = f(h, W, y, b)`` then ``loss.backward()`` with the gradients of the input ``h``
(N, D), the weight ``W`` (V, D) and the bias ``b`` (V) (``--no-bias``: none) zeroed
first; ``y`` holds random class indices. ``--quick`` shrinks the defaults for a smoke
run; flags given explicitly win over the defaults.

CPU (issue 7; defaults 4096 tokens x 64 dims x 50,000 classes, float32, 5 repeats;
``--quick``: 512 x 32 x 5,000, 2 repeats). Each provider runs in a fresh subprocess so
that its peak resident memory (``VmHWM``, or ``ru_maxrss`` where /proc is missing) is
its own:

* ``losskit``: ``losskit.functional.linear.linear_cross_entropy`` (``backend="torch"``,
  default chunking, or each of ``--chunks``);
* ``materialised``: ``F.cross_entropy(h @ W.T + b, y)``, every logit in memory;
* ``torch chunked``: ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``
  when this torch has it (2.13 and later);
* ``losskit triton`` only when ``TRITON_INTERPRET=1`` is set (Triton's interpreter:
  very slow, tiny shapes only); the CUDA-only providers below are skipped.

Each subprocess runs one warm-up step, then ``--repeats`` timed steps; ``--rounds``
repeats the whole set, interleaved, which helps on a shared machine. The table gives the
median and min time, the peak RSS (whole process, torch included) and the peak over the
RSS after setup, with ratios to the materialised time and to torch's chunked peak. The
issue's target: peak RSS <= torch chunked, time <= 1.5x materialised (``--check`` exits 1
when missed).

CUDA (the GPU issue; defaults its shape, 8192 tokens x 4096 dims x 128,256 classes,
bfloat16, 20 repeats; ``--quick``: 1024 x 1024 x 32,000, 10 repeats). Providers:

* ``losskit``: ``linear_cross_entropy(..., backend="torch")`` (or each of ``--chunks``);
* ``losskit triton``: ``linear_cross_entropy(..., backend="triton")``, the fused kernel;
* ``losskit triton chunked``: ``linear_cross_entropy(..., backend="triton",
  chunk_size=rows)``, tensor-core matmuls around the softmax kernel in place, ``rows``
  from a 1 GiB tile of logits (:func:`chunk_rows`; 4,186 rows at the default shape);
* ``materialised``: ``F.cross_entropy((h @ W.T + b).float(), y)``, eager, the logits in
  the input dtype upcast to float32 (the issue's "materialised eager" peer);
* ``torch chunked``: as on CPU, when this torch has ``F.linear_cross_entropy`` (2.13+);
* ``liger``: Liger-Kernel's ``LigerFusedLinearCrossEntropyLoss()(W, h, y, b)`` (its
  forward takes the weight first: ``forward(lin_weight, _input, target, bias=None)``);
* ``cce``: Apple's Cut Cross-Entropy, ``cut_cross_entropy.linear_cross_entropy(h, W, y,
  bias=b)`` with its defaults, so with its gradient filtering (blocks whose softmax is
  below the dtype's resolution are skipped in the backward). On random inputs the softmax
  is near uniform (about 1/V everywhere), so nearly every block is filtered and its
  backward does far less work than on a trained model's logits;
* ``cce exact``: the same with ``impl="cce_exact"`` (no filtering), the like-for-like peer
  of losskit, which filters nothing.

A provider whose package is not importable (``triton``, ``liger_kernel``,
``cut_cross_entropy``), or that this torch or device lacks, is skipped with a ``#`` line;
one that fails (out of memory, a missing ``bias`` argument in an old CCE: use
``--no-bias``) is reported and left out of the table. All providers run in this process,
one after the other, each on freshly made inputs (same seed); between them the caching
allocator is emptied.

Per provider: one warm-up step (compilation, autotuning), then the gradients are dropped
and the allocated memory read (inputs, plus whatever the provider keeps between steps,
such as a cuBLAS workspace; the part over the inputs alone is ``kept_mib`` in the JSON),
the peak statistics are reset, one step runs and ``torch.cuda.max_memory_allocated()``
minus that reading is the *peak extra* memory of a step. Its gradients (h, W, b) are
outputs, not overhead: subtracting their size gives *extra beyond inputs and gradients*,
the issue's memory measure. Time: ``triton.testing.do_bench(step, quantiles=[0.5, 0])``
(median and min of CUDA-event-timed steps, the L2 cache flushed between them; about
``--repeats`` steps after its warm-up), or, without triton, ``--repeats`` steps timed
with CUDA events. Achieved TFLOP/s counts ``6 N D V`` flops a step (the three matmuls:
logits, ``G W`` and ``G^T h``; 25.8 TFLOP at the issue's shape). Ratios: median time over
each peer that ran (materialised, torch chunked, liger, cce). The issue's target, on an
H100 at its shape: median <= 40 ms and <= 64 MiB extra beyond inputs and gradients;
``--check`` exits 1 unless some losskit row meets both.

The exact GPU command: ``python -m benchmarks.linear --device cuda --rounds 2``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

PROVIDERS = ("losskit", "materialised", "torch chunked")  # the CPU defaults
CUDA_PROVIDERS = (
    "losskit",
    "losskit triton",
    "losskit triton chunked",
    "materialised",
    "torch chunked",
    "liger",
    "cce",
    "cce exact",
)
PEERS = ("materialised", "torch chunked", "liger", "cce")  # ratio columns on CUDA
CUDA_ONLY = ("liger", "cce", "cce exact")
REQUIRES = {  # provider: the module it imports
    "losskit triton": "triton",
    "losskit triton chunked": "triton",
    "liger": "liger_kernel",
    "cce": "cut_cross_entropy",
    "cce exact": "cut_cross_entropy",
}
PIP_NAMES = {"liger_kernel": "liger-kernel", "cut_cross_entropy": "cut-cross-entropy"}
DEFAULTS = {
    "cpu": {"tokens": 4096, "dim": 64, "classes": 50_000, "dtype": "float32", "repeats": 5},
    "cuda": {"tokens": 8192, "dim": 4096, "classes": 128_256, "dtype": "bfloat16", "repeats": 20},
}
QUICK = {
    "cpu": {"tokens": 512, "dim": 32, "classes": 5_000, "repeats": 2},
    "cuda": {"tokens": 1024, "dim": 1024, "classes": 32_000, "repeats": 10},
}
TARGET_MS, TARGET_MIB = 40.0, 64.0  # the GPU issue's target (H100, its shape)


TILE_BUDGET = 2**30  # bytes of one chunk's logits for "losskit triton chunked"


def chunk_rows(classes: int, dtype: str) -> int:
    """Token rows per chunk of ``losskit triton chunked``: a 1 GiB tile of logits."""
    size = {"float32": 4, "float64": 8}.get(dtype, 2)
    return max(16, TILE_BUDGET // (classes * size))


# ----------------------------------------------------------------------------- providers
def select_providers(
    requested: list[str] | None,
    device: str,
    importable: set[str] | frozenset[str],
    has_torch_lce: bool,
    interpret: bool = False,
) -> tuple[list[str], list[tuple[str, str]]]:
    """The providers to run on ``device``, and the skipped ones with the reason.

    ``requested`` None means the device's defaults; ``importable`` holds the module names
    of :data:`REQUIRES` that can be imported; ``interpret``: ``TRITON_INTERPRET=1`` is set.
    An unknown name raises ``ValueError``.
    """
    if requested is None:
        requested = list(CUDA_PROVIDERS if device == "cuda" else PROVIDERS)
    run: list[str] = []
    skipped: list[tuple[str, str]] = []
    for name in requested:
        if name not in CUDA_PROVIDERS:
            raise ValueError(f"unknown provider {name!r}; choose from {', '.join(CUDA_PROVIDERS)}")
        module = REQUIRES.get(name)
        if name == "torch chunked" and not has_torch_lce:
            skipped.append((name, "this torch has no F.linear_cross_entropy (2.13 and later)"))
        elif device != "cuda" and name in CUDA_ONLY:
            skipped.append((name, "CUDA only"))
        elif device != "cuda" and name.startswith("losskit triton") and not interpret:
            skipped.append((name, "on CPU only under TRITON_INTERPRET=1 (slow, tiny shapes)"))
        elif module is not None and module not in importable:
            pip = PIP_NAMES.get(module, module)
            skipped.append((name, f"{module} is not importable (pip install {pip})"))
        elif name not in run:
            run.append(name)
    return run, skipped


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(PIP_NAMES.get(module, module))
    except metadata.PackageNotFoundError:
        return getattr(__import__(module), "__version__", "?")


def _importable() -> set[str]:
    return {m for m in set(REQUIRES.values()) if importlib.util.find_spec(m) is not None}


def _loss_fn(provider: str, chunk: int | None, h, w, b, y, device: str = "cpu"):
    """A no-argument function computing ``provider``'s loss of ``h @ w.T + b`` and ``y``."""
    import torch.nn.functional as TF

    if provider in ("losskit", "losskit triton", "losskit triton chunked"):
        from losskit.functional.linear import linear_cross_entropy

        backend = "torch" if provider == "losskit" else "triton"
        if provider == "losskit triton":
            chunk = None  # the fused kernel tiles on its own
        elif provider == "losskit triton chunked":
            chunk = chunk or chunk_rows(w.shape[0], str(w.dtype).removeprefix("torch."))
        return lambda: linear_cross_entropy(
            h, w, y, linear_bias=b, chunk_size=chunk, backend=backend
        )
    if provider == "materialised":
        if device == "cpu":  # issue 7's peer, unchanged
            return lambda: TF.cross_entropy(torch.addmm(b, h, w.T) if b is not None else h @ w.T, y)

        def materialised():
            z = torch.addmm(b, h, w.T) if b is not None else h @ w.T
            return TF.cross_entropy(z.float() if z.element_size() < 4 else z, y)

        return materialised
    if provider == "torch chunked":
        options = torch.nn.LinearCrossEntropyOptions()
        return lambda: TF.linear_cross_entropy(h, w, y, linear_bias=b, options=options)
    if provider == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss()

        def liger_loss():
            out = liger(w, h, y, b)  # forward(lin_weight, _input, target, bias=None)
            return out[0] if isinstance(out, tuple) else out  # (loss, z_loss) when asked

        return liger_loss
    if provider in ("cce", "cce exact"):
        from cut_cross_entropy import linear_cross_entropy as cce

        params = inspect.signature(cce).parameters
        kwargs: dict[str, object] = {}
        if b is not None:
            if "bias" not in params:
                raise RuntimeError("this cut_cross_entropy takes no bias; run with --no-bias")
            kwargs["bias"] = b
        if provider == "cce exact":
            kwargs["impl"] = "cce_exact"
        return lambda: cce(h, w, y, **kwargs)
    raise ValueError(provider)


def _inputs(args: argparse.Namespace, device: str):
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    n, d, v = args.tokens, args.dim, args.classes
    h = torch.randn(n, d, device=device).to(dtype).requires_grad_()
    w = (torch.randn(v, d, device=device) / d**0.5).to(dtype).requires_grad_()
    b = None if args.no_bias else torch.zeros(v, device=device).to(dtype).requires_grad_()
    y = torch.randint(0, v, (n,), device=device)
    return h, w, b, y


def _stepper(loss_fn, params):
    def step():
        for t in params:
            t.grad = None
        loss = loss_fn()
        loss.backward()
        return loss

    return step


# ----------------------------------------------------------------------------- CPU worker
def _rss_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process in MB, from /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # no /proc (macOS): the peak from getrusage, in bytes there (kilobytes on Linux)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def worker(args: argparse.Namespace) -> dict[str, object]:
    h, w, b, y = _inputs(args, "cpu")
    params = [t for t in (h, w, b) if t is not None]
    step = _stepper(_loss_fn(args.worker, args.chunk, h, w, b, y), params)
    rss_setup = _rss_mb("VmRSS")

    value = float(step())  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "provider": args.worker,
        "chunk": args.chunk,
        "loss": value,
        "times": times,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "setup_rss_mb": rss_setup,
        "threads": torch.get_num_threads(),
    }


def _run_worker(provider: str, chunk: int | None, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.linear",
        "--device",
        "cpu",
        "--worker",
        provider,
        "--tokens",
        str(args.tokens),
        "--dim",
        str(args.dim),
        "--classes",
        str(args.classes),
        "--dtype",
        args.dtype,
        "--repeats",
        str(args.repeats),
    ]
    if chunk is not None:
        cmd += ["--chunk", str(chunk)]
    if args.no_bias:
        cmd.append("--no-bias")
    root = Path(__file__).resolve().parents[1]  # where ``benchmarks`` is importable
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"{provider} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- CUDA
def _cuda_time(step, repeats: int, estimate_ms: float) -> tuple[float, float]:
    """Median and min of about ``repeats`` steps, in ms (CUDA-synchronised)."""
    if importlib.util.find_spec("triton") is not None:
        import triton.testing

        median, best = triton.testing.do_bench(
            step,
            warmup=max(25.0, 2 * estimate_ms),
            rep=max(100.0, repeats * estimate_ms),
            quantiles=[0.5, 0.0],
        )
        return float(median), float(best)
    times = []
    for _ in range(max(1, repeats)):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times)


def run_cuda(provider: str, chunk: int | None, args: argparse.Namespace) -> dict[str, object]:
    """One provider on the GPU: time, peak extra memory, the size of the gradients."""
    if provider == "losskit triton chunked" and chunk is None:
        chunk = chunk_rows(args.classes, args.dtype)
    gc.collect()
    torch.cuda.empty_cache()
    h, w, b, y = _inputs(args, "cuda")
    params = [t for t in (h, w, b) if t is not None]
    torch.cuda.synchronize()
    inputs = torch.cuda.memory_allocated()
    try:
        step = _stepper(_loss_fn(provider, chunk, h, w, b, y, "cuda"), params)
        value = float(step())  # warm-up: compilation, autotuning, workspaces
        for t in params:
            t.grad = None
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        median, best = _cuda_time(step, args.repeats, start.elapsed_time(end))
    finally:
        del h, w, b, y, params
        step = None
        gc.collect()
        torch.cuda.empty_cache()
    n, d, v = args.tokens, args.dim, args.classes
    size = torch.tensor([], dtype=getattr(torch, args.dtype)).element_size()
    grads = (n * d + v * d + (0 if args.no_bias else v)) * size
    return {
        "provider": provider,
        "chunk": chunk,
        "loss": value,
        "median_ms": median,
        "min_ms": best,
        "peak_extra_bytes": peak,
        "grad_bytes": grads,
        "kept_mib": (base - inputs) / 2**20,
    }


def flops(tokens: int, dim: int, classes: int) -> float:
    """Flops of one forward+backward: three (N, D) x (D, V)-sized matmuls, 2 N D V each."""
    return 6.0 * tokens * dim * classes


def cuda_table(results: list[dict], step_flops: float) -> tuple[str, dict]:
    """Merge the rounds of each provider (median of medians, min of mins, max of peaks);
    a markdown table, and the rows by label."""
    merged: dict[str, dict] = {}
    for r in results:
        row = merged.setdefault(_label(r), {"medians": [], "mins": [], "peak": 0, "grads": 0})
        row["medians"].append(r["median_ms"])
        row["mins"].append(r["min_ms"])
        row["peak"] = max(row["peak"], r["peak_extra_bytes"])
        row["grads"] = r["grad_bytes"]
        row["loss"] = r["loss"]
    for row in merged.values():
        row["median"] = statistics.median(row["medians"])
        row["min"] = min(row["mins"])
        row["tflops"] = step_flops / (row["median"] * 1e-3) / 1e12
        row["extra_mib"] = row["peak"] / 2**20
        row["beyond_mib"] = (row["peak"] - row["grads"]) / 2**20
    peers = [p for p in PEERS if p in merged]
    head = (
        "| provider | median ms | min ms | TFLOP/s | peak extra MiB "
        "| extra beyond inputs and gradients MiB |"
    )
    head += "".join(f" time / {p} |" for p in peers) + " loss |"
    lines = [head, "|---|" + "---:|" * (5 + len(peers) + 1)]
    for label, row in merged.items():
        ratios = "".join(f" {row['median'] / merged[p]['median']:.2f}x |" for p in peers)
        lines.append(
            f"| {label} | {row['median']:.3f} | {row['min']:.3f} | {row['tflops']:.1f} | "
            f"{row['extra_mib']:.1f} | {row['beyond_mib']:.1f} |{ratios} {row['loss']:.6f} |"
        )
    return "\n".join(lines), merged


# ----------------------------------------------------------------------------- parent
def _label(r: dict) -> str:
    if r["provider"] != "losskit":
        return r["provider"]
    return "losskit" + (f" (chunk_size={r['chunk']})" if r["chunk"] is not None else "")


def table(results: list[dict]) -> tuple[str, dict]:
    """CPU: merge the rounds of each provider; a markdown table, and the rows by label."""
    merged: dict[str, dict] = {}
    for r in results:
        row = merged.setdefault(_label(r), {"times": [], "peak": 0.0, "setup": 0.0})
        row["times"] += r["times"]
        row["peak"] = max(row["peak"], r["peak_rss_mb"])
        row["setup"] = max(row["setup"], r["setup_rss_mb"])
        row["loss"] = r["loss"]
    for row in merged.values():
        row["median"] = statistics.median(row["times"])
        row["min"] = min(row["times"])
    base_t = merged.get("materialised", {}).get("median")
    base_m = merged.get("torch chunked", {}).get("peak")
    lines = [
        "| provider | median s | min s | peak RSS MB | peak - setup MB | time / materialised "
        "| peak RSS / torch chunked | loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, row in merged.items():
        t_ratio = f"{row['median'] / base_t:.2f}x" if base_t else "-"
        m_ratio = f"{row['peak'] / base_m:.2f}x" if base_m else "-"
        lines.append(
            f"| {label} | {row['median']:.3f} | {row['min']:.3f} | {row['peak']:.0f} | "
            f"{row['peak'] - row['setup']:.0f} | {t_ratio} | {m_ratio} | {row['loss']:.6f} |"
        )
    return "\n".join(lines), merged


def _check_cpu(merged: dict) -> bool:
    ours = merged.get("losskit")
    ok = ours is not None
    if ok and "materialised" in merged:
        ok &= ours["median"] <= 1.5 * merged["materialised"]["median"]
    if ok and "torch chunked" in merged:
        ok &= ours["peak"] <= merged["torch chunked"]["peak"]
    return ok


def _check_cuda(merged: dict) -> bool:
    met = [
        label
        for label, row in merged.items()
        if label.startswith("losskit")
        and row["median"] <= TARGET_MS
        and row["beyond_mib"] <= TARGET_MIB
    ]
    print(f"# target (<= {TARGET_MS:g} ms, <= {TARGET_MIB:g} MiB beyond) met by: {met or 'none'}")
    return bool(met)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.linear",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if any")
    p.add_argument("--tokens", type=int, default=None, help="N (cpu 4096, cuda 8192)")
    p.add_argument("--dim", type=int, default=None, help="D (cpu 64, cuda 4096)")
    p.add_argument("--classes", type=int, default=None, help="V (cpu 50000, cuda 128256)")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float64"])
    p.add_argument("--repeats", type=int, default=None, help="timed steps (cpu 5, cuda ~20)")
    p.add_argument("--rounds", type=int, default=1, help="interleaved runs of every provider")
    p.add_argument("--chunks", default="", help="losskit chunk sizes to compare, e.g. 32,64,128")
    p.add_argument("--providers", default=None, help="comma-separated; default: the device's")
    p.add_argument("--no-bias", action="store_true", help="no bias vector b")
    p.add_argument("--quick", action="store_true", help="small default shapes: a smoke run")
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--check", action="store_true", help="exit 1 if the issue's target is missed")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device")
    for key, value in {
        **DEFAULTS[args.device],
        **(QUICK[args.device] if args.quick else {}),
    }.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import torch.nn.functional as TF

    requested = None
    if args.providers is not None:
        requested = [s.strip() for s in args.providers.split(",") if s.strip()]
    try:
        providers, skipped = select_providers(
            requested,
            args.device,
            _importable(),
            hasattr(TF, "linear_cross_entropy"),
            os.environ.get("TRITON_INTERPRET") == "1",
        )
    except ValueError as err:
        p.error(str(err))
    runs = []
    for name in providers:
        if name == "losskit" and args.chunks:
            runs += [(name, int(c)) for c in args.chunks.split(",")]
        else:
            runs.append((name, None))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    shape = (
        f"# linear cross entropy, {args.tokens} tokens x {args.dim} dims x {args.classes} "
        f"classes, {args.dtype}, forward+backward"
    )
    if args.device == "cuda":
        step_flops = flops(args.tokens, args.dim, args.classes)
        versions = ", ".join(f"{m} {_version(m)}" for m in sorted(_importable()))
        print(
            f"{shape}{', no bias' if args.no_bias else ''}, "
            f"{step_flops / 1e12:.1f} TFLOP a step\n"
            f"# {torch.cuda.get_device_name()}, torch {torch.__version__}"
            f"{', ' + versions if versions else ''}",
            flush=True,
        )
    else:
        print(
            f"{shape}\n"
            f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
            f"load average {load}",
            flush=True,
        )
    for name, why in skipped:
        print(f"# {name}: skipped, {why}", flush=True)
    results = []
    for _ in range(args.rounds):
        for name, chunk in runs:
            if args.device == "cpu":
                results.append(_run_worker(name, chunk, args))
                r = results[-1]
                print(f"#   {_label(r)}: {[round(t, 3) for t in r['times']]} s", flush=True)
                continue
            try:
                r = run_cuda(name, chunk, args)
            except Exception as err:  # a provider that cannot run this shape or version
                print(f"#   {name}: failed, {type(err).__name__}: {err}", flush=True)
                continue
            results.append(r)
            print(
                f"#   {_label(r)}: median {r['median_ms']:.3f} ms, "
                f"peak extra {r['peak_extra_bytes'] / 2**20:.1f} MiB",
                flush=True,
            )
    if not results:
        print("# no provider ran")
        return 1
    if args.device == "cuda":
        text, merged = cuda_table(results, step_flops)
    else:
        text, merged = table(results)
    print(text)
    if load is not None and args.device == "cpu":
        print(f"# load average after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    if args.check:
        ok = _check_cuda(merged) if args.device == "cuda" else _check_cpu(merged)
        print("# target met" if ok else "# target MISSED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
