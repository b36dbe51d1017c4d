"""The "language-modeling" task: next-token cross-entropy, perplexity."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.tasks import Task, training_task
from ..errors import ConfigError
from ..validation import check_int


class LanguageModelingTask(Task):
    r"""Next-token prediction on batches ``{"x": (B, T), "y": (B, T)}``.

    .. math::
        \mathcal{L} = -\frac{1}{BT} \sum_{b, t} \log p_\theta(y_{b,t} \mid x_{b, \le t}),
        \qquad \mathrm{perplexity} = e^{\mathcal{L}}

    Windows longer than the model's `context_length` are trimmed to it. Evaluation
    scores every token of the split once, in non-overlapping windows of the model's
    context (no random draws), or only the first `eval_batches` batches when set.
    The optimizer follows nanoGPT: weight decay on matrices only, betas (0.9, 0.99).
    """

    monitor = "val_loss"
    mode = "min"

    def __init__(self, eval_batches: int | None = None):
        check_int("LanguageModelingTask", "eval_batches", eval_batches, minimum=1, optional=True)
        self.eval_batches = eval_batches

    @staticmethod
    def _trim(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        steps = getattr(model, "context_length", batch["x"].shape[1])
        return batch["x"][:, :steps], batch["y"][:, :steps]

    def training_step(self, model, batch):
        x, y = self._trim(model, batch)
        logits = model(x)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def configure_optimizers(self, model, make_optimizer):
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        return [make_optimizer(groups, betas=(0.9, 0.99))]

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        steps = getattr(model, "context_length", None)
        batches = split.windows(steps, batch_size) if steps and hasattr(split, "windows") else split.batches(batch_size)
        total, correct, count = 0.0, 0, 0
        for i, batch in enumerate(batches):
            if self.eval_batches is not None and i >= self.eval_batches:
                break
            x, y = self._trim(model, batch)
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
        if count == 0:
            return {}
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "accuracy": correct / count}


@training_task("language-modeling")
def language_modeling_task(model, spec, eval_batches: int | None = None) -> Task:
    if spec.kind != "text" or spec.preprocess.get("target") != "next-token":
        raise ConfigError(f"language modelling needs a token stream (tinyshakespeare, arithmetic); "
                          f"'{spec.name}' is {spec.kind} data with {spec.preprocess.get('target', 'class')} targets.")
    return LanguageModelingTask(eval_batches)
