"""archlab's `fit` against a hand-written PyTorch loop, side by side in one process.

Same model (LeNet-5 on 28x28), same in-memory data, batch size and optimizer; each side
trains one epoch per round, the order alternating between rounds; the median of the
rounds is compared. Target: time ratio fit / hand loop <= 1.10.

    python benchmarks/engine_overhead.py [--samples 12800] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import archlab
from archlab.data import Dataset, DataSpec, TensorSplit
from archlab.engine import ClassificationTask, TrainConfig, fit


def hand_loop(model, x, y, batch_size, lr, seed):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.samples, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (args.samples,), generator=g)
    spec = DataSpec("bench", "image", (1, 28, 28), 10)
    data = Dataset(spec, {"train": TensorSplit(x=x, y=y)})
    config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=1e-3, quiet=True, device="cpu")

    def archlab_run():
        model = archlab.create_model("lenet5")
        t = time.perf_counter()
        fit(model, ClassificationTask(10), data, config)
        return time.perf_counter() - t

    def torch_run():
        model = archlab.create_model("lenet5")
        t = time.perf_counter()
        hand_loop(model, x, y, args.batch_size, 1e-3, 0)
        return time.perf_counter() - t

    archlab_run(), torch_run()  # warm-up
    ours, theirs = [], []
    for r in range(args.rounds):
        pair = (archlab_run, torch_run) if r % 2 == 0 else (torch_run, archlab_run)
        times = {f: f() for f in pair}
        ours.append(times[archlab_run])
        theirs.append(times[torch_run])
    a, t = statistics.median(ours), statistics.median(theirs)
    print(f"torch threads: {torch.get_num_threads()}, samples: {args.samples}, batch: {args.batch_size}")
    print(f"hand-written loop : {t:.3f} s/epoch  ({args.samples / t:,.0f} samples/s)")
    print(f"archlab fit       : {a:.3f} s/epoch  ({args.samples / a:,.0f} samples/s)")
    print(f"ratio fit/loop    : {a / t:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
