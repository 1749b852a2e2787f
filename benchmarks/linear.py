"""CPU benchmark of linear cross entropy (issue 7): time and peak memory, forward+backward.

``python -m benchmarks.linear [--tokens 4096] [--dim 64] [--classes 50000]
[--dtype float32] [--repeats 5] [--rounds 1] [--chunks 32,64,128] [--check]``

Providers, each run in a fresh subprocess so that its peak resident memory (``VmHWM``,
or ``ru_maxrss`` where /proc is missing) is its own:

* ``losskit``: ``losskit.functional.linear.linear_cross_entropy`` (default chunking, or
  each of ``--chunks``);
* ``materialised``: ``F.cross_entropy(h @ W.T + b, y)``, every logit in memory;
* ``torch chunked``: ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``
  when this torch has it (2.13 and later).

Each subprocess runs one warm-up step, then ``--repeats`` timed steps (zeroed gradients,
loss, backward); ``--rounds`` repeats the whole set, interleaved, which helps on a shared
machine. The table gives the median and min time, the peak RSS (whole process, torch
included) and the peak over the RSS after setup, with ratios to the materialised time
and to torch's chunked peak. The issue's target: peak RSS <= torch chunked, time <= 1.5x
materialised (``--check`` exits 1 when missed).
"""

from __future__ import annotations

import argparse
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

PROVIDERS = ("losskit", "materialised", "torch chunked")


# ----------------------------------------------------------------------------- worker
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


def _step_fn(provider: str, chunk: int | None, h, w, b, y):
    import torch.nn.functional as TF

    if provider == "losskit":
        from losskit.functional.linear import linear_cross_entropy

        return lambda: linear_cross_entropy(h, w, y, linear_bias=b, chunk_size=chunk)
    if provider == "materialised":
        return lambda: TF.cross_entropy(torch.addmm(b, h, w.T), y)
    if provider == "torch chunked":
        options = torch.nn.LinearCrossEntropyOptions()
        return lambda: TF.linear_cross_entropy(h, w, y, linear_bias=b, options=options)
    raise ValueError(provider)


def worker(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    n, d, v = args.tokens, args.dim, args.classes
    h = torch.randn(n, d).to(dtype).requires_grad_()
    w = (torch.randn(v, d) / d**0.5).to(dtype).requires_grad_()
    b = torch.zeros(v).to(dtype).requires_grad_()
    y = torch.randint(0, v, (n,))
    loss_fn = _step_fn(args.worker, args.chunk, h, w, b, y)
    rss_setup = _rss_mb("VmRSS")

    def step():
        h.grad = w.grad = b.grad = None
        loss = loss_fn()
        loss.backward()
        return float(loss)

    value = step()  # warm-up
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


# ----------------------------------------------------------------------------- parent
def _run_worker(provider: str, chunk: int | None, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.linear",
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
    root = Path(__file__).resolve().parents[1]  # where ``benchmarks`` is importable
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"{provider} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _label(r: dict) -> str:
    if r["provider"] != "losskit":
        return r["provider"]
    return "losskit" + (f" (chunk_size={r['chunk']})" if r["chunk"] is not None else "")


def table(results: list[dict]) -> tuple[str, dict]:
    """Merge the rounds of each provider; a markdown table, and the rows by label."""
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.linear", description=__doc__)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--classes", type=int, default=50_000)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"])
    p.add_argument("--repeats", type=int, default=5, help="timed steps per subprocess")
    p.add_argument("--rounds", type=int, default=1, help="interleaved runs of every provider")
    p.add_argument("--chunks", default="", help="losskit chunk sizes to compare, e.g. 32,64,128")
    p.add_argument("--providers", default=",".join(PROVIDERS))
    p.add_argument("--json", default=None, help="also write the raw results here")
    p.add_argument("--check", action="store_true", help="exit 1 if issue 7's target is missed")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import torch.nn.functional as TF

    providers = [s.strip() for s in args.providers.split(",") if s.strip()]
    if "torch chunked" in providers and not hasattr(TF, "linear_cross_entropy"):
        providers.remove("torch chunked")
    runs = []
    for name in providers:
        if name == "losskit" and args.chunks:
            runs += [(name, int(c)) for c in args.chunks.split(",")]
        else:
            runs.append((name, None))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"# linear cross entropy, {args.tokens} tokens x {args.dim} dims x {args.classes} "
        f"classes, {args.dtype}, forward+backward\n"
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"load average {load}",
        flush=True,
    )
    results = []
    for _ in range(args.rounds):
        for name, chunk in runs:
            results.append(_run_worker(name, chunk, args))
            r = results[-1]
            print(f"#   {_label(r)}: {[round(t, 3) for t in r['times']]} s", flush=True)
    text, merged = table(results)
    print(text)
    if load is not None:
        print(f"# load average after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    if args.check:
        ours = merged.get("losskit")
        ok = ours is not None
        if ok and "materialised" in merged:
            ok &= ours["median"] <= 1.5 * merged["materialised"]["median"]
        if ok and "torch chunked" in merged:
            ok &= ours["peak"] <= merged["torch chunked"]["peak"]
        print("# target met" if ok else "# target MISSED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
