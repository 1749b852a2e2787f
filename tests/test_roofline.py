"""The roofline model (``benchmarks/roofline.py``) on numbers worked by hand, its
measured/floor table on hand-made results, and ``benchmarks/gpu.sh``'s budget (time
limits within 9 minutes, at most 8 files under $OUT)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``benchmarks`` lives beside ``src``, not in the package
    sys.path.insert(0, str(ROOT))

from benchmarks import roofline as R  # noqa: E402
from benchmarks import runner  # noqa: E402


def _costs():
    return {c.name: c for c in R.workloads()}


def test_every_gpu_workload_is_modelled():
    names = set(_costs())
    assert {w.name for w in runner._gpu_workloads(quick=False)} <= names
    assert "linear CE (triton)" in names


def test_sigmoid_focal_by_hand():
    c = _costs()["sigmoid focal fp32"]
    e = 2_000_000 * 80
    assert c.bytes == 5 * 4 * e  # x, y read, grad written; grad read and written
    assert c.outside == 0  # float32 input: no upcast copy
    assert c.mufu == 3 * e and c.logs == 2 * e
    assert c.floor("H200") == pytest.approx((5 * 4 * e / 4.8e12, "memory"))
    bf16 = _costs()["sigmoid focal bf16"]
    assert bf16.outside == e * (2 + 2 + 4 + 4)  # x, y read, float32 copies written
    assert bf16.outside / 1e9 == pytest.approx(1.92)


def test_linear_by_hand():
    c = _costs()["linear CE (triton)"]
    n, d, v = 8192, 4096, 128256
    assert c.flops == 8 * n * d * v
    grad_x = 1002 * n * d  # 128256 / 128 column tiles
    grad_w = 128 * v * d  # 8192 / 64 row tiles
    assert c.atomics == grad_x + grad_w + 128 * v
    assert c.atomics / 1e9 == pytest.approx(100.9, abs=0.05)
    floor, bound = c.floor("H200")
    assert bound == "atomics" and floor > 0.040  # cannot meet 40 ms by the model
    assert c.floors("H200")["tensor"] == pytest.approx(8 * n * d * v / 989e12)


def test_measured_over_floor():
    results = {
        "environment": {"device_name": "NVIDIA H100 80GB HBM3"},
        "rows": [
            {"workload": "symmetric CE fp32", "provider": "losskit (triton)", "median_ms": 0.782}
        ],
    }
    linear = {
        "args": {"tokens": 1024, "dim": 1024, "classes": 32000, "dtype": "bfloat16"},
        "results": [
            {"provider": "losskit triton", "chunk": None, "median_ms": 10.0},
            {"provider": "losskit triton", "chunk": None, "median_ms": 12.0},
        ],
    }
    table = R.measured_table(R.workloads(), results, linear)
    sce = next(ln for ln in table.splitlines() if ln.startswith("| symmetric CE fp32"))
    floor = 5 * 4 * 65536 * 1000 / 3.35e12  # H100, memory-bound
    assert f"| {0.782 / (floor * 1e3):.2f} |" in sce and "| H100 |" in sce
    lin = next(ln for ln in table.splitlines() if "losskit triton" in ln)
    c = R.linear_cost(1024, 1024, 32000, "bfloat16")
    assert f"| 11.000 | {R._fmt_ms(c.floor('H100')[0])} |" in lin  # median of the rounds


def test_gpu_sh_fits_one_run():
    text = (ROOT / "benchmarks" / "gpu.sh").read_text()
    limits = [int(m) for m in re.findall(r"^step (\d+) ", text, re.MULTILINE)]
    assert len(limits) == 5 and sum(limits) + 10 * len(limits) <= 9 * 60
    # the files it leaves under $OUT
    files = set(re.findall(r"\$out/([A-Za-z0-9_.]+)", text))
    files |= {f"kernel_resources_hot.{ext}" for ext in ("md", "json")}  # the compile check
    assert "results.csv" not in files and len(files) <= 8, files


def test_linear_chunked_by_hand():
    """Three matmuls of 2 N D V FLOPs; the softmax kernel reads each bfloat16 logit twice
    and writes its gradient over it; the floor adds the two (one launch after another)
    and meets the 40 ms target on an H200 by the model."""
    c = _costs()["linear CE (triton, chunked)"]
    n, d, v = 8192, 4096, 128256
    assert c.flops == 6 * n * d * v
    assert c.bytes == 3 * 2 * n * v
    assert c.atomics == 0
    floor, bound = c.floor("H200")
    assert floor == pytest.approx(6 * n * d * v / 989e12 + 3 * 2 * n * v / 4.8e12)
    assert bound == "tensor + memory" and floor < 0.040
