"""The time budget of every training job: a run stopped by its limit saves, ends normally with
``stopped="time_limit"``, and resumes to the weights of a run that was never stopped.

The clock `TimeLimit` reads is replaced by one that advances a second each time it is read, so
the step at which a limit strikes does not depend on the machine's speed.
"""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from safetensors.torch import load_file

import archlab
from archlab.cli import main
from archlab.cli.common import duration
from archlab.engine import TimeLimit, TrainConfig, callbacks
from archlab.errors import ConfigError

OPTIONS = dict(epochs=2, batch_size=64, lr=3e-3, quiet=True, seed=5,
               model_kwargs={"channels": [4], "hidden_dims": [16]})


@pytest.fixture
def ticking_clock(monkeypatch):
    """Each reading of the clock is one second after the previous one (the first reading, at the
    start of `fit`, is 0): a limit of N.5 seconds stops a run after N + 1 steps."""
    readings = iter(range(10**9))
    monkeypatch.setattr(callbacks, "now", lambda: float(next(readings)))


def assert_same_weights(a, b):
    a, b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_run_stopped_by_its_limit_resumes_bitwise(tmp_path, ticking_clock):
    full = archlab.train("cnn", "digits", out=tmp_path / "full", **OPTIONS)
    cut = archlab.train("cnn", "digits", out=tmp_path / "cut", time_limit=12.5, **OPTIONS)
    assert cut.stopped == "time_limit" and cut.summary()["stopped"] == "time_limit"
    assert not any(k.startswith("test_") for k in cut.metrics)  # not finished, so not tested
    state = torch.load(tmp_path / "cut" / "training_state.pt", weights_only=True)
    assert state["step"] == 13 and not state["finished"]
    # mid-epoch (an epoch is 20 steps here), then across an epoch's end: a second limit, then the rest
    again = archlab.train("cnn", "digits", out=tmp_path / "cut", resume=True, time_limit=9.5, **OPTIONS)
    assert again.stopped == "time_limit"
    assert torch.load(tmp_path / "cut" / "training_state.pt", weights_only=True)["step"] == 23
    done = archlab.train("cnn", "digits", out=tmp_path / "cut", resume=True, time_limit=1000.5, **OPTIONS)
    assert done.stopped is None
    assert_same_weights(tmp_path / "full", tmp_path / "cut")
    assert done.metrics == full.metrics
    assert [{**r, "seconds": 0} for r in done.history] == [{**r, "seconds": 0} for r in full.history]


def test_the_aae_three_phase_update_stops_and_resumes_bitwise(tmp_path, ticking_clock):
    options = dict(epochs=2, batch_size=64, quiet=True, seed=1, model_kwargs={"hidden_dims": [16], "latent_dim": 2},
                   task_options={"adversarial_lr_scale": 0.5})
    archlab.train("aae", "digits", out=tmp_path / "full", **options)
    assert archlab.train("aae", "digits", out=tmp_path / "cut", time_limit=7.5, **options).stopped == "time_limit"
    state = torch.load(tmp_path / "cut" / "training_state.pt", weights_only=True)
    assert state["step"] == 8 and len(state["optimizers"]) == 3  # autoencoder, discriminator, generator
    archlab.train("aae", "digits", out=tmp_path / "cut", resume=True, **options)
    assert_same_weights(tmp_path / "full", tmp_path / "cut")


def test_a_limit_longer_than_the_run_changes_nothing(tmp_path, ticking_clock):
    result = archlab.train("mlp", "iris", epochs=2, quiet=True, time_limit=10**6)
    assert result.stopped is None and "test_accuracy" in result.metrics


def test_the_train_command_reports_the_stop_in_json(tmp_path, capsys, ticking_clock):
    argv = ["train", "mlp", "--data", "iris", "--epochs", "3", "--out", str(tmp_path / "run"), "--json"]
    assert main([*argv, "--time-limit", "4.5s"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["stopped"] == "time_limit" and payload["checkpoint"] == str(tmp_path / "run")
    assert main([*argv, "--resume"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert "stopped" not in payload and "test_accuracy" in payload["metrics"]


def test_one_class_anomaly_training_stops_and_resumes(tmp_path, ticking_clock):
    options = dict(epochs=2, batch_size=32, quiet=True, model_kwargs={"channels": [4], "latent_dim": 2})
    full = archlab.train_one_class("ae", "digits", 0, out=tmp_path / "full", **options)
    cut = archlab.train_one_class("ae", "digits", 0, out=tmp_path / "cut", time_limit=2.5, **options)
    assert cut.stopped == "time_limit" and "test_auroc" not in cut.metrics
    done = archlab.train_one_class("ae", "digits", 0, out=tmp_path / "cut", resume=True, **options)
    assert_same_weights(tmp_path / "full", tmp_path / "cut")
    assert done.metrics == full.metrics


def test_the_anomaly_command_takes_a_time_limit(tmp_path, capsys, ticking_clock):
    argv = ["anomaly", "--data", "digits", "--normal-class", "1", "--epochs", "1", "--batch-size", "16",
            "--set", "channels=[4]",
            "--out", str(tmp_path / "a"), "--json"]
    assert main([*argv, "--time-limit", "1.5"]) == 0
    assert json.loads(capsys.readouterr().out)["stopped"] == "time_limit"
    assert main([*argv, "--resume"]) == 0
    assert "test_auroc" in json.loads(capsys.readouterr().out)["metrics"]


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1.5h", 5400), ("45", 45),
                                           (" 3M ", 180)])
def test_durations(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "-5s", "0", "infs", "nanm"])
def test_bad_durations_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration"):
        duration(text)


def test_a_bad_time_limit_is_a_usage_error(capsys):
    assert main(["train", "mlp", "--data", "iris", "--time-limit", "soon"]) == 2
    assert "expected a duration such as 90s, 10m or 2h; got 'soon'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"The 'time_limit' parameter of TrainConfig must be a float > 0 or None. Got -1"):
        TrainConfig(time_limit=-1).validate()
    with pytest.raises(ConfigError, match="The 'time_limit' parameter of TrainConfig must be a number of seconds"):
        TimeLimit(0)
