"""ROC AUC and average precision equal scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from archlab.engine.ranking import auroc, average_precision


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    labels[:2] = [0, 1]
    scores = rng.normal(size=200) + labels
    if ties:
        scores = np.round(scores, 1)
    s, y = torch.from_numpy(scores), torch.from_numpy(labels)
    assert auroc(s, y) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(s, y) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_perfect_and_reversed_rankings():
    y = torch.tensor([0, 0, 1, 1])
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert average_precision(torch.tensor([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(torch.ones(4), y) == 0.5


def test_refuses_one_class_or_mismatched_lengths():
    with pytest.raises(ValueError, match="both positives and negatives"):
        auroc(torch.rand(3), torch.ones(3))
    with pytest.raises(ValueError, match="same length"):
        average_precision(torch.rand(3), torch.tensor([0, 1]))
