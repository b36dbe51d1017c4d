"""`TensorBoardLogger`: what a run logs, read back with TensorBoard's own EventAccumulator."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import archlab
from archlab.engine import ClassificationTask, TrainConfig, fit
from archlab.engine.tensorboard import TensorBoardLogger, hparam_values
from archlab.errors import ConfigError
from archlab.report.html import figure_png

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(folder):
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def hparams_of(events) -> dict:
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: (v.string_value or v.number_value or v.bool_value) for k, v in info.hparams.items()}


def _run(logger, out=None, resume=False, epochs=2):
    data = archlab.load_dataset("iris")
    torch.manual_seed(0)
    model = archlab.create_model("mlp", in_features=4, num_classes=3, hidden_dims=[8])
    config = TrainConfig(epochs=epochs, batch_size=32, quiet=True, checkpoint_interval=0)
    return fit(model, ClassificationTask(3), data, config, out=out, resume=resume, callbacks=(logger,))


def test_every_step_and_every_evaluation_is_logged(tmp_path):
    logger = TensorBoardLogger(tmp_path / "tb", {"model": "mlp", "train": {"lr": 1e-3, "grad_clip": None},
                                                 "hidden_dims": [8]})
    result = _run(logger)
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1])
    logger.finish({"test_accuracy": 0.5, "test_confusion": [[1]]}, {"curve": figure_png(fig)})
    events = read_events(tmp_path / "tb")
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == list(range(1, result.steps + 1))
    for tag, column in (("val/accuracy", "val_accuracy"), ("train_mean/loss", "train_loss"), ("lr", "lr")):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [row["step"] for row in result.history]
        np.testing.assert_allclose([e.value for e in logged], [row[column] for row in result.history], rtol=1e-6)
    assert [(e.step, e.value) for e in events.Scalars("final/test_accuracy")] == [(result.steps, 0.5)]
    assert "final/test_confusion" not in events.Tags()["scalars"]  # not a scalar
    assert hparams_of(events) == {"model": "mlp", "train.lr": 1e-3, "train.grad_clip": "None", "hidden_dims": "[8]"}
    (image,) = events.Images("figures/curve")
    assert (image.width, image.height) == (200, 100)
    assert logger.writer is None  # finish closed it


def test_a_resumed_run_drops_what_was_logged_past_its_checkpoint(tmp_path):
    out, tb = tmp_path / "run", tmp_path / "tb"
    first = _run(TensorBoardLogger(tb), out=out, epochs=1)
    logger = TensorBoardLogger(tb)
    logger.on_fit_start(type("State", (), {"step": first.steps + 3})())  # an interrupted run logged 3 more steps
    for step in range(first.steps + 1, first.steps + 4):
        logger.writer.add_scalar("train/loss", 100.0, step)
    logger.close()
    logger = TensorBoardLogger(tb)
    resumed = _run(logger, out=out, resume=True, epochs=2)
    logger.close()
    losses = read_events(tb).Scalars("train/loss")
    assert [e.step for e in losses] == list(range(1, resumed.steps + 1))
    assert max(e.value for e in losses) < 100.0


def test_hparam_values_flatten_to_plugin_types():
    assert hparam_values({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": True}) == {"a.b": 1, "a.c": "[1, 2]",
                                                                             "d": "None", "e": True}


def test_missing_tensorboard_is_a_config_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"archlab\[tensorboard\]"):
        TensorBoardLogger(tmp_path).on_fit_start(type("State", (), {"step": 0})())
