"""Prototypical networks (Snell, Swersky and Zemel, 2017): a query is classified by its squared
Euclidean distance to each class's prototype, the mean embedding of the class's support examples.

.. math::

    c_k = \\frac{1}{|S_k|} \\sum_{(x_i, y_i) \\in S_k} f_\\phi(x_i), \\qquad
    p_\\phi(y = k \\mid x) = \\frac{\\exp(-d(f_\\phi(x), c_k))}{\\sum_{k'} \\exp(-d(f_\\phi(x), c_{k'}))},
    \\qquad d(z, z') = \\lVert z - z' \\rVert^2

Meta-training minimizes the cross-entropy of the query labels under :math:`p_\\phi`, one outer
update a task batch; there is no inner loop. A new task is learned by computing its prototypes,
so one embedding network serves any number of ways (Snell trains Omniglot at 60 ways and tests
at 5 and 20). As in Snell's code, a task's support and query examples are embedded in one
forward pass, and BatchNorm may keep running statistics (used at meta-test time, in eval mode).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..data.fewshot import TaskBatch
from ..errors import ConfigError
from .evaluate import mean_ci95, scored_tasks
from .functional import AdaptationError, Forward, default_forward
from ..validation import check_int, fail

Batch = Mapping[str, torch.Tensor]


def squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:math:`d_{ij} = \\lVert a_i - b_j \\rVert^2` of ``a (N, D)`` and ``b (M, D)``: ``(N, M)``.

    Written as the difference, not :math:`\\lVert a\\rVert^2 + \\lVert b\\rVert^2 - 2ab^\\top`, which can
    come out negative by rounding when a query lies on a prototype.
    """
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)


def class_prototypes(embeddings: torch.Tensor, labels: torch.Tensor, ways: int) -> torch.Tensor:
    """:math:`c_k`, the mean of the embeddings ``(N, D)`` of each class ``0..ways-1``: ``(ways, D)``."""
    if labels.numel() and (labels.min() < 0 or labels.max() >= ways):
        raise ValueError(f"class_prototypes takes labels in 0..{ways - 1}; got labels from {labels.min().item()} "
                         f"to {labels.max().item()}.")
    counts = torch.bincount(labels, minlength=ways)
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if empty:
        raise ValueError(f"class_prototypes needs a support example of each of the {ways} classes; classes {empty} "
                         "have none.")
    sums = embeddings.new_zeros(ways, embeddings.shape[1]).index_add(0, labels, embeddings)
    return sums / counts[:, None].to(embeddings.dtype)


class ProtoNet(nn.Module):
    """A prototypical network around the embedding network `model`.

    Args:
        model: any module mapping a batch of examples to embeddings ``(N, D)`` (outputs of more
            dimensions are flattened), e.g. Snell's Conv-4: ``create_model("cnn", channels=[64] * 4,
            batch_norm=True, hidden_dims=[], dropout=0.0, num_classes=0)``.
        forward: ``forward(call, batch) -> embeddings``, as for `MAML`; the default is
            ``call(batch["x"])`` (with ``lengths=`` for variable-length sequences).

    Shapes:
        task batches as `archlab.data.TaskBatch`: ``support_x (T, S, ...)``, ``query_x (T, Q, ...)``,
        labels ``0..ways-1``.
    """

    kind = "classification"

    def __init__(self, model: nn.Module, *, forward: Forward = default_forward):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise fail("ProtoNet", "model", "a torch.nn.Module", type(model).__name__)
        self.model = model
        self.forward_fn = forward

    def forward(self, *args, **kwargs) -> torch.Tensor:
        """The embedding network's output: ``protonet(x)`` is ``protonet.model(x)``."""
        return self.model(*args, **kwargs)

    def embed(self, batch: Batch | torch.Tensor) -> torch.Tensor:
        """:math:`f_\\phi(x)` of a batch (a tensor or ``{"x": ...}``), flattened to ``(N, D)``."""
        batch = batch if isinstance(batch, Mapping) else {"x": batch}
        return self.forward_fn(self.model, batch).flatten(1)

    def logits(self, support: Batch, query: Batch, ways: int | None = None) -> torch.Tensor:
        """:math:`-d(f_\\phi(x), c_k)` of each query example and class: ``(Q, ways)``. Support and
        query are embedded in one forward pass; `ways` defaults to the largest support label + 1."""
        n = len(support["y"])
        ways = int(support["y"].max()) + 1 if ways is None else ways
        joint = {k: torch.cat([support[k], query[k]]) for k in support if k != "y"}
        embeddings = self.embed(joint)  # (S + Q, D)
        prototypes = class_prototypes(embeddings[:n], support["y"], ways)  # (ways, D)
        return -squared_euclidean(embeddings[n:], prototypes)

    def predict(self, support: Batch, x: torch.Tensor | Batch) -> torch.Tensor:
        """Class scores ``(Q, ways)`` of the examples `x` in the task whose labeled examples are `support`."""
        query = dict(x) if isinstance(x, Mapping) else {"x": x}
        return self.logits(support, query)

    def _task_loss(self, tasks: TaskBatch, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        support, query = tasks.task(i)
        logits = self.logits(support, query)
        loss = F.cross_entropy(logits, query["y"])
        value = loss.item()
        if value != value or value in (float("inf"), float("-inf")):
            raise AdaptationError(f"the query loss of task {i} is not finite ({value}); the embedding network was "
                                  "left unchanged. Lower the learning rate, or check the task data for NaN.")
        return loss, (logits.detach().argmax(-1) == query["y"]).to(logits.dtype).mean()

    def meta_loss(self, tasks: TaskBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean query cross-entropy over the tasks (differentiable) and the mean query accuracy."""
        scored = [self._task_loss(tasks, i) for i in range(len(tasks))]
        return torch.stack([s[0] for s in scored]).mean(), torch.stack([s[1] for s in scored]).mean()

    def meta_step(self, tasks: TaskBatch, optimizer: torch.optim.Optimizer, *,
                  grad_clip: float | None = None) -> dict[str, float]:
        """One update of the embedding network with `optimizer` on the mean query loss of `tasks`
        (each task's graph freed after its backward). Returns the loss and accuracy before the
        update; a non-finite loss or gradient raises `AdaptationError` before the optimizer steps."""
        was_training = self.model.training
        self.model.train()
        optimizer.zero_grad(set_to_none=True)
        n = len(tasks)
        losses, accuracies = [], []
        try:
            for i in range(n):
                loss, accuracy = self._task_loss(tasks, i)
                (loss / n).backward()
                losses.append(loss.detach())
                accuracies.append(accuracy)
            for name, p in self.model.named_parameters():
                if p.grad is not None and not torch.isfinite(p.grad).all():
                    raise AdaptationError(f"the gradient of '{name}' is not finite; the embedding network was left "
                                          "unchanged. Lower the learning rate.")
        except BaseException:
            optimizer.zero_grad(set_to_none=True)
            raise
        finally:
            self.model.train(was_training)
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
        optimizer.step()
        return {"loss": torch.stack(losses).mean().item(), "accuracy": torch.stack(accuracies).mean().item()}

    @torch.no_grad()
    def evaluate(self, sampler, n_tasks: int = 600, *, seed: int = 0) -> dict[str, float]:
        """Mean query accuracy over `n_tasks` tasks of `sampler` with its 95% confidence interval,
        and the mean query loss: ``{"accuracy": ..., "accuracy_ci95": ..., "loss": ...}``. The network
        runs in eval mode (BatchNorm's running statistics, where it keeps them); the tasks are
        those `MAML.evaluate` scores for the same `seed`."""
        check_int("ProtoNet.evaluate", "n_tasks", n_tasks, minimum=1)
        if sampler.kind != "classification":
            raise ConfigError(f"ProtoNet classifies; the sampler gives {sampler.kind} tasks.")
        accuracies, losses = [], []
        was_training = self.model.training
        self.model.eval()
        try:
            for _, tasks in scored_tasks(sampler, n_tasks, seed, next(self.model.parameters(), torch.empty(0))):
                for i in range(len(tasks)):
                    support, query = tasks.task(i)
                    logits = self.logits(support, query, sampler.output_dim)
                    accuracies.append((logits.argmax(-1) == query["y"]).double().mean().item())
                    losses.append(F.cross_entropy(logits, query["y"]).item())
        finally:
            self.model.train(was_training)
        mean, ci = mean_ci95(accuracies)
        return {"accuracy": mean, "accuracy_ci95": ci, "loss": sum(losses) / len(losses)}
