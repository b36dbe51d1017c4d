"""Learning curves: history.csv read back, NaN kept as a gap and named in a note."""

from __future__ import annotations

import math

import numpy as np

from archlab.report.curves import learning_curves_figure, metric_names, non_finite, read_history


def test_history_is_read_with_nan_for_unreadable_cells(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,step,train_loss,val_loss,lr\n1,10,0.9,nan,0.1\n2,20,0.5,,0.1\n3,30,inf,0.4,0.1\n")
    rows = read_history(path)
    assert rows[0]["step"] == 10 and math.isnan(rows[0]["val_loss"]) and math.isnan(rows[1]["val_loss"])
    assert rows[2]["train_loss"] == math.inf
    assert metric_names(rows) == ["loss", "lr"]
    assert non_finite({"r": rows}) == ["r: val_loss is not finite at step(s) 10, 20; the curve has a gap there.",
                                       "r: train_loss is not finite at step(s) 30; the curve has a gap there."]


def test_the_plotted_line_has_a_gap_where_the_value_is_not_finite():
    rows = [{"step": 1.0, "val_loss": 1.0}, {"step": 2.0, "val_loss": math.nan}, {"step": 3.0, "val_loss": math.inf},
            {"step": 4.0, "val_loss": 0.5}]
    fig = learning_curves_figure({"run": rows})
    (line,) = fig.axes[0].lines
    y = np.asarray(line.get_ydata(), dtype=float)
    assert y[0] == 1.0 and y[3] == 0.5 and np.isnan(y[1:3]).all()  # not drawn at infinity


def test_runs_are_overlaid_in_one_panel_per_metric():
    a = [{"step": 1.0, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.5}]
    b = [{"step": 1.0, "train_loss": 2.0, "val_loss": 2.1, "val_accuracy": 0.4}]
    fig = learning_curves_figure({"a": a, "b": b})
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(panels) == {"loss", "accuracy"}
    assert sorted(line.get_label() for line in panels["loss"].lines) == ["a train", "a val", "b train", "b val"]
