"""Linear cross entropy: the cross entropy of a linear layer's output, without its logits.

A language model's last layer maps hidden states ``(N, D)`` to logits ``(N, V)`` over a
vocabulary of ``V`` classes, and the logits (with their softmax and gradient) dominate the
memory of training: 8192 tokens x 128256 classes is 4 GB in float32. This module is the
public function: its argument checks and the choice of a path,

* the chunked torch sweep, :mod:`losskit.functional._chunked` (any device), or
* the fused Triton kernel, :mod:`losskit.kernels.linear` (imported only when chosen),

both built on one "cross entropy from row statistics",
:mod:`losskit.functional._rowstats`, which also writes the math of a row.
"""

from __future__ import annotations

import math

import torch

from .. import _checks as C
from .. import kernels
from .._reduction import compute_dtype, finish_sum, mean_weight
from ._chunked import Plan, chunked_linear_cross_entropy
from ._linear_logits import holds_logits, linear_cross_entropy_logits
from ._rowstats import RowCrossEntropy, target_weight

__all__ = ["linear_cross_entropy"]

NAME = "linear_cross_entropy"

# The default tile of logits, in elements (rows x classes): 2**22 float32 values, 16 MiB,
# 80 rows of a 50,000-class vocabulary. Measured with benchmarks/linear.py on a shared
# 2-core CPU (4096 x 64 x 50,000, float32, forward + backward, median s): 16 rows 1.38,
# 32 rows 0.90, 64 rows 0.86, 128 rows 0.97, 256 rows 1.00 (+36 MB), 512 rows 0.96
# (+74 MB); the default 0.78-0.92; the materialised loss 1.7-1.9. The three matmuls run
# at about 130 GFLOP/s and are 80% of the time.
DEFAULT_TILE = 2**22
# Never fewer rows per chunk than this: each chunk updates the whole (V, D) weight gradient.
MIN_ROWS = 16
# When MIN_ROWS rows of the vocabulary exceed this (V > 2**20 classes), the vocabulary is
# blocked too, into blocks of DEFAULT_TILE // MIN_ROWS classes (online log-sum-exp).
MAX_TILE = 2**24


def _kernel_unsupported(input, chunk_size, softcap):
    if input.dtype == torch.float64:
        return "float64 inputs (it computes in float32)"
    if isinstance(chunk_size, tuple | list):
        return "a vocabulary block in chunk_size (with the kernels, chunk_size is rows)"
    if chunk_size is not None and softcap is not None:
        return "softcap with chunk_size (the fused kernel, without chunk_size, has it)"
    return None


# --------------------------------------------------------------------------- checks
def _torch_options(options):
    """torch 2.13's ``options`` (a ``torch.nn.LinearCrossEntropyOptions``): its
    ``batch_chunk_size`` is the rows of a chunk, unless ``chunk_size`` is given; its other
    fields tune torch's own chunking and change no value here (nor do they on the paths
    that hold the logits)."""
    if options is None:
        return None
    if not hasattr(options, "batch_chunk_size"):
        C.fail(
            NAME,
            f"options must be a torch.nn.LinearCrossEntropyOptions or None, got "
            f"{type(options).__name__}.",
            "losskit's own tile is chunk_size=.",
            cls=C.LossTypeError,
        )
    return options.batch_chunk_size


def _check_chunk_size(chunk_size, n, v):
    """Rows per token chunk and classes per vocabulary block."""

    def positive(what, value):
        if isinstance(value, bool) or not isinstance(value, int):
            C.fail(
                NAME,
                f"{what} must be a positive int, got {value!r}.",
                "pass None (the default), an int (rows per chunk) or a pair (rows, classes).",
                cls=C.LossTypeError,
            )
        if value < 1:
            C.fail(NAME, f"{what} must be a positive int, got {value!r}.")
        return value

    if chunk_size is None:
        rows = max(MIN_ROWS, DEFAULT_TILE // v // 8 * 8)
        block = v if rows * v <= MAX_TILE else DEFAULT_TILE // rows
    elif isinstance(chunk_size, tuple | list):
        if len(chunk_size) != 2:
            C.fail(
                NAME, f"chunk_size must be an int or a pair (rows, classes), got {chunk_size!r}."
            )
        rows = positive("chunk_size[0] (rows)", chunk_size[0])
        block = positive("chunk_size[1] (classes)", chunk_size[1])
    else:
        rows = positive("chunk_size", chunk_size)
        block = v
    return max(1, min(rows, n)), min(block, v)


def _check_args(input, linear_weight, target, linear_bias, weight, normalizer, reduction):
    C.check_reduction(NAME, reduction)
    C.check_tensor(NAME, "input", input)
    C.check_tensor(NAME, "linear_weight", linear_weight)
    C.check_tensor(NAME, "target", target)
    if linear_bias is not None:
        C.check_tensor(NAME, "linear_bias", linear_bias)
    weight = C.check_weight_tensor(NAME, weight)
    C.check_floating(NAME, "input", input)
    C.check_floating(NAME, "linear_weight", linear_weight)
    for arg, t in (("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if t is not None and t.dtype != input.dtype:
            C.fail(
                NAME,
                f"{arg} must have the input's dtype ({C.dtype_name(input.dtype)}), got "
                f"{C.describe(t)}.",
                f"cast it with {arg}.to(input.dtype).",
                cls=C.LossTypeError,
            )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        C.fail(
            NAME,
            f"target must hold integer class indices, got {C.describe(target)}.",
            "cast class indices with target.long(); probability targets are floating.",
            cls=C.LossTypeError,
        )
    C.check_same_device(
        NAME,
        input=input,
        linear_weight=linear_weight,
        target=target,
        linear_bias=linear_bias,
        weight=weight,
    )
    C.check_normalizer(NAME, normalizer, reduction)
    if input.dim() == 0:
        C.fail(NAME, "input must be (N, D) or (*, D), got a 0-dim tensor.")
    d = input.shape[-1]
    if linear_weight.dim() != 2:
        C.fail(
            NAME,
            f"linear_weight must be (V, D) = (classes, features), as nn.Linear.weight, got "
            f"shape {tuple(linear_weight.shape)}.",
        )
    v, d_w = linear_weight.shape
    if d_w != d:
        C.fail(
            NAME,
            f"linear_weight of shape {tuple(linear_weight.shape)} takes {d_w} features, but "
            f"input of shape {tuple(input.shape)} has {d} (its last dimension).",
            "linear_weight is (classes, features), as nn.Linear.weight: pass linear_weight.T."
            if v == d
            else None,
        )
    if v == 0:
        C.fail(NAME, "linear_weight has 0 rows (classes); at least one is needed.")
    if linear_bias is not None and tuple(linear_bias.shape) != (v,):
        C.fail(
            NAME,
            f"linear_bias must hold one value per class, shape ({v},), got "
            f"{tuple(linear_bias.shape)}.",
        )
    if weight is not None and tuple(weight.shape) != (v,):
        C.fail(
            NAME,
            f"weight must hold one value per class, shape ({v},), got {tuple(weight.shape)}.",
            "weight is the class weight (V,); for a per-token weight, use "
            "reduction='none' and weigh the result.",
        )
    if tuple(target.shape) != tuple(input.shape[:-1]):
        probs_shape = tuple(target.shape) == (*input.shape[:-1], v)
        C.fail(
            NAME,
            f"target must have shape {tuple(input.shape[:-1])} (the input's without its last "
            f"dimension), got {tuple(target.shape)}.",
            "probability targets must be floating: cast with target.float()."
            if probs_shape
            else None,
        )
    return weight


def _check_classes(y, v, ignore_index):
    """Value check: class indices in ``0..V-1`` or ``ignore_index``; the input holds
    features, the classes are the rows of ``linear_weight``."""
    C.check_class_indices(NAME, y, v, ignore_index, classes_from="linear_weight")


# --------------------------------------------------------------------------- the loss
def linear_cross_entropy(
    input,
    linear_weight,
    target,
    *,
    linear_bias=None,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    reduction="mean",
    normalizer=None,
    chunk_size=None,
    options=None,
    backend="auto",
):
    r"""Cross entropy of a linear layer's output, computed without materialising the logits.

    Equal, in value and in the gradients of ``input``, ``linear_weight`` and
    ``linear_bias``, to

    .. math::
        a = x W^\top + b, \qquad z = s \tanh(a / s) \quad(\text{with } \texttt{softcap}=s),
        \qquad \ell = \operatorname{cross\_entropy}(z, y)

    with :func:`losskit.functional.cross_entropy`'s semantics: for a counted target
    (not ``ignore_index``), class weights ``w``, label smoothing ``\epsilon``, z-loss
    ``k`` and ``\operatorname{lse}_i = \log \sum_c e^{z_{i,c}}``,

    .. math::
        \ell_i = (1 - \epsilon)\, w_{y_i} (\operatorname{lse}_i - z_{i, y_i})
                 + \frac{\epsilon}{V} \sum_c w_c (\operatorname{lse}_i - z_{i,c})
                 + k\, \operatorname{lse}_i^2, \qquad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_i w_{y_i}}

    (``sum(l) / normalizer`` with a normalizer; ``0.0`` with a zero gradient when
    nothing is counted).

    The ``(N, V)`` logits are never held: the tokens are walked in chunks of ``rows``
    (and, for a vocabulary too large for a small chunk, the classes in blocks, with an
    online log-sum-exp), so memory beyond the inputs and gradients is one
    ``(rows, classes)`` tile, a few ``(N,)`` vectors, and the ``(V, D)`` weight gradient
    accumulated in float32. For ``"mean"`` and ``"sum"`` the gradients are computed in
    the forward sweep (one pass over the logits, the approach of Liger-Kernel's fused
    linear cross entropy) and only scaled by the upstream gradient in the backward; for
    ``"none"`` the backward recomputes the tiles with each row's upstream gradient (the
    approach of Cut Cross-Entropy). Half-precision inputs are computed in float32 tile
    by tile; the loss is float32 and each gradient has its parameter's dtype. Unlike
    ``torch.nn.functional.linear_cross_entropy``, this chunks by default and also takes
    ``z_loss``, ``softcap`` and ``normalizer``. The class ``weight`` is a constant (it
    gets no gradient). Both paths are differentiable once: a
    second derivative (``create_graph=True``, nested ``torch.func`` transforms) raises a
    :class:`~losskit.LossInputError` (hold the logits and use ``cross_entropy`` for one);
    ``torch.func.grad``, ``vjp`` and ``jacrev`` work, and ``torch.func.vmap`` sweeps each
    element of the batch on its own. Autograd's vectorized backward of
    ``reduction="none"`` (``is_grads_batched=True``, as ``jacobian(..., vectorize=True)``)
    raises a :class:`~losskit.LossInputError` naming ``jacrev`` instead.

    torch 2.13's other forms are taken too, and hold the logits (as torch's own
    ``options=None`` path does): probability targets ``(*, V)`` (floating; a target row
    is as large as its logits) and K-dimensional layers, ``linear_weight (V, *out_features,
    D)`` with logits ``(N, V, *out_features)``; they compute
    :func:`~losskit.functional.cross_entropy` of the logits, with its semantics (a
    weighted mean over ``sum_c w_c q_c`` for probability targets) and autograd's
    gradients (twice differentiable); ``chunk_size`` does not apply to them.

    Args:
        input: hidden states ``(N, D)`` or ``(*, D)``, floating.
        linear_weight: ``(V, D)``, the ``weight`` of ``nn.Linear(D, V)``, or
            ``(V, *out_features, D)``; the input's dtype.
        target: class indices ``(N,)`` or ``(*)`` (``(N, *out_features)``), any integer
            dtype, or probabilities ``(*, V)`` (``(N, V, *out_features)``), floating.
        linear_bias: ``(V,)`` (``(V, *out_features)``), optional. Default: ``None``.
        weight: class weights ``(V,)``. Default: ``None``.
        ignore_index: a target value not counted (``None`` means ``-100``, as in torch).
            Default: ``-100``.
        label_smoothing: ``epsilon`` in [0, 1]. Default: ``0.0``.
        z_loss: coefficient ``k >= 0`` of ``lse^2`` (PaLM). Default: ``0.0``.
        softcap: ``s > 0``: logits become ``s * tanh(logits / s)`` (Gemma 2). Default:
            ``None``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``. Default: ``"mean"``.
        normalizer: with ``"mean"``, divide the summed loss by this instead.
        chunk_size: token rows per chunk, or a pair ``(rows, classes)`` to also block the
            vocabulary. Default ``None``: chunks of ``2**22 // V`` rows (a 16 MiB float32
            tile; at least 16 rows), and vocabulary blocks only above ``2**20`` classes.
        options: torch 2.13's ``torch.nn.LinearCrossEntropyOptions``: its
            ``batch_chunk_size`` is ``chunk_size`` (when that is not given); its other
            fields tune torch's chunking and change nothing here. Default: ``None``.
        backend: ``"torch"`` (the chunked sweep above, any device) or ``"triton"``: without
            ``chunk_size``, the fused kernel of :mod:`losskit.kernels.linear` (one launch
            computes the tiles of logits and their log-sum-exp, a second recomputes them
            for the gradients, which are accumulated in float32 with atomic adds; the
            logits never exist); with ``chunk_size=rows``, :mod:`losskit.kernels.linear_chunked`
            (tensor-core matmuls in the input's dtype for each chunk's logits and both
            gradients, and the softmax kernel in place on the chunk: the design the
            roofline model favours on a GPU; no ``softcap``). Neither takes float64.
            ``"auto"`` is the torch path for now, on every device: the kernels are opt-in
            until they have been benchmarked on a GPU. Default: ``"auto"``.

    Shape:
        input ``(*, D)``, linear_weight ``(V, D)``, linear_bias and weight ``(V,)``,
        target ``(*)``; output scalar, or ``(*)`` with ``reduction="none"`` (ignored
        targets give 0).

    Example:
        >>> import torch, losskit.functional as LF
        >>> h = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])
        >>> W = torch.tensor([[0.5, 0.1], [-0.3, 0.8], [1.0, -1.0]])
        >>> y = torch.tensor([0, 1, 2])
        >>> LF.linear_cross_entropy(h, W, y)
        tensor(1.3383)
        >>> LF.cross_entropy(h @ W.T, y)  # the same, with the (N, V) logits in memory
        tensor(1.3383)
        >>> LF.linear_cross_entropy(h, W, y, softcap=1.0, reduction="none")
        tensor([1.1316, 0.5810, 1.6516])

    References:
        Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", ICLR 2025,
        https://arxiv.org/abs/2411.09009 (cross entropy without the logits in memory);
        Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM Training", 2024,
        https://arxiv.org/abs/2410.10989 (chunked fused linear cross entropy).
    """
    rows = _torch_options(options)
    if holds_logits(linear_weight, target):  # probability targets, a K-dimensional layer
        return linear_cross_entropy_logits(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=weight,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            z_loss=z_loss,
            softcap=softcap,
            reduction=reduction,
            normalizer=normalizer,
            chunk_size=chunk_size,
            backend=backend,
        )
    if chunk_size is None:
        chunk_size = rows
    ls = C.check_number(NAME, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    k = C.check_number(NAME, "z_loss", z_loss, low=0.0)
    cap = None
    if softcap is not None:
        cap = C.check_number(NAME, "softcap", softcap, low=0.0, low_open=True, finite=False)
        cap = None if math.isinf(cap) else cap  # s tanh(a / s) -> a: no softcap
    ii = -100 if ignore_index is None else C.check_ignore_index(NAME, ignore_index)
    weight = _check_args(input, linear_weight, target, linear_bias, weight, normalizer, reduction)
    v, d = linear_weight.shape
    x = input.reshape(-1, d)
    y = target.reshape(-1).long()
    n = x.shape[0]
    _check_classes(y, v, ii)
    rows, block = _check_chunk_size(chunk_size, n, v)
    use_kernel = kernels.select(
        NAME,
        "torch" if backend == "auto" else backend,
        input,
        _kernel_unsupported(input, chunk_size, cap),
    )
    dtype = compute_dtype(input.dtype)
    mask = y != ii
    # ignored rows are inert: a NaN or inf in their hidden states reaches nothing
    x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
    cw = (
        mean_weight(weight.detach().to(dtype), reduction, normalizer, not k)
        if weight is not None
        else None
    )
    ce = RowCrossEntropy(
        num_classes=v,
        label_smoothing=ls,
        z_loss=k,
        weight_sum=cw.sum() if cw is not None else None,
    )
    scalar = reduction != "none"
    if use_kernel and chunk_size is not None:
        from ..kernels.linear_chunked import chunked_linear_cross_entropy as by_chunks

        out = by_chunks(x, linear_weight, linear_bias, y, cw, ii, ls, k, rows, scalar)
    elif use_kernel:
        from ..kernels.linear import fused_linear_cross_entropy

        y_k = torch.where(mask, y, 0)  # ignored rows read class 0 and count 0
        out = fused_linear_cross_entropy(
            x, linear_weight, linear_bias, y_k, mask, cw, ce, cap, scalar
        )
    else:
        plan = Plan(rows=rows, block=block, softcap=cap, ce=ce)
        out = chunked_linear_cross_entropy(x, linear_weight, linear_bias, y, mask, cw, plan, scalar)
    if not scalar:
        return out.reshape(target.shape)
    if reduction == "mean" and normalizer is None:
        den = mask.sum() if cw is None else target_weight(cw, y, mask).sum()
        return finish_sum(out, den, reduction)
    return finish_sum(out, out, reduction, normalizer)
