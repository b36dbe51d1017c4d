"""The split protocol of `TensorSplit`: moving to a device and a floating-point dtype."""

from __future__ import annotations

import torch

from archlab.data import TensorSplit
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
