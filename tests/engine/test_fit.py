"""fit: resume equivalence, Ctrl-C, NaN losses, early stopping."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import load_file

import archlab
from archlab.engine import ClassificationTask, TrainConfig, fit
from archlab.errors import NonFiniteLossError, TrainingInterrupted

OPTIONS = dict(epochs=2, batch_size=64, lr=3e-3, quiet=True, seed=5, model_kwargs={"channels": [4], "hidden_dims": [16]})


class At:
    """Callback that runs `action` after step `step`."""

    def __init__(self, step, action):
        self.step, self.action = step, action

    def on_step_end(self, state):
        if state.step == self.step:
            self.action()


def weights(path):
    return load_file(path / "model.safetensors")


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ctrl_c_saves_and_resume_is_bitwise_identical(tmp_path):
    archlab.train("cnn", "digits", out=tmp_path / "full", **OPTIONS)

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted, match="at step 13.*--resume"):
        archlab.train("cnn", "digits", out=tmp_path / "cut", callbacks=(At(13, interrupt),), **OPTIONS)
    result = archlab.train("cnn", "digits", out=tmp_path / "cut", resume=True, **OPTIONS)
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))
    assert result.history[-1]["step"] == 40


def test_killed_run_resumes_from_last_periodic_checkpoint(tmp_path):
    archlab.train("cnn", "digits", out=tmp_path / "full", **OPTIONS)

    def die():
        raise SystemExit("killed")

    with pytest.raises(SystemExit):
        archlab.train("cnn", "digits", out=tmp_path / "cut", checkpoint_every=10, callbacks=(At(27, die),),
                      **OPTIONS)
    archlab.train("cnn", "digits", out=tmp_path / "cut", resume=True, checkpoint_every=10, **OPTIONS)
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))


class NaNAfter(ClassificationTask):
    def __init__(self, step):
        super().__init__(10)
        self.calls, self.step = 0, step

    def training_step(self, model, batch):
        self.calls += 1
        loss = super().training_step(model, batch)
        return loss * float("nan") if self.calls >= self.step else loss


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    data = archlab.load_dataset("digits")
    torch.manual_seed(0)
    model = archlab.create_model("cnn", input_size=8, channels=[4])
    config = TrainConfig(epochs=3, batch_size=64, quiet=True, checkpoint_interval=0)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 25.*last good checkpoint is kept") as err:
        fit(model, NaNAfter(25), data, config, out=tmp_path / "ck")
    assert err.value.step == 25
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "ck").values())
    state = torch.load(tmp_path / "ck" / "training_state.pt", weights_only=True)
    assert state["step"] == 20  # the last evaluation (end of epoch 1) before the NaN
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the NaN never reached the weights


def test_early_stopping_restores_the_best_weights():
    data = archlab.load_dataset("digits")
    torch.manual_seed(0)
    model = archlab.create_model("cnn", input_size=8, channels=[4])
    task = ClassificationTask(10)
    config = TrainConfig(epochs=200, batch_size=64, lr=0.05, patience=3, monitor="val_loss", quiet=True)
    task.mode = "min"
    result = fit(model, task, data, config)
    assert result.stopped_early and len(result.history) < 200
    best = min(r["val_loss"] for r in result.history)
    assert task.evaluate(model, data.val, 512)["loss"] == pytest.approx(best, rel=1e-6)


def test_same_seed_same_run():
    a = archlab.train("mlp", "iris", epochs=3, quiet=True, seed=1)
    b = archlab.train("mlp", "iris", epochs=3, quiet=True, seed=1)
    assert a.metrics == b.metrics
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


class Calibrating(ClassificationTask):
    """Records what `fit` passes to `calibrate` and what the evaluation after it sees."""

    def __init__(self):
        super().__init__(3)
        self.calls = []

    def calibrate(self, model, train, batch_size):
        self.calls.append((len(train), batch_size))
        model.calibrated_at = len(self.calls)

    def evaluate(self, model, split, batch_size):
        return {**super().evaluate(model, split, batch_size), "calibrated_at": model.calibrated_at}


def test_calibrate_runs_with_the_training_split_before_every_evaluation():
    data = archlab.load_dataset("iris")
    model = archlab.create_model("mlp", in_features=4, num_classes=3, hidden_dims=[8])
    task = Calibrating()
    result = fit(model, task, data, TrainConfig(epochs=3, batch_size=16, eval_batch_size=100, quiet=True))
    assert task.calls == [(len(data["train"]), 100)] * 3
    assert [row["val_calibrated_at"] for row in result.history] == [1, 2, 3]
