"""The registry is the only declaration of a loss: every export list, module and table is
made from it or checked against it here, once for every row."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import pytest

import losskit
from conftest import SPEC_IDS, SPECS
from losskit import _kinds
from losskit._registry import losses_table

# Options that choose how the torch path runs, not what it computes: the NumPy references
# do not take them.
EXECUTION_OPTIONS = {"backend"}
METRICS = {"top_k_accuracy", "in_top_k"}


def _names():
    return {n for s in SPECS for n in (s.name, *s.aliases)}


def test_functional_and_reference_export_exactly_the_registry():
    assert set(losskit.functional.__all__) == _names() | METRICS
    assert set(losskit.reference.__all__) == _names() | METRICS | {"Step", "record"}
    for name in losskit.functional.__all__:
        assert callable(getattr(losskit.functional, name))
        assert callable(getattr(losskit.reference, name))
    assert len(losskit.functional.__all__) == len(set(losskit.functional.__all__))


def test_nn_exports_exactly_the_registry_modules():
    modules = {n for s in SPECS for n in (s.module_name, *s.module_aliases)}
    assert set(losskit.nn.__all__) == modules | {"Loss", "CombinedLoss"}  # not rows
    for s in SPECS:
        cls = s.module
        assert cls is getattr(losskit.nn, s.module_name)
        assert all(getattr(losskit.nn, a) is cls for a in s.module_aliases)
        assert cls.__module__.startswith("losskit.nn") and cls.__doc__


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_module_made_from_row_takes_the_functional_options(spec):
    cls = spec.module
    if not issubclass(cls, losskit.nn.Loss):  # written by hand (owns a linear layer)
        return
    fn = inspect.unwrap(spec.functional)
    keyword = {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }
    assert cls._defaults == keyword
    assert fn.__name__ in cls.__doc__
    module = cls()
    assert pickle.loads(pickle.dumps(module)).options() == module.options()


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_functional_signature_equals_reference_signature(spec):
    def params(f):
        sig = inspect.signature(inspect.unwrap(f))
        return [
            (p.name, p.kind, p.default)
            for p in sig.parameters.values()
            if p.name not in EXECUTION_OPTIONS
        ]

    assert params(spec.functional) == params(spec.reference)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_kinds_are_kind_objects(spec):
    assert isinstance(spec.input_kind, _kinds.InputKind)
    assert isinstance(spec.target_kind, _kinds.TargetKind)
    assert spec.weight_kind == spec.target_kind.weight_kind
    assert spec.plot_axis == spec.target_kind.plot_axis


def test_readme_table_is_the_registry():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("<!-- losses-begin")[1].split("-->", 1)[1]
    block = block.split("<!-- losses-end -->")[0].strip()
    assert block == losses_table(), "run `python -m losskit._registry` and paste its table"


@pytest.mark.parametrize(
    "typed, name",
    [
        ("ce", "cross_entropy"),
        ("mse", "mse_loss"),
        ("MSE", "mse_loss"),
        ("CrossEntropyLoss", "cross_entropy"),
        ("bcewithlogitsloss", "binary_cross_entropy_with_logits"),
        ("mae_loss", "l1_loss"),
        ("MAELoss", "l1_loss"),
    ],
)
def test_names_users_type_resolve(typed, name):
    assert losskit.spec(typed).name == name
    assert type(losskit.get(typed)) is losskit.spec(name).module


@pytest.mark.parametrize("typed", ["focal", "bce"])
def test_ambiguous_names_get_suggestions(typed):
    with pytest.raises(losskit.LossInputError, match="did you mean") as info:
        losskit.get(typed)
    assert str(info.value).count("'") >= 4  # at least two names suggested


@pytest.mark.parametrize("bad", [None, 3, 2.5])
def test_a_name_that_is_not_a_string_is_a_type_error(bad):
    with pytest.raises(losskit.LossTypeError, match="must be a string"):
        losskit.get(bad)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_module_positional_and_unknown_options_name_the_keywords(spec):
    if not issubclass(spec.module, losskit.nn.Loss):
        return
    with pytest.raises(losskit.LossTypeError, match="keyword arguments") as info:
        spec.module(*["sum"] * (len(spec.positional) + 1))  # beyond torch's order
    assert str(info.value).startswith(f"{spec.module_name}:")
    with pytest.raises(losskit.LossTypeError, match="did you mean reduction"):
        spec.module(reductoin="sum")
    args = spec.sample((3, 4), seed=0)
    with pytest.raises(losskit.LossTypeError, match="did you mean normalizer"):
        spec.module()(*args, normalise=2.0)


def test_wheel_carries_py_typed_and_license_and_the_metadata_version(tmp_path):
    import importlib.metadata
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(root),
            "-w",
            str(tmp_path),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("losskit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "losskit/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "losskit/_kinds/__init__.py" in names and not any(
        n.startswith("benchmarks/") for n in names
    )
    assert losskit.__version__ == importlib.metadata.version("losskit")
    assert wheel.name.startswith(f"losskit-{losskit.__version__}-")
    out = subprocess.run(
        [sys.executable, "-m", "losskit", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"losskit {losskit.__version__}"
