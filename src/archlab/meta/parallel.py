"""Running a per-task loop on several CPU threads at once (the ``threads`` strategy).

A meta-batch of small tasks is a long series of small kernels: a 5-way 1-shot task of the
MAML paper's conv net convolves ten 28x28 images at a time, too little work to spread over
the cores inside each kernel. So the tasks are spread instead: each worker thread takes
every ``workers``-th task (a fixed assignment, so results are reproducible), runs its tasks
one after another with torch's intra-op parallelism set to one thread, and keeps one task's
graph alive at a time, like the loop. torch's kernels and autograd release the GIL, so the
workers compute in parallel; Python's own overhead is what they share.

Two things are process-wide and handled here, not per worker: the intra-op thread count
(set to 1 for the duration and restored afterwards, so other torch work in the process runs
single-threaded meanwhile) and any context the caller enters around the call (e.g. the
attention backend). `torch.func.functional_call` swaps a module's parameters while it runs,
so workers must not share a module: `replicas` gives each its own copy.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import nn

R = TypeVar("R")


def worker_count(n_tasks: int) -> int:
    """One worker per intra-op thread torch may use, at most one per task."""
    return max(1, min(torch.get_num_threads(), n_tasks))


def cpu_workers(model: nn.Module, n_tasks: int, strategy: str = "auto") -> int:
    """Workers for running `n_tasks` independent tasks of `model`: `worker_count` on a CPU when
    `strategy` allows threads (``auto`` or ``threads``), else 1 (the plain loop)."""
    if strategy not in ("auto", "threads") or next(model.parameters()).device.type != "cpu":
        return 1
    return worker_count(n_tasks)


def replicas(model: nn.Module, workers: int) -> list[nn.Module]:
    """`model` for the first worker and a deep copy for each other one. The copies' own
    weights are never used: every call passes the parameters in (`functional_call`)."""
    return [model] + [copy.deepcopy(model) for _ in range(workers - 1)]


class _Assignment:
    """The task indices of one worker; stops early once another worker has failed."""

    def __init__(self, indices: range, stop: threading.Event):
        self.indices = indices
        self.stop = stop
        self.current: int | None = None

    def __iter__(self) -> Iterator[int]:
        for i in self.indices:
            if self.stop.is_set():
                return
            self.current = i
            yield i


def run_in_threads(work: Callable[[int, Iterator[int]], R], n_tasks: int, workers: int) -> list[R]:
    """``work(worker, task_indices)`` for each worker, worker 0 on the calling thread and the
    others on new threads; returns their results in worker order.

    Worker ``w`` gets tasks ``w, w + workers, ...``. If any worker raises, the others stop
    after their current task, and the error of the lowest-numbered task that failed is raised.
    """
    if workers <= 1:
        return [work(0, iter(range(n_tasks)))]
    stop = threading.Event()
    assignments = [_Assignment(range(w, n_tasks, workers), stop) for w in range(workers)]
    results: list = [None] * workers
    errors: dict[int, BaseException] = {}
    grad_enabled = torch.is_grad_enabled()

    def run(w: int) -> None:
        try:
            with torch.set_grad_enabled(grad_enabled):
                results[w] = work(w, iter(assignments[w]))
        except BaseException as err:  # handed to the calling thread below
            errors[w] = err
            stop.set()

    saved_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # read by each new thread when it first runs a parallel kernel
    threads = [threading.Thread(target=run, args=(w,), name=f"archlab-task-worker-{w}", daemon=True)
               for w in range(1, workers)]
    try:
        for thread in threads:
            thread.start()
        run(0)
    except BaseException:
        stop.set()
        raise
    finally:
        try:
            for thread in threads:
                thread.join()
        except BaseException:  # e.g. Ctrl-C while waiting: the workers stop after their current task
            stop.set()
            raise
        finally:
            torch.set_num_threads(saved_threads)
    if errors:
        first = min(errors, key=lambda w: assignments[w].current if assignments[w].current is not None else -1)
        raise errors[first]
    return results
