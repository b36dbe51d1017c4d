"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio and Vinyals, 2020): MAML whose inner loop
adapts only the network's head; the body is meta-learned by the outer loop alone.

With body parameters :math:`\\theta_b` and head parameters :math:`\\theta_h`,

.. math::

    \\theta'_{h,i} = \\theta_h - \\alpha \\nabla_{\\theta_h}
    \\mathcal{L}^{\\mathrm{support}}_{\\mathcal{T}_i}(\\theta_b, \\theta_h)
    \\quad(N \\text{ times}), \\qquad
    (\\theta_b, \\theta_h) \\leftarrow (\\theta_b, \\theta_h) - \\beta \\nabla \\frac{1}{T} \\sum_i
    \\mathcal{L}^{\\mathrm{query}}_{\\mathcal{T}_i}(\\theta_b, \\theta'_{h,i})

Second-order by default (the meta-gradient reaches :math:`\\theta_b` through the query features
and, through :math:`\\theta'_h`, through the support features); ``first_order=True`` treats the
inner gradients as constants, as in first-order MAML.

It runs on MAML's functional core and strategies (`loop`, `threads`, `vmap`). The body is fixed
during the inner loop, so for a model with timm's ``forward_features`` / ``forward_head`` whose
head is its ``head`` submodule (archlab's conv nets, ResNet, the recurrent nets), the support and
query features are computed once a task and the inner steps run the head alone: the body is
never differentiated twice, which is where ANIL's speed comes from. Any other model runs whole at
each inner step, with only the head's parameters adapted (the same result, more work).

For such a model the body's weights are the same in every task, so the ``vmap`` strategy runs
the body once over all the tasks' support examples and once over their query examples, as two
large batches (batch norm computes each task's statistics, `PerTaskBatchNorm`), and only the head,
whose weights are per task, under `torch.vmap`. That holds every task's activations at once:
``auto`` chooses it on a CPU up to `BATCHED_MAX_EXAMPLES` examples a task batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..data.fewshot import TaskBatch
from ..errors import ConfigError

from .batchnorm import BatchStatisticsNorm, _bind, twice_differentiable_attention
from .functional import (
    Batch, Params, adapt, adapt_vmappable, check_finite, default_forward, make_call, task_loss, task_metric,
)
from .maml import MAML, MAMLClone, check_hyperparameters
from .strategy import check_strategy, vmap_unsupported

PREFIX = "model."  # the model's tensors seen from a `_Method` wrapper

#: On a CPU, ``auto`` runs the body batched over the tasks (the ``vmap`` strategy) while the task
#: batch holds at most this many examples: the paper's 32 tasks of 5-way 1-shot with 1 query image a
#: class (320) are, with 15 (2,560) the activations of the whole batch would take gigabytes.
BATCHED_MAX_EXAMPLES = 1024


def per_task_batch_norm(x: torch.Tensor, tasks: int, weight: torch.Tensor | None, bias: torch.Tensor | None,
                        eps: float) -> torch.Tensor:
    """Batch norm of ``x (T * N, C, *)``, the examples of `tasks` tasks one after another, with
    each task's own batch statistics: the same as normalizing each ``(N, C, *)`` part alone.

    Task ``t``'s channel ``c`` becomes channel ``t * C + c`` of an ``(N, T * C, *)`` tensor, so
    torch's fused kernel computes the per-task statistics in one call.
    """
    n, c = x.shape[0] // tasks, x.shape[1]
    rest = x.shape[2:]
    grouped = x.reshape(tasks, n, c, *rest).transpose(0, 1).reshape(n, tasks * c, *rest)
    y = F.batch_norm(grouped, None, None, None if weight is None else weight.repeat(tasks),
                     None if bias is None else bias.repeat(tasks), training=True, eps=eps)
    return y.reshape(n, tasks, c, *rest).transpose(0, 1).reshape(x.shape)


class PerTaskBatchNorm(TorchFunctionMode):
    """Within this context, ``F.batch_norm`` without running statistics normalizes a batch made of
    `tasks` tasks' examples (equal parts, one after another) with each task's own statistics
    (`per_task_batch_norm`); every other call passes through unchanged."""

    def __init__(self, tasks: int):
        super().__init__()
        self.tasks = tasks

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            bound = _bind(*args, **kwargs)
            if bound["running_mean"] is None and bound["running_var"] is None:
                return per_task_batch_norm(bound["input"], self.tasks, bound["weight"], bound["bias"], bound["eps"])
        return func(*args, **kwargs)


class _Method(nn.Module):
    """Runs one method of `model` as its forward, so `functional_call` can run the model's
    ``forward_features`` or ``forward_head`` with tensors of one's choosing."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.model, self.method)(*args, **kwargs)


def default_head(model: nn.Module) -> str:
    """``head`` when the model has such a submodule, else the last module (in registration
    order) that holds trainable parameters of its own, e.g. an MLP's output layer."""
    names = dict(model.named_modules())
    if "head" in names and any(p.requires_grad for p in names["head"].parameters()):
        return "head"
    last = None
    for name, module in model.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            last = name
    if not last:
        raise ConfigError(f"ANIL found no submodule of {type(model).__name__} to adapt as its head; pass head=.")
    return last


def _feature_forward(call, batch: Batch) -> torch.Tensor:
    return call(batch["x"])


class ANIL(MAML):
    """MAML around `model` whose inner loop adapts only the submodule `head`.

    Args:
        model, inner_lr, inner_steps, first_order, kind, strategy: as for `MAML`.
        head: the name of the submodule whose parameters the inner loop adapts (default
            `default_head`: ``head``, or the model's last module with parameters).
        allow_unused, allow_nograd: as for `MAML`, for `clone`.

    Meta-SGD's learned step sizes and a custom ``forward`` are not offered: ANIL runs the model's
    own ``forward`` (or ``forward_features`` then ``forward_head``) on ``batch["x"]``, with
    ``lengths=`` for variable-length sequences.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.4, inner_steps: int = 1, first_order: bool = False, *,
                 head: str | None = None, kind: str = "classification", strategy: str = "auto",
                 allow_unused: bool | None = None, allow_nograd: bool = False):
        super().__init__(model, inner_lr, inner_steps, first_order, kind=kind, strategy=strategy,
                         allow_unused=allow_unused, allow_nograd=allow_nograd)
        head = default_head(model) if head is None else head
        modules = dict(model.named_modules())
        if not isinstance(head, str) or head not in modules or head == "":
            shown = [n for n in modules if n][:8]
            raise ConfigError(f"The 'head' parameter of ANIL must name a submodule of {type(model).__name__}, "
                              f"e.g. {', '.join(shown)}. Got {head!r} instead.")
        self.head = head
        self.head_names = [n for n in self.param_names if n.startswith(head + ".")]
        if not self.head_names:
            raise ConfigError(f"ANIL's head '{head}' has no trainable parameters to adapt.")
        # the features are computed once a task when the model says where its head starts
        self.cached_features = (head == "head" and callable(getattr(model, "forward_features", None))
                                and callable(getattr(model, "forward_head", None)))

    # -- the split into body and head ---------------------------------------------------------
    def _split(self, params: Params, others: Params) -> tuple[Params, Params]:
        """The head's parameters, and everything else (the body, frozen tensors, buffers), keyed
        as the `_Method` wrappers see them."""
        head = {PREFIX + n: params[n] for n in self.head_names}
        rest = {PREFIX + n: t for n, t in others.items()}
        rest.update({PREFIX + n: p for n, p in params.items() if PREFIX + n not in head})
        return head, rest

    def _head_module(self, module: nn.Module) -> nn.Module:
        return _Method(module, "forward_head" if self.cached_features else "forward")

    def _head_forward(self):
        return _feature_forward if self.cached_features else default_forward

    def _inputs(self, module: nn.Module, params: Params, others: Params, batch: Batch) -> Batch:
        """What the head takes: the body's features of `batch` (with its labels), or the batch."""
        if not self.cached_features:
            return batch
        call = make_call(_Method(module, "forward_features"), *self._prefixed(params, others))
        return {"x": default_forward(call, batch), "y": batch["y"]}

    @staticmethod
    def _prefixed(params: Params, others: Params) -> tuple[Params, Params]:
        return {PREFIX + n: t for n, t in params.items()}, {PREFIX + n: t for n, t in others.items()}

    def _merge(self, params: Params, head: Params) -> Params:
        """The model's parameters by name, with the (adapted) head `head` in place."""
        return {**params, **{n[len(PREFIX):]: t for n, t in head.items()}}

    def _adapt_head(self, module: nn.Module, params: Params, others: Params, support: Batch, *, steps: int,
                    create_graph: bool, task_index: int | None = None, check: bool = True) -> tuple[Params, Params]:
        """The head's parameters after `steps` SGD steps on the support loss, and the rest."""
        head, rest = self._split(params, others)
        inputs = self._inputs(module, params, others, support)
        adapted = adapt(self._head_module(module), head, rest, inputs, kind=self.kind, inner_lr=self.inner_lr,
                        steps=steps, create_graph=create_graph, forward=self._head_forward(), task_index=task_index,
                        check=check)
        return adapted, rest

    # -- MAML's interface -------------------------------------------------------------------------
    def adapt(self, support: Mapping[str, torch.Tensor], steps: int | None = None, *,
              create_graph: bool = False) -> Params:
        """All of the model's parameters, with the head adapted to `support` by `steps` SGD steps
        (the body's are the model's own); differentiable with ``create_graph=True``, as for MAML."""
        if isinstance(support, torch.Tensor):
            raise ConfigError("ANIL.adapt takes a support batch {'x': ..., 'y': ...}, not a loss; to adapt on a "
                              "loss of your own, clone first: learner = anil.clone(); learner.adapt(loss).")
        steps = self.inner_steps if steps is None else steps
        check_hyperparameters("ANIL.adapt", self.inner_lr, steps)
        params, others = self._state()
        head, _ = self._adapt_head(self.model, params, others, support, steps=steps,
                                   create_graph=create_graph and not self.first_order)
        return self._merge(params, head)

    def clone(self, first_order: bool | None = None, allow_unused: bool | None = None,
              allow_nograd: bool | None = None) -> MAMLClone:
        """A learner whose fast weights are the head's parameters (the body's stay the model's,
        still reached by the meta-gradient), for an inner loop on any loss (`MAMLClone`)."""
        params, others = self._state()
        head = {n: params[n] for n in self.head_names}
        rest = {**others, **{n: p for n, p in params.items() if n not in head}}
        return MAMLClone(self, head, rest, first_order=self.first_order if first_order is None else first_order,
                         allow_unused=self.allow_unused if allow_unused is None else allow_unused,
                         allow_nograd=self.allow_nograd if allow_nograd is None else allow_nograd)

    def adaptation_path(self, support: Mapping[str, torch.Tensor], steps: int, task_index: int | None = None, *,
                        module: nn.Module | None = None) -> Iterator[tuple[int, Params, Params]]:
        """As `MAML.adaptation_path`; the support features are computed once."""
        params, others = self._state()
        module = self.model if module is None else module
        params = {n: p.detach() for n, p in params.items()}
        head, rest = self._split(params, others)
        with torch.no_grad():
            inputs = self._inputs(module, params, others, support)
        head_module = self._head_module(module)
        yield 0, params, others
        for step in range(1, steps + 1):
            head = {n: p.detach().requires_grad_() for n, p in head.items()}
            with torch.enable_grad():
                head = adapt(head_module, head, rest, inputs, kind=self.kind, inner_lr=self.inner_lr, steps=1,
                             create_graph=False, forward=self._head_forward(), task_index=task_index, check=False)
            head = {n: p.detach() for n, p in head.items()}
            yield step, self._merge(params, head), others

    def _task_query(self, tasks: TaskBatch, i: int, module: nn.Module | None = None,
                    state: tuple[Params, Params] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        module = self.model if module is None else module
        params, others = self._state() if state is None else state
        support, query = tasks.task(i)
        head, rest = self._adapt_head(module, params, others, support, steps=self.inner_steps,
                                      create_graph=not self.first_order, task_index=i)
        inputs = self._inputs(module, params, others, query)
        out = self._head_forward()(make_call(self._head_module(module), head, rest), inputs)
        loss = task_loss(self.kind, out, query["y"])
        check_finite(loss.item(), where=f"the query loss of task {i}", inner_lr=self.inner_lr)
        return loss, task_metric(self.kind, out.detach(), query["y"])

    def choose_strategy(self, tasks: TaskBatch, strategy: str | None = None) -> str:
        """MAML's choice, except that with features computed once a task (`cached_features`) the
        body is batched over the tasks, not vmapped: ``vmap`` runs whatever the body is (a recurrent
        one too) when the head allows it, and ``auto`` picks it on a CPU up to
        `BATCHED_MAX_EXAMPLES` examples in the task batch."""
        requested = check_strategy("ANIL", strategy or self.strategy)
        if self.cached_features and requested in ("auto", "vmap") and vmap_unsupported(self.model.head) is None:
            device = next(self.model.parameters()).device
            if requested == "vmap" or device.type != "cpu" or (
                    len(tasks) * tasks.examples_per_task <= BATCHED_MAX_EXAMPLES):
                return "vmap"
        return super().choose_strategy(tasks, strategy)

    def _vmap(self, tasks: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        params, others = self._state()
        head, rest = self._split(params, others)
        head_module, head_forward = self._head_module(self.model), self._head_forward()
        n = len(tasks)

        def one_task(sx, sy, qx, qy):
            inputs = {"x": sx, "y": sy} if self.cached_features else self._inputs(self.model, params, others,
                                                                                  {"x": sx, "y": sy})
            adapted, support_losses = adapt_vmappable(
                head_module, head, rest, inputs, kind=self.kind, inner_lr=self.inner_lr, steps=self.inner_steps,
                first_order=self.first_order, forward=head_forward)
            query = {"x": qx, "y": qy} if self.cached_features else self._inputs(self.model, params, others,
                                                                                 {"x": qx, "y": qy})
            out = head_forward(make_call(head_module, adapted, rest), query)
            return task_loss(self.kind, out, qy), task_metric(self.kind, out.detach(), qy), support_losses

        sx, qx = tasks.support_x, tasks.query_x
        with twice_differentiable_attention():
            if self.cached_features:  # the body once over all the tasks' examples, the head vmapped
                with PerTaskBatchNorm(n):
                    sx = self._inputs(self.model, params, others, {"x": sx.flatten(0, 1), "y": None})["x"]
                    qx = self._inputs(self.model, params, others, {"x": qx.flatten(0, 1), "y": None})["x"]
                sx, qx = sx.unflatten(0, (n, -1)), qx.unflatten(0, (n, -1))  # (T, S, ...) features
            with BatchStatisticsNorm():
                losses, metrics, support_losses = torch.vmap(one_task, randomness="different")(
                    sx, tasks.support_y, qx, tasks.query_y)
        self._check_vmapped(support_losses, losses)
        return losses.mean(), metrics.mean()
