"""A drop-in that never surprises (issue 12): the call forms a torch, torchvision, Keras or
smp user already writes, one rule for each argument, explain's honesty, the command line
and the installed package, each tested across the registry."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as TF

import losskit
from conftest import SPEC_IDS, SPECS, make_module

DEPRECATED = {"size_average", "reduce"}


def _options(spec):
    """The keyword options of the row's public function."""
    fn = inspect.unwrap(spec.functional)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }


def _public_name(spec):
    return inspect.unwrap(spec.functional).__name__


# --------------------------------------------------------------------------- call forms
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_positional_order_names_options_of_the_loss(spec):
    """Every name in the row's declared order is an option of the loss, or one of torch's
    deprecated placeholders; where torch has the loss, the order is torch's own."""
    options = _options(spec)
    assert set(spec.positional) <= set(options) | DEPRECATED
    assert len(set(spec.positional)) == len(spec.positional)
    torch_fn = getattr(TF, _public_name(spec), None)
    if torch_fn is not None:
        n_inputs = len(getattr(losskit.F, _public_name(spec)).positional_inputs)
        params = list(inspect.signature(torch_fn).parameters.values())[n_inputs:]
        torch_order = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        assert spec.positional == torch_order
    torch_module = getattr(torch.nn, spec.module_name, None)
    if torch_module is not None and issubclass(spec.module, losskit.nn.Loss):
        params = list(inspect.signature(torch_module).parameters.values())
        module_order = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        assert spec.positional[: len(module_order)] == module_order


def _positional_call(spec):
    """Values for the row's positional order (defaults; ``reduction="sum"``; ``None`` for
    torch's deprecated slots) and the same options by keyword."""
    options = _options(spec)
    args, kw = [], {}
    for name in spec.positional:
        value = None if name in DEPRECATED else options[name]
        if name == "reduction":
            value = "sum"
        args.append(value)
        if name not in DEPRECATED:
            kw[name] = value
    return args, kw


@pytest.mark.parametrize("spec", [s for s in SPECS if s.positional], ids=lambda s: s.name)
def test_torch_positional_order_works_for_function_and_module(spec):
    inputs = spec.sample((3, 4), seed=0)
    args, kw = _positional_call(spec)
    expected = spec.functional(*inputs, **kw)
    torch.testing.assert_close(spec.functional(*inputs, *args), expected)
    if issubclass(spec.module, losskit.nn.Loss):
        module, forward = spec.target_kind.module_call(
            lambda **o: spec.module(*args, **o), inputs, {}
        )
        assert module.options() == spec.module(**kw).options()
        torch.testing.assert_close(module(*forward), expected)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_module_takes_its_inputs_by_name(spec):
    """``MarginRankingLoss()(input1=a, input2=b, target=y)``, as torch's modules take them:
    every input by its name, or the first positionally and the rest by name, gives the
    positional call's value; a name given twice, or a later input without an earlier
    one, is a LossTypeError naming the module."""
    if not issubclass(spec.module, losskit.nn.Loss):
        pytest.skip("a module with its own forward")
    module, forward = spec.target_kind.module_call(spec.module, spec.sample((3, 4), seed=0), {})
    names = type(module)._inputs[: len(forward)]
    expected = module(*forward)
    torch.testing.assert_close(module(**dict(zip(names, forward, strict=True))), expected)
    rest = dict(zip(names[1:], forward[1:], strict=True))
    torch.testing.assert_close(module(forward[0], **rest), expected)
    with pytest.raises(losskit.LossTypeError, match="both positionally and by keyword") as info:
        module(*forward, **{names[0]: forward[0]})
    assert str(info.value).startswith(f"{type(module).__name__}:")
    with pytest.raises(losskit.LossTypeError, match="which comes before"):
        module(**{names[-1]: forward[-1]})


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_an_option_beyond_the_order_names_the_loss_and_the_keyword(spec):
    inputs = spec.sample((3, 4), seed=0)
    too_many = ["sum"] * (len(spec.positional) + 1)
    with pytest.raises(losskit.LossTypeError, match="keyword") as info:
        spec.functional(*inputs, *too_many)
    assert str(info.value).startswith(f"{_public_name(spec)}:")
    if issubclass(spec.module, losskit.nn.Loss):
        with pytest.raises(losskit.LossTypeError, match="keyword") as info:
            spec.module(*too_many)
        assert str(info.value).startswith(f"{spec.module_name}:")


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_unknown_keyword_to_the_function_gets_did_you_mean(spec):
    inputs = spec.sample((3, 4), seed=0)
    with pytest.raises(
        losskit.LossTypeError, match="unknown option 'reductoin'.*did you mean reduction"
    ):
        spec.functional(*inputs, reductoin="sum")


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if "reduce" in s.positional], ids=lambda s: s.name
)
def test_deprecated_size_average_and_reduce_name_the_reduction(spec):
    order = spec.positional
    args = [None] * (order.index("reduce") + 1)
    args[order.index("reduce")] = False
    inputs = spec.sample((3, 4), seed=0)
    with pytest.raises(losskit.LossTypeError, match="reduction='none'"):
        spec.functional(*inputs, *args)
    with pytest.raises(losskit.LossTypeError, match="deprecated"):
        spec.functional(*inputs, size_average=False)


def test_the_forms_of_the_issue():
    x, y, w = torch.randn(3, 2), torch.tensor([0, 1, 0]), torch.tensor([1.0, 2.0])
    F = losskit.F
    torch.testing.assert_close(F.cross_entropy(x, y, w), TF.cross_entropy(x, y, w))
    torch.testing.assert_close(
        losskit.nn.CrossEntropyLoss(w)(x, y), torch.nn.CrossEntropyLoss(w)(x, y)
    )
    r = torch.randn(5) * 3
    torch.testing.assert_close(
        losskit.nn.HuberLoss("sum", 0.5)(r, torch.zeros(5)),
        torch.nn.HuberLoss("sum", 0.5)(r, torch.zeros(5)),
    )
    logits, t = torch.randn(6), torch.tensor([1.0, 0, 1, 0, 0, 1])
    torch.testing.assert_close(
        F.sigmoid_focal_loss(logits, t, 0.25, 2, "none"),
        F.sigmoid_focal_loss(logits, t, alpha=0.25, gamma=2, reduction="none"),
    )
    with pytest.raises(losskit.LossTypeError, match="both positionally and by keyword"):
        F.cross_entropy(x, y, w, weight=w)


HABITS = [
    ("softmax_focal_loss", {"alpha": 0.25}, "weight="),
    ("categorical_cross_entropy", {"axis": -1}, "dim="),
    ("cross_entropy", {"from_logits": True}, "takes logits"),
    ("binary_cross_entropy", {"from_logits": False}, "probabilities"),
    ("cross_entropy", {"mode": "multiclass"}, "one function per form"),
    ("cross_entropy", {"class_weight": None}, "weight="),
    ("mean_absolute_percentage_error", {"sample_weight": None}, "weight="),
    ("smooth_l1_loss", {"delta": 1.0}, "beta"),
    ("huber_loss", {"beta": 1.0}, "delta"),
    ("cross_entropy", {"gamma": 2.0}, "softmax_focal_loss"),
    ("softmax_focal_loss", {"smooth_factor": 0.1}, "label_smoothing"),
    ("mse_loss", {"size_average": False}, "reduction="),
]


@pytest.mark.parametrize(
    "name, option, phrase", HABITS, ids=[f"{n}-{next(iter(o))}" for n, o, _ in HABITS]
)
def test_habits_from_torch_keras_and_smp_name_losskits_argument(name, option, phrase):
    spec = losskit.spec(name)
    inputs = spec.sample((3, 4), seed=0)
    for call in (lambda: spec.functional(*inputs, **option), lambda: spec.module(**option)):
        with pytest.raises(losskit.LossTypeError, match="unknown option") as info:
            call()
        assert phrase in str(info.value).split("Hint:")[1]


# --------------------------------------------------------------------------- one rule per argument
BAD_CLASS_INDEX = [
    torch.tensor(1.5),
    float("nan"),
    float("inf"),
    2**70,
    "x",
    1.0,
    True,
    torch.tensor([1]),
]
LOSSKIT_ERRORS = (losskit.LossInputError, losskit.LossTypeError)


def _index_target(spec, inputs):
    return not inputs[1].is_floating_point()


def _ignore_rows(index: bool):
    rows = []
    for s in SPECS:
        if "ignore_index" in _options(s) and _index_target(s, s.sample((3, 4), seed=0)) == index:
            rows.append(s)
    return rows


@pytest.mark.parametrize("bad", BAD_CLASS_INDEX, ids=repr)
@pytest.mark.parametrize("spec", _ignore_rows(index=True), ids=lambda s: s.name)
def test_ignore_index_of_class_indices_is_one_rule(spec, bad):
    inputs = spec.sample((3, 4), seed=0)
    with pytest.raises(LOSSKIT_ERRORS, match="ignore_index"):
        spec.functional(*inputs, ignore_index=bad)


@pytest.mark.parametrize("bad", BAD_CLASS_INDEX, ids=repr)
def test_ignore_index_of_the_metrics_is_the_same_rule(bad):
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(LOSSKIT_ERRORS, match="ignore_index"):
        losskit.F.top_k_accuracy(x, y, ignore_index=bad)
    assert losskit.F.top_k_accuracy(x, y, ignore_index=torch.tensor(1)) == losskit.F.top_k_accuracy(
        x, y, ignore_index=1
    )


@pytest.mark.parametrize("spec", _ignore_rows(index=False), ids=lambda s: s.name)
def test_ignore_index_of_element_targets_is_a_finite_number(spec):
    inputs = spec.sample((3, 4), seed=0)
    for bad in (float("nan"), float("inf"), "x", True):
        with pytest.raises(LOSSKIT_ERRORS, match="ignore_index"):
            spec.functional(*inputs, ignore_index=bad)
    expected = spec.functional(*inputs, ignore_index=-1.0)
    torch.testing.assert_close(spec.functional(*inputs, ignore_index=torch.tensor(-1.0)), expected)
    torch.testing.assert_close(spec.functional(*inputs, ignore_index=-1), expected)


def _float_options(spec):
    return [
        k
        for k, v in _options(spec).items()
        if isinstance(v, float) and not isinstance(v, bool) and k not in ("normalizer",)
    ]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_infinite_and_nan_hyperparameters_are_refused(spec):
    inputs = spec.sample((3, 4), seed=0)
    for name in _float_options(spec):
        for bad in (float("inf"), float("-inf"), float("nan")):
            with pytest.raises(LOSSKIT_ERRORS, match=name):
                spec.functional(*inputs, **{name: bad})


def test_infinite_k_of_the_metrics_is_refused_and_softcap_inf_is_no_softcap():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    for bad in (float("inf"), float("nan"), 1.5, True, "2"):
        with pytest.raises(LOSSKIT_ERRORS, match="k"):
            losskit.F.top_k_accuracy(x, y, k=bad)
        with pytest.raises(LOSSKIT_ERRORS, match="k"):
            losskit.F.in_top_k(x, y, bad)
    h, W = torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(
        losskit.F.linear_cross_entropy(h, W, t, softcap=float("inf")),
        losskit.F.linear_cross_entropy(h, W, t),
    )


def test_categorical_dim_is_an_int_and_from_logits_a_bool():
    p, q = torch.rand(3, 4).softmax(-1), torch.eye(4)[[0, 2, 1]]
    for bad in (1.0, "1", None, True):
        with pytest.raises(losskit.LossTypeError, match="dim must be an int"):
            losskit.F.categorical_cross_entropy(p, q, dim=bad)
    with pytest.raises(losskit.LossInputError, match="dim=2 is out of range"):
        losskit.F.categorical_cross_entropy(p, q, dim=2)
    for bad in ("no", "yes", 0, 1, None):
        with pytest.raises(losskit.LossTypeError, match="from_logits must be True or False"):
            losskit.F.categorical_cross_entropy(p, q, from_logits=bad)
    torch.testing.assert_close(
        losskit.F.categorical_cross_entropy(p, q, dim=1),
        losskit.F.categorical_cross_entropy(p, q, dim=-1),
    )


def _class_index_rows():
    return [s for s in SPECS if _index_target(s, s.sample((3, 4), seed=0))]


@pytest.mark.parametrize("spec", _class_index_rows(), ids=lambda s: s.name)
def test_bool_targets_are_one_rule_in_every_class_index_loss(spec):
    inputs = list(spec.sample((3, 4), seed=0))
    inputs[1] = inputs[1] % 2 == 1
    with pytest.raises(losskit.LossTypeError, match="integer .*dtype bool") as info:
        spec.functional(*inputs)
    assert ".long()" in str(info.value)


def test_bool_targets_in_the_metrics_and_vocab_parallel_cross_entropy():
    from losskit.distributed import vocab_parallel_cross_entropy

    x, y = torch.randn(4, 3), torch.tensor([True, False, True, True])
    for call in (
        lambda: losskit.F.top_k_accuracy(x, y),
        lambda: losskit.F.in_top_k(x, y, 1),
        lambda: vocab_parallel_cross_entropy(x, y),
    ):
        with pytest.raises(losskit.LossTypeError, match="bool"):
            call()


def test_detection_focal_loss_checks_the_targets_device():
    spec = losskit.spec("detection_focal_loss")
    x, y, state = spec.sample((2, 3, 4), seed=0)
    with pytest.raises(losskit.LossInputError, match="target is on meta but input is on cpu"):
        spec.functional(x, y.to("meta"), state)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_a_complex_normalizer_is_a_type_error(spec):
    inputs = spec.sample((3, 4), seed=0)
    for bad in (torch.tensor(2 + 1j), 2 + 1j, torch.tensor(True)):
        with pytest.raises(losskit.LossTypeError, match="normalizer"):
            spec.functional(*inputs, normalizer=bad)


META_XFAIL: dict[str, str] = {}


META_PARAMS = [
    pytest.param(s, id=s.name, marks=pytest.mark.xfail(strict=True, reason=META_XFAIL[s.name]))
    if s.name in META_XFAIL
    else pytest.param(s, id=s.name)
    for s in SPECS
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("spec", META_PARAMS)
def test_every_loss_works_on_meta_tensors(spec, reduction):
    inputs = spec.sample((3, 4), seed=0, device="meta")
    real = spec.sample((3, 4), seed=0)
    out = spec.functional(*inputs, reduction=reduction)
    assert out.is_meta and out.shape == spec.functional(*real, reduction=reduction).shape
    if issubclass(spec.module, losskit.nn.Loss):
        # the kind knows the module's forward order (distillation: input, teacher, target)
        module, module_inputs = make_module(spec, inputs, {"reduction": reduction})
        assert module(*module_inputs).is_meta


# --------------------------------------------------------------------------- explain
def test_explain_mixes_float32_tensors_lists_and_arrays():
    import numpy as np

    pred = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    e = losskit.explain("cross_entropy", pred, torch.tensor([0, 1, 0]), weight=[1, 2])
    assert round(e.result, 4) == 0.7398
    for x, w in (
        (pred.half(), np.array([1, 2], dtype=np.float32)),
        (pred.numpy(), torch.tensor([1, 2])),
    ):
        assert losskit.explain("cross_entropy", x, [0, 1, 0], weight=w).result == pytest.approx(
            e.result, rel=1e-3
        )


def test_ignored_rows_are_shown_as_ignored_from_the_first_step_that_uses_the_target():
    pred = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
    e = losskit.explain("cross_entropy", pred, [0, 1, 0], weight=[1, 2], ignore_index=1)
    by_name = {s.name: s.value for s in e.steps}
    assert by_name["log-probabilities"][1].tolist() == pytest.approx([-0.4375, -1.0375], abs=1e-4)
    for name in (
        "log-probability of the target class",
        "class weight of each sample",
        "weighted NLL",
    ):
        assert np.isnan(by_name[name][1]) and not np.isnan(by_name[name][[0, 2]]).any()
    text = str(e)
    assert "-0.4375," not in text.split("log p[y]")[1] and "ignored" in text
    assert e.to_dict()["steps"][4]["value"][1] == "ignored"


import numpy as np  # noqa: E402


@pytest.mark.parametrize("spec", _ignore_rows(index=True), ids=lambda s: s.name)
def test_explain_marks_ignored_targets_in_every_class_index_loss(spec):
    inputs = spec.sample((3, 4), seed=0)
    extra = {e.name: t for e, t in zip(spec.extra_inputs, inputs[2:], strict=True)}  # as options
    ignore = int(inputs[1].reshape(-1)[0])
    e = losskit.explain(spec.name, inputs[0], inputs[1], ignore_index=ignore, **extra)
    ignored = (inputs[1] == ignore).numpy()
    if not any(s.value.shape == ignored.shape for s in e.steps):
        pytest.skip("no step shows per-position values (sums over positions only)")
    assert e.ignored_steps, "no step was marked"
    for i in e.ignored_steps:
        assert np.isnan(e.steps[i].value[ignored]).all()
    assert "ignored" in str(e)
    assert e.result == pytest.approx(float(spec.functional(*inputs, ignore_index=ignore)), rel=1e-9)


def test_linear_cross_entropy_softmax_is_written_in_the_logits_and_ignores_rows():
    e = losskit.explain("linear_cross_entropy", ignore_index=1)
    formulas = [s.formula for s in e.steps]
    assert "p = exp(a) / sum(exp(a))" in formulas and "log p = a - logsumexp(a)" in formulas
    assert not any("(x)" in f for f in formulas[2:])
    assert e.ignored_steps and "ignored" in str(e)


def test_detection_focal_loss_names_the_object_anchor_count():
    e = losskit.explain("detection_focal_loss")
    assert ("number of object anchors", "max(1, #(state == 1))") in [
        (s.name, s.formula) for s in e.steps
    ]
    assert (
        "given" not in [s.formula for s in e.steps]
        and "number of object anchors" in e.steps[-1].formula
    )


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_explain_accepts_exactly_the_options_it_lists(spec):
    from losskit.explain import explain_options

    defaults = _options(spec)
    for option in explain_options(spec.name):
        if option in defaults:  # an extra input comes from the embedded example
            losskit.explain(spec.name, **{option: defaults[option]})
    assert "backend" not in explain_options(spec.name)
    with pytest.raises(losskit.LossTypeError, match="unknown option 'backend'"):
        losskit.explain(spec.name, backend="torch")
    with pytest.raises(losskit.LossTypeError, match="did you mean reduction"):
        losskit.explain(spec.name, reductoin="sum")


def test_target_type_probs_on_an_index_target_says_so():
    for call in (
        lambda: losskit.explain(
            "cross_entropy", [[0.9, 0.1], [0.8, 0.2]], [0, 1], target_type="probs"
        ),
        lambda: losskit.F.cross_entropy(
            torch.randn(2, 2), torch.tensor([0, 1]), target_type="probs"
        ),
    ):
        with pytest.raises(
            losskit.LossTypeError, match="target_type='probs', but the target holds integers"
        ) as info:
            call()
        assert "floating" not in str(info.value).split("Hint:")[0]


# --------------------------------------------------------------------------- the command line
def _run(capsys, *argv):
    from losskit.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exit:
        code = exit.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "command, options",
    [
        ("explain", ["--input", "--target", "--set", "--json"]),
        ("plot", ["--set", "--grad", "--out"]),
        ("list", []),
    ],
)
def test_each_commands_help_shows_its_options(capsys, command, options):
    code, out, _ = _run(capsys, command, "--help")
    assert code == 0 and f"losskit {command}" in out
    for option in [*options, "--help"]:
        assert option in out


def test_top_level_help_lists_the_commands_and_the_version(capsys):
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and all(c in out for c in ("list", "explain", "plot", "--version"))


def test_plot_out_without_a_suffix_says_the_file_it_wrote(capsys, tmp_path):
    code, out, _ = _run(capsys, "plot", "huber_loss", "--out", str(tmp_path / "noext"))
    assert code == 0
    assert out.strip() == f"wrote {tmp_path / 'noext.png'}" and (tmp_path / "noext.png").is_file()
    assert not (tmp_path / "noext").exists()


def test_a_set_value_that_is_not_json_says_values_are_json(capsys):
    code, _, err = _run(capsys, "explain", "cross_entropy", "--set", "weight=[1,2")
    assert code == 2 and "--set weight=[1,2 is not valid JSON" in err and "values are JSON" in err
    code, out, _ = _run(capsys, "explain", "cross_entropy", "--set", "reduction=sum")
    assert code == 0 and "reduction='sum'" in out  # a bare word is still a name


def test_a_csv_with_a_header_row_names_the_file_and_the_problem(capsys, tmp_path):
    path = tmp_path / "pred.csv"
    path.write_text("a,b\n0.9,0.1\n0.8,0.2\n")
    code, _, err = _run(
        capsys, "explain", "cross_entropy", "--input", str(path), "--target", "[0, 1]"
    )
    assert code == 2 and str(path) in err and "header row" in err and "Traceback" not in err


def test_explain_on_the_command_line_lists_and_takes_the_same_options(capsys):
    from losskit.explain import explain_options

    code, _, err = _run(capsys, "explain", "cross_entropy", "--set", "backend=torch")
    assert (
        code == 2
        and "no option 'backend'" in err
        and ", ".join(explain_options("cross_entropy")) in err
    )
    code, _, err = _run(capsys, "explain", "cross_entropy", "--set", "reductoin=sum")
    assert code == 2 and "did you mean reduction?" in err


def test_the_plot_legend_leaves_the_shared_options_to_the_title(monkeypatch, tmp_path):
    from matplotlib import pyplot as plt

    from losskit.plot import plot

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plot(
        ["sigmoid_focal_loss"],
        {"gamma": [0, 2], "alpha": [None]},
        grad=True,
        out=tmp_path / "f.png",
    )
    (fig,) = figures
    for ax in fig.axes:
        assert ax.get_legend_handles_labels()[1] == ["gamma=0", "gamma=2"]
    assert fig._suptitle.get_text() == "losskit: sigmoid_focal_loss (alpha=None)"
    plot(["huber_loss", "smooth_l1_loss"], {}, out=tmp_path / "g.png")
    assert figures[1].axes[0].get_legend_handles_labels()[1] == ["huber_loss", "smooth_l1_loss"]


# --------------------------------------------------------------------------- the installed package
def _pinned_torch():
    from pathlib import Path

    for line in (Path(__file__).parents[1] / "constraints.txt").read_text().splitlines():
        if line.strip().startswith("torch=="):
            return line.split("==")[1].strip()
    return None


def test_the_wheel_installs_into_a_fresh_venv_and_runs_outside_the_checkout(tmp_path):
    """Build the wheel, install it (no dependencies, no index) into a fresh virtual
    environment without system site packages, and run ``losskit list`` and an explain
    there, from a directory outside the checkout. The dependencies (torch pinned by
    constraints.txt, NumPy, the cli extra) come from this environment's site-packages
    through a ``.pth`` file: installing torch's 190 MB wheel again takes minutes on a
    shared machine, and it is not what is tested here."""
    import os
    import site
    import subprocess
    import sys
    import venv
    from pathlib import Path

    root = Path(__file__).parents[1]
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
        ]
        + [str(root), "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if built.returncode != 0:
        pytest.skip(f"could not build the wheel here: {built.stderr.strip()[-300:]}")
    (wheel,) = (tmp_path / "dist").glob("losskit-*.whl")
    env_dir = tmp_path / "env"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
        ]
        + [str(wheel)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if installed.returncode != 0:
        pytest.skip(
            f"pip cannot install into another environment here: {installed.stderr.strip()[-300:]}"
        )
    (purelib,) = (env_dir / "lib").glob("python3*/site-packages")
    (purelib / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*argv):
        out = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    where = run(
        str(python), "-c", "import losskit, torch; print(losskit.__file__, torch.__version__)"
    )
    module_file, torch_version = where.split()
    assert Path(module_file).is_relative_to(purelib) and not Path(module_file).is_relative_to(root)
    assert torch_version.split("+")[0] == _pinned_torch()
    listed = run(str(env_dir / "bin" / "losskit"), "list")
    assert all(s.name in listed for s in SPECS[:5]) and "cross_entropy" in listed
    explained = run(
        str(env_dir / "bin" / "losskit"),
        "explain",
        "cross_entropy",
        "--input",
        "[[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]",
        "--target",
        "[0, 1, 0]",
        "--set",
        "weight=[1, 2]",
    )
    assert "result: 0.739773" in explained and "torch built-in 0.739773" in explained


def test_a_misspelt_plot_option_gets_did_you_mean(tmp_path):
    from losskit.plot import plot

    with pytest.raises(
        losskit.LossTypeError, match="no loss named here takes dleta.*did you mean delta"
    ):
        plot(["huber_loss"], {"dleta": [1.0]}, out=tmp_path / "x.png")


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_a_module_forward_takes_its_inputs_only(spec):
    if not issubclass(spec.module, losskit.nn.Loss):
        return
    module, forward = make_module(spec, spec.sample((3, 4), seed=0), {})
    with pytest.raises(losskit.LossTypeError, match="forward takes the inputs") as info:
        module(*forward, "sum")
    assert str(info.value).startswith(f"{spec.module_name}:")


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_the_public_function_introspects_as_its_implementation(spec):
    public = getattr(losskit.F, _public_name(spec))
    fn = inspect.unwrap(public)
    assert inspect.signature(public) == inspect.signature(fn) and public.__doc__ == fn.__doc__
    assert public.__kwdefaults__ == fn.__kwdefaults__
    assert all(getattr(losskit.F, a) is public for a in spec.aliases)
