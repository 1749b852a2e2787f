"""The guides: pages whose numbers and messages are computed while the site builds.

Each claim that compares losskit with torch or with a written-out peer formula is run
here; if it stops holding, the build fails instead of the page going stale.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import readme
import torch
import torch.nn.functional as TF

import losskit
import losskit.functional as LF
from losskit.distributed import global_count


def _close(a: torch.Tensor, b: torch.Tensor, what: str, tol: float = 1e-6) -> None:
    if not torch.allclose(a.double(), b.double(), rtol=tol, atol=tol):
        raise AssertionError(f"docs claim no longer holds: {what}: {a} != {b}")


def _run(code: str, env: dict) -> object:
    """Run a snippet and return the value of its last line (the snippet is what the page
    shows, so what is shown is what ran)."""
    lines = textwrap.dedent(code).strip().splitlines()
    exec("\n".join(lines[:-1]), env)  # noqa: S102 - our own snippets
    return eval(lines[-1], env)  # noqa: S307


def _env() -> dict:
    torch.manual_seed(0)
    return {"torch": torch, "TF": TF, "LF": LF, "losskit": losskit, "global_count": global_count}


def _link(names: set[str], name: str) -> str:
    return f"[`{name}`](../losses/{name}.md)" if name in names else f"`{name}`"


# ----------------------------------------------------------------------------- choosing
TASKS = [
    (
        "Regression with outliers",
        "The mean squared error follows the conditional mean, so a few large residuals "
        "dominate it. The losses below grow linearly (or slower) far from the target.",
        [
            "huber_loss",
            "smooth_l1_loss",
            "pseudo_huber_loss",
            "log_cosh_loss",
            "l1_loss",
            "quantile_loss",
            "mse_loss",
            "rmse_loss",
        ],
        [],
    ),
    (
        "Imbalanced classification",
        "Reweight the classes (`weight=`, `pos_weight=`) or down-weight the easy examples "
        "with a focal term.",
        [
            "sigmoid_focal_loss",
            "softmax_focal_loss",
            "cross_entropy",
            "binary_cross_entropy_with_logits",
        ],
        ["asymmetric_loss", "poly1_cross_entropy", "poly1_focal_loss"],
    ),
    (
        "Segmentation",
        "Per-pixel classification losses take `(N, C, d1, ..., dk)` maps directly, with "
        "`ignore_index` for void pixels.",
        ["cross_entropy", "softmax_focal_loss", "binary_cross_entropy_with_logits"],
        [
            "dice_loss",
            "jaccard_loss",
            "tversky_loss",
            "focal_tversky_loss",
            "generalized_dice_loss",
            "lovasz_softmax_loss",
            "lovasz_hinge_loss",
        ],
    ),
    (
        "Detection",
        "Classification over anchors with a focal term; box regression with a robust loss.",
        ["detection_focal_loss", "sigmoid_focal_loss", "smooth_l1_loss", "huber_loss"],
        [
            "box_iou_loss",
            "generalized_box_iou_loss",
            "distance_box_iou_loss",
            "complete_box_iou_loss",
        ],
    ),
    (
        "Noisy labels",
        "Losses that are bounded or symmetric in the label limit what a wrong label can do; "
        "label smoothing softens the targets.",
        ["symmetric_cross_entropy", "reverse_cross_entropy", "cross_entropy"],
        ["generalized_cross_entropy"],
    ),
    (
        "Language models",
        "Cross entropy over a large vocabulary with ignored (padding) tokens, `z_loss`, "
        "and, for the output layer, linear cross entropy without the logits in memory; "
        "see [the kernels guide](kernels.md) and [correct means](accumulation.md).",
        ["linear_cross_entropy", "cross_entropy"],
        [],
    ),
    (
        "Distillation",
        "Match a student's distribution to a teacher's.",
        ["cross_entropy"],
        ["kl_div", "distillation_loss", "generalized_jsd_loss", "total_variation_loss"],
    ),
]


def choosing(rows) -> str:
    names = {r.name for r in rows}
    by_name = {r.name: r for r in rows}
    out = [
        "# Choosing a loss",
        "",
        "By task. The candidates are read from the registry when the site builds: a loss "
        "listed as *not in losskit yet* is planned but has no registry row in this build; "
        "use what the list links to instead.",
        "",
    ]
    for title, text, have, planned in TASKS:
        out += [f"## {title}", "", text, ""]
        present = [n for n in have + planned if n in names]
        absent = [n for n in have + planned if n not in names]
        for n in present:
            r = by_name[n]
            out.append(f"- {_link(names, n)}: {r.summary}. *When:* {r.when_to_use}.")
        if not present:
            out.append("- losskit has no loss for this task yet.")
        if absent:
            out += ["", "Not in losskit yet: " + ", ".join(f"`{n}`" for n in absent) + "."]
        out.append("")
        if title == "Distillation" and "kl_div" not in names:
            out += [_soft_target_note(), ""]
    return "\n".join(out)


def _soft_target_note() -> str:
    code = """
    s, t = torch.randn(6, 5), torch.randn(6, 5)          # student and teacher logits
    q = torch.softmax(t / 2.0, dim=1)                     # teacher at temperature 2
    ce = LF.cross_entropy(s / 2.0, q)                     # probability targets
    kl = TF.kl_div(torch.log_softmax(s / 2.0, 1), q, reduction="batchmean")
    entropy = -(q * q.log()).sum(1).mean()
    (ce - kl - entropy).abs().item() < 1e-6
    """
    env = _env()
    ok = _run(code, env)
    if ok is not True:
        raise AssertionError("cross entropy with soft targets is no longer KL + entropy")
    return (
        "Until the distillation losses land, `cross_entropy` takes probability targets: "
        "with the teacher's softened distribution as the target it is torch's "
        '`kl_div(..., reduction="batchmean")` plus the teacher\'s entropy, a constant '
        "for the student, so it has the same gradient. Checked while this page was built:"
        "\n\n```python\n" + textwrap.dedent(code).strip() + f"\n# -> {ok}\n```"
    )


# ----------------------------------------------------------------------------- errors
ERRORS = [
    (
        "A class index out of range, labels counted from 1",
        "LF.cross_entropy(torch.randn(3, 4), torch.tensor([1, 4, 2]))",
        "Subtract 1 from 1-based labels; otherwise find where the out-of-range label came from.",
    ),
    (
        "255 in a segmentation mask",
        "LF.cross_entropy(torch.randn(3, 4), torch.tensor([1, 0, 255]))",
        "Many datasets mark void pixels with 255: pass `ignore_index=255`.",
    ),
    (
        "Class indices stored as floats",
        "LF.cross_entropy(torch.randn(3, 4), torch.tensor([1., 0., 2.]))",
        "Cast the target with `target.long()`. Float targets of the input's shape are "
        "read as probabilities instead.",
    ),
    (
        "Probability targets outside [0, 1]",
        "LF.cross_entropy(torch.randn(3, 4), torch.rand(3, 4) * 2)",
        "Normalise the target (a softmax, or divide by the row sum), or pass indices.",
    ),
    (
        "A class weight of the wrong length",
        "LF.cross_entropy(torch.randn(3, 4), torch.tensor([1, 0, 2]), weight=torch.ones(3))",
        'Give one weight per class. For per-sample weights take `reduction="none"` and '
        "weigh the result yourself.",
    ),
    (
        "A hyperparameter out of its range",
        "LF.cross_entropy(torch.randn(3, 4), torch.tensor([1, 0, 2]), label_smoothing=1.5)",
        "Use a value inside the range the message names.",
    ),
    (
        "A negative focal gamma",
        "LF.sigmoid_focal_loss(torch.zeros(4), torch.zeros(4), gamma=-1.0)",
        "`gamma` must be >= 0; `gamma=0` (with `alpha=None`) is plain BCE with logits.",
    ),
    (
        "Huber's delta at zero",
        "LF.huber_loss(torch.zeros(4), torch.zeros(4), delta=0.0)",
        "`delta` must be positive; for the L1 loss use `l1_loss` (or `smooth_l1_loss(beta=0)`).",
    ),
    (
        "A quantile of 0 or 1",
        "LF.quantile_loss(torch.zeros(4), torch.zeros(4), quantile=1.0)",
        "The pinball loss needs 0 < quantile < 1.",
    ),
    (
        "Regression shapes that torch would broadcast",
        "LF.mse_loss(torch.zeros(4, 1), torch.zeros(4))",
        "Reshape one of them (often `pred.squeeze(-1)`), or pass `broadcast=True` if you "
        "mean to broadcast.",
    ),
    (
        "A misspelt reduction",
        'LF.mse_loss(torch.zeros(4), torch.zeros(4), reduction="avg")',
        "Use one of the names listed.",
    ),
    (
        "normalizer= with a reduction that does not divide",
        'LF.mse_loss(torch.zeros(4), torch.zeros(4), reduction="sum", normalizer=4.0)',
        '`normalizer` replaces the mean\'s denominator: use it with `reduction="mean"`.',
    ),
    (
        "Logits given to a probability loss",
        "LF.binary_cross_entropy(torch.tensor([0.5, 1.5]), torch.tensor([0., 1.]))",
        "Use `binary_cross_entropy_with_logits` on logits (it is also the stable one).",
    ),
    (
        "A target outside [0, 1] for BCE",
        "LF.binary_cross_entropy(torch.ones(2, 2), torch.tensor([[0., 1.], [2., 3.]]))",
        "Binary targets are probabilities: 0, 1 or in between.",
    ),
    (
        "Logits given to the Keras form",
        "LF.categorical_cross_entropy(torch.tensor([[2., -1.]]), torch.tensor([[1., 0.]]))",
        "Pass `from_logits=True`, as in Keras.",
    ),
    (
        "Float targets for NLL",
        "LF.nll_loss(torch.randn(3, 4), torch.tensor([0., 1., 2.]))",
        "Cast with `target.long()`.",
    ),
    (
        "A complex input",
        "LF.mse_loss(torch.zeros(4, dtype=torch.complex64), torch.zeros(4, dtype=torch.complex64))",
        "Decide what the loss is of: `x.real`, `x.abs()`, or both parts as a real tensor "
        "(`torch.view_as_real`).",
    ),
    (
        "Hidden states whose width does not match the output layer",
        "LF.linear_cross_entropy(torch.randn(3, 4), torch.randn(5, 3), torch.tensor([0, 1, 2]))",
        "`linear_weight` is `nn.Linear(D, V).weight`, of shape `(V, D)`: check which "
        "matrix you passed, or transpose it.",
    ),
    (
        "An anchor state other than -1, 0 or 1",
        "LF.detection_focal_loss(torch.randn(1, 3, 2), torch.zeros(1, 3, 2), "
        "torch.tensor([[0, 1, 5]]))",
        "-1 marks ignored anchors, 0 background, 1 objects.",
    ),
    (
        "The Triton backend on a CPU tensor",
        'LF.cross_entropy(torch.randn(3, 4), torch.tensor([0, 1, 2]), backend="triton")',
        'Use `backend="auto"` (the default) or `"torch"` on CPU; `TRITON_INTERPRET=1` '
        "runs the kernel on CPU for tests.",
    ),
    (
        "A misspelt loss name",
        'losskit.get("cross_entrpy")',
        "Use one of the names suggested, or `losskit list` to see them all.",
    ),
]


def errors() -> str:
    out = [
        "# Error messages",
        "",
        "Bad arguments raise `losskit.LossInputError` (a `ValueError`) or "
        "`losskit.LossTypeError` (a `TypeError`, for dtypes). Every message names the loss, "
        "the argument, what was expected and what was found, with a hint where one is "
        "likely. Each call below was run while this page was built, and the message is "
        "the one it raised.",
        "",
        "Value checks (probabilities in [0, 1], class indices in range, ...) read the data; "
        "`losskit.set_checks(False)` or `LOSSKIT_CHECKS=0` turns them off. Shape, dtype and "
        "range checks are always on.",
        "",
    ]
    for title, call, advice in ERRORS:
        try:
            _run(call, _env())
        except (losskit.LossInputError, losskit.LossTypeError) as e:
            message = f"{type(e).__name__}: {e}"
        else:
            raise AssertionError(f"docs: {call} no longer raises")
        out += [
            f"## {title}",
            "",
            f"```python\n{call}\n```",
            "",
            "```text\n" + "\n".join(textwrap.wrap(message, 96)) + "\n```",
            "",
            f"**What to do:** {advice}",
            "",
        ]
    return "\n".join(out)


# ----------------------------------------------------------------------------- migration
TORCH_SAME = [
    ("F.l1_loss / nn.L1Loss", "LF.l1_loss(x, y)", "TF.l1_loss(x, y)"),
    (
        "F.mse_loss / nn.MSELoss",
        'LF.mse_loss(x, y, reduction="sum")',
        'TF.mse_loss(x, y, reduction="sum")',
    ),
    ("F.smooth_l1_loss", "LF.smooth_l1_loss(x, y, beta=0.5)", "TF.smooth_l1_loss(x, y, beta=0.5)"),
    ("F.huber_loss", "LF.huber_loss(x, y, delta=2.0)", "TF.huber_loss(x, y, delta=2.0)"),
    (
        "F.binary_cross_entropy_with_logits, pos_weight",
        "LF.binary_cross_entropy_with_logits(x, b, pos_weight=torch.full((5,), 3.0))",
        "TF.binary_cross_entropy_with_logits(x, b, pos_weight=torch.full((5,), 3.0))",
    ),
    (
        "F.cross_entropy, class weight, ignore_index, label smoothing",
        "LF.cross_entropy(x, c, weight=w, ignore_index=2, label_smoothing=0.1)",
        "TF.cross_entropy(x, c, weight=w, ignore_index=2, label_smoothing=0.1)",
    ),
    (
        "F.nll_loss",
        "LF.nll_loss(x.log_softmax(1), c, weight=w)",
        "TF.nll_loss(x.log_softmax(1), c, weight=w)",
    ),
]

SETUP = """\
x, y = torch.randn(4, 5), torch.randn(4, 5)      # predictions and regression targets
b = torch.rand(4, 5)                               # binary targets in [0, 1]
p = torch.sigmoid(torch.randn(4, 5))               # probabilities
c = torch.tensor([0, 2, 4, 1])                     # class indices of x's 5 classes
q = torch.softmax(torch.randn(4, 5), dim=1)        # probability targets
w = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0])        # class weights
ew = torch.rand(4, 5)                              # per-element weights"""

TORCH_DIFFERENT = [
    (
        "`F.huber_loss(weight=)` divides the weighted sum by the element count; losskit by "
        "the sum of the weights",
        'LF.huber_loss(x, y, weight=ew, reduction="sum") / x.numel()',
        "TF.huber_loss(x, y, weight=ew)",
    ),
    (
        "`F.binary_cross_entropy(weight=)`: the same",
        'LF.binary_cross_entropy(p, b, weight=ew, reduction="sum") / p.numel()',
        "TF.binary_cross_entropy(p, b, weight=ew)",
    ),
    (
        "`F.binary_cross_entropy_with_logits(weight=)`: the same",
        'LF.binary_cross_entropy_with_logits(x, b, weight=ew, reduction="sum") / x.numel()',
        "TF.binary_cross_entropy_with_logits(x, b, weight=ew)",
    ),
    (
        "`F.cross_entropy` with probability targets and a class weight divides by N; losskit "
        "by the summed weight of the targets",
        'LF.cross_entropy(x, q, weight=w, reduction="sum") / x.shape[0]',
        "TF.cross_entropy(x, q, weight=w)",
    ),
]

PEER_FORMULAS = [
    (
        "torchvision `ops.sigmoid_focal_loss(x, y, alpha, gamma, reduction)`",
        'LF.sigmoid_focal_loss(x, b, alpha=0.25, gamma=2.0, reduction="none")',
        # torchvision's documented formula, written out (torchvision is not a dependency)
        "(lambda s, ce: ce * (1 - (s * b + (1 - s) * (1 - b))) ** 2.0"
        " * (0.25 * b + 0.75 * (1 - b)))"
        '(torch.sigmoid(x), TF.binary_cross_entropy_with_logits(x, b, reduction="none"))',
        'losskit defaults to `reduction="mean"` (torchvision: `"none"`), so pass '
        '`reduction="none"` (or `"sum"`) to match; `alpha=None` or a negative alpha '
        "disables alpha weighting. `test_focal_matches_torchvision_formula` in "
        "tests/test_binary.py checks the same formula over several gammas, alphas, "
        "reductions and soft targets.",
    ),
    (
        "Keras `categorical_crossentropy(y_true, y_pred)` (`from_logits=False`)",
        'LF.categorical_cross_entropy(p, q, reduction="none")',
        # Keras' documented computation: rows rescaled to sum 1, clipped to [eps, 1 - eps]
        "-(q * (p / p.sum(-1, keepdim=True)).clamp(1e-7, 1 - 1e-7).log()).sum(-1)",
        "Note the argument order: Keras takes `(y_true, y_pred)`, losskit `(input, "
        "target)`. losskit also takes `from_logits`, `label_smoothing` and `dim` (Keras' "
        "`axis`); tests/test_multiclass.py checks it, `from_logits=True` included, "
        "against the Keras computation written out.",
    ),
]


def migration(rows) -> str:
    env = _env()
    exec(SETUP, env)  # noqa: S102
    names = {r.name for r in rows}
    out = [
        "# Migrating from torch.nn, torchvision, smp and Keras",
        "",
        "Every comparison on this page was computed while the site built, on these inputs:",
        "",
        f"```python\n{SETUP}\n```",
        "",
        "## torch.nn: the same names, arguments and values",
        "",
        "Where torch has the loss, losskit keeps its function name, argument names and "
        "defaults; `losskit.nn` keeps the module names. Swap `torch.nn.functional` for "
        "`losskit.functional`:",
        "",
        "| torch | losskit | torch | largest difference |",
        "|---|---|---|---:|",
    ]
    for title, ours, theirs in TORCH_SAME:
        a, b = _run(ours, env), _run(theirs, env)
        _close(a, b, ours)
        out.append(f"| {title} | `{ours}` | `{theirs}` | {float((a - b).abs().max()):.1e} |")
    out += [
        "",
        "Every loss page also shows torch's built-in beside losskit on that loss's worked "
        "examples.",
        "",
        "## torch.nn: where losskit decides differently, and the option set that reproduces torch",
        "",
        "losskit's weighted mean is always `sum(w * l) / sum(w)`. To get torch's number, "
        "sum and divide as torch does:",
        "",
        "| torch does | to reproduce it | torch | largest difference |",
        "|---|---|---|---:|",
    ]
    for title, ours, theirs in TORCH_DIFFERENT:
        a, b = _run(ours, env), _run(theirs, env)
        _close(a, b, ours)
        out.append(f"| {title} | `{ours}` | `{theirs}` | {float((a - b).abs().max()):.1e} |")
    empty = _run("LF.cross_entropy(x[:0], c[:0])", env)
    torch_empty = _run("TF.cross_entropy(x[:0], c[:0])", env)
    if not (float(empty) == 0.0 and torch.isnan(torch_empty)):
        raise AssertionError("docs: the empty-mean difference no longer holds")
    broadcast = _run("LF.mse_loss(x[:, :1], y, broadcast=True)", env)
    _close(broadcast, (env["x"][:, :1] - env["y"]).pow(2).mean(), "broadcast=True")
    out += [
        "",
        f"- **Empty mean**: `LF.cross_entropy(x[:0], c[:0])` is `{float(empty)}`, "
        f"`TF.cross_entropy(x[:0], c[:0])` is `{float(torch_empty)}`. losskit has no option "
        "for torch's NaN.",
        "- **Shapes**: regression losses raise where torch broadcasts with a warning; "
        "`broadcast=True` broadcasts on purpose (`LF.mse_loss(x[:, :1], y, broadcast=True)`"
        " equals `((x[:, :1] - y) ** 2).mean()`).",
        "",
        "## torchvision and Keras",
        "",
        "Neither is a dependency of losskit, so each is compared with its documented "
        "computation written out in torch:",
        "",
    ]
    for title, ours, formula, note in PEER_FORMULAS:
        a, b = _run(ours, env), _run(formula, env)
        _close(a, b, title, tol=1e-5)
        out += [
            f"### {title}",
            "",
            f"```python\n{ours}\n# equals, to {float((a - b).abs().max()):.1e}:\n{formula}\n```",
            "",
            note,
            "",
        ]
    have_seg = any(n in names for n in ("dice_loss", "jaccard_loss", "tversky_loss"))
    out += [
        "## segmentation_models_pytorch (smp) and MONAI",
        "",
        (
            "The overlap losses are in losskit: see their pages."
            if have_seg
            else "smp's and MONAI's main segmentation losses are overlap losses (Dice, "
            "Jaccard, Tversky, Lovász), which are not in losskit yet. No option set is "
            "given here for their other losses: none has been checked against them. For "
            "per-pixel classification, "
            + _link(names, "cross_entropy")
            + " and "
            + _link(names, "softmax_focal_loss")
            + " take `(N, C, H, W)` maps directly."
        ),
        "",
    ]
    return "\n".join(out)


# ----------------------------------------------------------------------------- accumulation
ACCUM = """\
logits = torch.randn(10, 7)
labels = torch.tensor([3, -100, 1, 6, -100, -100, 2, 0, 5, 4])   # -100: padding
micro = [(logits[:3], labels[:3]), (logits[3:], labels[3:])]     # 2 and 5 counted tokens
full = LF.cross_entropy(logits, labels)                           # the step's true mean
mean_of_means = sum(LF.cross_entropy(x, y) for x, y in micro) / len(micro)
n = global_count([y for _, y in micro])                           # 7, on the device
exact = sum(LF.cross_entropy(x, y, normalizer=n) for x, y in micro)
full, mean_of_means, n, exact"""


def accumulation(secs: dict[str, str]) -> str:
    full, mom, n, exact = _run(ACCUM, _env())
    _close(exact, full, "normalizer gives the full mean")
    if torch.allclose(mom, full):
        raise AssertionError("docs: the example no longer shows the mean-of-means error")
    body = readme.for_site(readme.find(secs, "Correct means"))
    vocab = readme.for_site(readme.find(secs, "Vocabulary-parallel"))
    return "\n".join(
        [
            "# Correct means under gradient accumulation and data parallelism",
            "",
            body,
            "",
            "## Checked on one process",
            "",
            "Two micro-batches with different numbers of counted tokens, run while this page "
            "was built:",
            "",
            f"```python\n{ACCUM}\n```",
            "",
            "| quantity | value |",
            "|---|---:|",
            f"| mean over the whole step | {float(full):.6f} |",
            f"| mean of the micro-batch means (wrong) | {float(mom):.6f} |",
            f"| `global_count` | {int(n)} |",
            f"| sum of the micro-batch losses with `normalizer=n` | {float(exact):.6f} |",
            "",
            "## Vocabulary-parallel cross entropy",
            "",
            vocab,
            "",
            "The functions are in the [API reference](../reference.md#losskitdistributed).",
        ]
    )


# ----------------------------------------------------------------------------- kernels
LINEAR = """\
h = torch.randn(64, 16, requires_grad=True)                 # hidden states (N, D)
W = torch.randn(1000, 16, requires_grad=True)               # nn.Linear(16, 1000).weight
y = torch.randint(0, 1000, (64,))
ours = LF.linear_cross_entropy(h, W, y, chunk_size=8)      # 8 rows of logits at a time
g_ours = torch.autograd.grad(ours, (h, W))
full = LF.cross_entropy(h @ W.T, y)                         # the (64, 1000) logits in memory
g_full = torch.autograd.grad(full, (h, W))
ours.item(), full.item(), [float((a - b).abs().max()) for a, b in zip(g_ours, g_full)]"""


def kernels(secs: dict[str, str]) -> str:
    ours, full, gdiff = _run(LINEAR, _env())
    _close(torch.tensor(ours), torch.tensor(full), "linear cross entropy", tol=1e-5)
    if max(gdiff) > 1e-5:
        raise AssertionError(f"docs: linear cross entropy gradients differ by {gdiff}")
    return "\n".join(
        [
            "# Kernels and linear cross entropy",
            "",
            "## Fused Triton kernels",
            "",
            readme.for_site(readme.find(secs, "Fused Triton kernels")),
            "",
            "## Linear cross entropy without the logits",
            "",
            readme.for_site(readme.find(secs, "Linear cross entropy")),
            "",
            "### Checked while this page was built",
            "",
            f"```python\n{LINEAR}\n```",
            "",
            f"Loss {float(ours):.6f} against {float(full):.6f} with the logits materialised; "
            f"largest gradient differences {gdiff[0]:.1e} (input) and {gdiff[1]:.1e} "
            "(weight).",
            "",
            "See the [`linear_cross_entropy` page](../losses/linear_cross_entropy.md).",
        ]
    )


# ----------------------------------------------------------------------------- benchmarks
def table_dates(body: str, root: Path) -> list[str]:
    """When each Markdown table of a README section entered README.md: the date and commit
    that first added its first data row (from git; nothing outside a git checkout)."""
    lines = body.splitlines()
    out = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.match(r"^\|[-:| ]+\|$", lines[i + 1]) and i + 2 < len(lines):
            first = lines[i + 2]
            try:
                log = subprocess.run(
                    ["git", "log", "--format=%cs %h", "-S", first, "--", "README.md"],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
            except (OSError, subprocess.CalledProcessError):
                continue
            if log:
                date, commit = log[-2], log[-1]
                cell = first.split("|")[1].strip()
                out.append(
                    f"- the table whose first row is {cell}: README.md since {date} "
                    f"(commit `{commit}`)"
                )
    return out


def benchmarks(secs: dict[str, str], root: Path) -> str:
    body = readme.find(secs, "Benchmarks")
    linear = readme.find(secs, "Linear cross entropy")
    dates = table_dates(body, root) + table_dates(linear, root)
    out = [
        "# Benchmarks",
        "",
        "## From the README",
        "",
        readme.for_site(body),
        "",
    ]
    if dates:
        out += ["When the README's measured tables were recorded (from git history):", ""]
        out += dates + [""]
    results = root / "benchmarks" / "results" / "results.json"
    if results.is_file():
        data = json.loads(results.read_text())
        env = data.get("environment", {})
        out += [
            "## The last recorded run, benchmarks/results/results.json",
            "",
            "Machine and date, as the runner recorded them:",
            "",
            "| " + " | ".join(env) + " |",
            "|" + "---|" * len(env),
            "| " + " | ".join(str(v) for v in env.values()) + " |",
            "",
        ]
        rows = data.get("rows", [])
        if rows:
            keys = list(rows[0])
            out += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            out += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    out += [
        "",
        "The linear cross entropy table is in [the kernels guide](kernels.md).",
    ]
    return "\n".join(out)


def semantics(secs: dict[str, str]) -> str:
    return "\n".join(
        [
            "# Semantics, decided once for every loss",
            "",
            readme.for_site(readme.find(secs, "Semantics")),
            "",
            "The [migration guide](migration.md) shows, computed, where these rules differ "
            "from torch and the option set that reproduces torch.",
        ]
    )


def explain_plot(secs: dict[str, str]) -> str:
    return "\n".join(
        [
            "# Explain, plot, list",
            "",
            readme.for_site(readme.find(secs, "Explain, plot")),
            "",
            "Every [loss page](../losses/index.md) carries its own walk-through and figure, "
            "made by these functions when the site builds.",
        ]
    )


def build(write, rows, secs: dict[str, str], root: Path) -> list[tuple[str, str]]:
    """Write every guide; return the navigation entries ``(title, path)``."""
    pages = [
        ("Choosing a loss", "guides/choosing.md", lambda: choosing(rows)),
        ("Semantics", "guides/semantics.md", lambda: semantics(secs)),
        ("Explain, plot, list", "guides/explain.md", lambda: explain_plot(secs)),
        ("Correct means (accumulation, DDP)", "guides/accumulation.md", lambda: accumulation(secs)),
        ("Error messages", "guides/errors.md", errors),
        (
            "Migrating from torch, torchvision, Keras",
            "guides/migration.md",
            lambda: migration(rows),
        ),
        ("Kernels and linear cross entropy", "guides/kernels.md", lambda: kernels(secs)),
        ("Benchmarks", "guides/benchmarks.md", lambda: benchmarks(secs, root)),
    ]
    for _, path, make in pages:
        write(path, make())
    return [(title, path) for title, path, _ in pages]
