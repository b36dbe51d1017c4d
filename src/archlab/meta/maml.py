"""MAML (Finn et al., 2017), first-order MAML and Meta-SGD (Li et al., 2017) on any archlab model.

.. math::

    \\theta'_i = \\theta - \\alpha \\nabla_\\theta \\mathcal{L}_{\\mathcal{T}_i}^{\\mathrm{support}}(\\theta)
    \\quad(\\text{repeated } N \\text{ times}), \\qquad
    \\theta \\leftarrow \\theta - \\beta \\nabla_\\theta \\frac{1}{T}\\sum_i
    \\mathcal{L}_{\\mathcal{T}_i}^{\\mathrm{query}}(\\theta'_i)

``first_order=True`` drops the second-order terms (the inner gradients are constants);
``learn_inner_lr=True`` makes :math:`\\alpha` one learned tensor per parameter (Meta-SGD),
trained with the model by the outer optimizer (pass ``maml.parameters()``).

Two ways to run it: `MAML.meta_step` on a `TaskBatch` with the built-in losses, or a loop of
one's own on any loss, as in learn2learn: ``learner = maml.clone()``, ``learner.adapt(loss)``
on a loss computed from ``learner(x)``, then ``query_loss.backward()`` (`MAMLClone`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from ..data.fewshot import TaskBatch
from ..errors import ConfigError
from .batchnorm import BatchStatisticsNorm, twice_differentiable_attention
from .second_order_batchnorm import SecondOrderBatchNorm
from .evaluate import evaluate_adaptation
from .functional import (
    LOSSES, AdaptationError, Forward, Params, adapt, adapt_vmappable, check_finite, check_model, default_forward,
    make_call, sgd_update, split_state, task_loss, task_metric,
)
from .parallel import cpu_workers, replicas, run_in_threads, worker_count
from ..engine.distributed import all_reduce_gradients
from .strategy import check_strategy, choose_strategy
from ..validation import check_choice, check_float, check_int, fail


def check_hyperparameters(who: str, inner_lr: Any, inner_steps: Any) -> None:
    check_float(who, "inner_lr", inner_lr, low=0, low_open=True)
    check_int(who, "inner_steps", inner_steps, minimum=0)


def check_flags(who: str, **flags: Any) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise fail(who, name, "a bool", value)


class MAML(nn.Module):
    """Model-agnostic meta-learning around `model`, which is never modified by adaptation.

    Args:
        model: any module; its trainable parameters are meta-learned. BatchNorm layers must
            have ``track_running_stats=False`` (batch statistics everywhere, as in the paper).
        inner_lr: :math:`\\alpha`, the inner-loop SGD step (the initial value with Meta-SGD).
        inner_steps: :math:`N`, inner steps during meta-training (and the default at test).
        first_order: drop second-order terms (FOMAML).
        learn_inner_lr: learn one step size per parameter entry (Meta-SGD).
        kind: ``classification`` (cross-entropy, accuracy) or ``regression`` (MSE), for
            `meta_step`, `adapt` and `evaluate` (a clone's `adapt` takes any loss).
        forward: ``forward(call, batch) -> output``; `call` runs the model with adapted
            weights. The default is ``call(batch["x"])``.
        strategy: ``auto``, ``loop``, ``threads`` or ``vmap`` (see `archlab.meta.strategy`).
        allow_unused: a clone's `adapt` keeps a fast weight the loss does not reach; otherwise
            it refuses the loss. None (the default) takes the value of `allow_nograd`.
        allow_nograd: a clone's `adapt` holds the frozen parameters (``requires_grad=False``)
            fixed; otherwise it refuses a model that has any. `meta_step` and `adapt` always
            hold them fixed and keep unused parameters unchanged.

    Shapes:
        task batches as `archlab.data.TaskBatch`: ``support_x (T, S, ...)``, ``query_x (T, Q, ...)``.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.4, inner_steps: int = 1, first_order: bool = False, *,
                 learn_inner_lr: bool = False, kind: str = "classification", forward: Forward = default_forward,
                 strategy: str = "auto", allow_unused: bool | None = None, allow_nograd: bool = False):
        super().__init__()
        check_model(model, "MAML")
        check_hyperparameters("MAML", inner_lr, inner_steps)
        check_flags("MAML", allow_nograd=allow_nograd)
        allow_unused = allow_nograd if allow_unused is None else allow_unused
        check_flags("MAML", allow_unused=allow_unused)
        check_choice("MAML", "kind", kind, LOSSES)
        self.model = model
        self.inner_lr = float(inner_lr)
        self.inner_steps = inner_steps
        self.first_order = bool(first_order)
        self.kind = kind
        self.forward_fn = forward
        self.strategy = check_strategy("MAML", strategy)
        self.allow_unused = allow_unused
        self.allow_nograd = allow_nograd
        params, _ = split_state(model)
        self.param_names = list(params)
        self.inner_lrs: nn.ParameterList | None = None
        if learn_inner_lr:
            self.inner_lrs = nn.ParameterList(
                [nn.Parameter(torch.full_like(p.detach(), self.inner_lr)) for p in params.values()]
            )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The model's output with its own weights: ``maml(x)`` is ``maml.model(x)``."""
        return self.model(*args, **kwargs)

    # -- the inner loop -------------------------------------------------------------------
    def step_sizes(self, detach: bool = False) -> float | dict[str, torch.Tensor]:
        """:math:`\\alpha`: the float `inner_lr`, or the learned per-parameter tensors by name."""
        if self.inner_lrs is None:
            return self.inner_lr
        return {n: (lr.detach() if detach else lr) for n, lr in zip(self.param_names, self.inner_lrs)}

    def _state(self) -> tuple[Params, Params]:
        params, others = split_state(self.model)
        if list(params) != self.param_names:
            raise ConfigError("the model's trainable parameters changed after MAML was built "
                              f"(was {len(self.param_names)} tensors, now {len(params)}); build a new MAML.")
        return params, others

    def adapt(self, support: Mapping[str, torch.Tensor], steps: int | None = None, *,
              create_graph: bool = False) -> Params:
        """Parameters adapted to `support` (``{"x": ..., "y": ...}``) by `steps` SGD steps.

        With ``create_graph=True`` (and not first-order) the result stays differentiable with
        respect to the model's parameters, for a meta-gradient; by default it is for
        prediction with `predict`.
        """
        if isinstance(support, torch.Tensor):
            raise ConfigError("MAML.adapt takes a support batch {'x': ..., 'y': ...}, not a loss. To adapt on a "
                              "loss of your own (learn2learn's way), clone first: learner = maml.clone(); "
                              "learner.adapt(loss).")
        steps = self.inner_steps if steps is None else steps
        check_hyperparameters("MAML.adapt", self.inner_lr, steps)
        params, others = self._state()
        return adapt(self.model, params, others, support, kind=self.kind, inner_lr=self.step_sizes(),
                     steps=steps, create_graph=create_graph and not self.first_order, forward=self.forward_fn)

    def clone(self, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> MAMLClone:
        """A learner whose fast weights start at the model's parameters, for an inner loop on any
        loss (`MAMLClone`); the arguments default to this MAML's."""
        params, others = self._state()
        return MAMLClone(self, params, others, first_order=self.first_order if first_order is None else first_order,
                         allow_unused=self.allow_unused if allow_unused is None else allow_unused,
                         allow_nograd=self.allow_nograd if allow_nograd is None else allow_nograd)

    def predict(self, params: Params, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The model's output on `x` (a tensor or a batch dict) with `params` in place of its own."""
        batch = x if isinstance(x, Mapping) else {"x": x}
        _, others = self._state()
        return self.forward_fn(make_call(self.model, params, others), batch)

    def adaptation_path(self, support: Mapping[str, torch.Tensor], steps: int, task_index: int | None = None, *,
                        module: nn.Module | None = None) -> Iterator[tuple[int, Params, Params]]:
        """``(step, params, others)`` after 0, 1, ..., `steps` inner steps, detached (for evaluation),
        running `module` (a copy of the model; default the model). A task whose adaptation
        diverges is not an error here: it is scored as it is (inf MSE)."""
        params, others = self._state()
        module = self.model if module is None else module
        lr = self.step_sizes(detach=True)
        params = {n: p.detach().requires_grad_() for n, p in params.items()}
        yield 0, params, others
        for step in range(1, steps + 1):
            with torch.enable_grad():
                params = adapt(module, params, others, support, kind=self.kind, inner_lr=lr, steps=1,
                               create_graph=False, forward=self.forward_fn, task_index=task_index, check=False)
            params = {n: p.detach().requires_grad_() for n, p in params.items()}
            yield step, params, others

    # -- the outer loop -------------------------------------------------------------------
    def choose_strategy(self, tasks: TaskBatch, strategy: str | None = None) -> str:
        device = next(self.model.parameters()).device
        return choose_strategy(self.model, device, tasks.examples_per_task, strategy or self.strategy,
                               n_tasks=len(tasks))

    def meta_loss(self, tasks: TaskBatch, *, strategy: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean query loss over the tasks after adaptation, differentiable with respect to the
        meta-parameters, and the mean query metric (accuracy or MSE). For a hand-written outer
        loop; `meta_step` does the same with less memory in the loop and threads strategies
        (which free each task's graph as soon as its meta-gradient is taken)."""
        chosen = self.choose_strategy(tasks, strategy)
        if chosen == "vmap":
            return self._vmap(tasks)
        if chosen == "threads":
            return self._threads(tasks, backward=False)
        return self._loop(tasks, backward=False)

    def _task_query(self, tasks: TaskBatch, i: int, module: nn.Module | None = None,
                    state: tuple[Params, Params] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Task `i`'s query loss after adaptation, and its metric; `module` runs the model
        (default the model itself) with `state` (default the model's parameters and buffers)."""
        module = self.model if module is None else module
        params, others = self._state() if state is None else state
        support, query = tasks.task(i)
        # Second-order meta-gradients differentiate each support-set batch-norm backward: the
        # hand-written derivative of SecondOrderBatchNorm costs a fraction of torch's general one.
        # (The query pass is differentiated once: torch's kernels as they are.)
        with SecondOrderBatchNorm() if not self.first_order else nullcontext():
            adapted = adapt(module, params, others, support, kind=self.kind, inner_lr=self.step_sizes(),
                            steps=self.inner_steps, create_graph=not self.first_order, forward=self.forward_fn,
                            task_index=i)
        out = self.forward_fn(make_call(module, adapted, others), query)
        loss = task_loss(self.kind, out, query["y"])
        check_finite(loss.item(), where=f"the query loss of task {i}", inner_lr=self.inner_lr)
        return loss, task_metric(self.kind, out.detach(), query["y"])

    def _loop(self, tasks: TaskBatch, backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(tasks)
        losses, metrics = [], []
        for i in range(n):
            with twice_differentiable_attention():
                loss, metric = self._task_query(tasks, i)
            metrics.append(metric)
            if backward:
                # One task's graph at a time: backward now and free it (the value is kept, in the
                # model's dtype, and averaged as the threads strategy does).
                (loss / n).backward()
                loss = loss.detach()
            losses.append(loss)
        return torch.stack(losses).mean(), torch.stack(metrics).mean()

    def _threads(self, tasks: TaskBatch, backward: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The loop, with the tasks spread over CPU threads (`archlab.meta.parallel`). With
        `backward`, each worker sums its tasks' meta-gradients in task order and the workers'
        sums are added in worker order, so the result is reproducible (and equal to the loop's
        up to the order of the additions)."""
        n = len(tasks)
        state = self._state()  # read once: functional_call swaps the module's parameters while it runs
        workers = worker_count(n)
        modules = replicas(self.model, workers)
        outer = list(self.parameters())

        def work(w: int, indices) -> tuple[list, list[torch.Tensor | None]]:
            done, sums = [], [None] * len(outer)
            for i in indices:
                loss, metric = self._task_query(tasks, i, modules[w], state)
                if backward:
                    grads = torch.autograd.grad(loss / n, outer, allow_unused=True)
                    sums = [s if g is None else g.clone() if s is None else s.add_(g) for s, g in zip(sums, grads)]
                    loss = loss.detach()
                done.append((i, loss, metric))
            return done, sums

        with twice_differentiable_attention():  # a process-wide setting: entered once, here
            results = run_in_threads(work, n, workers)
        by_task = sorted((item for done, _ in results for item in done), key=lambda item: item[0])
        losses = torch.stack([loss for _, loss, _ in by_task])
        metrics = torch.stack([metric for _, _, metric in by_task])
        if backward:
            for j, p in enumerate(outer):
                parts = [sums[j] for _, sums in results if sums[j] is not None]
                if parts:
                    g = sum(parts[1:], parts[0])  # in worker order: reproducible
                    p.grad = g if p.grad is None else p.grad + g
        return losses.mean(), metrics.mean()

    def _vmap(self, tasks: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        params, others = self._state()
        lr = self.step_sizes()

        def one_task(sx, sy, qx, qy):
            adapted, support_losses = adapt_vmappable(
                self.model, params, others, {"x": sx, "y": sy}, kind=self.kind, inner_lr=lr,
                steps=self.inner_steps, first_order=self.first_order, forward=self.forward_fn)
            out = self.forward_fn(make_call(self.model, adapted, others), {"x": qx, "y": qy})
            return task_loss(self.kind, out, qy), task_metric(self.kind, out.detach(), qy), support_losses

        with BatchStatisticsNorm(), twice_differentiable_attention():
            losses, metrics, support_losses = torch.vmap(one_task, randomness="different")(
                tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y)
        self._check_vmapped(support_losses, losses)
        return losses.mean(), metrics.mean()

    def _check_vmapped(self, support_losses: torch.Tensor, losses: torch.Tensor) -> None:
        """The first non-finite inner loss ``(tasks, steps)`` or query loss ``(tasks,)`` of a vmapped
        task batch, refused by `check_finite` with where it happened."""
        bad = torch.nonzero(~torch.isfinite(support_losses))
        if len(bad):
            task, step = bad[0].tolist()
            check_finite(support_losses[task, step].item(), inner_lr=self.inner_lr,
                         where=f"inner step {step + 1} of {self.inner_steps} on task {task}")
        bad = torch.nonzero(~torch.isfinite(losses.detach())).flatten()
        if len(bad):
            task = bad[0].item()
            check_finite(losses[task].item(), where=f"the query loss of task {task}", inner_lr=self.inner_lr)

    def meta_step(self, tasks: TaskBatch, optimizer: torch.optim.Optimizer, *, strategy: str | None = None,
                  grad_clip: float | None = None, share: float | None = None) -> dict[str, float]:
        """One outer update with `optimizer` (any torch optimizer over ``maml.parameters()``
        or ``model.parameters()``). Returns the mean query loss and metric before the update.

        In a `torch.distributed` process group each rank passes its part of the meta-batch, and
        the meta-gradients are all-reduced before the step, each rank's weighted by its `share`
        of the meta-batch's tasks (default: an equal share), so every rank steps with the
        gradient of the whole meta-batch.

        A non-finite inner or query loss, or meta-gradient, raises `AdaptationError` before
        the optimizer steps, so the model and the optimizer state are left unchanged.
        """
        was_training = self.model.training
        self.model.train()
        optimizer.zero_grad(set_to_none=True)
        try:
            chosen = self.choose_strategy(tasks, strategy)
            if chosen == "vmap":
                loss, metric = self._vmap(tasks)
                loss.backward()
            elif chosen == "threads":
                loss, metric = self._threads(tasks, backward=True)
            else:
                loss, metric = self._loop(tasks, backward=True)
            all_reduce_gradients(self.parameters(), share)
            for name, p in self.named_parameters():
                if p.grad is not None and not torch.isfinite(p.grad).all():
                    raise AdaptationError(f"the meta-gradient of '{name}' is not finite (query loss "
                                          f"{loss.item():.4g}); the meta-parameters were left unchanged. "
                                          "Lower inner_lr or the outer learning rate.")
        except BaseException:
            optimizer.zero_grad(set_to_none=True)
            raise
        finally:
            self.model.train(was_training)
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters(), grad_clip)
        optimizer.step()
        name = "accuracy" if self.kind == "classification" else "mse"
        return {"loss": loss.item(), name: metric.item()}

    def evaluate(self, sampler, n_tasks: int = 600, inner_steps: int | Sequence[int] | None = None, *,
                 seed: int = 0) -> dict[str, float]:
        """Mean query accuracy (or MSE) over `n_tasks` tasks of `sampler` after each of
        `inner_steps` adaptation steps, with its 95% confidence interval:
        ``{"accuracy_step1": ..., "accuracy_step1_ci95": ...}``."""
        steps = self.inner_steps if inner_steps is None else inner_steps
        return evaluate_adaptation(self.model, self.adaptation_path, self.kind, sampler, n_tasks, steps, seed=seed,
                                   forward=self.forward_fn,
                                   workers=cpu_workers(self.model, n_tasks, self.strategy))


class MAMLClone:
    """A `MAML` model with fast weights of its own, adapted by SGD on any loss (learn2learn's
    ``maml.clone()``).

    ``clone(x)`` runs the model with the fast weights; ``clone.adapt(loss)`` replaces them by

    .. math:: \\theta' = \\theta - \\alpha \\odot \\nabla_\\theta\\, \\mathrm{loss}

    for a scalar `loss` computed from the clone's outputs, whatever the objective. The fast weights
    start as the model's parameters themselves, so a loss computed after adaptation
    back-propagates to them, through the inner steps (second order) or around them (first order:
    the inner gradients are constants), and to Meta-SGD's step sizes :math:`\\alpha`. The outer
    loop is the user's: sum the clones' query losses, ``backward()``, step an optimizer over
    ``maml.parameters()``. Neither the model nor other clones change.

    Frozen parameters (``requires_grad=False``) are never adapted; `allow_nograd` says whether
    the model may have any, `allow_unused` whether a fast weight may be out of the loss's reach
    (it then keeps its value).
    """

    def __init__(self, maml: MAML, params: Params, others: Params, *, first_order: bool, allow_unused: bool,
                 allow_nograd: bool):
        check_flags("MAML.clone", first_order=first_order, allow_unused=allow_unused, allow_nograd=allow_nograd)
        self.maml = maml
        self.params = params
        self.others = others
        self.first_order = first_order
        self.allow_unused = allow_unused
        self.allow_nograd = allow_nograd

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The model's output with the fast weights (attention on its twice-differentiable backend)."""
        with twice_differentiable_attention():
            return make_call(self.maml.model, self.params, self.others)(*args, **kwargs)

    def named_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        """The fast weights and the frozen parameters, by name, in the model's order."""
        for name, _ in self.maml.model.named_parameters():
            yield name, self.params[name] if name in self.params else self.others[name]

    def parameters(self) -> Iterator[torch.Tensor]:
        for _, p in self.named_parameters():
            yield p

    def clone(self, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> MAMLClone:
        """A new clone starting at this one's fast weights; adapting either leaves the other as it is."""
        return MAMLClone(self.maml, dict(self.params), self.others,
                         first_order=self.first_order if first_order is None else first_order,
                         allow_unused=self.allow_unused if allow_unused is None else allow_unused,
                         allow_nograd=self.allow_nograd if allow_nograd is None else allow_nograd)

    def adapt(self, loss: torch.Tensor, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> None:
        """One SGD step of the fast weights on `loss` (a scalar tensor); the arguments default to the clone's."""
        first_order = self.first_order if first_order is None else first_order
        allow_unused = self.allow_unused if allow_unused is None else allow_unused
        allow_nograd = self.allow_nograd if allow_nograd is None else allow_nograd
        check_flags("MAMLClone.adapt", first_order=first_order, allow_unused=allow_unused, allow_nograd=allow_nograd)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise fail("MAMLClone.adapt", "loss", "a scalar tensor", shape)
        if not loss.requires_grad:
            raise ConfigError("The 'loss' given to MAMLClone.adapt does not depend on the fast weights: compute it "
                              "from the clone's outputs, clone(x), with gradients enabled.")
        frozen = [name for name, p in self.maml.model.named_parameters() if not p.requires_grad]
        if frozen and not allow_nograd:
            raise ConfigError(f"The model has parameters with requires_grad=False ({', '.join(frozen)}) and "
                              "allow_nograd=False. Pass allow_nograd=True to hold them fixed during adaptation.")
        lr = self.maml.step_sizes()
        check_finite(loss.item(), where="the loss given to MAMLClone.adapt", inner_lr=lr)
        names = list(self.params)
        grads = torch.autograd.grad(loss, [self.params[n] for n in names], create_graph=not first_order,
                                    allow_unused=True)
        unused = [n for n, g in zip(names, grads) if g is None]
        if unused and not allow_unused:
            raise ConfigError(f"The loss given to MAMLClone.adapt does not reach the fast weights "
                              f"{', '.join(unused)}, and allow_unused=False. Pass allow_unused=True to keep "
                              "their values.")
        self.params = sgd_update(self.params, dict(zip(names, grads)), lr)
