"""Tasks: the seam between a model family and the engine.

A task owns how a batch becomes a loss (`training_step`), how the optimizers
step (`optimization_step`, overridden by tasks with several optimizers in
phases, or by meta-learners whose step is an outer update), how a split is
scored (`evaluate`), and any learned state beyond the model's weights that a
checkpoint must carry (`checkpoint_files`). `fit` knows nothing else about
the model, so language models, VAEs, graphs and meta-learners plug in here.

Contract for resumable runs: `evaluate` must not draw from torch's global RNG
(use a seeded `torch.Generator`), so an interrupted run resumes bitwise.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError, DivergenceError, NonFiniteLossError
from .metrics import accuracy, confusion_matrix, macro_f1


def check_gradients(parameters, grad_clip: float | None) -> float:
    """The gradients' global norm, clipped to `grad_clip` when set. A non-finite norm raises
    `DivergenceError` before any optimizer steps, so the weights are never touched by it."""
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return 0.0
    if grad_clip is not None:
        norm = nn.utils.clip_grad_norm_(with_grad, grad_clip)
    else:
        norm = nn.utils.get_total_norm([p.grad for p in with_grad])
    value = float(norm)
    if value != value or value in (float("inf"), float("-inf")):
        raise DivergenceError(-1, f"the gradient norm is {value}")
    return value


class Task(abc.ABC):
    """Base task. Subclasses define `evaluate`, and `training_step` or, for an update that is not
    one optimizer stepping on one loss, `optimization_step`."""

    #: metric watched by early stopping and best-weights restore, and whether larger is better
    monitor: str = "val_loss"
    mode: str = "min"

    # ``training_step(model, batch) -> loss``: the loss of one training batch, which the default
    # `optimization_step` minimizes. A task whose update is not one optimizer stepping on one loss
    # (Reptile) defines `optimization_step` instead and no loss.

    def __new__(cls, *args: Any, **kwargs: Any):
        if not hasattr(cls, "training_step") and cls.optimization_step is Task.optimization_step:
            raise TypeError(f"{cls.__name__} must define training_step, or override optimization_step with an "
                            "update of its own.")
        return super().__new__(cls)

    def configure_optimizers(self, model: nn.Module, make_optimizer: Callable) -> list[torch.optim.Optimizer]:
        """Optimizers for the run; `make_optimizer(params)` builds the configured one."""
        return [make_optimizer(model.parameters())]

    def optimization_step(self, model: nn.Module, batch: dict[str, Any], optimizers: list[torch.optim.Optimizer],
                          grad_clip: float | None) -> torch.Tensor | dict[str, float]:
        """One update; returns the detached loss, or a dict of the step's training statistics with
        a ``loss`` among them (`fit` logs the mean of each as ``train_<name>``). Refuses a
        non-finite loss before stepping, so the weights are never touched by it."""
        loss = self.training_step(model, batch)
        value = loss.item()
        if value != value or value in (float("inf"), float("-inf")):
            raise NonFiniteLossError(step=-1, value=value)
        (optimizer,) = optimizers
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        check_gradients(model.parameters(), grad_clip)
        optimizer.step()
        return loss.detach()

    def train_split(self, split: Any) -> Any:
        """The split `fit` trains on, made from the dataset's train split: that split itself by
        default; node classification on sampled neighbourhoods trains on mini-batches of it."""
        return split

    def calibrate(self, model: nn.Module, train: Any, batch_size: int) -> None:
        """Called by `fit` with the training split before every evaluation (and so before the
        last checkpoint): recompute statistics that evaluation relies on but training only
        estimates. Nothing by default; the AAE recomputes its code standardization."""

    def checkpoint_files(self) -> dict[str, bytes]:
        """Files `fit` writes into every checkpoint beside the model's weights: what the task learns
        that is not the model's (Meta-SGD's step sizes). Nothing by default."""
        return {}

    def load_checkpoint_files(self, folder: Path) -> None:
        """Read back what `checkpoint_files` wrote, when `fit` resumes a run from `folder`."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module, split: Any, batch_size: int) -> dict[str, Any]:
        """Metrics of a whole split, without the split prefix (``loss``, ``accuracy``, ...).
        Scalars are floats; anything else (a confusion matrix) is a list."""


class ClassificationTask(Task):
    """Cross-entropy classification of ``batch["x"]`` (with ``batch["lengths"]`` for
    variable-length sequences) into ``batch["y"]``."""

    monitor = "val_accuracy"
    mode = "max"

    def __init__(self, num_classes: int, label_smoothing: float = 0.0):
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    @staticmethod
    def forward(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        if "lengths" in batch:
            return model(batch["x"], lengths=batch["lengths"])
        return model(batch["x"])

    def training_step(self, model, batch):
        return F.cross_entropy(self.forward(model, batch), batch["y"], label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        total_loss = 0.0
        count = 0
        confusion = None
        for batch in split.batches(batch_size):
            logits = self.forward(model, batch)
            total_loss += F.cross_entropy(logits, batch["y"], reduction="sum").item()
            count += len(batch["y"])
            c = confusion_matrix(logits.argmax(-1), batch["y"], self.num_classes)
            confusion = c if confusion is None else confusion + c
        if confusion is None:
            return {}
        return {
            "loss": total_loss / count,
            "accuracy": accuracy(confusion),
            "macro_f1": macro_f1(confusion),
            "confusion_matrix": confusion.cpu().tolist(),
        }


def training_task(name: str) -> Callable:
    """Name a task factory ``factory(model, spec, **options) -> Task`` (decorator). A model's
    registration points at its factory; the options after ``(model, spec)`` are the task's
    (e.g. the number of importance samples of a VAE's evaluation), and the name is what a
    checkpoint records."""

    def decorate(factory):
        factory.task_name = name
        return factory

    return decorate


#: the task of a target that is not a class, by ``spec.preprocess["target_kind"]``: ``factory(spec) -> Task``;
#: engine/regression.py registers ``"regression"`` (the engine package imports it)
TARGET_TASKS: dict[str, Callable[[Any], Task]] = {}


@training_task("classification")
def classification_task(model, spec, label_smoothing: float = 0.0) -> Task:
    """Classification into the data's classes; for a numeric target, its kind's task in `TARGET_TASKS`."""
    kind = spec.preprocess.get("target_kind", "classification")
    if kind in TARGET_TASKS:
        if label_smoothing:
            raise ConfigError(f"label_smoothing applies to class targets; this data's target is numeric ({kind}).")
        return TARGET_TASKS[kind](spec)
    if spec.num_classes == 1:
        raise DataError(f"the data '{spec.name}' has a single class ({', '.join(map(repr, spec.class_names or []))}); "
                        "classification needs at least two.")
    return ClassificationTask(spec.num_classes, label_smoothing)
