"""Shared test helpers: the tolerance table and input generation per registry
row, so every test builds its inputs the same way."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

# Kernels run under Triton's CPU interpreter unless a GPU is there (`pytest -m gpu`);
# this must be set before Triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import losskit  # noqa: E402

# One tolerance table for every test: (rtol, atol).
TOL = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-6, 1e-7),
    torch.bfloat16: (5e-2, 5e-3),
    torch.float16: (5e-2, 5e-3),
}

SPECS = list(losskit.REGISTRY.values())
SPEC_IDS = [s.name for s in SPECS]
WEIGHTED_SPECS = [s for s in SPECS if s.weight_kind is not None]


def assert_close(actual, expected, dtype=None, *, rtol=None, atol=None, msg=""):
    dtype = dtype or expected.dtype
    r, a = TOL[dtype]
    torch.testing.assert_close(
        actual,
        expected,
        rtol=rtol if rtol is not None else r,
        atol=atol if atol is not None else a,
        check_dtype=False,
        msg=(lambda m: f"{msg}\n{m}") if msg else None,
    )


def make_inputs(spec, shape=(5, 7), dtype=torch.float64, *, seed=0, extreme=False):
    return spec.sample(shape, dtype, seed=seed, extreme=extreme)


def make_weight(spec, shape, dtype=torch.float64, seed=1):
    return spec.sample_weight(shape, dtype, seed)


def make_module(spec, args, options, factory=None):
    """The row's module for a call on ``args``, and the inputs its forward takes.

    ``factory`` builds the module from keyword options (``spec.module`` by default, or
    ``losskit.get`` by name); the target kind knows what else a module needs (a module
    that owns a linear layer gets the sample's layer weight).
    """
    return spec.target_kind.module_call(factory or spec.module, args, options)


def batched(spec, args):
    """Whether each of ``args`` has one entry per sample (a batch slices it): all but a
    linear layer's weight."""
    return [True, True, *(e.per_sample for e in spec.extra_inputs)][: len(args)]


def options_for(spec, variant, args):
    """A variant's options and inputs; ignore_index variants mark every third target."""
    options = dict(variant)
    args = list(args)
    if options.get("ignore_index") is not None:
        y = args[1].clone()
        y.view(-1)[::3] = options["ignore_index"]
        args[1] = y
    return options, args


def variants(spec):
    return [{}, *spec.variants]


def spec_variants(specs=None):
    return [
        pytest.param(s, v, id=f"{s.name}-{i}")
        for s in specs or SPECS
        for i, v in enumerate(variants(s))
    ]


def pytest_collection_modifyitems(config, items):
    """Test ids are the same in every process: pytest-xdist's workers (``make test``)
    refuse to run when they collect different ids, as an object's address in an id
    (``<function f at 0x...>``) makes them."""
    unstable = [item.nodeid for item in items if re.search(r" at 0x[0-9a-f]+", item.nodeid)]
    if unstable:
        raise pytest.UsageError(
            f"{len(unstable)} test ids hold an object's address, e.g. {unstable[0]}: "
            "give the parameters ids"
        )


PEERS = Path(__file__).resolve().parents[1] / ".cache" / "peers"


def peer_wheel(project: str, version: str) -> Path:
    """A peer's wheel in ``.cache/peers``, downloaded once (``pip download --no-deps``): its
    pure-Python loss files are loaded by path (torchvision's wheel is a CUDA build whose
    compiled ops do not load against the CPU torch, and smp and timm import it). Skips
    the test when the wheel cannot be downloaded."""
    stem = project.replace("-", "_")
    wheels = sorted(PEERS.glob(f"{stem}-{version}-*.whl"))
    if not wheels:
        PEERS.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q"]
        cmd += [f"{project}=={version}", "-d", str(PEERS)]
        if subprocess.run(cmd, capture_output=True, timeout=300).returncode != 0:
            pytest.skip(f"{project}=={version} could not be downloaded")
        wheels = sorted(PEERS.glob(f"{stem}-{version}-*.whl"))
    return wheels[0]
