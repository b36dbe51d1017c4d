"""The autoencoder commands: train on the embedded digits, evaluate with importance samples,
generate a PNG, one-class anomaly detection, and their errors."""

from __future__ import annotations

import json

import pytest

from archlab.cli import main


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


@pytest.fixture(scope="module")
def vae_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "vae-digits"
    assert main(["train", "vae", "--data", "digits", "--steps", "20", "--set", "latent_dim=4", "--set",
                 "hidden_dims=[32]", "--out", str(out), "--quiet"]) == 0
    return out


def test_train_ae_on_digits(tmp_path, capsys):
    code = main(["train", "ae", "--data", "digits", "--epochs", "2", "--set", "architecture=conv", "--set",
                 "channels=[4, 8]", "--out", str(tmp_path / "ae"), "--json"])
    assert code == 0
    payload = _json(capsys)
    assert {"test_loss", "test_reconstruction_error", "val_loss"} <= set(payload["metrics"])


def test_evaluate_reports_elbo_and_iw_nll(vae_checkpoint, capsys):
    assert main(["evaluate", str(vae_checkpoint), "--task-set", "iw_samples=50", "--json"]) == 0
    metrics = _json(capsys)["metrics"]
    assert metrics["test_nll"] <= -metrics["test_elbo"] + 0.5
    assert main(["evaluate", str(vae_checkpoint), "--task-set", "iw_samples=-1"]) == 2


def test_generate_writes_a_png(vae_checkpoint, tmp_path, capsys):
    out = tmp_path / "samples.png"
    assert main(["generate", str(vae_checkpoint), "--n", "9", "--out", str(out), "--json"]) == 0
    assert _json(capsys)["samples"] == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_refuses_a_deterministic_autoencoder(tmp_path, capsys):
    out = tmp_path / "ae"
    assert main(["train", "ae", "--data", "digits", "--steps", "1", "--out", str(out), "--quiet"]) == 0
    assert main(["generate", str(out), "--out", str(tmp_path / "s.png")]) == 2
    assert "cannot generate" in capsys.readouterr().err


def test_anomaly_reports_test_auroc(tmp_path, capsys):
    code = main(["anomaly", "--data", "digits", "--normal-class", "0", "--epochs", "6", "--set", "channels=[4, 8]",
                 "--out", str(tmp_path / "anomaly"), "--json"])
    assert code == 0
    metrics = _json(capsys)["metrics"]
    assert 0.5 < metrics["test_auroc"] <= 1.0
    assert {"threshold", "test_detection_rate", "test_false_positive_rate"} <= set(metrics)


def test_anomaly_refuses_a_class_not_in_the_data(tmp_path, capsys):
    assert main(["anomaly", "--data", "digits", "--normal-class", "11", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "normal_class must be one of the classes of 'digits'" in err and "got '11'" in err


def test_bernoulli_decoder_on_standardized_data_fails_with_the_remedy(tmp_path, capsys):
    code = main(["train", "vae", "--data", "iris", "--steps", "1", "--set", "decoder=bernoulli",
                 "--out", str(tmp_path / "v"), "--quiet"])
    assert code == 1
    assert "[0, 1]" in capsys.readouterr().err
