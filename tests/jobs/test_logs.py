"""``--log tensorboard:DIR`` on every training command, read back with EventAccumulator."""

from __future__ import annotations

import json

import pytest

from archlab.cli import main
from archlab.jobs import MetaConfig, meta_train, train_one_class, train_seeds

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(folder):
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_train_logs_scalars_hparams_and_final_figures(tmp_path, capsys):
    tb = tmp_path / "tb"
    assert main(["train", "mlp", "--data", "iris", "--epochs", "2", "--out", str(tmp_path / "run"), "--quiet",
                 "--json", "--set", "hidden_dims=[8]", "--log", f"tensorboard:{tb}"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    events = read_events(tb)
    tags = events.Tags()
    assert {"train/loss", "val/accuracy", "lr", "final/test_accuracy"} <= set(tags["scalars"])
    assert events.Scalars("final/test_accuracy")[-1].value == pytest.approx(metrics["test_accuracy"])
    assert set(tags["images"]) == {"figures/learning_curves", "figures/confusion_matrix"}
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert (tmp_path / "run" / "history.csv").is_file()  # the history stays


def test_seed_runs_log_one_folder_each(tmp_path):
    train_seeds("mlp", "iris", [3, 4], epochs=1, out=tmp_path / "run", tensorboard=tmp_path / "tb", quiet=True,
                model_kwargs={"hidden_dims": [4]})
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["seed-3", "seed-4"]
    assert read_events(tmp_path / "tb" / "seed-3").Scalars("train/loss")


def test_anomaly_logs_its_test_metrics_and_roc(tmp_path):
    result = train_one_class("ae", "digits", 0, epochs=1, tensorboard=tmp_path / "tb", quiet=True,
                             model_kwargs={"channels": [4, 8]})
    events = read_events(tmp_path / "tb")
    assert events.Scalars("final/test_auroc")[-1].value == pytest.approx(result.metrics["test_auroc"])
    assert "figures/roc" in events.Tags()["images"]


def test_meta_train_logs_its_outer_steps(tmp_path, single_thread):
    config = MetaConfig(algorithm="maml", data="sinusoid", iterations=4, meta_batch=2)
    meta_train(config, out=tmp_path / "run", eval_tasks=2, log_every=2, quiet=True, tensorboard=tmp_path / "tb")
    events = read_events(tmp_path / "tb")
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert "final/test_mse_step1" in events.Tags()["scalars"]


def test_log_needs_a_known_kind(tmp_path, capsys):
    assert main(["train", "mlp", "--data", "iris", "--log", "wandb:x"]) == 2
    assert "expected tensorboard:DIR" in capsys.readouterr().err
