"""Reptile (Nichol, Achiam and Schulman, 2018): move the initialization toward task-adapted weights.

.. math::

    \\phi_i = U^k_{\\mathcal{T}_i}(\\theta), \\qquad
    \\theta \\leftarrow \\theta + \\epsilon_t \\Big(\\frac{1}{T}\\sum_i \\phi_i - \\theta\\Big), \\qquad
    \\epsilon_t = (1 - t/n)\\,\\epsilon_0 + (t/n)\\,\\epsilon_{\\mathrm{final}}

where :math:`U^k` is `k` steps of SGD or Adam (the paper's Adam has :math:`\\beta_1 = 0`)
on all of a task's labeled examples (support and query: Reptile has no query loss), and
the meta step :math:`\\epsilon` is annealed linearly over `total_iterations`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from ..data.fewshot import TaskBatch
from .evaluate import evaluate_adaptation
from .functional import (
    LOSSES, Forward, Params, check_finite, check_model, default_forward, make_call, split_state, task_loss,
    task_metric,
)
from .maml import check_hyperparameters
from .parallel import cpu_workers, replicas, run_in_threads
from ..engine.distributed import all_reduce_weighted, current_world
from ..validation import check_choice, check_float, check_int, fail

INNER_OPTIMIZERS = ("sgd", "adam")
STRATEGIES = ("auto", "loop", "threads")  # no vmap: the inner optimizer runs a different number of ops a task
ADAM_BETAS = (0.0, 0.999)  # the Reptile paper's inner Adam
ADAM_EPS = 1e-8


class Reptile:
    """Reptile around `model`; adaptation never mutates it, `meta_step` interpolates it.

    Args:
        model: any module (BatchNorm with ``track_running_stats=False``, as for MAML).
        inner_lr: step size of the inner optimizer.
        inner_steps: inner steps a task during meta-training (and the default at test).
        meta_step_size: :math:`\\epsilon_0`, the initial interpolation step.
        inner_optimizer: ``sgd`` or ``adam`` (betas (0, 0.999), fresh state for every task).
        meta_step_size_final: :math:`\\epsilon` reached at `total_iterations` (linear annealing).
        total_iterations: iterations over which :math:`\\epsilon` is annealed; None keeps it constant.
        kind, forward: as for `MAML`.
        strategy: ``loop`` runs the tasks one after another; ``threads`` spreads them over CPU
            threads (`archlab.meta.parallel`; the same result up to the order in which the
            adapted weights are averaged); ``auto`` picks threads on a CPU with more than one
            intra-op thread.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 1e-3, inner_steps: int = 5, meta_step_size: float = 1.0,
                 inner_optimizer: str = "adam", *, meta_step_size_final: float = 0.0,
                 total_iterations: int | None = None, kind: str = "classification",
                 forward: Forward = default_forward, strategy: str = "auto"):
        check_model(model, "Reptile")
        check_hyperparameters("Reptile", inner_lr, inner_steps)
        check_choice("Reptile", "inner_optimizer", inner_optimizer, INNER_OPTIMIZERS)
        for name, value in (("meta_step_size", meta_step_size), ("meta_step_size_final", meta_step_size_final)):
            check_float("Reptile", name, value, low=0, high=1)
        check_int("Reptile", "total_iterations", total_iterations, minimum=1, optional=True)
        check_choice("Reptile", "kind", kind, LOSSES)
        if strategy not in STRATEGIES:
            raise fail("Reptile", "strategy", f"one of {', '.join(map(repr, STRATEGIES))} (vmap is for MAML)", strategy)
        self.strategy = strategy
        self.model = model
        self.inner_lr = float(inner_lr)
        self.inner_steps = inner_steps
        self.meta_step_size = float(meta_step_size)
        self.meta_step_size_final = float(meta_step_size_final)
        self.total_iterations = total_iterations
        self.inner_optimizer = inner_optimizer
        self.kind = kind
        self.forward_fn = forward

    def step_size_at(self, iteration: int) -> float:
        """:math:`\\epsilon_t`, linearly annealed from `meta_step_size` to `meta_step_size_final`."""
        if self.total_iterations is None:
            return self.meta_step_size
        frac = min(max(iteration, 0) / self.total_iterations, 1.0)
        return (1 - frac) * self.meta_step_size + frac * self.meta_step_size_final

    def _inner_path(self, params: Params, others: Params, batch: Mapping[str, torch.Tensor], steps: int,
                    task_index: int | None, check: bool = True, module: nn.Module | None = None
                    ) -> Iterator[Params]:
        """Detached parameters after each of `steps` inner optimizer steps on `batch`, running
        `module` (default the model)."""
        module = self.model if module is None else module
        params = {n: p.detach().requires_grad_() for n, p in params.items()}
        names = list(params)
        moment = {n: torch.zeros_like(p) for n, p in params.items()}
        second = {n: torch.zeros_like(p) for n, p in params.items()}
        for step in range(1, steps + 1):
            with torch.enable_grad():
                loss = task_loss(self.kind, self.forward_fn(make_call(module, params, others), batch), batch["y"])
                if check:
                    where = f"inner step {step} of {steps}" + (
                        f" on task {task_index}" if task_index is not None else "")
                    check_finite(loss.item(), where=where, inner_lr=self.inner_lr)
                grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
            new = {}
            for n, g in zip(names, grads):
                p = params[n].detach()
                if g is None:
                    new[n] = p
                elif self.inner_optimizer == "sgd":
                    new[n] = p - self.inner_lr * g
                else:
                    b1, b2 = ADAM_BETAS
                    moment[n] = b1 * moment[n] + (1 - b1) * g
                    second[n] = b2 * second[n] + (1 - b2) * g * g
                    m_hat = moment[n] / (1 - b1 ** step)
                    v_hat = second[n] / (1 - b2 ** step)
                    new[n] = p - self.inner_lr * m_hat / (v_hat.sqrt() + ADAM_EPS)
            params = {n: p.requires_grad_() for n, p in new.items()}
            yield params

    def adapt(self, support: Mapping[str, torch.Tensor], steps: int | None = None) -> Params:
        """Parameters after `steps` inner optimizer steps on `support` (the model is unchanged)."""
        steps = self.inner_steps if steps is None else steps
        check_hyperparameters("Reptile.adapt", self.inner_lr, steps)
        params, others = split_state(self.model)
        for params in self._inner_path(params, others, support, steps, None):
            pass
        return {n: p.detach() for n, p in params.items()}

    def predict(self, params: Params, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        batch = x if isinstance(x, Mapping) else {"x": x}
        _, others = split_state(self.model)
        return self.forward_fn(make_call(self.model, params, others), batch)

    def adaptation_path(self, support: Mapping[str, torch.Tensor], steps: int, task_index: int | None = None, *,
                        module: nn.Module | None = None) -> Iterator[tuple[int, Params, Params]]:
        params, others = split_state(self.model)
        yield 0, {n: p.detach() for n, p in params.items()}, others
        for step, adapted in enumerate(self._inner_path(params, others, support, steps, task_index, check=False,
                                                        module=module), start=1):
            yield step, adapted, others

    def meta_step(self, tasks: TaskBatch, iteration: int = 0, *, share: float | None = None) -> dict[str, float]:
        """Adapt to every task (on its support and query examples together), then move the
        model's parameters toward the mean adapted parameters by :math:`\\epsilon_t`.

        In a `torch.distributed` process group each rank passes its part of the meta-batch; the
        ranks' mean adapted parameters are averaged with the weights `share` (each rank's share
        of the tasks; default equal), so every rank moves toward the whole meta-batch's mean.

        Returns the mean loss and metric of the adapted parameters on the task data, and the
        step size used. A non-finite inner loss raises `AdaptationError` and the model is unchanged.
        """
        was_training = self.model.training
        self.model.train()
        n = len(tasks)
        try:
            params, others = split_state(self.model)  # read once: functional_call swaps them while it runs
            workers = cpu_workers(self.model, n, self.strategy)
            modules = replicas(self.model, workers)

            def work(w: int, indices) -> tuple[Params, list[tuple[int, float, float]]]:
                mean = {name: torch.zeros_like(p) for name, p in params.items()}
                scored = []
                for i in indices:
                    support, query = tasks.task(i)
                    batch = {"x": torch.cat([support["x"], query["x"]]), "y": torch.cat([support["y"], query["y"]])}
                    adapted = params
                    for adapted in self._inner_path(params, others, batch, self.inner_steps, i, module=modules[w]):
                        pass
                    with torch.no_grad():
                        out = self.forward_fn(make_call(modules[w], adapted, others), batch)
                        scored.append((i, task_loss(self.kind, out, batch["y"]).item(),
                                       task_metric(self.kind, out, batch["y"]).item()))
                        for name in mean:
                            mean[name] += adapted[name].detach() / n
                return mean, scored

            results = run_in_threads(work, n, workers)
        finally:
            self.model.train(was_training)
        mean = results[0][0]
        for partial, _ in results[1:]:  # in worker order: reproducible
            for name in mean:
                mean[name] += partial[name]
        if current_world().distributed:
            names = list(mean)
            weight = 1 / current_world().size if share is None else share
            mean = dict(zip(names, all_reduce_weighted([mean[k] for k in names], weight)))
        scored = sorted(item for _, items in results for item in items)
        losses, metrics = [loss for _, loss, _ in scored], [metric for _, _, metric in scored]
        epsilon = self.step_size_at(iteration)
        with torch.no_grad():
            for name, p in params.items():
                p.add_(mean[name] - p, alpha=epsilon)
        name = "accuracy" if self.kind == "classification" else "mse"
        return {"loss": sum(losses) / len(losses), name: sum(metrics) / len(metrics), "meta_step_size": epsilon}

    def evaluate(self, sampler, n_tasks: int = 600, inner_steps: int | Sequence[int] | None = None, *,
                 seed: int = 0) -> dict[str, float]:
        """As `MAML.evaluate`, adapting with Reptile's inner optimizer."""
        steps = self.inner_steps if inner_steps is None else inner_steps
        return evaluate_adaptation(self.model, self.adaptation_path, self.kind, sampler, n_tasks, steps, seed=seed,
                                   forward=self.forward_fn,
                                   workers=cpu_workers(self.model, n_tasks, self.strategy))
