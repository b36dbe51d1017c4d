"""Data-parallel training with `torch.distributed`, as `torchrun` starts it.

`fit` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...)
and, with more than one process, joins the process group (gloo on CPU, nccl on CUDA). Then:

- every rank takes a disjoint, contiguous shard of each global batch of the epoch's seeded order
  (`shard_batch`): ``batch_size`` stays the global batch, so N processes compute what one does;
  a full-batch graph is replicated instead, and a batch of tasks is split by tasks;
- gradients are averaged across ranks: by `DistributedDataParallel` for a task trained by one
  loss and one optimizer, and by `all_reduce_gradients` for the tasks that step themselves
  (the AAE's phases, MAML's meta-gradients); each rank's share is weighted by its examples, so an
  uneven last batch still gives the one-process gradient;
- each step's statistics, the Ctrl-C flag and the callbacks' stop requests are summed across ranks
  in one all-reduce (`StepAgreement`), so every rank logs the same values and stops at the same step;
  under DDP it runs while the backward pass computes, so a step waits for the other ranks once, as a
  hand-written DDP loop's does.

Nothing here launches processes: `torchrun` (or ``archlab train --nproc N``, which starts torch's
own elastic launcher) does.
"""

from __future__ import annotations

import atexit
import datetime
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..data.base import SHARD_COUNT, SHARD_ROWS, shard_part
from ..data.fewshot import TaskBatch
from ..errors import ConfigError
from ..validation import check_choice

BACKENDS = ("auto", "gloo", "nccl")

#: how long a rank waits for the others in one collective before the run fails (a rank that died
#: is noticed by torchrun's agent long before, which then stops every rank)
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints and writes checkpoints."""
        return self.rank == 0


def env_world() -> World:
    """The world torchrun's environment describes (one process when it describes none)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise ConfigError(f"RANK, WORLD_SIZE and LOCAL_RANK must be ints (torchrun sets them); {err}.") from None


def current_world() -> World:
    """The world of the joined process group, else one process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def resolve_backend(backend: str, device: torch.device) -> str:
    check_choice("TrainConfig", "backend", backend, BACKENDS)
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and (device.type != "cuda" or not dist.is_nccl_available()):
        raise ConfigError(f"--backend nccl needs CUDA GPUs and a torch built with NCCL; this run is on {device.type}"
                          f"{'' if dist.is_nccl_available() else ' and this torch has no NCCL'}. Use --backend gloo "
                          "(or auto).")
    return backend


def join(backend: str, device: torch.device) -> World:
    """Join the process group torchrun's environment describes (once a process), and return the
    world; one process needs none. A CUDA device becomes this rank's GPU (``LOCAL_RANK``)."""
    name = resolve_backend(backend, device)  # checked in one process too: nccl without a GPU is refused
    world = env_world()
    if not world.distributed:
        return world
    if dist.is_initialized():
        if dist.get_backend() != name:
            raise ConfigError(f"this process already joined a {dist.get_backend()} process group; the run asks for "
                              f"{name}.")
        return current_world()
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(name, timeout=TIMEOUT)
    atexit.register(_leave)
    return current_world()


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, world: World) -> torch.device:
    """This rank's device: its own GPU (``cuda:LOCAL_RANK``) on CUDA."""
    if world.distributed and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


# ---- shards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """This rank's part of a global batch: `batch`, and how many of the batch's `total` examples
    (or tasks) it holds; `count` 0 means the rank holds a stand-in example weighted by 0."""

    batch: Any
    count: int
    total: int

    def weight(self, world_size: int) -> float:
        """The factor on this rank's mean loss whose average over ranks is the global mean loss."""
        return self.count * world_size / self.total if self.total else 0.0


def _slice_tasks(tasks: TaskBatch, lo: int, hi: int) -> TaskBatch:
    return TaskBatch(tasks.support_x[lo:hi], tasks.support_y[lo:hi], tasks.query_x[lo:hi], tasks.query_y[lo:hi])


def shard_batch(batch: Any, world: World, *, replicated: bool = False) -> Shard:
    """Rank ``world.rank``'s contiguous part of a global `batch`: of its tasks for ``{"tasks": TaskBatch}``
    (the batch keeps ``"index"`` and gains ``"total_tasks"``), else of every tensor as long as the
    batch (``len(batch["x"])``). A `replicated` batch (a full graph) is every rank's whole."""
    if not world.distributed:
        return Shard(batch, 1, 1)
    if replicated:
        return Shard(batch, 1, world.size)
    if isinstance(batch, Mapping) and isinstance(batch.get("tasks"), TaskBatch):
        tasks = batch["tasks"]
        n = len(tasks)
        lo, hi, count = shard_part(n, world.rank, world.size)  # fewer tasks than ranks: a stand-in weighted 0
        return Shard({**batch, "tasks": _slice_tasks(tasks, lo, hi), "total_tasks": n, "task_count": count},
                     count, n)
    if not isinstance(batch, Mapping):
        raise ConfigError(f"data-parallel training shards batches of named tensors; got a {type(batch).__name__}.")
    if SHARD_ROWS in batch:  # the split read this rank's rows only (a streamed image folder)
        start, stop, n = batch[SHARD_ROWS]
        return Shard(batch, int(batch.get(SHARD_COUNT, stop - start)), n)
    key = "x" if "x" in batch else next(k for k, v in batch.items() if isinstance(v, torch.Tensor))
    n = len(batch[key])
    lo, hi, count = shard_part(n, world.rank, world.size)
    local = {k: v[lo:hi] if isinstance(v, torch.Tensor) and v.dim() > 0 and len(v) == n else v
             for k, v in batch.items()}
    local[SHARD_ROWS] = (lo, hi, n)
    return Shard(local, count, n)


# ---- random draws of a shard --------------------------------------------------------------



def shard_rows(batch: Any) -> tuple[int, int, int] | None:
    """The rows ``(start, stop, total)`` of the global batch that `batch` holds, or None for a whole batch."""
    return batch.get(SHARD_ROWS) if isinstance(batch, Mapping) else None


def randn_rows(tail: tuple[int, ...], rows: tuple[int, int, int] | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise ``(stop - start, *tail)`` for a shard: drawn for the whole global batch and
    cut to the shard's rows, so every rank's generator advances as one process's and the noise of an
    example is the one it gets in one process. ``(len(like), *tail)`` for a whole batch (`rows` None)."""
    if rows is None:
        return torch.randn((len(like), *tail), device=like.device, dtype=like.dtype)
    start, stop, total = rows
    return torch.randn((total, *tail), device=like.device, dtype=like.dtype)[start:stop]


def bernoulli_rows(p: torch.Tensor, rows: tuple[int, int, int] | None) -> torch.Tensor:
    """``torch.bernoulli(p)`` of a shard's rows, drawn as the rows of the whole global batch (see
    `randn_rows`): one draw an element whatever its probability, so the other rows are zeros."""
    if rows is None:
        return torch.bernoulli(p)
    start, stop, total = rows
    full = p.new_zeros((total, *p.shape[1:]))
    full[start:stop] = p
    return torch.bernoulli(full)[start:stop]


# ---- collectives --------------------------------------------------------------------------


def all_reduce_weighted(tensors: list[torch.Tensor], weight: float) -> list[torch.Tensor]:
    """The sums over ranks of ``weight * tensor``, in one flat all-reduce (`tensors` themselves in
    one process, where `weight` is 1)."""
    if not current_world().distributed or not tensors:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors]) * weight
    dist.all_reduce(flat)
    out, offset = [], 0
    for t in tensors:
        out.append(flat[offset:offset + t.numel()].view_as(t).clone())
        offset += t.numel()
    return out


def all_reduce_gradients(parameters: Iterable[torch.Tensor], weight: float | None = None) -> None:
    """Replace each gradient by the sum over ranks of ``weight * gradient`` (`weight` this rank's share
    of the batch; default ``1 / world size``, which averages). Parameters without a gradient take
    part with zeros. Nothing happens in one process."""
    world = current_world()
    if not world.distributed:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    weight = 1 / world.size if weight is None else weight
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    # which parameters have a gradient on some rank, summed in the same all-reduce (divided back by `weight`)
    present = torch.tensor([float(p.grad is not None) for p in params], dtype=grads[0].dtype, device=grads[0].device)
    *reduced, seen = all_reduce_weighted([*grads, present], weight)
    for p, g, s in zip(params, reduced, seen.tolist()):
        p.grad = g if s != 0 else None


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over ranks, in place (unchanged in one process)."""
    if current_world().distributed:
        dist.all_reduce(tensor)
    return tensor


def broadcast_object(value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if not current_world().distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_module(model: nn.Module) -> None:
    """Every rank's weights and buffers made rank 0's."""
    if not current_world().distributed:
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


#: stop requests `StepAgreement` carries: Ctrl-C, the time limit, any other callback's reason
STOPS = ("interrupt", "time_limit", "other")


class StepAgreement:
    """One all-reduce a step: the step's statistics weighted by each rank's examples, and the stop
    flags, so every rank records the same means and stops at the same step.

    `start` launches it without waiting: started after the forward pass, it is queued in the process
    group ahead of the gradients' all-reduces that DDP launches during the backward pass, so it is
    done by the time they are, and `AgreementWork.wait` after the backward costs no second wait for
    the other ranks. A statistic may be a tensor (the detached loss): it is not read on the host
    before the all-reduce."""

    def __init__(self, device: torch.device):
        self.device = device if device.type == "cuda" else torch.device("cpu")

    def start(self, stats: Mapping[str, float | torch.Tensor], count: int, stops: Mapping[str, bool]
              ) -> AgreementWork:
        keys = sorted(stats)
        head = torch.tensor([float(count)] + [float(stops.get(s, False)) for s in STOPS], dtype=torch.float64,
                            device=self.device)
        values = torch.stack([torch.as_tensor(stats[k], dtype=torch.float64, device=self.device).reshape(())
                              for k in keys]) * count if keys else head[:0]
        tensor = torch.cat((head, values))
        return AgreementWork(tensor, keys, dist.all_reduce(tensor, async_op=True))

    def reduce(self, stats: Mapping[str, float | torch.Tensor], count: int, stops: Mapping[str, bool]
               ) -> tuple[dict[str, float], dict[str, bool]]:
        """`start` and wait: the means over every rank's examples, and which stops some rank asked for."""
        return self.start(stats, count, stops).wait()


class AgreementWork:
    """A `StepAgreement` in flight; `wait` returns the statistics' means over every rank's examples
    (NaN when some rank's is) and which stops some rank asked for."""

    def __init__(self, tensor: torch.Tensor, keys: list[str], work: Any):
        self.tensor, self.keys, self.work = tensor, keys, work

    def wait(self) -> tuple[dict[str, float], dict[str, bool]]:
        self.work.wait()
        reduced = self.tensor.tolist()
        total, flags, sums = reduced[0], reduced[1:1 + len(STOPS)], reduced[1 + len(STOPS):]
        means = {k: s / total if total else float("nan") for k, s in zip(self.keys, sums)}
        return means, {s: f > 0 for s, f in zip(STOPS, flags)}
