"""Paper reproductions on Cora (slow: run with ``pytest -m slow``); the same figures as
``scripts/repro/gnn_planetoid.py``."""

from __future__ import annotations

import numpy as np
import pytest

import archlab

from ..conftest import require_dataset

pytestmark = pytest.mark.slow


def test_gcn_on_cora_in_well_under_a_minute():
    data_dir = require_dataset("planetoid").parent
    result = archlab.train_seeds("gcn", "cora", list(range(10)), data_dir=data_dir, quiet=True)
    assert result.metrics["test_accuracy_mean"] >= 0.810  # Kipf & Welling: 81.5
    assert result.seconds < 45


def test_gat_on_cora():
    data_dir = require_dataset("planetoid").parent
    result = archlab.train_seeds("gat", "cora", list(range(10)), data_dir=data_dir, quiet=True)
    assert result.metrics["test_accuracy_mean"] >= 0.825  # Velickovic et al.: 83.0 +- 0.7


@pytest.mark.parametrize("model", ["gae", "vgae"])
def test_link_prediction_on_cora(model):
    data_dir = require_dataset("planetoid").parent
    runs = [archlab.train(model, archlab.load_dataset("cora", data_dir, seed=s), seed=s, quiet=True).metrics
            for s in range(10)]
    assert np.mean([r["test_auroc"] for r in runs]) >= 0.90
    assert np.mean([r["test_ap"] for r in runs]) >= 0.90


def test_sage_on_cora():
    data_dir = require_dataset("planetoid").parent
    result = archlab.train_seeds("sage", "cora", list(range(10)), data_dir=data_dir, quiet=True)
    assert result.metrics["test_accuracy_mean"] >= 0.800  # Cora full batch, the mean aggregator


def test_sage_on_sampled_neighbourhoods_is_within_a_point_of_full_batch():
    data_dir = require_dataset("planetoid").parent
    full = archlab.train_seeds("sage", "cora", list(range(10)), data_dir=data_dir, quiet=True)
    sampled = archlab.train_seeds("sage", "cora", list(range(10)), data_dir=data_dir, quiet=True,
                                  task_options={"num_neighbors": [25, 10]})
    assert abs(sampled.metrics["test_accuracy_mean"] - full.metrics["test_accuracy_mean"]) <= 0.01


def test_gin_on_graph_families():
    result = archlab.train_seeds("gin", "graph-families", list(range(3)), quiet=True)
    assert result.metrics["test_accuracy_mean"] >= 0.90
