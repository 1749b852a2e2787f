"""Fused Triton kernels, imported lazily: losskit works without Triton or a GPU.

``select(loss, backend, tensor, unsupported)`` is the one place that decides between the
torch path and a kernel:

* ``"torch"``: always the torch path.
* ``"auto"``: a kernel when the input is on CUDA, Triton imports and the options are
  supported; else the torch path.
* ``"triton"``: a kernel, or a clear error: on CPU it needs ``TRITON_INTERPRET=1`` (set
  before Triton is first imported: that is how CI runs every kernel), and an option the
  kernel does not support raises instead of being ignored.
"""

from __future__ import annotations

import functools
import os

import torch

from .. import _checks as C

BACKENDS = ("auto", "torch", "triton")


@functools.cache
def triton_importable() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return False
    return True


def interpreter_on() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def select(loss: str, backend: str, tensor: torch.Tensor, unsupported: str | None) -> bool:
    """True to run the Triton kernel. ``unsupported`` names an option the kernel lacks."""
    if backend not in BACKENDS:
        C.fail(loss, f"backend must be one of 'auto', 'torch', 'triton', got {backend!r}.")
    if backend == "torch":
        return False
    if backend == "auto":
        return unsupported is None and tensor.is_cuda and triton_importable()
    if unsupported is not None:
        C.fail(
            loss,
            f"the Triton kernel does not support {unsupported}.",
            "use backend='auto' (falls back to the torch path) or backend='torch'.",
        )
    if not triton_importable():
        C.fail(
            loss,
            "backend='triton' needs Triton.",
            "pip install 'losskit[triton]'.",
            cls=ImportError,
        )
    if not tensor.is_cuda and not interpreter_on():
        C.fail(
            loss,
            f"backend='triton' needs a CUDA tensor, got one on {tensor.device}.",
            "on CPU, set TRITON_INTERPRET=1 before importing Triton (for tests), or use "
            "backend='torch'.",
        )
    return True
