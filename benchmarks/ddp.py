"""archlab's data-parallel `fit` against a hand-written DDP loop: 2 gloo processes each.

Same model (LeNet-5 on 28x28 random images), same in-memory data, global batch, AdamW and
backend. The hand loop is the PyTorch tutorial's: `DistributedDataParallel`, each rank taking its
contiguous part of every batch of one seeded order, zero_grad / backward / step, nothing else.
archlab's run is `fit` under the same environment torchrun sets. Each side runs `--steps` steps a
round, the order alternating between rounds; the time is rank 0's from the end of step 1 to the
end of the last step (start-up and the final evaluation excluded); the median of the rounds is
compared. Target: archlab / hand loop <= 1.05.

It also prints archlab's step time for 2 processes x 1 thread against 1 process x 2 threads
(no target: on a CPU the two share the same cores).

    python benchmarks/ddp.py [--steps 150] [--batch-size 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

SAMPLES = 12800


def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(SAMPLES, 1, 28, 28, generator=g), torch.randint(0, 10, (SAMPLES,), generator=g)


class StepClock:
    """Callback: the time from the end of the first step to the end of the last."""

    def __init__(self):
        self.first = self.last = None

    def on_step_end(self, state):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now


def archlab_run(steps: int, batch_size: int) -> float:
    import archlab
    from archlab.data import Dataset, DataSpec, TensorSplit
    from archlab.engine import ClassificationTask, TrainConfig, fit

    x, y = data()
    dataset = Dataset(DataSpec("bench", "image", (1, 28, 28), 10), {"train": TensorSplit(x=x, y=y)})
    torch.manual_seed(0)
    model = archlab.create_model("lenet5")
    clock = StepClock()
    fit(model, ClassificationTask(10), dataset, TrainConfig(steps=steps, batch_size=batch_size, lr=1e-3,
                                                            quiet=True, device="cpu"), callbacks=(clock,))
    return clock.last - clock.first


def hand_run(steps: int, batch_size: int) -> float:
    import archlab
    from torch.nn.parallel import DistributedDataParallel

    x, y = data()
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = DistributedDataParallel(archlab.create_model("lenet5"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    order = torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(0))
    first = None
    for step in range(steps):
        i = step % (SAMPLES // batch_size)
        idx = order[i * batch_size:(i + 1) * batch_size]
        idx = idx[rank * len(idx) // world:(rank + 1) * len(idx) // world]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if first is None:
            first = time.perf_counter()
    return time.perf_counter() - first


def _rank_main(rank: int, world: int, port: int, threads: int, args, results: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    dist.init_process_group("gloo")
    times: dict[str, list[float]] = {"archlab": [], "hand": []}
    sides = [("archlab", archlab_run), ("hand", hand_run)]
    for r in range(args.rounds):
        for name, run in sides if r % 2 == 0 else sides[::-1]:
            dist.barrier()
            times[name].append(run(args.steps, args.batch_size))
    if rank == 0:
        Path(results).write_text(json.dumps(times))
    dist.destroy_process_group()


def _single(threads: int, args) -> float:
    torch.set_num_threads(threads)
    return statistics.median(archlab_run(args.steps, args.batch_size) for _ in range(args.rounds))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = str(Path(tmp) / "times")
        torch.multiprocessing.spawn(_rank_main, args=(2, free_port(), 1, args, results), nprocs=2, join=True)
        times = json.loads(Path(results).read_text())
    ours, hand = statistics.median(times["archlab"]), statistics.median(times["hand"])
    per_step = args.steps - 1
    print(f"LeNet-5, global batch {args.batch_size}, {args.steps} steps, 2 gloo processes x 1 thread, "
          f"median of {args.rounds} rounds")
    print(f"  hand-written DDP loop  {1e3 * hand / per_step:8.2f} ms/step")
    print(f"  archlab fit            {1e3 * ours / per_step:8.2f} ms/step")
    print(f"  ratio archlab / hand   {ours / hand:8.3f}   (target <= 1.05)")
    single = _single(2, args)
    print(f"archlab, 2 processes x 1 thread {1e3 * ours / per_step:8.2f} ms/step; "
          f"1 process x 2 threads {1e3 * single / per_step:8.2f} ms/step (no target on CPU)")


if __name__ == "__main__":
    main()
