"""Learning curves: a run's ``history.csv`` read back, and one panel per metric with the train
and val curves of every run overlaid. A non-finite value is left out of its line (a gap)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import CheckpointError

#: history columns that are not metrics: where the row is, and when
POSITION = ("epoch", "step", "seconds")
SPLITS = ("train_", "val_")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``history.csv`` as floats; an empty cell or an unreadable value is NaN."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            return [{k: _number(v) for k, v in row.items() if k} for row in csv.DictReader(f)]
    except OSError as err:
        raise CheckpointError(f"cannot read the history {path}: {err.strerror or err}.") from err


def metric_names(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics of a history, each once whatever its split: ``loss`` for ``train_loss`` and
    ``val_loss``; a column of no split (``lr``) is its own metric."""
    names: list[str] = []
    for row in history:
        for key in row:
            if key in POSITION:
                continue
            base = next((key[len(s):] for s in SPLITS if key.startswith(s)), key)
            if base not in names:
                names.append(base)
    return names


def non_finite(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """One line per run and column holding NaN or infinity: where the curve has gaps."""
    notes = []
    for label, rows in histories.items():
        columns: dict[str, list[int]] = {}
        for row in rows:
            for key, value in row.items():
                if key not in POSITION and isinstance(value, float) and not math.isfinite(value):
                    columns.setdefault(key, []).append(int(row.get("step", 0)))
        for key, steps in columns.items():
            shown = ", ".join(map(str, steps[:8])) + (", ..." if len(steps) > 8 else "")
            notes.append(f"{label}: {key} is not finite at step(s) {shown}; the curve has a gap there.")
    return notes


def learning_curves_figure(histories: Mapping[str, Sequence[Mapping[str, Any]]], *, columns: int = 3) -> Figure:
    """One panel per metric against the step: train dashed, val solid, one colour per run."""
    names = metric_names([row for rows in histories.values() for row in rows])
    if not names:
        raise CheckpointError("the history holds no metric to plot.")
    columns = min(columns, len(names))
    rows_ = math.ceil(len(names) / columns)
    fig = Figure(figsize=(3.8 * columns, 2.9 * rows_))
    axes = np.atleast_1d(fig.subplots(rows_, columns, squeeze=False)).ravel()
    colours = [f"C{i % 10}" for i in range(len(histories))]
    for ax, name in zip(axes, names):
        for colour, (label, rows) in zip(colours, histories.items()):
            steps = np.array([row.get("step", i) for i, row in enumerate(rows)], dtype=np.float64)
            for prefix, style in (("train_", "--"), ("val_", "-"), ("", "-")):
                key = f"{prefix}{name}"
                if prefix == "" and any(f"{s}{name}" in row for row in rows for s in SPLITS):
                    continue
                values = np.array([row.get(key, math.nan) for row in rows], dtype=np.float64)
                if not np.isfinite(values).any():
                    continue
                values[~np.isfinite(values)] = np.nan  # a gap, not a point at infinity
                where = prefix.rstrip("_") or None
                legend = label if where is None else (f"{label} {where}" if len(histories) > 1 else where)
                ax.plot(steps, values, style, color=colour, marker="o" if len(rows) < 30 else None, markersize=3,
                        label=legend)
        ax.set_title(name)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize="x-small")
    for ax in axes[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
