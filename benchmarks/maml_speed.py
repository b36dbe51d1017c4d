"""One second-order MAML meta-iteration: archlab vs a learn2learn-style loop, in one process;
and one ANIL meta-iteration beside archlab's MAML (target: <= 0.5x its time).

Setting (the issue's): 5-way 1-shot Omniglot-sized tasks (1x28x28), meta-batch 32, one
inner SGD step, the MAML paper's conv net (4 blocks of 64 3x3 filters, BatchNorm with
batch statistics, ReLU, 2x2 max-pool; linear head), at 1 and at 15 query images a class.

The peer is the per-task loop of learn2learn's MAML, written out here: clone the
parameters (``clone_module``), take ``torch.autograd.grad(create_graph=True)`` on the
support loss, step (``update_module``), and back-propagate each task's query loss.
archlab runs ``MAML.meta_step`` with its automatic strategy (and every strategy is shown), and
``ANIL.meta_step`` (second order, the head adapted on features computed once a task) with its own.

Time is the median of several iterations, in rounds that alternate between the runs. Peak
memory is how far one iteration raises the process's resident set above where it started
(Linux's VmHWM, reset through /proc/self/clear_refs), measured in a fresh process per run
with glibc told to return every freed block of 64 KiB or more to the system at once, so the
resident set follows the live tensors. (torch.profiler's allocation events, used before,
see only the thread that started the profiler, and the threads strategy allocates on
several.)

    flock /tmp/archlab-heavy.lock .venv/bin/python benchmarks/maml_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call

import archlab
from archlab.data.fewshot import TaskBatch
from archlab.meta import ANIL, MAML

WAYS, SHOTS, META_BATCH, INNER_LR = 5, 1, 32, 0.4


def paper_convnet() -> torch.nn.Module:
    return archlab.create_model("cnn", in_channels=1, num_classes=WAYS, input_size=28, channels=[64] * 4,
                                hidden_dims=[], dropout=0.0, batch_norm=True, track_running_stats=False)


def tasks(query: int, meta_batch: int = META_BATCH, seed: int = 0) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(WAYS)
    return TaskBatch(
        torch.rand(meta_batch, WAYS * SHOTS, 1, 28, 28, generator=g),
        labels.repeat_interleave(SHOTS).expand(meta_batch, -1).contiguous(),
        torch.rand(meta_batch, WAYS * query, 1, 28, 28, generator=g),
        labels.repeat_interleave(query).expand(meta_batch, -1).contiguous(),
    )


def learn2learn_style_step(model: torch.nn.Module, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> None:
    """learn2learn's MAML loop: clone, adapt with autograd.grad(create_graph=True), backward per task."""
    optimizer.zero_grad()
    names = [n for n, _ in model.named_parameters()]
    for i in range(len(batch)):
        params = {n: p.clone() for n, p in model.named_parameters()}  # clone_module
        loss = F.cross_entropy(functional_call(model, params, (batch.support_x[i],)), batch.support_y[i])
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
        params = {n: params[n] - INNER_LR * g for n, g in zip(names, grads)}  # update_module
        query = F.cross_entropy(functional_call(model, params, (batch.query_x[i],)), batch.query_y[i])
        (query / len(batch)).backward()
    optimizer.step()


def archlab_step(maml: MAML, batch: TaskBatch, optimizer: torch.optim.Optimizer, strategy: str) -> None:
    maml.meta_step(batch, optimizer, strategy=strategy)


def median_seconds(runs: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each run; rounds alternate between the runs, so a change of load on
    the machine hits them alike."""
    for fn in runs.values():
        fn()  # warm-up
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {key}")


def peak_rss_growth(fn, repeats: int = 3) -> int:
    """Median over `repeats` calls of the peak resident-set growth during `fn` (Linux)."""
    fn()  # warm-up: optimizer state, kernel caches
    growth = []
    for _ in range(repeats):
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        start = _status_bytes("VmRSS:")
        fn()
        growth.append(_status_bytes("VmHWM:") - start)
    return int(statistics.median(growth))


def steady_allocator() -> None:
    """Fix glibc's mmap and trim thresholds (normally adaptive) for the timed runs.

    glibc raises them as large blocks are freed, and from then on serves allocations from its
    heap instead of fresh pages. Left adaptive, the timings depended on what ran before: the
    peer's loop took 717 ms after the 600 MB vmap run had raised them and 930 ms without it.
    Fixed high, every run sees the steady state of a long training run."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to fix
    libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 64 * 2**20)  # M_TRIM_THRESHOLD


def make_runs(query: int, meta_batch: int) -> tuple[dict, str]:
    batch = tasks(query, meta_batch)
    model = paper_convnet()
    maml = MAML(model, INNER_LR, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    runs = {"learn2learn-style loop": lambda: learn2learn_style_step(model, batch, opt)}
    for strategy in ("loop", "threads", "vmap"):
        runs[f"archlab {strategy}"] = lambda s=strategy: archlab_step(maml, batch, opt, s)
    anil_model = paper_convnet()
    anil = ANIL(anil_model, INNER_LR, 1)
    anil_opt = torch.optim.Adam(anil_model.parameters(), lr=1e-3)
    runs["archlab ANIL (auto)"] = lambda: anil.meta_step(batch, anil_opt)
    return runs, maml.choose_strategy(batch)


def measure_memory(run: str, query: int, meta_batch: int) -> int:
    """Peak resident-set growth of one iteration of `run`, in a fresh process."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, __file__, "--memory-of", run, "--query", str(query),
                          "--meta-batch", str(meta_batch)], env=env, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--query", type=int, nargs="+", default=[1, 15])
    parser.add_argument("--meta-batch", type=int, default=META_BATCH)
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # the child process's run
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.memory_of:
        runs, _ = make_runs(args.query[0], args.meta_batch)
        print(peak_rss_growth(runs[args.memory_of]))
        return
    steady_allocator()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; 5-way 1-shot, meta-batch {args.meta_batch}, "
          "one second-order inner step, 4x64 conv net")
    for query in args.query:
        runs, auto = make_runs(query, args.meta_batch)
        seconds = median_seconds(runs, args.repeats)
        memory = {k: measure_memory(k, query, args.meta_batch) for k in runs}
        base_t, base_m = seconds["learn2learn-style loop"], memory["learn2learn-style loop"]
        print(f"\n{query} query image(s) a class ({WAYS * (SHOTS + query)} examples a task); auto strategy: {auto}")
        print(f"{'':24s} {'ms/iter':>9s} {'peak MB':>9s} {'time ratio':>11s} {'mem ratio':>10s}")
        for k in runs:
            print(f"{k:24s} {seconds[k] * 1e3:9.1f} {memory[k] / 2**20:9.1f} {seconds[k] / base_t:11.2f} "
                  f"{memory[k] / base_m:10.2f}")
        key = f"archlab {auto}"
        print(f"archlab (auto = {auto}) / learn2learn-style: time ratio {seconds[key] / base_t:.2f}, "
              f"peak-memory ratio {memory[key] / base_m:.2f}")
        anil = seconds["archlab ANIL (auto)"]
        print(f"ANIL / MAML, both archlab (auto = {auto}): time ratio {anil / seconds[key]:.2f} (target <= 0.5), "
              f"peak-memory ratio {memory['archlab ANIL (auto)'] / memory[key]:.2f}", flush=True)


if __name__ == "__main__":
    main()
