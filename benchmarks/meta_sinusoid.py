"""What a sinusoid MAML meta-iteration costs in `archlab meta-train maml --data sinusoid`, in one process:

1. the vmapped meta-step of the MLP 40-40 at 1 and at 2 intra-op threads (rounds alternate the order);
2. the meta-train job per iteration at the CLI's defaults (one thread for this tiny model, a checkpoint at
   the first log row every 10 s, a row every 10 iterations) against the settings of the one-core run that
   took 334 s for 70,000 iterations (a checkpoint every 5000, a row every 1000) and the old CLI default's
   checkpoint every 100 iterations (the job trains this model on one thread in every case).

    PYTHONPATH=src .venv/bin/python benchmarks/meta_sinusoid.py [--iterations 500] [--step-iterations 100] [--rounds 2]

Wall and CPU milliseconds an iteration; the ratios say how the CLI's default compares with the 334 s run.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from archlab.data import Sinusoid
from archlab.jobs.meta import MetaConfig, build_learner, default_model, meta_train
from archlab.models.registry import create_model


def step_times(n: int, rounds: int) -> dict[int, list[float]]:
    config = MetaConfig(algorithm="maml", data="sinusoid").resolved()
    sampler = Sinusoid(10, 10)
    name, kwargs = default_model(sampler)
    learner = build_learner(create_model(name, **kwargs), config, "regression")
    optimizer = torch.optim.Adam(learner.parameters(), 1e-3)
    batches = [sampler.sample(25, torch.Generator().manual_seed(i)) for i in range(n)]
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for threads in (1, 2) if r % 2 == 0 else (2, 1):
            torch.set_num_threads(threads)
            learner.meta_step(batches[0], optimizer)
            started = time.perf_counter()
            for tasks in batches:
                learner.meta_step(tasks, optimizer)
            times[threads].append((time.perf_counter() - started) / n * 1e3)
    return times


def job_times(n: int, rounds: int, threads: int, folder: str) -> dict[str, list[tuple[float, float]]]:
    def run(run_threads: int, **options) -> tuple[float, float]:
        torch.set_num_threads(run_threads)
        wall, cpu = time.perf_counter(), time.process_time()
        meta_train(MetaConfig(algorithm="maml", data="sinusoid", iterations=n), out=f"{folder}/run", overwrite=True,
                   device="cpu", eval_tasks=0, quiet=True, **options)
        return (time.perf_counter() - wall) / n * 1e3, (time.process_time() - cpu) / n * 1e3

    variants = {"CLI default": lambda: run(threads),
                "the 334 s run's settings": lambda: run(1, checkpoint_every=5000, log_every=1000),
                "a checkpoint every 100": lambda: run(threads, checkpoint_every=100, log_every=10)}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for r in range(rounds):
        for key in list(variants) if r % 2 == 0 else list(variants)[::-1]:
            times[key].append(variants[key]())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--step-iterations", type=int, default=100, help="meta-steps a thread count a round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    with open("/proc/loadavg") as f:
        print(f"load average {f.read().split()[0]}, torch threads {threads}, {args.iterations} iterations a run")
    for k, v in step_times(args.step_iterations, args.rounds).items():
        print(f"vmapped meta-step, {k} thread(s): " + " ".join(f"{t:.2f}" for t in v) + " ms")
    with tempfile.TemporaryDirectory() as folder:
        times = job_times(args.iterations, args.rounds, threads, folder)
    for key, v in times.items():
        print(f"{key:26s} " + "  ".join(f"wall {w:.2f} cpu {c:.2f}" for w, c in v) + " ms an iteration")
    ours, theirs = (min(w for w, _ in times[k]) for k in ("CLI default", "the 334 s run's settings"))
    print(f"CLI default / the 334 s run's settings (best wall): {ours / theirs:.3f}")


if __name__ == "__main__":
    main()
