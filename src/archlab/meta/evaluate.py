"""Meta-test evaluation shared by the meta-learners: adapt on each task's support set,
score its query set after each requested number of steps, report the mean and a 95%
confidence interval over tasks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

from ..data.fewshot import TaskBatch
from .functional import Params, default_forward, make_call, task_metric
from .parallel import replicas, run_in_threads
from ..validation import check_int, fail

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its normal 95% confidence interval,
    :math:`1.96\\, s / \\sqrt{n}` with the sample standard deviation :math:`s`."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, Z95 * math.sqrt(var / n)


def steps_list(inner_steps: int | Sequence[int]) -> list[int]:
    steps = [inner_steps] if isinstance(inner_steps, int) else list(inner_steps)
    bad = [s for s in steps if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if not steps or bad:
        raise fail("evaluate", "inner_steps", "an int >= 0 or a non-empty list of them", inner_steps)
    return sorted(set(steps))


def scored_tasks(sampler, n_tasks: int, seed: int, like: torch.Tensor, chunk: int = 32
               ) -> Iterator[tuple[int, TaskBatch]]:
    """``(offset, tasks)``: `n_tasks` tasks of `sampler` in chunks of `chunk`, drawn from a generator
    seeded with `seed` (so every meta-learner is scored on the same tasks), on the device of
    `like` and in its floating-point dtype."""
    generator = torch.Generator().manual_seed(seed)
    done = 0
    while done < n_tasks:
        tasks = sampler.sample(min(chunk, n_tasks - done), generator).to(like.device, like.dtype)
        yield done, tasks
        done += len(tasks)


def evaluate_adaptation(
    model: torch.nn.Module,
    path: Callable[..., Iterator[tuple[int, Params, Params]]],
    kind: str,
    sampler,
    n_tasks: int,
    inner_steps: int | Sequence[int],
    *,
    seed: int = 0,
    chunk: int = 32,
    forward=default_forward,
    workers: int = 1,
) -> dict[str, float]:
    """Mean query metric after each of `inner_steps`, with ``_ci95`` beside each.

    `path(support, max_steps, task_index)` yields ``(step, params, others)`` for step 0..max_steps;
    with `workers` > 1 it is also given ``module=`` a copy of `model` to run. Then the tasks of
    each chunk are spread over that many threads (`archlab.meta.parallel`), each with its own copy
    of the model, so that `model` itself is never swapped while another thread reads it; the
    tasks are the same and the values are collected in task order.
    Tasks come from a generator seeded with `seed`, so two models are scored on the same tasks.
    A task whose adaptation diverged counts as it is (an infinite MSE makes the mean infinite);
    ``{name}_step{k}_median`` beside each mean is robust to such outliers.
    """
    check_int("evaluate", "n_tasks", n_tasks, minimum=1)
    steps = steps_list(inner_steps)
    wanted = set(steps)
    first = next(model.parameters())
    values: dict[int, list[float]] = {s: [] for s in steps}
    was_training = model.training
    model.eval()
    # with threads, copies only: `path` reads `model`'s own parameters while the copies run
    modules = [model] if workers <= 1 else replicas(model, workers + 1)[1:]

    def path_kwargs(w: int) -> dict:
        return {"module": modules[w]} if workers > 1 else {}  # a one-thread `path` may not take a module

    def score(w: int, indices, tasks, offset: int) -> list[tuple[int, int, float]]:
        scored = []
        for i in indices:
            support, query = tasks.task(i)
            for step, params, others in path(support, steps[-1], offset + i, **path_kwargs(w)):
                if step in wanted:
                    with torch.no_grad():
                        out = forward(make_call(modules[w], params, others), query)
                        scored.append((i, step, task_metric(kind, out, query["y"]).item()))
        return scored

    try:
        for done, tasks in scored_tasks(sampler, n_tasks, seed, first, chunk):
            results = run_in_threads(lambda w, indices: score(w, indices, tasks, done), len(tasks), workers)
            for _, step, value in sorted(item for scored in results for item in scored):
                values[step].append(value)
    finally:
        model.train(was_training)
    name = "accuracy" if kind == "classification" else "mse"
    metrics: dict[str, float] = {}
    for step in steps:
        mean, ci = mean_ci95(values[step])
        metrics[f"{name}_step{step}"] = mean
        metrics[f"{name}_step{step}_ci95"] = ci
        ordered = sorted(values[step], key=lambda v: (v != v, v))  # NaN last
        metrics[f"{name}_step{step}_median"] = ordered[(len(ordered) - 1) // 2]
    return metrics
