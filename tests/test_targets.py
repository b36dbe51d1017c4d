"""The foundation's accuracy targets. The main job runs by default; the MNIST targets are slow
(`make repro` or `pytest -m slow`) and read ../shared/data."""

from __future__ import annotations

import time

import pytest

import archlab

from .conftest import require_dataset


def test_main_job_cnn_on_digits_reaches_97_percent():
    started = time.perf_counter()
    result = archlab.train("cnn", "digits", quiet=True)
    print(f"cnn on digits: test accuracy {result.metrics['test_accuracy']:.4f} "
          f"in {time.perf_counter() - started:.1f} s (target >= 0.97 in under a minute)")
    assert result.metrics["test_accuracy"] >= 0.97


@pytest.mark.slow
def test_lenet5_on_mnist_reaches_99_percent_in_3_epochs():
    root = require_dataset("mnist").parent
    result = archlab.train("lenet5", "mnist", data_dir=root, epochs=3, quiet=True)
    print(f"lenet5 on mnist, 3 epochs: test accuracy {result.metrics['test_accuracy']:.4f} (target >= 0.99)")
    assert result.metrics["test_accuracy"] >= 0.99


@pytest.mark.slow
def test_lstm_on_mnist_seq_reaches_98_percent():
    root = require_dataset("mnist").parent
    result = archlab.train("lstm", "mnist-seq", data_dir=root, epochs=5, batch_size=128, quiet=True,
                           model_kwargs={"hidden_dim": 128})
    print(f"lstm on mnist-seq: test accuracy {result.metrics['test_accuracy']:.4f} (target >= 0.98)")
    assert result.metrics["test_accuracy"] >= 0.98


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bidirectional_gru_on_digits_seq_reaches_95_percent(seed):
    result = archlab.train("gru", "digits-seq", seed=seed, quiet=True, model_kwargs={"bidirectional": True})
    print(f"bi-GRU on digits-seq, seed {seed}: test accuracy {result.metrics['test_accuracy']:.4f} (target >= 0.95)")
    assert result.metrics["test_accuracy"] >= 0.95


@pytest.mark.slow
def test_vit_on_mnist_reaches_98_percent_in_5_epochs():
    root = require_dataset("mnist").parent
    result = archlab.train("vit", "mnist", data_dir=root, quiet=True)  # the registration's defaults: 5 epochs
    print(f"vit on mnist, 5 epochs: test accuracy {result.metrics['test_accuracy']:.4f} (target >= 0.98)")
    assert result.metrics["test_accuracy"] >= 0.98
