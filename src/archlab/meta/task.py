"""Meta-learning as a `Task` of the one training engine: `fit` trains a meta-learner's model on
an episodes split (`archlab.data.episodes.EpisodeSplit`), one outer update a step.

- `MAMLTask`: a step is ``MAML.meta_step`` on the step's task batch, with the optimizer `fit`
  builds from the run's config (Adam at the meta learning rate for ``archlab meta-train``) over
  the model's parameters and, with Meta-SGD, the learned inner step sizes. Those step sizes are
  not the model's: they are written beside its weights as ``inner_lrs.safetensors`` in every
  checkpoint, and read back on resume (`read_step_sizes`).
  ANIL's task is this one (ANIL is a MAML).
- `ReptileTask`: a step is ``Reptile.meta_step`` on batch `i` with the meta step size annealed at
  iteration `i`; Reptile moves the weights itself, so it has no optimizer.
- `ProtoNetTask`: a step is ``ProtoNet.meta_step`` with the optimizer `fit` builds.

They score a split by adapting to its sampler's tasks (``accuracy_stepN`` or ``mse_stepN``, with
confidence intervals; a prototypical network has no inner steps: ``accuracy``), so
``evaluate(model, task, EpisodeSplit(test_sampler), prefix="test_")`` gives the meta-test metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from ..engine.tasks import Task
from ..errors import CheckpointError, ConfigError
from .maml import MAML
from .protonet import ProtoNet
from .reptile import Reptile

INNER_LRS_FILE = "inner_lrs.safetensors"


def read_step_sizes(learner: MAML, folder: Path) -> None:
    """Copy the Meta-SGD step sizes saved in checkpoint `folder` into `learner` (which learns them)."""
    file = Path(folder) / INNER_LRS_FILE
    if not file.is_file():
        raise CheckpointError(f"{folder} was trained with learned inner step sizes but has no {INNER_LRS_FILE}.")
    saved = load_safetensors(file.read_bytes())
    with torch.no_grad():
        for name, lr in zip(learner.param_names, learner.inner_lrs):
            lr.copy_(saved[name])


def _share(batch: dict[str, Any]) -> float | None:
    """This rank's share of the meta-batch, when `fit` split it across ranks (`shard_batch`)."""
    if "total_tasks" not in batch:
        return None
    return batch["task_count"] / batch["total_tasks"]


class MetaTask(Task):
    """What the two meta-learners share: the model they train, and the evaluation after
    `eval_steps` inner steps on `eval_tasks` tasks of a split's sampler (seeded with `eval_seed`)."""

    def __init__(self, learner: MAML | Reptile | ProtoNet, *, eval_tasks: int = 100,
                 eval_steps: Sequence[int] | None = None, eval_seed: int = 0):
        self.learner = learner
        self.eval_tasks = eval_tasks
        self.eval_seed = eval_seed
        self.eval_steps = list(eval_steps) if eval_steps is not None else [learner.inner_steps]
        metric = "accuracy" if learner.kind == "classification" else "mse"
        self.monitor = f"val_{metric}_step{self.eval_steps[-1]}"
        self.mode = "max" if learner.kind == "classification" else "min"

    def check_model(self, model: nn.Module) -> None:
        if model is not self.learner.model:
            raise ConfigError(f"{type(self).__name__} trains its learner's model; pass learner.model to fit.")

    def evaluate(self, model, split, batch_size):
        """Adapt to `eval_tasks` tasks of ``split.sampler`` one at a time (`batch_size` is not used)."""
        self.check_model(model)
        return self.learner.evaluate(split.sampler, self.eval_tasks, self.eval_steps, seed=self.eval_seed)


class MAMLTask(MetaTask):
    learner: MAML

    def training_step(self, model, batch):
        """The meta-loss: the mean query loss after adaptation, differentiable in the meta-parameters."""
        self.check_model(model)
        loss, _ = self.learner.meta_loss(batch["tasks"])
        return loss

    def configure_optimizers(self, model, make_optimizer):
        self.check_model(model)
        return [make_optimizer(self.learner.parameters())]  # the model's, and Meta-SGD's step sizes

    def optimization_step(self, model, batch, optimizers, grad_clip) -> dict[str, float]:
        (optimizer,) = optimizers
        return self.learner.meta_step(batch["tasks"], optimizer, grad_clip=grad_clip, share=_share(batch))

    def checkpoint_files(self) -> dict[str, bytes]:
        if self.learner.inner_lrs is None:
            return {}
        sizes = self.learner.step_sizes(detach=True)
        return {INNER_LRS_FILE: save_safetensors({n: v.cpu().contiguous() for n, v in sizes.items()})}

    def load_checkpoint_files(self, folder: Path) -> None:
        if self.learner.inner_lrs is not None:
            read_step_sizes(self.learner, folder)


class ReptileTask(MetaTask):
    learner: Reptile

    def configure_optimizers(self, model, make_optimizer):
        self.check_model(model)
        return []

    def optimization_step(self, model, batch, optimizers, grad_clip) -> dict[str, float]:
        return self.learner.meta_step(batch["tasks"], batch["index"], share=_share(batch))


class ProtoNetTask(MetaTask):
    """Trains a `ProtoNet`; scores a split by the query accuracy of `eval_tasks` of its tasks
    (`eval_steps` is not used: there is no inner loop)."""

    learner: ProtoNet

    def __init__(self, learner: ProtoNet, *, eval_tasks: int = 100, eval_steps: Sequence[int] | None = None,
                 eval_seed: int = 0):
        self.learner = learner
        self.eval_tasks = eval_tasks
        self.eval_seed = eval_seed
        self.monitor, self.mode = "val_accuracy", "max"

    def training_step(self, model, batch):
        self.check_model(model)
        loss, _ = self.learner.meta_loss(batch["tasks"])
        return loss

    def optimization_step(self, model, batch, optimizers, grad_clip) -> dict[str, float]:
        (optimizer,) = optimizers
        return self.learner.meta_step(batch["tasks"], optimizer, grad_clip=grad_clip)

    def evaluate(self, model, split, batch_size):
        self.check_model(model)
        return self.learner.evaluate(split.sampler, self.eval_tasks, seed=self.eval_seed)


def meta_task(learner: MAML | Reptile | ProtoNet, **options: Any) -> MetaTask:
    """The task that trains `learner` with `fit` (`options`: those of `MetaTask`)."""
    if isinstance(learner, ProtoNet):
        return ProtoNetTask(learner, **options)
    return MAMLTask(learner, **options) if isinstance(learner, MAML) else ReptileTask(learner, **options)
