"""Anomaly detection with an autoencoder's `anomaly_score`: a threshold fitted at a chosen
false-positive rate on normal data, AUROC, and the one-class split (train and validate on one
class, test on all). `archlab.jobs.anomaly` runs the whole protocol."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data import Dataset
from ...engine.ranking import auroc
from ...errors import ConfigError, DataError
from .base import inference
from ...validation import check_float


def check_rate(owner: str, false_positive_rate: float) -> float:
    check_float(owner, "false_positive_rate", false_positive_rate, low=0, high=1, low_open=True, high_open=True)
    return float(false_positive_rate)


def fit_threshold(normal_scores: np.ndarray | torch.Tensor, false_positive_rate: float = 0.05) -> float:
    """The score above which an example is called anomalous, chosen so that at most a
    `false_positive_rate` fraction of `normal_scores` lies above it (their upper quantile)."""
    rate = check_rate("fit_threshold", false_positive_rate)
    scores = np.asarray(normal_scores.detach().cpu() if torch.is_tensor(normal_scores) else normal_scores,
                        dtype=np.float64).ravel()
    if scores.size == 0 or not np.isfinite(scores).all():
        raise DataError(f"normal_scores must be a non-empty array of finite scores; got {scores.size} scores"
                        f"{'' if scores.size == 0 else ' with NaN or inf among them'}.")
    return float(np.quantile(scores, 1.0 - rate, method="higher"))


def anomaly_scores(model: nn.Module, X: Any, batch_size: int = 512) -> np.ndarray:
    """``model.anomaly_score`` of every row of `X` (array or tensor), as a NumPy array ``(N,)``."""
    x = model.as_input(X)
    with inference(model):
        parts = [model.anomaly_score(x[i:i + batch_size]).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(parts).numpy() if parts else np.zeros(0, np.float32)


class AnomalyDetector:
    """scikit-learn style detector around a trained autoencoder.

    ``AnomalyDetector(model, false_positive_rate=0.05).fit(X_normal)`` sets ``threshold_``;
    `predict` then returns True for anomalies.
    """

    def __init__(self, model: nn.Module, false_positive_rate: float = 0.05, batch_size: int = 512):
        self.model = model
        self.false_positive_rate = check_rate("AnomalyDetector", false_positive_rate)
        self.batch_size = batch_size

    def fit(self, X_normal: Any) -> AnomalyDetector:
        self.threshold_ = fit_threshold(self.anomaly_scores(X_normal), self.false_positive_rate)
        return self

    def anomaly_scores(self, X: Any) -> np.ndarray:
        return anomaly_scores(self.model, X, self.batch_size)

    def predict(self, X: Any) -> np.ndarray:
        if not hasattr(self, "threshold_"):
            raise ConfigError("AnomalyDetector.predict needs a threshold: call fit(X_normal) first.")
        return self.anomaly_scores(X) > self.threshold_


def resolve_class(spec, normal_class: int | str, labels: torch.Tensor) -> int:
    """The index of `normal_class` (an index or a class name), refused when absent from the data."""
    names = [str(n) for n in (spec.class_names or range(spec.num_classes))]
    index = None
    if isinstance(normal_class, str) and normal_class in names:
        index = names.index(normal_class)
    elif isinstance(normal_class, int) and not isinstance(normal_class, bool):
        index = normal_class
    elif isinstance(normal_class, str) and normal_class.lstrip("-").isdigit():
        index = int(normal_class)
    present = sorted(int(c) for c in torch.unique(labels).tolist())
    if index is None or index not in present:
        raise ConfigError(f"normal_class must be one of the classes of '{spec.name}' present in its training data: "
                          f"{', '.join(names[c] if c < len(names) else str(c) for c in present)}; "
                          f"got {normal_class!r}.")
    return index


def one_class_data(data: Dataset, normal_class: int | str) -> tuple[Dataset, int]:
    """Train and val restricted to the normal class; test kept whole (its labels say which
    examples are anomalies)."""
    index = resolve_class(data.spec, normal_class, data["train"]["y"])
    splits = {name: split.subset(torch.nonzero(split["y"] == index).squeeze(1)) if name in ("train", "val")
              else split for name, split in data.splits.items()}
    return Dataset(data.spec, splits, data.files), index
