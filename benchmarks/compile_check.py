"""Compile check of every Triton kernel for sm_90a (H100, H200) and sm_80 (A100), on a
machine without a GPU: Triton compiles for CUDA anywhere, since its wheel ships ``ptxas``.

``python -m benchmarks.compile_check [--set hot|all] [--targets sm_90a,sm_80] [--out DIR]
[--jobs N] [--no-cache]``

Run it with ``TRITON_INTERPRET`` unset (``make compile-check`` does; the test suite starts
it in a subprocess). Exit status 1 on a compile error, on spills (local memory or a stack
frame: ptxas puts spill slots in the stack frame, which cuobjdump reports as STACK) in a
*hot* specialization on the benchmarks' target (sm_90a), or on shared memory above a
target's per-block limit; spills elsewhere are reported, not failed.

Which specializations, derived from the launchers' own code rather than from a copy: every
``@triton.jit`` function of ``losskit.kernels.*`` is replaced, while the calls below run,
by a recorder of its launches (``kernel[grid](*args, **kwargs)``), and the calls go through
the public API on small CPU tensors (nothing is computed), forward and backward. Each
recorded launch is turned into Triton's own specialization (signature, constexprs and
alignment attributes, exactly as a launch on a GPU would: ``JITFunction``'s binder),
then compiled with ``triton.compile(ASTSource(...), target=GPUTarget(...))`` at the
launch's ``num_warps``/``num_stages`` (Triton's defaults where the launcher sets none).

* *hot*: the launches that the GPU benchmarks make (``benchmarks.runner``'s workloads with
  its ``losskit (triton)`` provider, ``benchmarks.linear``'s ``losskit triton`` at its CUDA
  defaults), each shape shrunk to a few rows that keep every size's residue mod 16, so
  the divisibility attributes are those of the full shape;
* *all*: the hot set, plus the grid of logits dtypes (float32, bfloat16, float16) x the
  options that reach a constexpr (weight, pos_weight, ignore_index, alpha, reduction;
  class weight, label smoothing, z-loss, every class-block size; bias, class weight,
  label smoothing, softcap, which gradients), the targets and weights in the logits'
  dtype, plus one mixed-dtype call per family.

Per compiled kernel: ``cuobjdump --dump-resource-usage`` on the cubin (registers, local
memory, i.e. spills, stack, static shared memory), Triton's dynamic shared memory, an
occupancy estimate (resident warps per SM over 64, from registers, shared memory, threads
and blocks), and counts of the work per element (``math.exp``/``math.log``/``arith.divf``
in the TTIR, ``ex2``/``lg2``/``rcp``/``div`` and atomics in the PTX). Results go to
``DIR/kernel_resources[_hot].{md,json}`` (deterministic: no dates, so a rerun leaves the
files as they were). A cache under ``build/compile-check`` keyed by the specialization's
hash (kernel source with its dependencies, signature, constexprs, attributes), the target,
the options and the Triton version skips kernels already measured; ``TRITON_CACHE_DIR``
defaults to ``build/triton-cache``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "compile-check"
TRITON_CACHE = ROOT / "build" / "triton-cache"
BENCH_TARGET = "sm_90a"  # where the benchmarks run (H100, H200): spills fail there

# Per-SM limits (CUDA C Programming Guide, "Technical Specifications per Compute
# Capability"): registers, resident threads, blocks, shared memory per SM and the largest
# a block can opt in to; each block also takes 1 KiB of shared memory for the system.
TARGETS = {
    "sm_90a": dict(cap=90, regs=65536, threads=2048, blocks=32, smem_sm=233472, smem_block=232448),
    "sm_80": dict(cap=80, regs=65536, threads=2048, blocks=32, smem_sm=167936, smem_block=166912),
}
SMEM_RESERVED = 1024
REG_UNIT = 256  # registers are given to warps in units of 256
MEASURE = 5  # the version of what a row holds (part of the cache key)


# ----------------------------------------------------------------------------- pure helpers
def parse_resource_usage(text: str) -> dict[str, int]:
    """The numbers of ``cuobjdump --dump-resource-usage`` for the (one) function in it."""
    line = next((ln for ln in text.splitlines() if "REG:" in ln), None)
    if line is None:
        raise ValueError(f"no resource line in cuobjdump's output:\n{text}")
    fields = dict(re.findall(r"([A-Z]+):(\d+)", line))
    return {k.lower(): int(fields.get(k, 0)) for k in ("REG", "STACK", "SHARED", "LOCAL")}


def occupancy(regs: int, num_warps: int, smem: int, target: str) -> tuple[int, float]:
    """Resident blocks per SM and the fraction of the SM's 64 warp slots they fill."""
    t = TARGETS[target]
    per_warp = -(-max(regs, 1) * 32 // REG_UNIT) * REG_UNIT
    by_regs = (t["regs"] // per_warp) // num_warps
    by_smem = t["smem_sm"] // (smem + SMEM_RESERVED)
    by_threads = t["threads"] // (32 * num_warps)
    blocks = min(by_regs, by_smem, by_threads, t["blocks"])
    return blocks, blocks * num_warps * 32 / t["threads"]


def count_work(ttir: str, ptx: str) -> dict[str, int]:
    """Per-element operations in the TTIR (each op acts on a whole block) and the
    per-thread instructions of the PTX that use the special-function units or atomics."""

    def ptx_count(pattern: str) -> int:
        return len(re.findall(rf"^\s*(?:@%p\d+\s+)?{pattern}\b", ptx, re.MULTILINE))

    return {
        "ttir_exp": len(re.findall(r"\bmath\.exp2?\b", ttir)),
        "ttir_log": len(re.findall(r"\bmath\.log2?\b", ttir)),
        "ttir_div": len(re.findall(r"\barith\.divf\b", ttir)),
        "ptx_ex2": ptx_count(r"ex2\.approx"),
        "ptx_lg2": ptx_count(r"lg2\.approx"),
        "ptx_rcp": ptx_count(r"rcp\.[a-z0-9.]+"),
        "ptx_div": ptx_count(r"div\.[a-z0-9.]*f32"),
        "ptx_atom": ptx_count(r"(?:atom|red)\.[a-z0-9.:]+"),
        # atomics with acquire/release semantics, and GPU-wide fences (not the
        # shared-memory proxy fences of the tensor cores' asynchronous copies)
        "ptx_ordered": ptx_count(r"(?:atom|red)\.[a-z0-9.:]*(?:acq_rel|acquire|release)[a-z0-9.:]*")
        + ptx_count(r"fence\.(?:sc|acq_rel)[a-z0-9.:]*")
        + ptx_count(r"membar\.(?:gl|sys)"),
        "ptx_instr": len(re.findall(r"^\s+(?:@!?%p\d+\s+)?[a-z][a-z0-9._:]*[\s;]", ptx, re.M)),
    }


def check_rows(rows: list[dict]) -> list[str]:
    """The failures: compile errors, spills of hot specializations on the benchmarks'
    target, ordered atomics or fences in hot specializations, shared memory over a
    target's per-block limit."""
    failures = []
    for r in rows:
        name = f"{r['kernel']} [{r['config']}] on {r['target']}"
        if r.get("error"):
            failures.append(f"{name}: compile error: {r['error']}")
            continue
        if r["hot"] and r["target"] == BENCH_TARGET and (r["local"] or r["stack"]):
            failures.append(f"{name}: {r['local']} B local memory (spills), {r['stack']} B stack")
        if r["hot"] and r.get("ptx_ordered"):
            failures.append(f"{name}: {r['ptx_ordered']} ordered atomics or fences (use relaxed)")
        if r["smem"] > TARGETS[r["target"]]["smem_block"]:
            failures.append(
                f"{name}: {r['smem']} B shared memory > {TARGETS[r['target']]['smem_block']}"
            )
    return failures


def markdown(rows: list[dict], title: str) -> str:
    keys = [
        ("kernel", "kernel"),
        ("config", "specialization"),
        ("target", "target"),
        ("hot", "hot"),
        ("num_warps", "warps"),
        ("num_stages", "stages"),
        ("regs", "regs"),
        ("local", "spill (local) B"),
        ("stack", "stack (spill) B"),
        ("smem", "smem B"),
        ("blocks_per_sm", "blocks/SM"),
        ("occupancy", "occupancy"),
        ("ttir_exp", "exp"),
        ("ttir_log", "log"),
        ("ttir_div", "div"),
        ("ptx_atom", "atomics (PTX)"),
        ("ptx_instr", "PTX instr"),
    ]
    lines = [
        f"# {title}",
        "",
        "exp/log/div: operations per element in the TTIR; atomics, PTX instr: instructions "
        "per thread in the PTX. smem: static + dynamic shared memory per block. Occupancy: "
        "resident warps per SM / 64.",
        "",
        "| " + " | ".join(h for _, h in keys) + " | used by |",
        "|" + "---|" * (len(keys) + 1),
    ]
    for r in rows:
        if r.get("error"):
            cells = [str(r.get(k, "")) for k, _ in keys[:4]] + ["error"] * (len(keys) - 4)
        else:
            cells = [("yes" if r[k] else "") if k == "hot" else str(r[k]) for k, _ in keys]
        lines.append("| " + " | ".join(cells) + f" | {'; '.join(r['used_by'][:3])} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- recording
def _jit_functions():
    """``(module, name, function)`` of every ``@triton.jit`` function in losskit.kernels."""
    import triton

    import losskit.kernels as K

    found = []
    for info in pkgutil.iter_modules(K.__path__):
        module = importlib.import_module(f"{K.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, triton.runtime.JITFunction) and obj.__module__ == module.__name__:
                found.append((module, name, obj))
    return found


class _Recorder:
    """Stands in for a kernel: ``kernel[grid](*args, **kwargs)`` records the launch."""

    def __init__(self, fn, sink, label):
        self.fn, self.sink, self.label = fn, sink, label

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.sink.append((self.fn, args, kwargs, self.label[0]))

        return launch


@contextlib.contextmanager
def recording(sink: list, label: list):
    import losskit
    import losskit.kernels as K

    patched = _jit_functions()
    saved_interp = K.interpreter_on
    try:
        for module, name, fn in patched:
            setattr(module, name, _Recorder(fn, sink, label))
        # CPU tensors pass kernels.select; a launcher's own interpreter test (the linear
        # kernel's DOT_F32) still reads the environment: off, as on a GPU
        K.interpreter_on = lambda: True
        # a recorded kernel does not run, so its outputs hold whatever torch.empty gave:
        # value checks on them (a mean's denominator) would read garbage and may raise
        with losskit.set_checks(False):
            yield
    finally:
        K.interpreter_on = saved_interp
        for module, name, fn in patched:
            setattr(module, name, fn)


def _shrink(n: int) -> int:
    """A small size with ``n``'s residue mod 16 (and 1 only for 1)."""
    return n if n <= 32 else n % 16 + 16


def _hot_calls():
    """``(label, thunk)`` for each launch the GPU benchmarks make, shrunk."""
    import torch

    from benchmarks import linear as BL
    from benchmarks import runner as BR

    calls = []
    for w in BR._gpu_workloads(quick=False):
        shape = list(w.shape)
        shape[0] = _shrink(shape[0])
        if w.kind == "binary":  # the last dimension is only a size here
            shape[-1] = _shrink(shape[-1])
        shape[2:] = [_shrink(d) for d in shape[2:]]  # keep the classes (the block choice)
        small = dataclasses.replace(w, shape=tuple(shape))
        fn = BR._peers(small, "cuda")["losskit (triton)"]

        def run(fn=fn, small=small):
            x, y = BR._inputs(small, "cpu")
            fn(x.requires_grad_(True), y).backward()

        calls.append((f"bench: {w.name} {'x'.join(map(str, w.shape))}", run))
    d = BL.DEFAULTS["cuda"]

    def run_linear():
        args = argparse.Namespace(
            tokens=_shrink(d["tokens"]),
            dim=_shrink(d["dim"]),
            classes=_shrink(d["classes"]),
            dtype=d["dtype"],
            no_bias=False,
        )
        h, w, b, y = BL._inputs(args, "cpu")
        BL._loss_fn("losskit triton", None, h, w, b, y)().backward()

    shape = f"{d['tokens']}x{d['dim']}x{d['classes']}"
    calls.append((f"bench: linear CE {shape} {d['dtype']}", run_linear))

    def run_linear_chunked():
        # the classes kept: the softmax kernel's class block is the benchmark's
        args = argparse.Namespace(
            tokens=_shrink(d["tokens"]),
            dim=_shrink(d["dim"]),
            classes=d["classes"],
            dtype=d["dtype"],
            no_bias=False,
        )
        h, w, b, y = BL._inputs(args, "cpu")
        BL._loss_fn("losskit triton chunked", 8, h, w, b, y)().backward()

    calls.append((f"bench: linear CE chunked {shape} {d['dtype']}", run_linear_chunked))
    del torch
    return calls


def _grid_calls():
    """``(label, thunk)`` over the dtype and constexpr grid of every launcher."""
    import itertools

    import torch

    import losskit.functional as LF
    from losskit.functional.linear import linear_cross_entropy

    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    calls = []

    def call(label, fn, x, y, **options):
        def run():
            fn(x.detach().clone().requires_grad_(True), y, **options).sum().backward()

        calls.append((label, run))

    # the sigmoid family
    g = torch.Generator().manual_seed(0)
    for dt, w, pw, ign, red in itertools.product(
        dtypes, (False, True), (False, True), (False, True), ("none", "mean")
    ):
        x = torch.randn(16, 80, generator=g).to(dt)
        y = (torch.rand(16, 80, generator=g) < 0.1).to(dt)
        opts = dict(backend="triton", reduction=red)
        if w:
            opts["weight"] = torch.rand(16, 80, generator=g).to(dt)
        if pw:
            opts["pos_weight"] = torch.rand(80, generator=g).to(dt)
        if ign:
            opts["ignore_index"] = -1.0
        tag = f"{dt} w={w} pw={pw} ignore={ign} {red}".replace("torch.", "")
        call(f"grid: bce {tag}", LF.binary_cross_entropy_with_logits, x, y, **opts)
        for alpha in (0.25, None):
            call(
                f"grid: focal {tag} alpha={alpha}", LF.sigmoid_focal_loss, x, y, alpha=alpha, **opts
            )
    xm = torch.randn(16, 80, generator=g).to(torch.bfloat16)
    ym = torch.rand(16, 80, generator=g)
    call("grid: focal bf16, float32 targets and weight", LF.sigmoid_focal_loss, xm, ym,
         weight=torch.rand(16, 80, generator=g), backend="triton")  # fmt: skip

    # the softmax family: every class-block size (a power of two up to 4096)
    for dt, k in itertools.product(dtypes, range(14)):
        classes = 2**k if k < 13 else 5000
        x = torch.randn(4, classes, generator=g).to(dt)
        t = torch.randint(0, classes, (4,), generator=g)
        cw = torch.rand(classes, generator=g) + 0.5
        tag = f"{dt} C={classes}".replace("torch.", "")
        for w, ls, z in itertools.product((None, cw), (0.0, 0.1), (0.0, 1e-3)):
            call(f"grid: ce {tag} w={w is not None} ls={ls} z={z}", LF.cross_entropy, x, t,
                 weight=w, label_smoothing=ls, z_loss=z, backend="triton")  # fmt: skip
        for w, ls in itertools.product((None, cw), (0.0, 0.1)):
            call(f"grid: focal {tag} w={w is not None} ls={ls}", LF.softmax_focal_loss, x, t,
                 weight=w, label_smoothing=ls, backend="triton")  # fmt: skip
        for w in (None, cw):
            call(f"grid: sce {tag} w={w is not None}", LF.symmetric_cross_entropy, x, t,
                 weight=w, backend="triton")  # fmt: skip
    xs = torch.randn(2, 19, 16, 16, generator=g)
    ts = torch.randint(0, 19, (2, 16, 16), generator=g)
    call("grid: ce float32 map (2, 19, 16, 16)", LF.cross_entropy, xs, ts, backend="triton")

    # linear cross entropy: bias, class weight, smoothing, softcap, which gradients
    for dt, bias, cwt, ls, cap in itertools.product(
        dtypes, (False, True), (False, True), (0.0, 0.1), (None, 30.0)
    ):
        h = torch.randn(16, 16, generator=g).to(dt)
        wt = torch.randn(16, 16, generator=g).to(dt)
        b = torch.randn(16, generator=g).to(dt) if bias else None
        y = torch.randint(0, 16, (16,), generator=g)
        cw = torch.rand(16, generator=g) + 0.5 if cwt else None
        tag = f"{dt} bias={bias} w={cwt} ls={ls} cap={cap}".replace("torch.", "")
        for grads in ((True, True), (True, False), (False, True)):

            def run(h=h, wt=wt, b=b, y=y, cw=cw, ls=ls, cap=cap, grads=grads):
                hh = h.clone().requires_grad_(grads[0])
                ww = wt.clone().requires_grad_(grads[1])
                bb = b.clone().requires_grad_(True) if b is not None else None
                linear_cross_entropy(hh, ww, y, linear_bias=bb, weight=cw, label_smoothing=ls,
                                     softcap=cap, backend="triton").backward()  # fmt: skip

            calls.append((f"grid: linear {tag} grads(x, w)={grads}", run))
    return calls


def record(which: str) -> tuple[list, list[str]]:
    """The distinct launches ``(fn, args, kwargs, labels, hot)`` and the kernels none of
    the calls launched (a launcher the check would miss)."""
    sink: list = []
    label = [""]
    calls = [(lab, fn, True) for lab, fn in _hot_calls()]
    if which == "all":
        calls += [(lab, fn, False) for lab, fn in _grid_calls()]
    hot_labels = {lab for lab, _, hot in calls if hot}
    import warnings

    with recording(sink, label), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lab, fn, _ in calls:
            label[0] = lab
            fn()
    launched = {fn.__name__ for fn, *_ in sink}
    kernels = {name for _, name, fn in _jit_functions() if name.endswith("_kernel")}
    missing = sorted(kernels - launched) if which == "all" else []
    return [(fn, a, kw, lab, lab in hot_labels) for fn, a, kw, lab in sink], missing


# ----------------------------------------------------------------------------- compiling
def _target(name: str):
    from triton.backends.compiler import GPUTarget

    return GPUTarget("cuda", TARGETS[name]["cap"], 32)


def specialize(fn, args, kwargs, target: str) -> dict:
    """Triton's own specialization of one launch for ``target``: signature, constexprs,
    attributes and options, as ``JITFunction.run`` makes them before compiling."""
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    backend = make_backend(_target(target))
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, spec, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, spec, options)
    return {
        "module": fn.__module__,
        "name": fn.__name__,
        "signature": signature,
        "constexprs": sorted(constexprs.items()),
        "attrs": sorted(attrs.items()),
        "options": {k: options.__dict__[k] for k in ("num_warps", "num_stages")},
        "target": target,
    }


def describe(spec: dict) -> str:
    """A short name of a specialization: the logits' dtype and the constexprs."""
    names = list(spec["signature"])
    dtype = next(v for k, v in spec["signature"].items() if k.endswith("_ptr")).lstrip("*")
    parts = [dtype]
    for (index,), value in spec["constexprs"]:
        name = names[index]
        if name == "DOT_F32" and value is False:
            continue
        if value is True:
            parts.append(name)
        elif value is not False:
            parts.append(f"{name}={value}")
    return " ".join(parts)


def _key(spec: dict, triton_version: str) -> str:
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(spec["module"]), spec["name"])
    src = ASTSource(fn, spec["signature"], dict(spec["constexprs"]), dict(spec["attrs"]))
    text = json.dumps([src.hash(), spec["target"], spec["options"], triton_version, MEASURE])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cuobjdump() -> str:
    import triton

    local = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    return str(local) if local.exists() else (shutil.which("cuobjdump") or "cuobjdump")


def compile_one(spec: dict) -> dict:
    """Compile one specialization and measure it (runs in a worker process)."""
    os.environ.pop("TRITON_INTERPRET", None)
    import warnings

    import triton
    from triton.compiler import ASTSource

    warnings.filterwarnings("ignore")
    fn = getattr(importlib.import_module(spec["module"]), spec["name"])
    src = ASTSource(fn, spec["signature"], dict(spec["constexprs"]), dict(spec["attrs"]))
    t0 = time.perf_counter()
    try:
        compiled = triton.compile(src, target=_target(spec["target"]), options=spec["options"])
    except Exception as err:  # a compile error is a result: reported and failed
        lines = [ln for ln in str(err).splitlines() if ln.strip()] or [""]
        return {"error": f"{type(err).__name__}: {lines[0][:200]} {lines[-1][:300]}"}
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "k.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        out = subprocess.run(
            [_cuobjdump(), "--dump-resource-usage", str(cubin)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    usage = parse_resource_usage(out)
    md = compiled.metadata
    smem = usage["shared"] + int(md.shared)
    blocks, occ = occupancy(usage["reg"], md.num_warps, smem, spec["target"])
    return {
        "regs": usage["reg"],
        "local": usage["local"],
        "stack": usage["stack"],
        "smem": smem,
        "smem_dynamic": int(md.shared),
        "num_warps": md.num_warps,
        "num_stages": md.num_stages,
        "blocks_per_sm": blocks,
        "occupancy": round(occ, 3),
        "compile_s": round(seconds, 1),
        **count_work(compiled.asm["ttir"], compiled.asm["ptx"]),
    }


def run(which: str, targets: list[str], jobs: int, use_cache: bool) -> tuple[list[dict], list]:
    import triton

    launches, missing = record(which)
    specs: dict[str, dict] = {}
    for fn, args, kwargs, label, hot in launches:
        for target in targets:
            spec = specialize(fn, args, kwargs, target)
            key = _key(spec, triton.__version__)
            entry = specs.setdefault(key, {"spec": spec, "used_by": [], "hot": False})
            if label not in entry["used_by"]:
                entry["used_by"].append(label)
            entry["hot"] |= hot
    CACHE.mkdir(parents=True, exist_ok=True)
    todo = [k for k in specs if not (use_cache and (CACHE / f"{k}.json").exists())]
    print(f"{len(specs)} specializations ({len(specs) - len(todo)} cached), {jobs} jobs")
    if todo:
        import multiprocessing as mp

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            for done, (key, result) in enumerate(
                zip(todo, pool.map(compile_one, [specs[k]["spec"] for k in todo]), strict=True)
            ):
                if not result.get("error"):
                    (CACHE / f"{key}.json").write_text(json.dumps(result))
                specs[key]["result"] = result
                spec = specs[key]["spec"]
                what = result.get("error") or (
                    f"{result['regs']} regs, {result['local']} B local, {result['stack']} B stack"
                )
                print(f"  [{done + 1}/{len(todo)}] {spec['name']} {describe(spec)} "
                      f"{spec['target']}: {what}", flush=True)  # fmt: skip
    rows = []
    for key, entry in specs.items():
        result = entry.get("result") or json.loads((CACHE / f"{key}.json").read_text())
        spec = entry["spec"]
        rows.append(
            {
                "kernel": spec["name"],
                "config": describe(spec),
                "target": spec["target"],
                "hot": entry["hot"],
                "used_by": sorted(entry["used_by"]),
                **result,
            }
        )
    rows.sort(key=lambda r: (not r["hot"], r["kernel"], r["config"], r["target"]))
    return rows, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compile_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--set", dest="which", choices=("hot", "all"), default="all")
    parser.add_argument("--targets", default="sm_90a,sm_80")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("run with TRITON_INTERPRET unset: the interpreter compiles nothing")
    if importlib.util.find_spec("triton") is None:
        parser.error("needs Triton (pip install 'losskit[triton]')")
    os.environ.setdefault("TRITON_CACHE_DIR", str(TRITON_CACHE))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    targets = args.targets.split(",")
    for t in targets:
        if t not in TARGETS:
            parser.error(f"unknown target {t!r}; choose from {', '.join(TARGETS)}")
    import triton

    rows, missing = run(args.which, targets, max(1, args.jobs), not args.no_cache)
    suffix = "" if args.which == "all" else "_hot"
    args.out.mkdir(parents=True, exist_ok=True)
    title = (
        f"Triton kernels compiled for {', '.join(targets)} (Triton {triton.__version__}), "
        f"{'every specialization' if args.which == 'all' else 'the benchmarks (hot set)'}"
    )
    # compile times vary from run to run: printed, not written (a rerun leaves the files)
    kept = [{k: v for k, v in r.items() if k != "compile_s"} for r in rows]
    doc = {"triton": triton.__version__, "set": args.which, "targets": targets, "rows": kept}
    (args.out / f"kernel_resources{suffix}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / f"kernel_resources{suffix}.md").write_text(markdown(rows, title))
    print(markdown([r for r in rows if r["hot"]], title))
    failures = check_rows(rows) + [f"{k}: no call launched it" for k in missing]
    for f in failures:
        print("FAIL", f)
    print(f"{len(rows)} kernels compiled, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
