"""losskit.distributed: vocabulary-parallel cross entropy and the global normaliser.

The multi-process tests spawn 2 and 4 gloo processes on the CPU, once per world size: each
rank runs every case and saves its results, and the parent compares them with the
single-process computation (``losskit.functional.cross_entropy`` on the full logits), so
that pytest reports the failures. The same cases also run in one process, where the
"group" is the process alone.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import losskit
import losskit.functional as LF
from conftest import assert_close
from losskit.distributed import global_count, vocab_parallel_cross_entropy

V_LOCAL = 5  # classes per rank: the full vocabulary has V_LOCAL * world classes
F64, F32, BF16 = torch.float64, torch.float32, torch.bfloat16


@dataclass(frozen=True)
class Case:
    name: str
    options: dict = field(default_factory=dict)
    dtype: torch.dtype = F64
    batch: tuple = (7,)
    ignore: str = ""  # "": none; "some": every third target; "all": every target
    scale: float = 3.0
    offset: float = 0.0
    pad: bool = False  # the last two classes are -inf (a padded vocabulary)
    target_dtype: torch.dtype = torch.int64
    upstream: float = 1.0  # the gradient flowing into a scalar loss
    checks: bool = True
    weighted: bool = False  # class weights of the full vocabulary, the same on every rank


CASES = [
    Case("mean"),
    Case("sum", {"reduction": "sum"}, upstream=2.5),
    Case("none", {"reduction": "none"}),
    Case("ignore-mean", ignore="some"),
    Case("ignore-none", {"reduction": "none"}, ignore="some"),
    Case("ignore-a-real-class", {"ignore_index": 2}, ignore="some"),
    Case("all-ignored-mean", ignore="all"),
    Case("all-ignored-sum", {"reduction": "sum"}, ignore="all"),
    Case("all-ignored-none", {"reduction": "none"}, ignore="all"),
    Case("smoothing", {"label_smoothing": 0.1}, ignore="some"),
    Case("smoothing-1", {"label_smoothing": 1.0, "reduction": "sum"}),
    Case("z-loss", {"z_loss": 0.05}, ignore="some", upstream=0.5),
    Case("smoothing-z-none", {"label_smoothing": 0.2, "z_loss": 0.1, "reduction": "none"}),
    Case("normalizer-float", {"normalizer": 3.5, "label_smoothing": 0.1}, ignore="some"),
    Case("normalizer-tensor", {"normalizer": torch.tensor(4.0)}, ignore="all"),
    Case("3d-mean", {"z_loss": 0.01}, batch=(2, 3), ignore="some"),
    Case("3d-none", {"label_smoothing": 0.3, "reduction": "none"}, batch=(2, 3)),
    Case("unbatched", {"label_smoothing": 0.1}, batch=()),
    Case("empty-batch", batch=(0,)),
    Case("large-logits", {"label_smoothing": 0.1, "z_loss": 1e-4}, scale=50.0, offset=1e4),
    Case("padded-vocabulary", {"z_loss": 0.01}, pad=True, ignore="some"),
    Case("float32", {"label_smoothing": 0.1, "z_loss": 0.01}, dtype=F32, ignore="some"),
    Case("float32-none", {"reduction": "none"}, dtype=F32),
    Case("bfloat16", {"label_smoothing": 0.1}, dtype=BF16, ignore="some"),
    Case("float16-sum", {"reduction": "sum", "z_loss": 0.01}, dtype=torch.float16),
    Case("int32-target", target_dtype=torch.int32, ignore="some"),
    Case("checks-off", {"label_smoothing": 0.1}, ignore="some", checks=False),
    Case("weight-mean", ignore="some", weighted=True),
    Case("weight-none", {"reduction": "none"}, ignore="some", weighted=True),
    Case("weight-smoothing-z", {"label_smoothing": 0.2, "z_loss": 0.05}, weighted=True),
    Case(
        "weight-smoothing-sum",
        {"label_smoothing": 0.1, "reduction": "sum"},
        ignore="some",
        upstream=1.5,
        weighted=True,
    ),
    Case("weight-normalizer", {"normalizer": 2.5}, ignore="some", weighted=True),
    Case("weight-all-ignored", {"label_smoothing": 0.1}, ignore="all", weighted=True),
    Case("weight-3d", {"label_smoothing": 0.1}, batch=(2, 3), ignore="some", weighted=True),
    Case("weight-padded", {"z_loss": 0.01}, pad=True, ignore="some", weighted=True),
    Case("weight-float32", {"label_smoothing": 0.1}, dtype=F32, ignore="some", weighted=True),
    Case("weight-bfloat16", {"label_smoothing": 0.1}, dtype=BF16, weighted=True),
    Case("weight-checks-off", {"label_smoothing": 0.1}, checks=False, weighted=True),
]
CASE_IDS = [c.name for c in CASES]


def _loss_dtype(dtype):
    return F32 if dtype in (BF16, torch.float16) else dtype


def make(case: Case, world: int):
    """The full logits ``(*batch, V)``, the target and the upstream gradient of a case."""
    vocab = V_LOCAL * world
    g = torch.Generator().manual_seed(zlib.crc32(case.name.encode()) + world)
    logits = torch.randn(*case.batch, vocab, generator=g, dtype=F64) * case.scale + case.offset
    n_real = vocab - 2 if case.pad else vocab
    target = torch.randint(0, n_real, case.batch, generator=g)
    if case.pad:
        logits[..., n_real:] = -math.inf
    ignore_index = case.options.get("ignore_index", -100)
    if case.ignore == "some":
        target.view(-1)[::3] = ignore_index
    elif case.ignore == "all":
        target.fill_(ignore_index)
    loss_dtype = _loss_dtype(case.dtype)
    if case.options.get("reduction") == "none":
        upstream = torch.rand(case.batch, generator=g, dtype=F64).to(loss_dtype) + 0.5
    else:
        upstream = torch.tensor(case.upstream, dtype=loss_dtype)
    return logits.to(case.dtype), target.to(case.target_dtype), upstream


def class_weight(case: Case, world: int):
    """The class weights ``(V,)`` of a weighted case (None otherwise), float64, in
    [0.25, 2.25): the same tensor on every rank."""
    if not case.weighted:
        return None
    g = torch.Generator().manual_seed(zlib.crc32(case.name.encode()) + 100 + world)
    return torch.rand(V_LOCAL * world, generator=g, dtype=F64) * 2 + 0.25


def options_of(case: Case, world: int):
    weight = class_weight(case, world)
    return case.options if weight is None else {**case.options, "weight": weight}


def shard_of(logits, rank, v_local=V_LOCAL):
    return logits[..., rank * v_local : (rank + 1) * v_local]


def reference(case: Case, world: int):
    """Loss and gradient of ``cross_entropy`` on the full logits, in one process."""
    logits, target, upstream = make(case, world)
    full = logits.clone().requires_grad_()
    x = full.movedim(-1, 1) if full.dim() > 2 else full  # cross_entropy: classes in dim 1
    loss = LF.cross_entropy(x, target, **options_of(case, world))
    loss.backward(upstream)
    return loss.detach(), full.grad


# --------------------------------------------------------------------------- the rank's work
def _dp_batches(rank):
    """Data-parallel micro-batches of one rank: different sizes and counted tokens."""
    g = torch.Generator().manual_seed(1000 + rank)
    batches = []
    for n in (2 + rank, 5 - rank % 3):
        x = torch.randn(n, 6, generator=g, dtype=F64) * 2
        t = torch.randint(0, 6, (n,), generator=g)
        t[torch.rand(n, generator=g) < 0.1 + 0.2 * rank] = -100
        batches.append((x, t))
    return batches


def _replica_batch(replica):
    """The batch of one data-parallel replica of the 2 x 2 (data x tensor) parallel grid."""
    g = torch.Generator().manual_seed(2000 + replica)
    n = 3 + 3 * replica
    x = torch.randn(n, 2 * V_LOCAL, generator=g, dtype=F64) * 2
    t = torch.randint(0, 2 * V_LOCAL, (n,), generator=g)
    t[replica::3] = -100
    return x, t


GRID_OPTIONS = {"label_smoothing": 0.1, "z_loss": 0.01}


def _cases_on_rank(rank, world, calls):
    out = {}
    for case in CASES:
        logits, target, upstream = make(case, world)
        shard = shard_of(logits, rank).clone().requires_grad_()
        before = shard.detach().clone()
        calls.clear()
        with losskit.set_checks(case.checks):
            loss = vocab_parallel_cross_entropy(shard, target, **options_of(case, world))
        forward_calls = list(calls)
        loss.backward(upstream)
        out[case.name] = {
            "loss": loss.detach(),
            "grad": shard.grad,
            "forward_calls": forward_calls,
            "backward_calls": calls[len(forward_calls) :],
            "unchanged": torch.equal(shard.detach(), before),
        }
    return out


def _recipe_on_rank(rank):
    batches = _dp_batches(rank)
    count = global_count([t for _, t in batches])
    losses, grads = [], []
    for x, t in batches:  # gradient accumulation over the micro-batches
        x = x.clone().requires_grad_()
        loss = LF.cross_entropy(x, t, normalizer=count)
        loss.backward()
        losses.append(loss.detach())
        grads.append(x.grad)
    return {"count": count, "losses": losses, "grads": grads}


def _errors_on_rank(rank, world):
    logits, target, _ = make(CASES[0], world)
    vocab = V_LOCAL * world
    bad_range = target.clone()
    bad_range[1] = vocab
    bad_range[2] = 0  # so that no 1-based hint applies
    wide = logits[..., : V_LOCAL + 1] if rank == 0 else shard_of(logits, rank)
    rows = torch.cat([logits, logits[:1]]) if rank == 0 else logits
    rows_target = torch.cat([target, target[:1]]) if rank == 0 else target
    differs = target.clone()
    differs[0] = rank
    weight = torch.linspace(0.5, 2.0, vocab, dtype=F64)
    differs_weight = weight.clone()
    differs_weight[rank] += 0.25 * rank
    attempts = {
        "out-of-range": (shard_of(logits, rank), bad_range, {}),
        "unequal-widths": (wide, target, {}),
        "unequal-rows": (shard_of(rows, rank), rows_target, {}),
        "different-targets": (shard_of(logits, rank), differs, {}),
        "different-weights": (shard_of(logits, rank), target, {"weight": differs_weight}),
        "weight-slice": (shard_of(logits, rank), target, {"weight": shard_of(weight, rank)}),
    }
    out = {}
    for name, (shard, t, options) in attempts.items():
        try:
            vocab_parallel_cross_entropy(shard, t, **options)
            out[name] = None
        except losskit.LossInputError as error:
            out[name] = str(error)
    # the group still works after every rank raised
    out["after"] = vocab_parallel_cross_entropy(shard_of(logits, rank), target)
    return out


def _grid_on_rank(rank):
    """2 x 2 grid: tensor-parallel pairs {0, 1}, {2, 3}; data-parallel pairs {0, 2}, {1, 3}."""
    tp_groups = [dist.new_group([0, 1]), dist.new_group([2, 3])]
    dp_groups = [dist.new_group([0, 2]), dist.new_group([1, 3])]
    replica, tp_rank = divmod(rank, 2)
    x, t = _replica_batch(replica)
    shard = shard_of(x, tp_rank).clone().requires_grad_()
    count = global_count(t, group=dp_groups[tp_rank])
    loss = vocab_parallel_cross_entropy(
        shard, t, group=tp_groups[replica], normalizer=count, **GRID_OPTIONS
    )
    loss.backward()
    return {"loss": loss.detach(), "grad": shard.grad, "count": count}


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    calls = []
    all_reduce = dist.all_reduce

    def counting_all_reduce(tensor, *args, **kwargs):
        calls.append(tensor.numel())
        return all_reduce(tensor, *args, **kwargs)

    def forbidden(name):
        def call(*args, **kwargs):
            raise RuntimeError(f"losskit.distributed called torch.distributed.{name}")

        return call

    # the only collective used is all_reduce, of O(N) numbers: the logits are never moved
    others = ("all_gather", "all_gather_into_tensor", "gather", "broadcast", "all_to_all")
    saved = {name: getattr(dist, name) for name in others}
    for name in others:
        setattr(dist, name, forbidden(name))
    dist.all_reduce = counting_all_reduce
    try:
        out = {"cases": _cases_on_rank(rank, world, calls)}
        counted = torch.full((4 + rank,), -100)
        counted[: rank + 1] = 3
        out["count"] = global_count(counted)
        out["count_all"] = global_count(counted, ignore_index=None)
        out["count_float"] = global_count(counted.double(), ignore_index=-100)
        out["recipe"] = _recipe_on_rank(rank)
        out["errors"] = _errors_on_rank(rank, world)
        if world == 4:
            out["grid"] = _grid_on_rank(rank)
    finally:
        dist.all_reduce = all_reduce
        for name, function in saved.items():
            setattr(dist, name, function)
        dist.destroy_process_group()
    torch.save(out, f"{out_dir}/rank{rank}.pt")
    # skip the interpreter's teardown (about half a second of CPU per process with torch
    # loaded): the results are saved, and exit code 0 is all that mp.spawn checks
    os._exit(0)


def _spawn(world, tmp):
    """Run every rank's work once; returns the results, one dict per rank."""
    mp.spawn(_worker, args=(world, str(tmp / "store"), str(tmp)), nprocs=world)
    return [torch.load(tmp / f"rank{r}.pt") for r in range(world)]


# --------------------------------------------------------------------------- multi-process
# Each check below gets the results of every rank; the one test per world size runs them
# all, so that one spawn serves every check (also under pytest-xdist) and every failure
# is reported.


def check_cases(ranks, world):
    """Every case, every rank: the loss of the full vocabulary (bit-identical across the
    ranks) and the matching slice of the full gradient, from O(N) communication."""
    failures = []
    for case in CASES:
        want_loss, want_grad = reference(case, world)
        rows = math.prod(case.batch)
        for rank, result in enumerate(ranks):
            got = result["cases"][case.name]
            try:
                assert got["loss"].dtype == _loss_dtype(case.dtype), "loss dtype"
                assert got["grad"].dtype == case.dtype, "gradient dtype"
                assert torch.equal(got["loss"], ranks[0]["cases"][case.name]["loss"]), (
                    "the loss differs between ranks"
                )
                assert_close(got["loss"], want_loss, case.dtype, msg="loss")
                want = shard_of(want_grad, rank)
                assert_close(got["grad"].double(), want.double(), case.dtype, msg="gradient")
                assert got["unchanged"], "the input was modified"
                expected_calls = (1 if case.checks else 0) + (2 if rows else 0)
                assert len(got["forward_calls"]) == expected_calls, got["forward_calls"]
                assert max(got["forward_calls"], default=0) <= max(8, 3 * rows), (
                    f"communication not O(N): {got['forward_calls']}"
                )
                assert got["backward_calls"] == [], "the backward communicates"
            except AssertionError as error:
                failures.append(f"rank {rank}, case {case.name}: {error}")
    assert not failures, "\n".join(failures)


def check_global_count(ranks, world):
    """Rank r counts r + 1 targets: every rank gets the total."""
    total = world * (world + 1) // 2
    for result in ranks:
        assert result["count"].dtype == torch.int64 and result["count"].dim() == 0
        assert int(result["count"]) == total
        assert int(result["count_all"]) == sum(4 + r for r in range(world))
        assert int(result["count_float"]) == total


def check_data_parallel_recipe(ranks, world):
    """Per-rank ``cross_entropy(..., normalizer=global_count(...))`` over accumulated
    micro-batches, summed over the ranks, is the mean over every token of the step."""
    batches = [b for r in range(world) for b in _dp_batches(r)]
    x = torch.cat([b[0] for b in batches]).requires_grad_()
    t = torch.cat([b[1] for b in batches])
    want = LF.cross_entropy(x, t)
    want.backward()
    counted = int((t != -100).sum())
    assert all(int(r["recipe"]["count"]) == counted for r in ranks)
    got = sum(loss for r in ranks for loss in r["recipe"]["losses"])
    assert_close(got, want.detach(), msg="summed loss")
    grads = torch.cat([g for r in ranks for g in r["recipe"]["grads"]])
    assert_close(grads, x.grad, msg="gradient")
    # and the naive recipe (each rank's own mean, averaged over the ranks) is not
    own_means = []
    for r in range(world):
        xs, ts = zip(*_dp_batches(r), strict=True)
        own_means.append(LF.cross_entropy(torch.cat(xs), torch.cat(ts)))
    assert not torch.allclose(torch.stack(own_means).mean(), want.detach())


def check_errors(ranks, world):
    """Inconsistent shards and bad targets raise on every rank, and the group survives."""
    vocab = V_LOCAL * world
    for result in ranks:
        errors = result["errors"]
        assert errors["out-of-range"] == (
            f"vocab_parallel_cross_entropy: target has class index {vocab}, but the full "
            f"vocabulary ({world} ranks x {V_LOCAL}) has {vocab} classes "
            f"(valid 0..{vocab - 1}, or ignore_index=-100); 1 value out of range."
        )
        assert "same number of classes on every rank" in errors["unequal-widths"]
        assert f"got from {V_LOCAL} to {V_LOCAL + 1}" in errors["unequal-widths"]
        assert "same tokens" in errors["unequal-rows"]
        assert "target must be identical on every rank" in errors["different-targets"]
        assert errors["different-weights"] == (
            "vocab_parallel_cross_entropy: weight must be identical on every rank of the "
            "group (the class weights of the full vocabulary), but it differs between ranks. "
            "Hint: pass the same full (V,) weight on every rank, not the rank's own slice."
        )
        assert errors["weight-slice"] == (
            "vocab_parallel_cross_entropy: weight must hold one value per class of the full "
            f"vocabulary ({world} ranks x {V_LOCAL}), shape ({vocab},), got ({V_LOCAL},). "
            "Hint: pass the same full (V,) weight on every rank, not the rank's own slice."
        )
        assert torch.equal(result["errors"]["after"], ranks[0]["cases"]["mean"]["loss"])


def check_grid(ranks, world):
    """4 ranks as 2 data-parallel replicas x 2 vocabulary shards, with ``group=``."""
    if world != 4:
        return
    grid = [result["grid"] for result in ranks]
    batches = [_replica_batch(d) for d in range(2)]
    x = torch.cat([b[0] for b in batches]).requires_grad_()
    t = torch.cat([b[1] for b in batches])
    want = LF.cross_entropy(x, t, **GRID_OPTIONS)
    want.backward()
    rows = [0, len(batches[0][1]), len(t)]
    for rank, result in enumerate(grid):
        replica, tp_rank = divmod(rank, 2)
        assert int(result["count"]) == int((t != -100).sum())
        assert torch.equal(result["loss"], grid[2 * replica]["loss"])  # same in a TP pair
        want_grad = shard_of(x.grad[rows[replica] : rows[replica + 1]], tp_rank)
        assert_close(result["grad"], want_grad, msg=f"gradient of rank {rank}")
    assert_close(grid[0]["loss"] + grid[2]["loss"], want.detach(), msg="summed loss")


CHECKS = [check_cases, check_global_count, check_data_parallel_recipe, check_errors, check_grid]


@pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed"
)
@pytest.mark.parametrize("world", [2, 4])
def test_gloo_processes(world, tmp_path):
    """Spawn ``world`` gloo processes on the CPU once, then run every check."""
    ranks = _spawn(world, tmp_path)
    failures = []
    for check in CHECKS:
        try:
            check(ranks, world)
        except AssertionError as error:
            failures.append(f"{check.__name__} (world {world}): {error}")
    assert not failures, "\n\n".join(failures)


# --------------------------------------------------------------------------- one process
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_one_process_equals_cross_entropy(case):
    """Without a process group the 'group' is this process: cross_entropy, classes last."""
    logits, target, upstream = make(case, 1)
    shard = logits.clone().requires_grad_()
    with losskit.set_checks(case.checks):
        loss = vocab_parallel_cross_entropy(shard, target, **options_of(case, 1))
    loss.backward(upstream)
    want_loss, want_grad = reference(case, 1)
    assert loss.dtype == _loss_dtype(case.dtype) and shard.grad.dtype == case.dtype
    assert_close(loss, want_loss, case.dtype)
    assert_close(shard.grad.double(), want_grad.double(), case.dtype)
    assert torch.isfinite(shard.grad).all()


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 7, generator=g, dtype=F64, requires_grad=True)
    t = torch.tensor([0, 6, -100, 3, 3, 1])
    for options in ({}, {"label_smoothing": 0.2, "z_loss": 0.1}, {"reduction": "none"}):
        assert torch.autograd.gradcheck(
            lambda x, o=options: vocab_parallel_cross_entropy(x, t, **o), (x,)
        )


def test_all_ignored_mean_is_zero_with_zero_gradient():
    x = torch.randn(3, 4, dtype=F64, requires_grad=True)
    loss = vocab_parallel_cross_entropy(x, torch.full((3,), -100), z_loss=0.1)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_ignored_rows_of_minus_inf_give_a_zero_gradient():
    x = torch.randn(3, 4, dtype=F64)
    x[1] = -math.inf  # a padding position
    x.requires_grad_()
    loss = vocab_parallel_cross_entropy(x, torch.tensor([1, -100, 2]), reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.equal(x.grad[1], torch.zeros(4, dtype=F64))


def test_global_count_without_a_process_group():
    assert not dist.is_initialized()
    t = torch.tensor([[3, 1, -100], [0, -100, 7]])
    count = global_count(t)
    assert count.dtype == torch.int64 and count.dim() == 0 and int(count) == 4
    assert int(global_count(t, ignore_index=None)) == 6
    assert int(global_count(t, ignore_index=3)) == 5
    assert int(global_count((t, t[:1]))) == 6
    assert int(global_count(torch.tensor([1.0, 0.0, -1.0]), ignore_index=-1)) == 2
    assert int(global_count(torch.empty(0, dtype=torch.long))) == 0


def test_global_count_as_normalizer_for_accumulation():
    """Two micro-batches of unequal counted tokens: the summed losses are the mean."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 5, generator=g, dtype=F64)
    t = torch.tensor([0, 1, -100, 4, -100, -100, 2, 2, 3])
    n = global_count([t[:3], t[3:]])
    total = LF.cross_entropy(x[:3], t[:3], normalizer=n) + LF.cross_entropy(
        x[3:], t[3:], normalizer=n
    )
    assert_close(total, LF.cross_entropy(x, t))


def test_global_count_errors():
    with pytest.raises(losskit.LossTypeError, match="global_count: target must be a torch"):
        global_count([])
    with pytest.raises(losskit.LossTypeError, match=r"global_count: target\[0\] must be a torch"):
        global_count([1, 2])
    with pytest.raises(losskit.LossTypeError, match="global_count: ignore_index must be"):
        global_count(torch.tensor([1]), ignore_index="pad")
    with pytest.raises(losskit.LossInputError, match="not initialised"):
        global_count(torch.tensor([1]), group=object())


ERRORS = [
    ({"input": torch.randn(3, 4), "target": torch.tensor([0.0, 1.0, 2.0])}, {}, "integer class"),
    ({"input": torch.randn(3, 4), "target": torch.tensor([0, 1])}, {}, "classes are the last"),
    ({"input": torch.randn(3, 0), "target": torch.zeros(3).long()}, {}, "V_local >= 1"),
    ({"input": torch.tensor(1.0), "target": torch.tensor(0)}, {}, "classes last"),
    ({"input": torch.randn(3, 4).long(), "target": torch.zeros(3).long()}, {}, "floating"),
    ({}, {"reduction": "avg"}, "reduction must be one of"),
    ({}, {"label_smoothing": 1.5}, "label_smoothing must be >= 0 and <= 1"),
    ({}, {"z_loss": -1.0}, "z_loss must be >= 0"),
    ({}, {"reduction": "sum", "normalizer": 2.0}, "normalizer is used only"),
    ({}, {"ignore_index": 1.5}, "ignore_index must be an int"),
    ({}, {"group": object()}, "not initialised"),
]


@pytest.mark.parametrize("args, options, match", ERRORS)
def test_vocab_parallel_errors(args, options, match):
    x = args.get("input", torch.randn(3, 4))
    t = args.get("target", torch.tensor([0, 1, 3]))
    with pytest.raises((losskit.LossInputError, losskit.LossTypeError), match=match) as info:
        vocab_parallel_cross_entropy(x, t, **options)
    assert str(info.value).startswith("vocab_parallel_cross_entropy: ")


def test_out_of_range_target_message_and_checks_off():
    x = torch.randn(3, 4)
    t = torch.tensor([1, 4, 2])
    with pytest.raises(losskit.LossInputError) as info:
        vocab_parallel_cross_entropy(x, t)
    assert str(info.value) == (
        "vocab_parallel_cross_entropy: target has class index 4, but the full vocabulary "
        "(1 rank x 4) has 4 classes (valid 0..3, or ignore_index=-100); 1 value out of "
        "range. Hint: labels look 1-based: subtract 1 (target - 1)."
    )
    with losskit.set_checks(False):  # no check, no error (the value is then meaningless)
        assert torch.isfinite(vocab_parallel_cross_entropy(x, t))


def test_class_weight_errors():
    x = torch.randn(3, 4)
    t = torch.tensor([0, 1, 3])
    with pytest.raises(losskit.LossInputError) as info:
        vocab_parallel_cross_entropy(x, t, weight=torch.ones(5))
    assert str(info.value) == (
        "vocab_parallel_cross_entropy: weight must hold one value per class of the full "
        "vocabulary (1 rank x 4), shape (4,), got (5,)."
    )
    with pytest.raises(losskit.LossTypeError, match="weight must be a torch.Tensor"):
        vocab_parallel_cross_entropy(x, t, weight=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(losskit.LossTypeError, match="weight must be a real tensor"):
        vocab_parallel_cross_entropy(x, t, weight=torch.ones(4, dtype=torch.complex64))


# --------------------------------------------------------------------------- autograd rules
SECOND_ORDER = (
    "vocab_parallel_cross_entropy: second derivatives are not supported on this path "
    "(create_graph=True, or nested torch.func transforms): its gradient is computed by "
    "hand and is not itself differentiable. Hint: for second derivatives, gather the "
    "logits and use losskit.functional.cross_entropy, which is twice differentiable."
)
AUTOGRAD_OPTIONS = [
    pytest.param({}, id="plain"),
    pytest.param({"label_smoothing": 0.2, "z_loss": 0.1, "weight": "class"}, id="all"),
    pytest.param({"reduction": "none", "weight": "class"}, id="none"),
    pytest.param({"reduction": "sum", "label_smoothing": 0.1}, id="sum"),
]


def _autograd_case(options):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 7, generator=g, dtype=F64) * 2
    t = torch.tensor([0, 6, -100, 3, 3, 1])
    options = dict(options)
    if options.get("weight") == "class":
        options["weight"] = torch.rand(7, generator=g, dtype=F64) + 0.5
    return x, t, options


@pytest.mark.parametrize("options", AUTOGRAD_OPTIONS)
def test_create_graph_raises(options):
    """A gradient penalty needs the gradient's own graph, which this backward does not
    make: it raises instead of returning a gradient that silently has none."""
    x, t, options = _autograd_case(options)
    x.requires_grad_()
    loss = vocab_parallel_cross_entropy(x, t, **options).sum()
    with pytest.raises(losskit.LossInputError) as info:
        torch.autograd.grad(loss, x, create_graph=True)
    assert str(info.value) == SECOND_ORDER
    # the first derivative is still there, from the same graph
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("options", AUTOGRAD_OPTIONS)
def test_torch_func_grad_and_vmap(options):
    """torch.func.grad equals autograd's gradient; vmap (and vmap of grad) over a batch
    of logits equals the loop; grad of grad raises the second-derivative error."""
    x, t, options = _autograd_case(options)

    def f(x):
        return vocab_parallel_cross_entropy(x, t, **options).sum()

    leaf = x.clone().requires_grad_()
    (want,) = torch.autograd.grad(f(leaf), leaf)
    with losskit.set_checks(False):  # value checks read the data, which vmap cannot
        assert_close(torch.func.grad(f)(x), want)
        batch = torch.stack([x, x * 0.5 - 1.0, x.flip(0)])
        assert_close(torch.func.vmap(f)(batch), torch.stack([f(b) for b in batch]))
        leaves = [b.clone().requires_grad_() for b in batch]
        grads = [torch.autograd.grad(f(b), b)[0] for b in leaves]
        assert_close(torch.func.vmap(torch.func.grad(f))(batch), torch.stack(grads))
        with pytest.raises(losskit.LossInputError, match="second derivatives are not supported"):
            torch.func.grad(lambda x: torch.func.grad(f)(x).sum())(x)


def test_jacrev_of_the_per_row_loss():
    x, t, options = _autograd_case({"label_smoothing": 0.1, "weight": "class"})
    with losskit.set_checks(False):
        jac = torch.func.jacrev(
            lambda x: vocab_parallel_cross_entropy(x, t, reduction="none", **options)
        )(x)
    want = torch.autograd.functional.jacobian(
        lambda x: LF.cross_entropy(x, t, reduction="none", **options), x
    )
    assert_close(jac, want)


def test_class_weights_of_any_scale():
    """Equal class weights give the unweighted mean however large or small they are (the
    weighted mean depends only on their ratios)."""
    x, t, _ = _autograd_case({})
    want = vocab_parallel_cross_entropy(x, t, label_smoothing=0.1)
    for scale in (1e38, 1e-310, 1.0):
        weight = torch.full((7,), scale, dtype=F64)
        assert_close(vocab_parallel_cross_entropy(x, t, weight=weight, label_smoothing=0.1), want)
