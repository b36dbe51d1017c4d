"""Anomaly detection: the threshold at a false-positive rate, AUROC, the one-class protocol
and its refusal of a class that is not in the data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from archlab.data import Dataset, load_dataset
from archlab.errors import ConfigError, DataError
from archlab.jobs import train_one_class
from archlab.models.autoencoder import AE, AnomalyDetector, auroc, fit_threshold
from archlab.models.autoencoder.anomaly import one_class_data


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2])
def test_threshold_keeps_the_false_positive_rate_on_normal_data(rate):
    scores = np.random.default_rng(0).normal(size=1000)
    threshold = fit_threshold(scores, rate)
    assert (scores > threshold).mean() <= rate
    assert (scores >= threshold).mean() >= rate  # and not more conservative than needed


def test_threshold_and_auroc_refuse_bad_input():
    with pytest.raises(ConfigError, match=r"The 'false_positive_rate' parameter of fit_threshold must be a float in \(0, 1\)\. Got 1\.5 instead\."):
        fit_threshold(np.ones(3), 1.5)
    with pytest.raises(DataError, match="non-empty"):
        fit_threshold(np.array([]))
    with pytest.raises(DataError, match="NaN"):
        fit_threshold(np.array([1.0, float("nan")]))
    with pytest.raises(DataError, match="both normal and anomalous"):
        auroc(np.ones(3), np.zeros(3))


def test_auroc_orders_scores():
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0


def test_detector_flags_what_it_cannot_reconstruct():
    model = AE((3,), latent_dim=3, hidden_dims=(), decoder="gaussian").eval()
    with torch.no_grad():
        for linear in (model.encoder.mlp[0], model.decoder.mlp[0]):
            linear.weight.copy_(torch.diag(torch.tensor([1.0, 1.0, 0.0])))  # forgets the third feature
            linear.bias.zero_()
    normal = np.random.default_rng(0).normal(size=(200, 3)) * [1, 1, 0.01]
    detector = AnomalyDetector(model, false_positive_rate=0.05)
    with pytest.raises(ConfigError, match="call fit"):
        detector.predict(normal)
    detector.fit(normal)
    assert detector.predict(normal).mean() <= 0.05
    assert detector.predict(np.array([[0.0, 0.0, 3.0]])).all()


def test_one_class_data_keeps_the_normal_class_for_training_and_the_whole_test_set():
    data = load_dataset("digits")
    one, index = one_class_data(data, "3")
    assert index == 3
    assert (one["train"]["y"] == 3).all() and (one["val"]["y"] == 3).all()
    assert len(one["test"]) == len(data["test"])


@pytest.mark.parametrize("bad", [12, "seven", -1])
def test_a_normal_class_not_in_the_data_is_refused(bad):
    with pytest.raises(ConfigError, match=r"normal_class must be one of the classes of 'digits'.*0, 1, 2.*got"):
        one_class_data(load_dataset("digits"), bad)


def test_one_class_training_detects_other_digits():
    data = load_dataset("digits")
    renamed = Dataset(dataclasses.replace(data.spec, name="my-digits"), data.splits)  # no per-dataset defaults
    result = train_one_class("ae", renamed, 0, epochs=3, batch_size=32, quiet=True,
                             model_kwargs={"channels": [8, 16], "latent_dim": 8})
    assert result.model.encoder.__class__.__name__ == "ConvEncoder"  # images default to the conv variant
    assert result.metrics["test_auroc"] > 0.8
    assert 0 <= result.metrics["test_false_positive_rate"] <= 0.3
    assert result.details["test_scores"].shape == result.details["test_is_anomaly"].shape


def pca_reconstruction_auroc(data, normal_class: int, components: int = 8) -> float:
    """The classical baseline: PCA fitted on the normal class's training images, scored by squared
    reconstruction error on the whole test set."""
    from sklearn.decomposition import PCA

    train, test = data["train"], data["test"]
    x = train["x"][train["y"] == normal_class].flatten(1).numpy()
    x_test = test["x"].flatten(1).numpy()
    pca = PCA(components).fit(x)
    scores = ((x_test - pca.inverse_transform(pca.transform(x_test))) ** 2).sum(1)
    return auroc(scores, (test["y"] != normal_class).numpy())


def test_the_digits_default_beats_pca_on_its_hardest_digit():
    # 8 is the digit PCA(8) finds hardest (0.974); the digits default is an MLP AE trained 500 steps
    data = load_dataset("digits")
    result = train_one_class("ae", data, 8, quiet=True)
    assert result.model.encoder.__class__.__name__ == "MLPEncoder" and result.model.decoder_kind == "gaussian"
    assert result.history[-1]["step"] == 500
    assert result.metrics["test_auroc"] >= pca_reconstruction_auroc(data, 8)


def test_a_given_length_replaces_the_dataset_default_length():
    result = train_one_class("ae", "digits", 1, epochs=2, quiet=True)
    assert result.history[-1]["step"] == 2  # 2 epochs of one batch, not the default 500 steps
