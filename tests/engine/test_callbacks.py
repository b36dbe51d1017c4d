"""The callback protocol of `fit`: which hooks run when, stopping a run from a callback, and the
training statistics a task's step returns."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

import archlab
from archlab.engine import Callback, ClassificationTask, TrainConfig, fit
from archlab.errors import ConfigError, NonFiniteLossError


def _run(callbacks, task=None, out=None, resume=False, **config):
    data = archlab.load_dataset("iris")
    torch.manual_seed(0)
    model = archlab.create_model("mlp", in_features=4, num_classes=3, hidden_dims=[8])
    options = {"epochs": 2, "batch_size": 32, "quiet": True, **config}
    return fit(model, task or ClassificationTask(3), data, TrainConfig(**options), out=out, resume=resume,
               callbacks=callbacks)


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_fit_start(self, state):
        self.calls.append(("start", state.step))

    def on_step_end(self, state):
        self.calls.append(("step", state.step))

    def on_eval_end(self, state, row):
        self.calls.append(("eval", row["step"]))

    def on_fit_end(self, state):
        self.calls.append(("end", state.step))


def test_hooks_run_in_order_once_a_step_and_once_an_evaluation():
    recorder = Recorder()
    result = _run((recorder,))
    steps = result.steps // 2  # two epochs
    expected = [("start", 0), *[("step", i) for i in range(1, steps + 1)], ("eval", steps),
                *[("step", i) for i in range(steps + 1, 2 * steps + 1)], ("eval", 2 * steps), ("end", 2 * steps)]
    assert recorder.calls == expected


def test_the_base_class_does_nothing_and_partial_objects_work():
    class OnlyEval:
        def __init__(self):
            self.rows = []

        def on_eval_end(self, state, row):
            self.rows.append(row)

    only = OnlyEval()
    result = _run((Callback(), only))
    assert only.rows == result.history


def test_an_object_without_any_hook_is_refused():
    with pytest.raises(ConfigError, match="must define at least one of on_fit_start.*object defines none"):
        _run((object(),))


def test_on_fit_end_runs_when_the_loop_raises():
    class NaNAt(ClassificationTask):
        def training_step(self, model, batch):
            return super().training_step(model, batch) * float("nan")

    recorder = Recorder()
    with pytest.raises(NonFiniteLossError):
        _run((recorder,), task=NaNAt(3))
    assert recorder.calls == [("start", 0), ("end", 0)]


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            state.stopped = "asked"


def test_a_callback_stops_the_run_resumably(tmp_path):
    full = _run((), out=tmp_path / "full")
    cut = _run((StopAt(5),), out=tmp_path / "cut")
    assert cut.stopped == "asked" and cut.steps == 5 and not cut.stopped_early
    state = torch.load(tmp_path / "cut" / "training_state.pt", weights_only=True)
    assert state["step"] == 5 and not state["finished"]
    again = _run((), out=tmp_path / "cut", resume=True)
    assert again.stopped is None and again.steps == full.steps
    # the same rows, training losses included (the window of steps since the last row is saved too)
    assert [{**r, "seconds": 0} for r in again.history] == [{**r, "seconds": 0} for r in full.history]
    full_weights = archlab.load_model(tmp_path / "full").state_dict()
    for k, v in archlab.load_model(tmp_path / "cut").state_dict().items():
        assert torch.equal(v, full_weights[k]), k


class Statistics(ClassificationTask):
    """A task whose step reports a second statistic beside the loss."""

    def optimization_step(self, model, batch, optimizers, grad_clip):
        loss = super().optimization_step(model, batch, optimizers, grad_clip)
        return {"loss": loss, "batch_size": float(len(batch["y"]))}


def test_step_statistics_are_averaged_into_each_row():
    result = _run((), task=Statistics(3), batch_size=50)
    data = archlab.load_dataset("iris")
    n = len(data["train"])
    sizes = [50] * (n // 50) + ([n % 50] if n % 50 else [])
    assert [row["train_batch_size"] for row in result.history] == [pytest.approx(sum(sizes) / len(sizes))] * 2
    assert all("train_loss" in row for row in result.history)


@pytest.fixture
def writes(monkeypatch):
    """The `metrics` of every checkpoint `fit` writes."""
    module = importlib.import_module("archlab.engine.fit")
    original, seen = module.save_checkpoint, []

    def recording(*args, **kwargs):
        seen.append(kwargs["metrics"])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "save_checkpoint", recording)
    return seen


def test_final_metrics_are_written_once_with_the_checkpoint(tmp_path, writes):
    data = archlab.load_dataset("iris")
    model = archlab.create_model("mlp", in_features=4, num_classes=3, hidden_dims=[8])
    config = TrainConfig(epochs=2, batch_size=32, quiet=True, checkpoint_interval=1e9)
    result = fit(model, ClassificationTask(3), data, config, out=tmp_path / "ck",
                 final_metrics=lambda model, result: {"steps": result.steps})
    assert writes == [{"steps": result.steps}] and result.metrics == {"steps": result.steps}
    assert json.loads((tmp_path / "ck" / "metrics.json").read_text()) == {"steps": result.steps}


def test_the_train_job_writes_its_checkpoint_once(tmp_path, writes):
    result = archlab.train("mlp", "iris", epochs=2, quiet=True, out=tmp_path / "ck", checkpoint_interval=1e9)
    assert len(writes) == 1 and writes[0]["metrics"] == result.metrics and "test_accuracy" in result.metrics
    assert json.loads((tmp_path / "ck" / "metrics.json").read_text())["metrics"] == result.metrics


def test_a_failing_final_metrics_still_leaves_the_trained_checkpoint(tmp_path):
    def fail(model, result):
        raise RuntimeError("scoring failed")

    data = archlab.load_dataset("iris")
    model = archlab.create_model("mlp", in_features=4, num_classes=3, hidden_dims=[8])
    with pytest.raises(RuntimeError, match="scoring failed"):
        fit(model, ClassificationTask(3), data, TrainConfig(epochs=1, quiet=True), out=tmp_path / "ck",
            final_metrics=fail)
    state = torch.load(tmp_path / "ck" / "training_state.pt", weights_only=True)
    assert state["finished"] and not (tmp_path / "ck" / "metrics.json").exists()


def test_progress_without_a_terminal_prints_a_line_every_interval(monkeypatch, capsys):
    from archlab.engine import progress

    clock = iter(range(0, 10_000, 20))  # every call to the clock is 20 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    reporter = progress.ProgressReporter()
    assert not reporter.live  # stderr is captured, not a terminal

    class State:
        step, total_steps, last = 3, 10, {"loss": 0.5}

    reporter.on_fit_start(State)
    for _ in range(4):
        reporter.on_step_end(State)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) >= 1 and all(line.startswith("step 3/10  loss 0.5") for line in lines)
