"""What TensorBoard logging costs the loop: `fit` without a logger, with `TensorBoardLogger` at its
default (a step's statistics every 50 steps, every history row) and logging every step.

Same model (LeNet-5 on 28x28), same in-memory data and settings, an evaluation row every 20 steps;
each variant trains one epoch per round, the order rotating between rounds; the medians are
compared. Target: the default logger within 2% of no logger.

    python benchmarks/tensorboard_overhead.py [--samples 12800] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import archlab
from archlab.data import Dataset, DataSpec, TensorSplit
from archlab.engine import ClassificationTask, TensorBoardLogger, TrainConfig, fit


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
    config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=1e-3, eval_every=20, quiet=True, device="cpu")
    root = tempfile.mkdtemp()

    def run(every: int | None):
        def once():
            model = archlab.create_model("lenet5")
            callbacks = () if every is None else (TensorBoardLogger(tempfile.mkdtemp(dir=root),
                                                                    log_every_n_steps=every),)
            t = time.perf_counter()
            fit(model, ClassificationTask(10), data, config, callbacks=callbacks)
            elapsed = time.perf_counter() - t
            for cb in callbacks:
                cb.close()
            return elapsed
        return once

    variants = {"no logger": run(None), "tensorboard, default": run(50), "tensorboard, every step": run(1)}
    for once in variants.values():  # warm-up
        once()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(variants[name]())
    base = statistics.median(times["no logger"])
    print(f"torch threads: {torch.get_num_threads()}, samples: {args.samples}, batch: {args.batch_size}, "
          f"steps: {args.samples // args.batch_size}")
    for name, values in times.items():
        t = statistics.median(values)
        print(f"{name:24s}: {t:.3f} s/epoch  ratio {t / base:.3f}")


if __name__ == "__main__":
    main()
