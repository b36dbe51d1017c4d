"""What a classifier's report shows: the confusion matrix, per-class precision, recall and F1,
and the test examples it got wrong with the most confidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import DataError


def per_class_scores(confusion: Any) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class from a confusion matrix whose rows are the
    true classes and columns the predicted ones. A class never predicted has precision 0
    (scikit-learn's ``zero_division=0``), a class absent from the data recall 0."""
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise DataError(f"a confusion matrix must be square; got shape {c.shape}.")
    tp = np.diag(c)
    predicted, actual = c.sum(0), c.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for p, r, f, s in zip(precision, recall, f1, actual)]


def confusion_figure(confusion: Any, class_names: Sequence[str] | None = None, title: str = "confusion matrix"
                     ) -> Figure:
    """The confusion matrix as a heat map of row-normalized rates, each cell labelled with its count."""
    c = np.asarray(confusion, dtype=np.int64)
    k = len(c)
    names = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
    rates = c / np.maximum(c.sum(1, keepdims=True), 1)
    side = min(9.0, max(3.5, 0.45 * k + 2))
    fig = Figure(figsize=(side + 1, side))
    ax = fig.subplots()
    shown = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=7 if k > 12 else 9,
                            color="white" if rates[i, j] > 0.5 else "black")
        short = [n if len(n) <= 12 else n[:11] + "…" for n in names]
        ax.set_xticks(range(k), short, rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
        ax.set_yticks(range(k), short)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confident_mistakes(probabilities: Any, labels: Any, k: int = 8) -> list[int]:
    """Indices of the `k` wrongly classified examples whose predicted class had the highest
    probability, most confident first."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).ravel()
    if p.ndim != 2 or len(p) != len(y):
        raise DataError(f"confident_mistakes expects probabilities (N, classes) and N labels; got {p.shape} "
                        f"and {y.shape}.")
    predicted = p.argmax(1)
    wrong = np.flatnonzero(predicted != y)
    order = np.argsort(-p[wrong, predicted[wrong]], kind="stable")
    return [int(i) for i in wrong[order][:k]]


def examples_figure(images: Any, titles: Sequence[str], *, columns: int = 4) -> Figure:
    """Images ``(N, C, H, W)`` (or ``(N, T, D)`` sequences drawn as maps) in a grid, each titled."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
    if x.ndim not in (3, 4) or len(x) != len(titles) or len(x) == 0:
        raise DataError(f"examples_figure expects N images and N titles; got {x.shape} and {len(titles)}.")
    columns = min(columns, len(x))
    rows = -(-len(x) // columns)
    fig = Figure(figsize=(2.4 * columns, 2.9 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, image, title in zip(axes, x, titles):
        low, high = float(np.nanmin(image)), float(np.nanmax(image))
        colour = image.ndim == 3
        if colour:
            image = (image - low) / (high - low) if high > low else image * 0
        ax.imshow(image, cmap=None if colour else "gray", vmin=None if colour else low,
                  vmax=None if colour else high, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(x):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
