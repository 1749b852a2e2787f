"""The compile check (``benchmarks/compile_check.py``): the benchmarks' kernels (the hot
set) compiled for sm_90a and sm_80 without a GPU, in a subprocess (this process runs
Triton's interpreter), and the rules that fail it, on hand-made results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from losskit import kernels

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``benchmarks`` lives beside ``src``, not in the package
    sys.path.insert(0, str(ROOT))

from benchmarks import compile_check as CC  # noqa: E402
from benchmarks import runner  # noqa: E402

needs_triton = pytest.mark.skipif(
    not kernels.triton_importable(), reason="needs Triton (it compiles the kernels)"
)


def _without_interpreter(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    """``python *args`` in a subprocess with Triton's interpreter off (this process runs
    it), from the project root."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@needs_triton
def test_hot_set_compiles_without_spills():
    out = ROOT / "benchmarks" / "results"
    args = ["-m", "benchmarks.compile_check", "--set", "hot", "--out", str(out)]
    done = _without_interpreter(args, timeout=1500)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]
    doc = json.loads((out / "kernel_resources_hot.json").read_text())
    rows = doc["rows"]
    assert {r["target"] for r in rows} == {"sm_90a", "sm_80"}
    # every benchmarked workload reached a kernel, each kernel family is in the set
    used = {label for r in rows for label in r["used_by"]}
    for w in runner._gpu_workloads(quick=False):
        assert any(label.startswith(f"bench: {w.name} ") for label in used), w.name
    assert any(label.startswith("bench: linear CE") for label in used)
    assert {r["kernel"] for r in rows} >= {
        "_sigmoid_loss_kernel",
        "_softmax_loss_kernel",
        "_linear_ce_forward_kernel",
        "_linear_ce_backward_kernel",
    }
    for r in rows:
        assert r["hot"] and not r.get("error"), r
        assert r["regs"] > 0 and 0 < r["occupancy"] <= 1, r
        if r["target"] == "sm_90a":
            assert r["local"] == 0 and r["stack"] == 0, r
    # the sigmoid focal kernel: two exponentials, two logarithms, one division per element
    for r in rows:
        if r["kernel"] == "_sigmoid_loss_kernel" and "FOCAL" in r["config"].split():
            assert (r["ttir_exp"], r["ttir_log"], r["ttir_div"]) == (2, 2, 1), r
    assert (out / "kernel_resources_hot.md").read_text().count("| yes |") == len(rows)


def test_parse_resource_usage():
    text = (
        "\nResource usage:\n Common:\n  GLOBAL:11 CONSTANT[4]:8\n Function _k:\n"
        "  REG:252 STACK:680 SHARED:1024 LOCAL:48 CONSTANT[0]:656 TEXTURE:0 SURFACE:0\n"
    )
    assert CC.parse_resource_usage(text) == {"reg": 252, "stack": 680, "shared": 1024, "local": 48}
    with pytest.raises(ValueError, match="no resource line"):
        CC.parse_resource_usage("Resource usage:\n")


def test_occupancy():
    # 252 registers x 128 threads: 8 warps by registers, 2 blocks; 105 KiB: 2 blocks
    assert CC.occupancy(252, 4, 107520, "sm_90a") == (2, 0.125)
    # few registers, no shared memory: the 64 warp slots are the limit
    assert CC.occupancy(32, 4, 0, "sm_90a") == (16, 1.0)
    # 96 KiB of shared memory: one block on an A100 (164 KiB), two on Hopper (228 KiB)
    assert CC.occupancy(64, 4, 98304, "sm_80")[0] == 1
    assert CC.occupancy(64, 4, 98304, "sm_90a")[0] == 2
    # 255 registers x 256 threads leaves one block
    assert CC.occupancy(255, 8, 0, "sm_80") == (1, 0.125)


def _row(**kw):
    row = dict(kernel="_k", config="fp32", target="sm_90a", hot=True, local=0, stack=0, smem=0)
    row.update(kw)
    return row


def test_check_rows_fails_on_hot_spills_smem_and_errors():
    assert CC.check_rows([_row(), _row(target="sm_80", local=748)]) == []
    assert CC.check_rows([_row(hot=False, local=4096)]) == []  # reported, not failed
    (spill,) = CC.check_rows([_row(local=748)])
    assert "748 B local memory" in spill and "sm_90a" in spill
    (stack,) = CC.check_rows([_row(stack=64)])
    assert "64 B stack" in stack
    (ordered,) = CC.check_rows([_row(ptx_ordered=3)])
    assert "3 ordered atomics or fences" in ordered
    assert CC.check_rows([_row(hot=False, ptx_ordered=3)]) == []
    (smem,) = CC.check_rows([_row(target="sm_80", hot=False, smem=170_000)])
    assert "shared memory > 166912" in smem
    assert CC.check_rows([_row(smem=200_000)]) == []  # within Hopper's 227 KiB
    (err,) = CC.check_rows([_row(error="CompilationError: boom")])
    assert "compile error" in err


def test_count_work():
    ttir = "%1 = math.exp %0 : tensor<1024xf32>\n%2 = math.log %1\n%3 = arith.divf %1, %2\n"
    ptx = (
        "\tex2.approx.f32 \t%r1, %r2;\n\tex2.approx.ftz.f32 %r3, %r4;\n"
        "\tdiv.full.f32 %r5, %r6, %r7;\n\t@%p1 atom.global.gpu.acq_rel.add.f32 %r8, [%rd1], %r9;\n"
        "\t@%p2 red.global.add.f32 [%rd2], %r10;\n\tmov.b32 %r11, 0;\n"
        "\tfence.proxy.async.shared::cta;\n\tmembar.gl;\n"
    )
    counts = CC.count_work(ttir, ptx)
    assert counts["ptx_instr"] == 8
    # the acq_rel atom and the GPU-wide membar; not the red (relaxed) nor the proxy fence
    assert counts["ptx_ordered"] == 2
    assert (counts["ttir_exp"], counts["ttir_log"], counts["ttir_div"]) == (1, 1, 1)
    assert (counts["ptx_ex2"], counts["ptx_div"], counts["ptx_atom"], counts["ptx_lg2"]) == (
        2,
        1,
        2,
        0,
    )


def test_shrink_keeps_the_residue_mod_16():
    for n in (1, 2, 15, 16, 17, 19, 31, 32, 33, 80, 1000, 4096, 8192, 128256, 2_000_000):
        s = CC._shrink(n)
        assert s % 16 == n % 16 and s <= max(n, 32) and (s == 1) == (n == 1)


_GARBAGE_OUTPUTS = """
import torch
from benchmarks import compile_check as CC

empty, empty_like, flip = torch.empty, torch.empty_like, [0.0]

def filled(t):
    if t.is_floating_point():
        flip[0] = 1.0 - flip[0]
        t.fill_(flip[0])
    return t

torch.empty = lambda *a, **k: filled(empty(*a, **k))
torch.empty_like = lambda *a, **k: filled(empty_like(*a, **k))
launches, _ = CC.record("hot")
print(sorted({fn.__name__ for fn, *_ in launches}))
"""


@needs_triton
def test_recording_ignores_the_unrun_kernels_outputs():
    """A recorded kernel does not run: its outputs hold whatever ``torch.empty`` gave, so
    the launchers' value checks on them (a mean's denominator) must not run while
    recording. Here ``torch.empty`` gives 1, then 0, then 1...: a summed loss of 1 over a
    denominator of 0, which the weighted-mean check refuses. (A subprocess, as above:
    this process runs Triton's interpreter.)"""
    done = _without_interpreter(["-c", _GARBAGE_OUTPUTS], timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]
    assert "_sigmoid_loss_kernel" in done.stdout and "_softmax_loss_kernel" in done.stdout
