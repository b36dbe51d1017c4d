"""Per-class scores against scikit-learn's, and the choice of the confidently wrong examples."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from archlab.report.classification import confident_mistakes, confusion_figure, examples_figure, per_class_scores


def test_per_class_scores_equal_scikit_learns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    predicted[predicted == 3] = 2  # class 3 never predicted: precision 0 by zero_division=0
    ours = per_class_scores(confusion_matrix(y, predicted, labels=range(4)))
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=range(4), zero_division=0)
    np.testing.assert_allclose([r["precision"] for r in ours], precision)
    np.testing.assert_allclose([r["recall"] for r in ours], recall)
    np.testing.assert_allclose([r["f1"] for r in ours], f1)
    assert [r["support"] for r in ours] == list(support)


def test_confident_mistakes_are_wrong_and_most_confident_first():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    y = np.array([0, 0, 1, 0, 0])
    assert confident_mistakes(p, y, k=5) == [3, 1, 2]
    assert confident_mistakes(p, y, k=1) == [3]
    assert confident_mistakes(p, np.array([0, 1, 0, 1, 0])) == []


def test_figures_draw():
    assert len(confusion_figure([[3, 1], [0, 4]], ["a", "b"]).axes) == 2  # the map and its colour bar
    fig = examples_figure(np.random.default_rng(0).random((3, 1, 8, 8)), ["x", "y", "z"], columns=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["x", "y", "z"]
