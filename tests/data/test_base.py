"""The split protocol of `TensorSplit`: moving to a device and a floating-point dtype."""

from __future__ import annotations

import torch

from archlab.data import TensorSplit
from archlab.data.base import SHARD_COUNT, SHARD_ROWS
from archlab.data.episodes import EpisodeSplit, task_sampler


def test_to_a_dtype_converts_the_floating_point_tensors_only():
    split = TensorSplit(x=torch.rand(6, 2), y=torch.arange(6), mask=torch.ones(6, dtype=torch.bool))
    moved = split.to("cpu", torch.float64)
    assert [moved[k].dtype for k in ("x", "y", "mask")] == [torch.float64, torch.long, torch.bool]
    assert split.to("cpu")["x"].dtype == torch.float32
    (batch,) = list(moved.batches(6))
    torch.testing.assert_close(batch["x"], split["x"].double())


def test_episodes_in_float64_keep_their_labels():
    sampler = task_sampler("digits", ways=3, shots=1, query=2, seed=0)
    (batch,) = [b for _, b in zip(range(1), EpisodeSplit(sampler).to("cpu", torch.float64).batches(2))]
    tasks = batch["tasks"]
    assert (tasks.support_x.dtype, tasks.query_x.dtype) == (torch.float64, torch.float64)
    assert (tasks.support_y.dtype, tasks.query_y.dtype) == (torch.long, torch.long)


def test_a_shard_of_each_batch_is_that_part_of_the_whole_batch():
    split = TensorSplit(x=torch.rand(11, 2), y=torch.arange(11))
    for shuffle in (False, True):
        whole = list(split.batches(5, shuffle=shuffle, seed=3))
        parts = [list(split.batches(5, shuffle=shuffle, seed=3, shard=(rank, 3))) for rank in range(3)]
        for i, batch in enumerate(whole):  # batches of 5, 5 and 1 rows
            n = len(batch["y"])
            for rank in range(3):
                part = parts[rank][i]
                start, stop, total = part[SHARD_ROWS]
                lo, hi = rank * n // 3, (rank + 1) * n // 3  # a rank without rows holds row 0, counted 0
                assert total == n and (start, stop, part[SHARD_COUNT]) == ((lo, hi, hi - lo) if hi > lo else (0, 1, 0))
                assert torch.equal(part["y"], batch["y"][start:stop]) and torch.equal(part["x"], batch["x"][start:stop])
            assert sum(parts[rank][i][SHARD_COUNT] for rank in range(3)) == n


def test_a_subclass_whose_batches_take_no_shard_is_cut_by_the_engine_instead():
    class Plain(TensorSplit):
        def batches(self, batch_size, *, shuffle=False, seed=0, start=0):
            yield from TensorSplit.batches(self, batch_size, shuffle=shuffle, seed=seed, start=start)

    assert TensorSplit(x=torch.zeros(2)).reads_shards and not Plain(x=torch.zeros(2)).reads_shards
