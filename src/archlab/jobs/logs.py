"""What the training jobs log to TensorBoard (``--log tensorboard:DIR``): the logger with a run's
settings as its hyperparameters, and the final figures it adds once the run is scored."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data import DataSpec
from ..engine.tensorboard import TensorBoardLogger
from ..report.classification import confusion_figure
from ..report.curves import learning_curves_figure
from ..report.families import roc_figure
from ..report.html import figure_png


def tensorboard_logger(log_dir: str | os.PathLike | None, hparams: Mapping[str, Any]) -> TensorBoardLogger | None:
    return None if log_dir is None else TensorBoardLogger(log_dir, hparams)


def final_figures(history: Sequence[Mapping[str, Any]], details: Mapping[str, Any] | None = None,
                  spec: DataSpec | None = None) -> dict[str, bytes]:
    """PNG bytes of the run's learning curves and, when its results hold them, the test confusion
    matrix and an anomaly detector's ROC curve."""
    details = details or {}
    images: dict[str, bytes] = {}
    if history:
        images["learning_curves"] = figure_png(learning_curves_figure({"run": list(history)}))
    confusion = details.get("test_confusion_matrix")
    if confusion is not None:
        images["confusion_matrix"] = figure_png(confusion_figure(confusion, spec.class_names if spec else None))
    if "test_scores" in details and "test_is_anomaly" in details:
        truth = np.asarray(details["test_is_anomaly"], dtype=bool)
        if truth.any() and not truth.all():
            images["roc"] = figure_png(roc_figure(details["test_scores"], truth))
    return images
