"""losskit.explain, losskit.plot and the command line."""

from __future__ import annotations

import json
import math
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import losskit
from conftest import SPEC_IDS, SPECS

PRED = [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]
LABEL = [0, 1, 0]
PRED4 = [[0.9, 0.1, 0.2], [0.8, 0.2, 0.1], [0.7, 0.3, 0.5], [0.1, 0.5, 0.6]]


def _softmax_row(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


# ----------------------------------------------------------------------------- explain
@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_explain_default_example_of_every_loss(spec):
    e = losskit.explain(spec.name)
    assert e.steps and all(s.name and s.formula for s in e.steps)
    example = spec.examples[0]
    tensors = example.tensors(torch.float64)
    want = float(spec.functional(*tensors, **example.call_options(torch.float64)))
    assert e.result == pytest.approx(want, rel=1e-12)
    assert e.check["losskit_abs_diff"] < 1e-6
    if e.check["torch"] is not None:
        assert e.check["torch_abs_diff"] < 1e-6
    data = json.loads(json.dumps(e.to_dict()))  # JSON-ready
    assert set(data) >= {"steps", "result", "check"}
    assert data["result"] == pytest.approx(e.result)
    text = str(e)
    assert spec.name in text and "result:" in text and "check:" in text


SOFT = [s for s in SPECS if s.target_kind.soft_targets]


@pytest.mark.parametrize("spec", SOFT, ids=[s.name for s in SOFT])
def test_explain_takes_probability_targets_where_the_kind_does(spec):
    """A floating target of the input's shape is probabilities (as torch reads one) for a
    kind that takes them (``soft_targets``): explain works it out and agrees with the
    function, given as nested lists; other floating targets stay class indices."""
    x = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    q = torch.softmax(torch.randn(2, 3, 4, dtype=torch.float64), dim=1)
    e = losskit.explain(spec.name, x.tolist(), q.tolist())
    assert e.result == pytest.approx(float(spec.functional(x, q)), rel=1e-12)
    assert e.check["losskit_abs_diff"] < 1e-9
    indices = [[0.0, 2.0, 1.0, 1.0], [2.0, 0.0, 0.0, 1.0]]  # whole floats: indices
    want = float(spec.functional(x, torch.tensor(indices).long()))
    assert losskit.explain(spec.name, x.tolist(), indices).result == pytest.approx(want)


def test_explain_alias_and_unknown_name():
    assert losskit.explain("mae_loss").name == "l1_loss"
    assert losskit.explain("huber").name == "huber_loss"  # a name users type resolves
    with pytest.raises(losskit.LossInputError, match="unknown loss 'hubr'"):
        losskit.explain("hubr")


def _step(e, name):
    matches = [s for s in e.steps if s.name == name]
    assert matches, [s.name for s in e.steps]
    return matches[0].value


@pytest.mark.parametrize(
    "pred, label, options, article",
    [
        (PRED, LABEL, {}, 0.6405),
        (PRED, LABEL, {"ignore_index": 1}, 0.4421),
        (PRED, LABEL, {"weight": [1, 2]}, 0.7398),
        (PRED4, [2, 1, 0, 1], {"weight": [2, 1, 2], "ignore_index": 2}, 1.0401),
    ],
)
def test_seed_002_walkthroughs(pred, label, options, article):
    e = losskit.explain("cross_entropy", pred, label, **options)
    assert round(e.result, 4) == article
    # the article's softmax values, recomputed by hand
    softmax = _step(e, "softmax of each row")
    np.testing.assert_allclose(softmax, [_softmax_row(r) for r in pred], rtol=1e-12)
    picked = [softmax[i][y] for i, y in enumerate(label)]
    if pred is PRED:  # the article prints 0.69 / 0.3543 / 0.5987
        assert [round(p, 4) for p in picked] == [0.69, 0.3543, 0.5987]
    w = options.get("weight", [1] * len(pred[0]))
    ii = options.get("ignore_index")  # ignored rows are shown as ignored (NaN), not w[y]
    shown = [None if math.isnan(v) else v for v in _step(e, "class weight of each sample")]
    assert shown == [None if y == ii else w[y] for y in label]
    if ii is not None:
        dropped = _step(e, "ignored elements dropped")
        assert all(math.isnan(dropped[i]) for i, y in enumerate(label) if y == ii)


def test_seed_002_four_class_intermediates():
    # the article: ln 0.4018, ln 0.2683, ln 0.3603 for labels 0, 1, 1 (label 2 ignored)
    e = losskit.explain("cross_entropy", PRED4, [2, 1, 0, 1], weight=[2, 1, 2], ignore_index=2)
    logp = _step(e, "log-probability of the target class")
    assert [round(math.exp(v), 4) for v in logp[1:]] == [0.2683, 0.4018, 0.3603]
    assert float(_step(e, "sum of weights")) == 4.0


def test_seed_000_ignore_index_and_nll():
    e = losskit.explain(
        "cross_entropy",
        [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.1, 0.2, 0.3]],
        [0, 1, 1],
        ignore_index=0,
    )
    assert round(e.result, 4) == 1.1019
    p = [[0.2, 0.3, 0.5], [0.1, 0.7, 0.2], [0.4, 0.5, 0.1]]
    e = losskit.explain("nll_loss", np.log(p), [0, 1, 2])
    # the article prints 1.4429, a typo: -(ln 0.2 + ln 0.7 + ln 0.1) / 3 = 1.4229
    assert e.result == pytest.approx(-(math.log(0.2) + math.log(0.7) + math.log(0.1)) / 3)
    assert round(e.result, 4) == 1.4229


@pytest.mark.parametrize(
    "name, value, residual_abs",
    [("l1_loss", 1.0, [1, 0, 1, 2]), ("smooth_l1_loss", 0.625, None), ("mse_loss", 1.5, None)],
)
def test_seed_003_walkthroughs(name, value, residual_abs):
    e = losskit.explain(name, [[1, 1], [1, 1]], [[0, 1], [2, 3]])
    assert e.result == value
    np.testing.assert_array_equal(_step(e, "residual").ravel(), [1, 0, -1, -2])
    if residual_abs:  # the article: |0-1| + |1-1| + |2-1| + |3-1| = 4, then 4 / 4
        np.testing.assert_array_equal(_step(e, "absolute error").ravel(), residual_abs)
        assert float(_step(e, "sum")) == 4.0


def test_explain_needs_both_inputs_and_reports_loss_errors():
    with pytest.raises(losskit.LossInputError, match="both input and target"):
        losskit.explain("mse_loss", [1.0, 2.0])
    with pytest.raises(losskit.LossInputError, match=r"target must hold values in \[0, 1\]"):
        losskit.explain("binary_cross_entropy", [[1, 1], [1, 1]], [[0, 1], [2, 3]])


# ----------------------------------------------------------------------------- plot
def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_curve_is_finite_for_every_loss(spec):
    from losskit.plot import curve

    x, loss, grad, label = curve(spec.name)
    assert x.shape == loss.shape == grad.shape
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all() and label


def test_curve_values():
    from losskit.plot import curve

    p, loss, grad, _ = curve("cross_entropy")
    np.testing.assert_allclose(loss, -torch.log(p), rtol=1e-10)  # CE against p_t is -log p_t
    np.testing.assert_allclose(grad, p - 1, atol=1e-10)  # d CE / d logit = p - 1
    # linear cross entropy is drawn through an identity layer: the same curves as CE
    _, lin_loss, lin_grad, _ = curve("linear_cross_entropy")
    np.testing.assert_allclose(lin_loss, loss, rtol=1e-10)
    np.testing.assert_allclose(lin_grad, grad, atol=1e-10)
    p, loss, _, _ = curve("sigmoid_focal_loss", gamma=2.0, alpha=None)
    np.testing.assert_allclose(loss, -((1 - p) ** 2) * torch.log(p), rtol=1e-9)


# ----------------------------------------------------------------------------- CLI
def _cli(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "losskit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_cli_list():
    out = _cli("list")
    assert out.returncode == 0, out.stderr
    for spec in SPECS:
        assert spec.name in out.stdout
    assert "mae_loss" in out.stdout and "when to use it" in out.stdout


def test_cli_explain_literals_and_json():
    out = _cli(
        "explain",
        "cross_entropy",
        "--input",
        json.dumps(PRED4),
        "--target",
        "[2, 1, 0, 1]",
        "--set",
        "weight=[2,1,2]",
        "--set",
        "ignore_index=2",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert round(data["result"], 4) == 1.0401
    assert data["check"]["torch_abs_diff"] < 1e-6
    assert data["options"]["ignore_index"] == 2
    text = _cli(
        "explain",
        "cross_entropy",
        "--input",
        json.dumps(PRED),
        "--target",
        "[0,1,0]",
        "--set",
        "weight=[1,2]",
    )
    assert text.returncode == 0 and "softmax of each row" in text.stdout
    assert "0.739773" in text.stdout


def test_cli_explain_linear_cross_entropy():
    """The layer's weight is an extra input: from the embedded example, or --set."""
    out = _cli("explain", "linear_cross_entropy", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert round(data["result"], 4) == 1.3383 and data["check"]["torch_abs_diff"] < 1e-6
    assert data["options"]["linear_weight"] == [[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]]
    h, y = "[[1.0, -1.0], [0.5, 2.0]]", "[1, 0]"
    out = _cli(
        "explain",
        "linear_cross_entropy",
        "--input",
        h,
        "--target",
        y,
        "--set",
        "linear_weight=[[1, 0], [0, 1], [1, 1]]",
        "--set",
        "linear_bias=[0, 0, -1]",
        "--set",
        "z_loss=0.01",
    )
    assert out.returncode == 0, out.stderr
    logits = torch.tensor([[1.0, -1.0, -1.0], [0.5, 2.0, 1.5]], dtype=torch.float64)
    want = losskit.F.cross_entropy(logits, torch.tensor([1, 0]), z_loss=0.01)
    assert f"result: {float(want):.6g}" in out.stdout
    assert "logits" in out.stdout and "torch built-in: none" in out.stdout  # no z_loss there
    out = _cli("explain", "linear_cross_entropy", "--input", h, "--target", y)
    assert out.returncode == 2 and "needs linear_weight=" in out.stderr
    out = _cli(
        "explain",
        "linear_cross_entropy",
        "--input",
        h,
        "--target",
        "[1, 3]",
        "--set",
        "linear_weight=[[1, 0], [0, 1], [1, 1]]",
    )
    assert out.returncode == 2
    assert "but linear_weight has 3 classes" in out.stderr and "Traceback" not in out.stderr


def test_cli_explain_files(tmp_path):
    np.save(tmp_path / "x.npy", np.array(PRED))
    np.save(tmp_path / "y.npy", np.array(LABEL))
    (tmp_path / "y.csv").write_text("0\n1\n0\n")
    (tmp_path / "x.json").write_text(json.dumps(PRED))
    for x, y in [("x.npy", "y.npy"), ("x.json", "y.csv")]:
        out = _cli("explain", "cross_entropy", "--input", x, "--target", y, "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert round(json.loads(out.stdout)["result"], 4) == 0.6405


@pytest.mark.parametrize(
    "args, message",
    [
        (["explain", "no_such_loss"], "unknown loss 'no_such_loss'"),
        (["explain", "huber_loss", "--set", "delta=-1"], "delta must be > 0"),
        (["explain", "huber_loss", "--set", "dleta=2"], "did you mean delta"),
        (["explain", "mse_loss", "--input", "[1, 2", "--target", "[1, 2]"], "not a JSON"),
        (
            [
                "explain",
                "binary_cross_entropy",
                "--input",
                "[[1,1],[1,1]]",
                "--target",
                "[[0,1],[2,3]]",
            ],
            "target must hold values in [0, 1]",
        ),
        (["explain", "mse_loss", "--input", "missing.npy", "--target", "[1]"], "no such file"),
        (["plot", "huber_loss", "cross_entropy", "--out", "x.png"], "cannot overlay"),
    ],
)
def test_cli_errors_exit_2_with_one_line(args, message, tmp_path):
    out = _cli(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_plot_writes_png(tmp_path):
    out = _cli(
        "plot",
        "sigmoid_focal_loss",
        "--set",
        "gamma=0,0.5,1,2,5",
        "--set",
        "alpha=null",
        "--out",
        str(tmp_path / "focal.png"),
    )
    assert out.returncode == 0, out.stderr
    assert _png_size(tmp_path / "focal.png") == (640, 480)
    out = _cli(
        "plot",
        "huber_loss",
        "l1_loss",
        "log_cosh_loss",
        "--set",
        "delta=0.5,2",
        "--grad",
        "--out",
        str(tmp_path / "reg.png"),
    )
    assert out.returncode == 0, out.stderr
    assert _png_size(tmp_path / "reg.png") == (1280, 480)


def test_cli_without_extra_names_the_pip_command(tmp_path):
    # a sitecustomize that hides typer: `losskit` must say what to install, in one line
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['typer'] = None\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-m", "losskit", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2
    assert "pip install 'losskit[cli]'" in out.stderr and "Traceback" not in out.stderr


def test_readme_walkthrough_is_real_output():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("<!-- explain-begin -->")[1].split("<!-- explain-end -->")[0]
    lines = block.strip().strip("`").splitlines()[1:]  # drop the ```console line
    command, shown = lines[0].removeprefix("$ losskit "), "\n".join(lines[1:]).strip()
    out = _cli(*shlex.split(command))
    assert out.returncode == 0, out.stderr
    assert shown.rstrip("`").strip() == out.stdout.strip()
