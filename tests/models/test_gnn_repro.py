"""Paper reproductions on Cora (slow: run with ``pytest -m slow``); the same figures as
``scripts/repro/gnn_planetoid.py``."""

from __future__ import annotations

import numpy as np
import pytest

import archlab

from ..conftest import require_dataset

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model, target", [("gcn", 0.810), ("gat", 0.825)])
def test_node_classification_on_cora(model, target):
    data_dir = require_dataset("planetoid").parent
    result = archlab.train_seeds(model, "cora", list(range(10)), data_dir=data_dir, quiet=True)
    assert result.metrics["test_accuracy_mean"] >= target


def test_gcn_ten_seeds_take_well_under_a_minute():
    data_dir = require_dataset("planetoid").parent
    result = archlab.train_seeds("gcn", "cora", list(range(10)), data_dir=data_dir, quiet=True)
    assert result.seconds < 45


@pytest.mark.parametrize("model", ["gae", "vgae"])
def test_link_prediction_on_cora(model):
    data_dir = require_dataset("planetoid").parent
    runs = [archlab.train(model, archlab.load_dataset("cora", data_dir, seed=s), seed=s, quiet=True).metrics
            for s in range(10)]
    assert np.mean([r["test_auc"] for r in runs]) >= 0.90
    assert np.mean([r["test_ap"] for r in runs]) >= 0.90
