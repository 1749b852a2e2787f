"""No loss reads a tensor's values on the host when value checks are off: on a GPU each
such read (``bool``, ``item``, ``tolist``, ``int``, a boolean mask index, ``nonzero``)
waits for the device. Value checks read values by design (``losskit.set_checks(False)``
turns them off); nothing else may. Checked on CPU with a torch-function mode that refuses
every host read, over every registry row, forward and backward, each variant."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

import losskit
from conftest import make_inputs, make_weight, options_for, spec_variants

READS = {"__bool__", "item", "tolist", "__int__", "__float__", "__index__", "nonzero",
         "argwhere", "masked_select", "unique", "unique_consecutive", "bincount"}  # fmt: skip


class _NoHostReads(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in READS:
            raise AssertionError(f"host read: {name}")
        if name == "__getitem__" and _has_bool_index(args[1] if len(args) > 1 else None):
            raise AssertionError("host read: a boolean mask index")
        return func(*args, **(kwargs or {}))


def _has_bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def test_the_mode_catches_each_kind_of_read():
    x = torch.arange(4.0)
    reads = [
        lambda: bool(x.sum()),
        lambda: x.sum().item(),
        lambda: x.tolist(),
        lambda: int(x[1]),
        lambda: x[x > 1],
        lambda: x.nonzero(),
    ]
    for read in reads:
        with pytest.raises(AssertionError, match="host read"), _NoHostReads():
            read()


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_no_host_reads_with_value_checks_off(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, (3, 4), dtype=torch.float32))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    x = args[0].requires_grad_(True)
    with losskit.set_checks(False), _NoHostReads():
        for reduction in ("mean", "sum", "none"):
            out = spec.functional(x, *args[1:], reduction=reduction, **options)
            torch.autograd.grad(out.sum(), x)
