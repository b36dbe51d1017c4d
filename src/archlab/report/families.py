"""Figures of the families that classification does not cover: the ROC curve of an anomaly
detector, a meta-learner's score against its adaptation steps, a transformer's attention maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from ..errors import DataError


def _numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().double().numpy() if torch.is_tensor(a) else np.asarray(a, dtype=np.float64)


def roc_figure(scores: Any, is_anomaly: Any, threshold: float | None = None) -> Figure:
    """The ROC curve of anomaly `scores` (higher: more anomalous) against the truth, with its AUROC
    and, when given, the operating point of `threshold`."""
    s, truth = _numpy(scores).ravel(), np.asarray(is_anomaly).astype(bool).ravel()
    if len(s) != len(truth) or truth.all() or not truth.any():
        raise DataError("the ROC curve needs one score per example and both normal and anomalous examples.")
    fpr, tpr, _ = roc_curve(truth, s)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"AUROC {roc_auc_score(truth, s):.3f}")
    ax.plot([0, 1], [0, 1], ":", color="gray", label="chance")
    if threshold is not None:
        flagged = s > threshold
        ax.plot(flagged[~truth].mean(), flagged[truth].mean(), "o", color="black",
                label=f"threshold {threshold:.3g}")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("detection rate")
    ax.set_title("ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def adaptation_figure(scores: Mapping[int, tuple[float, float]], metric: str = "accuracy") -> Figure:
    """Mean query score after each number of adaptation steps, with its 95% interval:
    `scores` maps steps to ``(mean, ci95)``."""
    if not scores:
        raise DataError("the adaptation curve needs the score of at least one number of steps.")
    steps = sorted(scores)
    mean = np.array([scores[s][0] for s in steps])
    ci = np.array([scores[s][1] for s in steps])
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    ax.errorbar(steps, mean, yerr=ci, marker="o", capsize=3)
    ax.set_xlabel("adaptation steps")
    ax.set_ylabel(f"query {metric}")
    ax.set_title(f"meta-test {metric} against adaptation steps")
    ax.set_xticks(steps)
    fig.tight_layout()
    return fig


def attention_figure(attentions: Sequence[Any], tokens: Sequence[str] | None = None, *, max_layers: int = 4
                     ) -> Figure:
    """Each layer's attention map of one example, averaged over its heads: row ``i`` is where
    position ``i`` attends. `attentions` holds one ``(heads, T, T)`` (or ``(T, T)``) per layer."""
    maps = [(_numpy(a).mean(0) if _numpy(a).ndim == 3 else _numpy(a)) for a in attentions][:max_layers]
    if not maps or any(m.ndim != 2 or m.shape[0] != m.shape[1] for m in maps):
        raise DataError("attention_figure expects one square (T, T) map (or (heads, T, T)) per layer.")
    size = maps[0].shape[0]
    labels = list(tokens) if tokens is not None and len(tokens) == size else None
    fig = Figure(figsize=(3.6 * len(maps) + 0.6, 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(maps), squeeze=False)).ravel()
    for layer, (ax, m) in enumerate(zip(axes, maps)):
        shown = ax.imshow(m, cmap="viridis", vmin=0, vmax=max(float(m.max()), 1e-12))
        ax.set_title(f"layer {layer + 1}", fontsize=9)
        if labels is not None and size <= 32:
            ax.set_xticks(range(size), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(size), labels, fontsize=6)
        else:
            ax.set_xlabel("key position")
            ax.set_ylabel("query position")
    fig.colorbar(shown, ax=list(axes), fraction=0.02, pad=0.02)
    return fig
