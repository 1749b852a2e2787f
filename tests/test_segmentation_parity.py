"""Segmentation overlap losses against the anchors, each through the option set that
reproduces it (README, "Segmentation"): MONAI's DiceLoss (jaccard, squared_pred),
GeneralizedDiceLoss and TverskyLoss; smp's DiceLoss, JaccardLoss and TverskyLoss (loaded
by path from the downloaded wheel); kornia's dice_loss and tversky_loss; Keras 3's Dice
and Tversky (torch backend). Where an anchor's semantics differ (smp drops absent classes,
MONAI's weighted mean, Keras' swapped alpha and beta), the difference itself is tested.

MONAI and kornia come from the ``parity`` extra (``make test`` installs it); without one,
its tests are skipped. smp's wheel is downloaded into ``.cache/peers`` on first use.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
import warnings
import zipfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")

import pytest  # noqa: E402
import torch  # noqa: E402

import losskit.functional as LF  # noqa: E402
from conftest import peer_wheel

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "peers"
SMP_VERSION = "0.6.0"
SMP_FILES = ("constants.py", "_functional.py", "dice.py", "jaccard.py", "tversky.py")
F64 = torch.float64


def _close(ours, theirs, rtol=1e-10, atol=1e-12, msg=""):
    torch.testing.assert_close(
        ours, theirs.to(ours.dtype).reshape(ours.shape), rtol=rtol, atol=atol, msg=msg or None
    )


def _batch(n=3, c=4, h=5, w=6, seed=0, every_class=True):
    """Logits ``(n, c, h, w)`` and labels ``(n, h, w)``; with ``every_class`` each image
    holds every class (smp and kornia drop absent classes)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=F64) * 2
    y = torch.randint(0, c, (n, h, w), generator=g)
    if every_class:
        y.view(n, -1)[:, :c] = torch.arange(c)
    return x, y


def _masks(shape, seed=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=F64) > 0.5).double()


# ----------------------------------------------------------------------------- MONAI
@pytest.fixture(scope="module")
def monai():
    m = pytest.importorskip("monai.losses", reason="MONAI parity needs the parity extra")
    warnings.filterwarnings("ignore", module="monai")
    return m


@pytest.mark.parametrize("batch", [False, True], ids=["per_image", "batch"])
@pytest.mark.parametrize("include_background", [True, False], ids=["bg", "no_bg"])
@pytest.mark.parametrize(
    "squared, jaccard, smooth",
    [(False, False, 1e-5), (True, False, 0.7), (False, True, 0.7), (True, True, 1e-5)],
    ids=["dice", "squared", "jaccard", "squared_jaccard"],
)
def test_monai_dice_loss(monai, batch, include_background, squared, jaccard, smooth):
    x, y = _batch(every_class=False)
    y[1] = 0  # image 1: background only
    ours_fn = LF.jaccard_loss if jaccard else LF.dice_loss
    # MONAI's Jaccard is (2I + s) / (2 (P + G - I) + s): smooth s / 2 here
    ours_smooth = smooth / 2 if jaccard else smooth
    for reduction in ("mean", "sum", "none"):
        theirs = monai.DiceLoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            squared_pred=squared,
            jaccard=jaccard,
            smooth_nr=smooth,
            smooth_dr=smooth,
            batch=batch,
            reduction=reduction,
        )(x, y.unsqueeze(1))
        ours = ours_fn(
            x,
            y,
            per_image=not batch,
            include_background=include_background,
            squared=squared,
            smooth=ours_smooth,
            reduction=reduction,
        )
        # MONAI's squared sums are squared L2 norms, and (a + b - |a - b|^2) / 2 for I:
        # exact to about 1e-8 there
        _close(ours, theirs, rtol=1e-6 if squared else 1e-10, msg=reduction)


@pytest.mark.parametrize("batch", [False, True], ids=["per_image", "batch"])
def test_monai_dice_loss_sigmoid_ignore_index_and_weight(monai, batch):
    x, y = _batch(every_class=False, seed=1)
    y[0, :2] = 255
    w = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)
    o = {"smooth_nr": 1e-5, "smooth_dr": 1e-5, "batch": batch}
    theirs = monai.DiceLoss(to_onehot_y=True, softmax=True, ignore_index=255, **o)(x, y[:, None])
    ours = LF.dice_loss(x, y, per_image=not batch, smooth=1e-5, ignore_index=255)
    _close(ours, theirs)
    x, y = _batch(every_class=False, seed=1)
    # the class weight: equal for "sum" and "none"; MONAI's "mean" is mean(w l), losskit's
    # sum(w l) / sum(w)
    for reduction in ("sum", "none"):
        theirs = monai.DiceLoss(to_onehot_y=True, softmax=True, weight=w, reduction=reduction, **o)
        ours = LF.dice_loss(x, y, per_image=not batch, smooth=1e-5, weight=w, reduction=reduction)
        _close(ours, theirs(x, y[:, None]))
    theirs = monai.DiceLoss(to_onehot_y=True, softmax=True, weight=w, **o)(x, y[:, None])
    ours = LF.dice_loss(x, y, per_image=not batch, smooth=1e-5, weight=w)
    _close(ours * w.mean(), theirs)
    # sigmoid per channel: mode="multilabel"
    m = _masks(x.shape)
    theirs = monai.DiceLoss(sigmoid=True, **o)(x, m)
    _close(LF.dice_loss(x, m, mode="multilabel", per_image=not batch, smooth=1e-5), theirs)


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("batch", [False, True], ids=["per_image", "batch"])
@pytest.mark.parametrize("include_background", [True, False], ids=["bg", "no_bg"])
def test_monai_generalized_dice_loss(monai, w_type, batch, include_background):
    x, y = _batch(every_class=False, seed=2)
    y[0] = torch.where(y[0] == 2, 1, y[0])  # class 2 absent from image 0
    y[2] = 0  # image 2: background only
    for reduction in ("mean", "sum", "none"):
        theirs = monai.GeneralizedDiceLoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            w_type=w_type,
            batch=batch,
            smooth_nr=1e-5,
            smooth_dr=1e-5,
            reduction=reduction,
        )(x, y[:, None])
        ours = LF.generalized_dice_loss(
            x,
            y,
            weight_type=w_type,
            per_image=not batch,
            include_background=include_background,
            smooth=1e-5,
            reduction=reduction,
        )
        # MONAI rounds the class weights 1 / G^2 and 1 / G to float32
        _close(ours, theirs, rtol=1e-10 if w_type == "uniform" else 1e-6, msg=reduction)


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (0.3, 0.7), (0.9, 0.2)])
@pytest.mark.parametrize("batch", [False, True], ids=["per_image", "batch"])
@pytest.mark.parametrize("include_background", [True, False], ids=["bg", "no_bg"])
def test_monai_tversky_loss(monai, alpha, beta, batch, include_background):
    x, y = _batch(every_class=False, seed=4)
    y[1, 0] = 255
    for reduction in ("mean", "none"):
        theirs = monai.TverskyLoss(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            alpha=alpha,
            beta=beta,
            batch=batch,
            smooth_nr=0.3,
            smooth_dr=0.3,
            ignore_index=255,
            reduction=reduction,
        )(x, y[:, None])
        ours = LF.tversky_loss(
            x,
            y,
            alpha=alpha,
            beta=beta,
            per_image=not batch,
            include_background=include_background,
            smooth=0.3,
            ignore_index=255,
            reduction=reduction,
        )
        _close(ours, theirs, msg=reduction)


def test_monai_gradients_agree(monai):
    x, y = _batch(seed=5)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    LF.dice_loss(a, y, smooth=1e-5, squared=True).backward()
    monai.DiceLoss(to_onehot_y=True, softmax=True, squared_pred=True)(b, y[:, None]).backward()
    _close(a.grad, b.grad, rtol=1e-6, atol=1e-10)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    LF.tversky_loss(a, y, alpha=0.3, beta=0.7, smooth=1e-5, per_image=False).backward()
    monai.TverskyLoss(to_onehot_y=True, softmax=True, alpha=0.3, beta=0.7, batch=True)(
        b, y[:, None]
    ).backward()
    _close(a.grad, b.grad)


# ----------------------------------------------------------------------------- smp
@pytest.fixture(scope="module")
def smp():
    """smp's loss files, loaded by path from the wheel (its package imports torchvision,
    whose compiled ops do not load against the CPU torch)."""
    wheel = peer_wheel("segmentation-models-pytorch", SMP_VERSION)
    files = CACHE / f"smp-{SMP_VERSION}-overlap"
    files.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for f in SMP_FILES:
            (files / f).write_bytes(z.read(f"segmentation_models_pytorch/losses/{f}"))
    pkg = types.ModuleType("_smp_overlap")
    pkg.__path__ = [str(files)]
    sys.modules["_smp_overlap"] = pkg
    mods = {}
    for f in SMP_FILES:
        name = f"_smp_overlap.{f[:-3]}"
        spec = importlib.util.spec_from_file_location(name, files / f)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods[f[:-3]] = mod
    return types.SimpleNamespace(
        DiceLoss=mods["dice"].DiceLoss,
        JaccardLoss=mods["jaccard"].JaccardLoss,
        TverskyLoss=mods["tversky"].TverskyLoss,
    )


@pytest.mark.parametrize("name", ["dice", "jaccard"])
@pytest.mark.parametrize(
    "options",
    [{}, {"smooth": 1.0}, {"log_loss": True}, {"ignore_index": 255}, {"class_weights": True}],
    ids=str,
)
def test_smp_dice_and_jaccard_multiclass(smp, name, options):
    """smp sums over the batch (``per_image=False``); every class is present. smp's Dice
    is (I + s) / (I + FP/2 + FN/2 + s) = (2I + 2s) / (P + G + 2s): smooth 2s here."""
    x, y = _batch(seed=6)
    options = dict(options)
    ours_options = {k: v for k, v in options.items() if k != "class_weights"}
    if "smooth" in options and name == "dice":
        ours_options["smooth"] = 2 * options["smooth"]
    if "ignore_index" in options:
        y[2, 3:] = 255
    if options.pop("class_weights", False):
        w = [0.5, 1.0, 2.0, 3.0]
        options["class_weights"] = w
        ours_options["weight"] = torch.tensor(w, dtype=F64)
    cls = smp.DiceLoss if name == "dice" else smp.JaccardLoss
    fn = LF.dice_loss if name == "dice" else LF.jaccard_loss
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    theirs = cls("multiclass", **options)(a, y)
    ours = fn(b, y, per_image=False, **ours_options)
    _close(ours, theirs)
    theirs.backward()
    ours.backward()
    _close(b.grad, a.grad)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
def test_smp_binary_and_multilabel(smp, name):
    x = torch.randn(3, 2, 5, 6, dtype=F64, generator=torch.Generator().manual_seed(7))
    m = _masks(x.shape)
    m[..., 0, 0] = 1.0  # every channel present in the batch
    cls = {"dice": smp.DiceLoss, "jaccard": smp.JaccardLoss, "tversky": smp.TverskyLoss}[name]
    fn = {"dice": LF.dice_loss, "jaccard": LF.jaccard_loss, "tversky": LF.tversky_loss}[name]
    extra = {"alpha": 0.3, "beta": 0.7} if name == "tversky" else {}
    smooth = 1.0 if name == "dice" else 0.5  # smp's Dice smooth 0.5 is losskit's 1.0
    _close(
        fn(x, m, mode="multilabel", per_image=False, smooth=smooth, **extra),
        cls("multilabel", smooth=0.5, **extra)(x, m),
    )
    _close(
        fn(x[:, :1], m[:, :1], mode="binary", per_image=False, **extra),
        cls("binary", **extra)(x[:, :1], m[:, :1]),
    )


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (0.3, 0.7), (0.8, 0.1)])
def test_smp_tversky(smp, alpha, beta):
    x, y = _batch(seed=8)
    theirs = smp.TverskyLoss("multiclass", alpha=alpha, beta=beta, smooth=0.2)(x, y)
    ours = LF.tversky_loss(x, y, alpha=alpha, beta=beta, smooth=0.2, per_image=False)
    _close(ours, theirs)
    # smp's gamma raises the mean to a power, not each class's loss (focal Tversky)
    theirs = smp.TverskyLoss("multiclass", alpha=alpha, beta=beta, gamma=2.0)(x, y)
    ours = LF.tversky_loss(x, y, alpha=alpha, beta=beta, per_image=False)
    _close(ours**2, theirs)


def test_smp_drops_absent_classes_and_losskit_scores_them(smp):
    """A class absent from the batch but predicted: smp gives it loss 0 (it is masked
    out), losskit 1 - 0 / P = 1 (the prediction is all false positives)."""
    x, y = _batch(seed=9, every_class=False)
    y = torch.where(y == 3, 0, y)  # class 3 absent everywhere
    theirs = smp.DiceLoss("multiclass")(x, y)
    per_class = LF.dice_loss(x, y, per_image=False, reduction="none")
    assert per_class[3] == 1.0
    masked = per_class.clone()
    masked[3] = 0.0
    _close(masked.mean(), theirs)
    assert LF.dice_loss(x, y, per_image=False) > theirs


# ----------------------------------------------------------------------------- kornia
@pytest.fixture(scope="module")
def kornia():
    return pytest.importorskip("kornia.losses", reason="kornia parity needs the parity extra")


def test_kornia_dice_loss(kornia):
    """kornia's "macro" Dice is the mean per image over the classes present in it: the
    Dice loss per image when every class is present; its "micro" Dice is one Dice over the
    classes of each image: the generalized Dice with uniform weights."""
    x, y = _batch(seed=10)
    w = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)
    _close(LF.dice_loss(x, y), kornia.dice_loss(x, y, average="macro", eps=0.0))
    _close(LF.dice_loss(x, y, weight=w), kornia.dice_loss(x, y, average="macro", eps=0.0, weight=w))
    _close(
        LF.generalized_dice_loss(x, y, weight_type="uniform"),
        kornia.dice_loss(x, y, average="micro", eps=0.0),
    )
    y[0, 0] = 255
    _close(
        LF.dice_loss(x, y, ignore_index=255),
        kornia.dice_loss(x, y, average="macro", eps=0.0, ignore_index=255),
    )


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (0.3, 0.7)])
def test_kornia_tversky_loss(kornia, alpha, beta):
    x, y = _batch(seed=11)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    theirs = kornia.tversky_loss(a, y, alpha=alpha, beta=beta, eps=0.0)
    ours = LF.tversky_loss(b, y, alpha=alpha, beta=beta)
    _close(ours, theirs)
    theirs.backward()
    ours.backward()
    _close(b.grad, a.grad)


# ----------------------------------------------------------------------------- Keras 3
@pytest.fixture(scope="module")
def keras():
    k = pytest.importorskip("keras", minversion="3", reason="Keras parity needs the parity extra")
    if k.backend.backend() != "torch":  # pragma: no cover - keras imported elsewhere first
        pytest.skip("keras was imported with another backend")
    return k


def test_keras_dice(keras):
    """Keras' Dice takes probabilities and adds 1e-7 to the denominator: per image with
    ``axis`` the image's axes, over everything with ``axis=None``."""
    g = torch.Generator().manual_seed(12)
    p = torch.rand(4, 5, 6, generator=g)
    m = _masks((4, 5, 6)).float()
    o = {"mode": "binary", "from_logits": False}
    _close(LF.dice_loss(p, m, **o), keras.losses.Dice(axis=(1, 2))(m, p), rtol=1e-5)
    _close(LF.dice_loss(p, m, per_image=False, **o), keras.losses.Dice()(m, p), rtol=1e-5)
    # one-hot channels-last maps with axis=None: one Dice over every class and pixel
    x, y = _batch(seed=13)
    probs = x.float().softmax(1)
    onehot = torch.nn.functional.one_hot(y, 4).float()
    theirs = keras.losses.Dice()(onehot, probs.permute(0, 2, 3, 1))
    ours = LF.generalized_dice_loss(
        probs, y, from_logits=False, weight_type="uniform", per_image=False
    )
    _close(ours, theirs, rtol=1e-5)


@pytest.mark.parametrize("alpha, beta", [(0.3, 0.7), (0.9, 0.2)])
def test_keras_tversky_swaps_alpha_and_beta(keras, alpha, beta):
    g = torch.Generator().manual_seed(14)
    p = torch.rand(4, 5, 6, generator=g)
    m = _masks((4, 5, 6), seed=15).float()
    theirs = keras.losses.Tversky(alpha=alpha, beta=beta, axis=(1, 2))(m, p)
    o = {"mode": "binary", "from_logits": False}
    _close(LF.tversky_loss(p, m, alpha=beta, beta=alpha, **o), theirs, rtol=1e-5)
    assert not torch.allclose(LF.tversky_loss(p, m, alpha=alpha, beta=beta, **o), theirs)
