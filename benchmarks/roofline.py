"""Roofline model of the GPU benchmarks' workloads: what each forward+backward step of
losskit's Triton path must move and compute, and the time that implies on an H100 and an
H200.

``python -m benchmarks.roofline [--results DIR/results.json] [--linear linear.json]
[--resources kernel_resources_hot.json] [--device H100|H200]``

Without results it prints the model (the table of ``benchmarks/README.md``); with the
JSON files of a GPU run (``python -m benchmarks --suite gpu``, ``python -m
benchmarks.linear --json``) it adds each provider's measured median over the floor of the
device the run names. ``--resources``: the compile check's table of the hot set, whose
PTX instruction count per element gives an issue floor (a lower bound: PTX is not SASS,
and it counts one pass of the forward kernel only).

Per workload, for the design as it is in ``losskit/kernels`` (``E`` elements of ``d``
bytes; the functional layer's extra passes listed apart, as ``outside``):

* bytes: the forward kernel reads the logits and targets and writes the gradient (the
  softmax kernel reads the logits twice: no row of 128k classes stays in L2 while 1,000
  others stream), the backward's ``grad.mul_(grad_output)`` reads and writes it again;
* transcendentals: the kernels' exponentials, logarithms and divisions per element
  (the compile check's TTIR counts); MUFU: ``ex2`` and the reciprocal in a division, 16
  per clock per SM; a ``logf`` is libdevice's polynomial on the FP32 pipe;
* linear cross entropy: ``8 N D V`` tensor-core FLOPs (the forward's logits, and the
  backward's recomputed logits, ``G W`` and ``G^T x``), the float32 atomic adds into
  ``grad_x`` (one per tile of ``BLOCK_V`` classes and element of ``x``) and ``grad_w``
  (one per tile of ``BLOCK_M`` rows and element of ``W``), each a read-modify-write at L2.
* linear cross entropy by chunks: ``6 N D V`` tensor-core FLOPs (three matmuls; the
  gradients are made in the forward), their operands moving within the matmuls' tensor
  floor, and the softmax kernel's ``3 d`` bytes per logit (read twice, its gradient
  written over it); the launches run one after the other, so the floor is the matmuls'
  tensor floor plus the kernel's memory floor.

The floor is the largest of bytes / bandwidth, FLOPs / peak, MUFU ops / MUFU rate and
L2 atomic traffic / L2 bandwidth. Peaks (``PEAKS``): the vendor's datasheets for the
H100 SXM5 and H200 SXM (HBM 3.35 and 4.8 TB/s; dense bf16 tensor cores 989 TFLOP/s;
fp32 67 TFLOP/s), 132 SMs at a 1.98 GHz boost clock, and the CUDA C Programming Guide's
throughput table for compute capability 9.0 (16 MUFU results, 128 FP32 lanes and 4
issued warp instructions per clock per SM). The L2 bandwidth (about 10 TB/s for
atomics, both chips) is an assumption, not a datasheet number. Measured on an H200
here (``/work/.library/device/KINDS.md``, 2026-10/11): 4.3 TB/s device copy, 788 TFLOP/s
bf16 on random data.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

SM, CLOCK = 132, 1.98e9
PEAKS = {
    "H100": {"hbm": 3.35e12, "bf16": 989e12, "fp32": 66.9e12},
    "H200": {"hbm": 4.8e12, "bf16": 989e12, "fp32": 66.9e12},
}
MUFU_RATE = SM * 16 * CLOCK  # ex2, lg2, rcp results per second
ISSUE_RATE = SM * 4 * 32 * CLOCK  # thread-instructions per second (4 schedulers per SM)
L2_ATOMIC_BW = 10e12  # bytes/s of read-modify-write at L2: an assumption (see above)
MEASURED_H200 = {"copy": 4.3e12, "bf16": 788e12}
LINEAR_TILE = {"BLOCK_M": 64, "BLOCK_V": 128}  # losskit.kernels.linear's tiles


@dataclass
class Cost:
    name: str
    shape: str
    dtype: str
    bytes: float  # DRAM bytes of the kernels (forward + backward)
    outside: float = 0.0  # DRAM bytes of the functional layer's extra passes
    flops: float = 0.0  # tensor-core FLOPs (bf16)
    mufu: float = 0.0  # MUFU operations (ex2, rcp)
    logs: float = 0.0  # libdevice logf calls (FP32 pipe)
    atomics: float = 0.0  # float32 atomic adds
    elements: float = 0.0
    kernel: str = ""  # the compile check's kernel and config words that identify it
    note: str = ""

    def floors(self, device: str) -> dict[str, float]:
        p = PEAKS[device]
        return {
            "memory": self.bytes / p["hbm"],
            "tensor": self.flops / p["bf16"],
            "mufu": self.mufu / MUFU_RATE,
            "atomics": self.atomics * 8 / L2_ATOMIC_BW,
        }

    def floor(self, device: str) -> tuple[float, str]:
        f = self.floors(device)
        bound = max(f, key=f.get)
        return f[bound], bound


def _elements(shape) -> int:
    return math.prod(shape)


def workloads() -> list[Cost]:
    """The model of every workload of ``benchmarks.runner`` (GPU suite) and of
    ``benchmarks.linear`` at its CUDA defaults."""
    import torch

    from benchmarks import linear as BL
    from benchmarks import runner as BR

    costs = []
    for w in BR._gpu_workloads(quick=False):
        d = torch.empty((), dtype=w.dtype).element_size()
        e = _elements(w.shape)
        shape = "x".join(map(str, w.shape))
        dtype = str(w.dtype).removeprefix("torch.")
        if w.kind == "binary":
            # forward: x, y read, grad written; backward: grad read and written
            kernel = 3 * e * d + 2 * e * d
            # binary.py's _prepare_binary upcasts x and y to float32 and drops them
            outside = e * (2 * d + 8) if d < 4 else 0.0
            focal = w.loss == "sigmoid_focal_loss"
            exps, logs, divs = (2, 2, 1) if focal else (1, 1, 1)
            costs.append(
                Cost(w.name, shape, dtype, kernel, outside, mufu=e * (exps + divs),
                     logs=e * logs, elements=e, kernel="_sigmoid_loss_kernel",
                     note="float32 copies of x and y made and dropped" if outside else "")
            )  # fmt: skip
            continue
        c = w.shape[1]
        rows = e // c
        target = rows * 8  # int64 class indices
        # forward: logits read twice (pass 1, pass 2), gradient written; backward: mul_
        kernel = 3 * e * d + target + 2 * e * d
        exps = 3 if w.loss == "softmax_focal_loss" else 2  # per element, passes 1 and 2
        note = ""
        if w.shape[2:]:
            block_c = 1 << max(c - 1, 0).bit_length()  # the launcher's tile (see README)
            block_s = max(1, min(128, 4096 // block_c))
            note = (
                f"{math.ceil(rows / block_s) / 1e3:.1f} k programs of {block_s} pixels x "
                f"{c} classes, loads coalesced along the pixels"
            )
        costs.append(
            Cost(w.name, shape, dtype, kernel, mufu=e * exps, elements=e,
                 kernel="_softmax_loss_kernel", note=note)
        )  # fmt: skip
    d = BL.DEFAULTS["cuda"]
    costs.append(linear_cost(d["tokens"], d["dim"], d["classes"], d["dtype"]))
    rows = BL.chunk_rows(d["classes"], d["dtype"])
    costs.append(linear_chunked_cost(d["tokens"], d["dim"], d["classes"], d["dtype"], rows))
    return costs


def linear_cost(n: int, dim: int, v: int, dtype: str) -> Cost:
    """The fused linear cross entropy kernels at ``N x D x V``."""
    b = 4 if dtype == "float32" else 8 if dtype == "float64" else 2
    tiles_m = math.ceil(n / LINEAR_TILE["BLOCK_M"])
    tiles_v = math.ceil(v / LINEAR_TILE["BLOCK_V"])
    atomics = tiles_v * n * dim + tiles_m * v * dim + tiles_m * v  # grad_x, grad_w, grad_b
    # unique bytes: x and W read by both launches, the float32 accumulators zeroed, added
    # into (counted as atomics), read and cast to the parameters' dtype at the end
    params = n * dim + v * dim
    unique = 2 * params * b + 2 * 4 * params + params * b
    return Cost(
        "linear CE (triton)", f"{n}x{dim}x{v}", dtype, unique,
        flops=8 * n * dim * v, mufu=2 * n * v, atomics=atomics,
        kernel="_linear_ce_backward_kernel",
        note=f"{atomics / 1e9:.1f} G float32 atomics, "
        f"{4 * params / 2**30:.2f} GiB of float32 accumulators",
    )  # fmt: skip


@dataclass
class SerialCost(Cost):
    """A workload of launches that run one after the other (cuBLAS matmuls, then a
    memory-bound kernel): its floor is the sum of the tensor-core floor of the matmuls and
    the memory (or MUFU) floor of the rest, not their maximum."""

    def floor(self, device: str) -> tuple[float, str]:
        f = self.floors(device)
        rest = max(f["memory"], f["mufu"])
        return f["tensor"] + rest, "tensor + memory"


def linear_chunked_cost(n: int, dim: int, v: int, dtype: str, rows: int) -> Cost:
    """Linear cross entropy by chunks (``losskit.kernels.linear_chunked``): three matmuls
    of ``2 N D V`` FLOPs each (the logits, ``G W``, ``G^T x``), compute-bound (their
    operands, ``x``, ``W``, ``grad_W`` and the tile of logits, move within their tensor
    floor), and the softmax kernel, which reads each logit twice and writes its gradient
    over it: ``3 d`` bytes per logit, memory-bound."""
    b = 4 if dtype == "float32" else 8 if dtype == "float64" else 2
    chunks = math.ceil(n / rows)
    logits = n * v
    h200 = 6 * n * dim * v / MEASURED_H200["bf16"] + 3 * logits * b / MEASURED_H200["copy"]
    return SerialCost(
        "linear CE (triton, chunked)", f"{n}x{dim}x{v}", dtype, 3 * logits * b,
        flops=6 * n * dim * v, mufu=2 * logits, elements=logits,
        kernel="_softmax_loss_kernel",
        note=f"{chunks} chunks of {rows} rows: a {rows * v * b / 2**30:.2f} GiB tile of "
        f"logits; no atomics; {h200 * 1e3:.1f} ms at the H200's measured rates",
    )  # fmt: skip


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def model_table(costs: list[Cost], resources: dict | None = None) -> str:
    head = (
        "| workload | shape | dtype | GB (kernels) | GB outside | TFLOP | MUFU G | logf G "
        "| atomics G | floor H100 ms | floor H200 ms | bound |"
    )
    if resources:
        head += " PTX instr/elt | issue floor ms |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in costs:
        h100, _ = c.floor("H100")
        h200, bound = c.floor("H200")
        cells = [
            c.name,
            c.shape,
            c.dtype,
            f"{c.bytes / 1e9:.2f}",
            f"{c.outside / 1e9:.2f}" if c.outside else "-",
            f"{c.flops / 1e12:.1f}" if c.flops else "-",
            f"{c.mufu / 1e9:.2f}",
            f"{c.logs / 1e9:.2f}" if c.logs else "-",
            f"{c.atomics / 1e9:.1f}" if c.atomics else "-",
            _fmt_ms(h100),
            _fmt_ms(h200),
            bound,
        ]
        if resources:
            per = _instr_per_element(resources, c)
            issue = per * c.elements / ISSUE_RATE if per else 0.0
            if issue > h200:
                cells[-1] += " (issue, H200)"
            cells += [f"{per:.0f}", _fmt_ms(issue)] if per else ["-"] * 2
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _instr_per_element(resources: dict, c: Cost) -> float | None:
    """PTX instructions per element of the hot row of ``c``'s kernel on sm_90a (the
    softmax kernel's loops run once per block of classes: its count is per block)."""
    if c.kernel != "_sigmoid_loss_kernel":
        return None
    for r in resources.get("rows", []):
        if r["kernel"] != c.kernel or r["target"] != "sm_90a" or "ptx_instr" not in r:
            continue
        if any(label.startswith(f"bench: {c.name} ") for label in r["used_by"]):
            block = int(next(w for w in r["config"].split() if w.startswith("BLOCK="))[6:])
            return r["ptx_instr"] / (block / (32 * r["num_warps"]))
    return None


def measured_table(
    costs: list[Cost], results: dict | None, linear: dict | None, device: str | None = None
) -> str:
    """Each measured provider's median over the floor of the run's device."""
    by_name = {c.name: c for c in costs}
    lines = [
        "| workload | provider | device | median ms | floor ms | bound | median / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = []
    if results:
        device = device or _device(results.get("environment", {}).get("device_name", ""))
        for r in results.get("rows", []):
            if r.get("workload") in by_name:
                rows.append((by_name[r["workload"]], r["provider"], device, r["median_ms"]))
    if linear:
        a = linear.get("args", {})
        fused = linear_cost(a["tokens"], a["dim"], a["classes"], a["dtype"])
        medians: dict[str, list[float]] = {}
        costs_by_label: dict[str, Cost] = {}
        for r in linear.get("results", []):
            label = r["provider"] + (f" (chunk {r['chunk']})" if r.get("chunk") else "")
            medians.setdefault(label, []).append(r["median_ms"])
            chunked = r["provider"] == "losskit triton chunked" and r.get("chunk")
            costs_by_label[label] = (
                linear_chunked_cost(a["tokens"], a["dim"], a["classes"], a["dtype"], r["chunk"])
                if chunked
                else fused
            )
        for label, ms in medians.items():
            rows.append((costs_by_label[label], label, device or "H200", statistics.median(ms)))
    for c, provider, device, median in rows:
        floor, bound = c.floor(device)
        lines.append(
            f"| {c.name} | {provider} | {device} | {median:.3f} | {_fmt_ms(floor)} | {bound} "
            f"| {median / (floor * 1e3):.2f} |"
        )
    return "\n".join(lines)


def _device(name: str) -> str:
    return "H100" if "H100" in name else "H200"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.roofline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", type=Path, help="results.json of the GPU suite")
    parser.add_argument("--linear", type=Path, help="the JSON of benchmarks.linear --json")
    parser.add_argument("--resources", type=Path, help="kernel_resources_hot.json")
    parser.add_argument("--device", choices=tuple(PEAKS), help="default: the results' device")
    args = parser.parse_args(argv)

    def load(path):
        return json.loads(path.read_text()) if path and path.exists() else None

    costs = workloads()
    print("## Roofline model (forward + backward, losskit's Triton path)\n")
    print(model_table(costs, load(args.resources)))
    print(
        f"\nPeaks: HBM {PEAKS['H100']['hbm'] / 1e12} TB/s (H100 SXM), "
        f"{PEAKS['H200']['hbm'] / 1e12} TB/s (H200); bf16 {PEAKS['H200']['bf16'] / 1e12:.0f} "
        f"TFLOP/s; MUFU {MUFU_RATE / 1e12:.2f} T/s; L2 atomics {L2_ATOMIC_BW / 1e12:.0f} TB/s "
        "(assumed), 8 B per float32 atomic add."
    )
    results, linear = load(args.results), load(args.linear)
    if results or linear:
        print("\n## Measured / floor\n")
        print(measured_table(costs, results, linear, args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
