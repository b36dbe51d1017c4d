"""Regression: one number per example, fitted by least squares.

The model learns the standardized target ``z = (y - mean) / std`` (mean and std of the training
split, from ``spec.preprocess``), so that one learning rate suits targets of any scale; `predict`
and every metric are in the target's own units.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .tasks import TARGET_TASKS, ClassificationTask, Task


class RegressionTask(Task):
    """Mean squared error on ``batch["y"]`` (floats) of a model with one output per example.

    `evaluate` reports ``loss`` (the training loss: MSE of the standardized target), ``mse``, ``mae``
    and ``r2`` (the coefficient of determination, scikit-learn's ``r2_score``) in target units.
    """

    monitor = "val_mse"
    mode = "min"

    def __init__(self, target_mean: float = 0.0, target_std: float = 1.0):
        if not target_std > 0:
            raise ConfigError(f"The 'target_std' parameter of RegressionTask must be a float > 0. "
                              f"Got {target_std} instead.")
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)

    @staticmethod
    def standardized(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """The model's output ``(B,)``: the standardized prediction."""
        out = ClassificationTask.forward(model, batch)
        if out.dim() != 2 or out.shape[1] != 1:
            raise ConfigError(f"a regression model must output one value per example, shape (B, 1); got "
                              f"{tuple(out.shape)}. Build it with num_classes=1.")
        return out[:, 0]

    def predict(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """Predictions ``(B,)`` in the target's units: ``y_hat = z_hat * std + mean``."""
        return self.standardized(model, batch) * self.target_std + self.target_mean

    def training_step(self, model, batch):
        z = (batch["y"].float() - self.target_mean) / self.target_std
        return F.mse_loss(self.standardized(model, batch), z)

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        # sums in float64 over the split: squared and absolute errors, and the target's first two moments
        sse = sae = total = total_sq = 0.0
        count = 0
        for batch in split.batches(batch_size):
            y = batch["y"].double()
            error = self.predict(model, batch).double() - y
            sse += float((error ** 2).sum())
            sae += float(error.abs().sum())
            total += float(y.sum())
            total_sq += float((y ** 2).sum())
            count += len(y)
        if count == 0:
            return {}
        mse = sse / count
        sst = total_sq - total ** 2 / count  # sum (y - mean(y))^2
        # R^2 = 1 - SSE / SST; a constant target gives 1 for a perfect fit, else 0 (as scikit-learn's r2_score)
        r2 = 1.0 - sse / sst if sst > 1e-12 * max(total_sq, 1.0) else (1.0 if sse == 0 else 0.0)
        return {"loss": mse / self.target_std ** 2, "mse": mse, "mae": sae / count, "r2": r2}


def regression_task(spec) -> RegressionTask:
    """The regression task of data whose numeric target was standardized as ``spec.preprocess`` records."""
    return RegressionTask(spec.preprocess.get("target_mean", 0.0), spec.preprocess.get("target_std", 1.0))


TARGET_TASKS["regression"] = regression_task
