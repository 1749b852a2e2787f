"""No loss reads a tensor's values on the host outside the value checks on a device: on a
GPU each such read (``bool``, ``item``, ``tolist``, ``int``, a boolean mask index,
``nonzero``) waits for the device. Value checks read values by design
(``losskit.set_checks(False)`` turns them off); nothing else may. Checked on meta
tensors, a device without data where every such read raises, over every registry row and
variant, forward and backward. (A shortcut taken only on CPU, where a read does not wait
for a device, is allowed.)"""

from __future__ import annotations

import pytest
import torch

import losskit
from conftest import make_inputs, make_weight, options_for, spec_variants


def test_meta_refuses_each_kind_of_read():
    x = torch.arange(4.0, device="meta")
    reads = [
        lambda: bool(x.sum()),
        lambda: x.sum().item(),
        lambda: x.tolist(),
        lambda: int(x[1]),
        lambda: x[x > 1],
        lambda: x.nonzero(),
    ]
    for read in reads:
        with pytest.raises((RuntimeError, NotImplementedError)):
            read()


def _meta(t):
    return t.to("meta") if isinstance(t, torch.Tensor) else t


@pytest.mark.parametrize("spec, variant", spec_variants())
def test_no_host_reads_with_value_checks_off(spec, variant):
    options, args = options_for(spec, variant, make_inputs(spec, (3, 4), dtype=torch.float32))
    if spec.weight_kind:
        options["weight"] = make_weight(spec, args[0].shape, torch.float32)
    args = [_meta(a) for a in args]
    options = {k: _meta(v) for k, v in options.items()}
    x = args[0].requires_grad_(True)
    with losskit.set_checks(False):
        for reduction in ("mean", "sum", "none"):
            try:
                out = spec.functional(x, *args[1:], reduction=reduction, **options)
            except NotImplementedError as err:  # an operator without a meta kernel
                pytest.skip(f"{spec.name}: {err}".splitlines()[0][:200])
            assert out.is_meta
            torch.autograd.grad(out.sum(), x)
