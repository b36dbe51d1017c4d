"""TensorBoard logging (`archlab.engine.loggers`), read back with TensorBoard's own reader: the curves
are history.csv's, step for step; the hyperparameters and final metrics are there; a resumed run
continues the curves; `--log KIND:DIR` works for train, anomaly and meta-train, and refuses bad input."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

import archlab  # noqa: E402
from archlab.cli import main  # noqa: E402
from archlab.engine.callbacks import Callback  # noqa: E402
from archlab.engine.loggers import TensorBoardLogger, flat_hparams, make_loggers  # noqa: E402
from archlab.errors import ConfigError  # noqa: E402


def events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0, "histograms": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def history(out) -> list[dict[str, float]]:
    with open(out / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def hparams(acc: EventAccumulator) -> tuple[dict, list[str]]:
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    return values, [m.name.tag for m in experiment.metric_infos]


def text(acc: EventAccumulator, tag: str) -> str:
    return tensor_util.make_ndarray(acc.Tensors(f"{tag}/text_summary")[-1].tensor_proto).item().decode()


def assert_curves_are_the_history(curves, rows):
    """Every history column but the step and the wall-clock seconds is a curve of the same steps and values."""
    columns = [k for k in rows[0] if k not in ("step", "seconds")]
    assert columns and {"train_loss", "lr", "epoch"} <= set(columns)
    for column in columns:
        logged = curves[column]
        assert [s for s, _ in logged] == [int(r["step"]) for r in rows], column
        np.testing.assert_allclose([v for _, v in logged], [r[column] for r in rows], rtol=1e-6, err_msg=column)


def test_train_logs_the_history_step_curves_final_metrics_and_hparams(tmp_path):
    log_dir, out = tmp_path / "tb", tmp_path / "run"
    result = archlab.train("mlp", "iris", epochs=3, eval_every=3, lr=0.01, out=out, quiet=True,
                           log=TensorBoardLogger(log_dir, log_every_n_steps=1))
    acc = events(log_dir)
    curves = scalars(acc)
    rows = history(out)
    assert {"val_loss", "val_accuracy"} <= set(rows[0])
    assert_curves_are_the_history(curves, rows)
    # the steps' own losses: one a step, and their mean between two rows is the row's train_loss
    steps = curves["train_loss_step"]
    assert [s for s, _ in steps] == list(range(1, result.history[-1]["step"] + 1))
    previous = 0
    for row in rows:
        window = [v for s, v in steps if previous < s <= row["step"]]
        assert np.mean(window) == pytest.approx(row["train_loss"], rel=1e-5)
        previous = row["step"]
    last = int(rows[-1]["step"])
    for name, value in result.metrics.items():
        assert curves[f"final/{name}"] == [(last, pytest.approx(value, rel=1e-6))]
    values, metric_tags = hparams(acc)
    assert values["model"] == "mlp" and values["data"] == "iris"
    assert values["lr"] == pytest.approx(0.01) and values["epochs"] == 3 and values["eval_every"] == 3
    assert values["model.in_features"] == 4 and "patience" not in values  # unset: left out
    assert set(metric_tags) == {f"final/{k}" for k in result.metrics}
    assert "| test_accuracy |" in text(acc, "final_metrics")
    confusion = text(acc, "test_confusion_matrix")
    assert "| setosa |" in confusion and "| virginica |" in confusion


class FailAt(Callback):
    """Raises after step `step`: a crash that leaves steps logged past the last checkpoint."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise RuntimeError("crash")


def test_a_resumed_run_continues_the_curves_and_drops_what_was_logged_past_its_checkpoint(tmp_path):
    log_dir, out = tmp_path / "tb", tmp_path / "run"
    options = dict(steps=12, eval_every=2, checkpoint_every=4, quiet=True)
    with pytest.raises(RuntimeError, match="crash"):
        archlab.train("mlp", "iris", out=out, callbacks=(FailAt(7),),
                      log=TensorBoardLogger(log_dir, log_every_n_steps=1), **options)
    before = scalars(events(log_dir))
    # the crash came before the logger saw step 7; steps 5 and 6 are past the checkpoint
    assert [s for s, _ in before["train_loss_step"]] == list(range(1, 7))
    archlab.train("mlp", "iris", out=out, resume=True, log=TensorBoardLogger(log_dir, log_every_n_steps=1),
                  **options)
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 2
    curves = scalars(events(log_dir))
    assert [s for s, _ in curves["train_loss_step"]] == list(range(1, 13))
    rows = history(out)
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    assert_curves_are_the_history(curves, rows)
    # the steps the checkpoint had are the first session's; 5 and 6 were logged again by the second
    assert curves["train_loss_step"][:4] == before["train_loss_step"][:4]


def test_a_new_run_refuses_a_folder_of_another_runs_logs_and_replaces_them_with_overwrite(tmp_path, capsys):
    log_dir = tmp_path / "tb"
    archlab.train("mlp", "iris", epochs=3, lr=0.05, out=tmp_path / "run", quiet=True, log=f"tensorboard:{log_dir}")
    argv = ["train", "mlp", "--data", "iris", "--epochs", "2", "--seed", "1", "--out", str(tmp_path / "other"),
            "--log", f"tensorboard:{log_dir}", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{log_dir} holds the TensorBoard logs of another run" in err
    assert main([*argv, "--overwrite"]) == 0
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1
    assert_curves_are_the_history(scalars(events(log_dir)), history(tmp_path / "other"))
    assert hparams(events(log_dir))[0]["epochs"] == 2


def test_seeds_log_one_run_each(tmp_path):
    result = archlab.train_seeds("mlp", "iris", [0, 1], epochs=1, out=tmp_path / "run", quiet=True,
                                 log=f"tensorboard:{tmp_path / 'tb'}")
    for seed, metrics in zip((0, 1), result.details["per_seed"]):
        acc = events(tmp_path / "tb" / f"seed-{seed}")
        assert hparams(acc)[0]["seed"] == seed
        assert scalars(acc)["final/test_accuracy"][0][1] == pytest.approx(metrics["test_accuracy"])


def test_flat_hparams():
    flat = flat_hparams({"model": "cnn", "lr": 1e-3, "first_order": False, "channels": [16, 32], "patience": None,
                         "task": {"label_smoothing": 0.1}, "steps": np.int64(5)})
    assert flat == {"model": "cnn", "lr": 1e-3, "first_order": False, "channels": "[16, 32]",
                    "task.label_smoothing": 0.1, "steps": 5}
    assert type(flat["steps"]) is int


@pytest.mark.parametrize("spec, message", [
    ("wandb:runs/x", "KIND one of tensorboard; got 'wandb:runs/x'"),
    ("runs/x", "KIND one of tensorboard; got 'runs/x'"),
    ("tensorboard", "needs a folder to write into: --log tensorboard:DIR"),
    ("tensorboard:  ", "needs a folder to write into"),
    (42, "Got int instead"),
])
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make_loggers(spec)


def test_log_every_n_steps_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="'log_every_n_steps' parameter of TensorBoardLogger must be an int >= 1"):
        TensorBoardLogger(tmp_path, log_every_n_steps=0)


def test_without_tensorboard_installed_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` then raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'archlab\[tensorboard\]'"):
        make_loggers(f"tensorboard:{tmp_path}")
    code = main(["train", "mlp", "--data", "iris", "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--log", f"tensorboard:{tmp_path / 'tb'}", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'archlab[tensorboard]'" in err
    assert not (tmp_path / "run").exists()  # refused before training


def test_the_train_command(tmp_path, capsys):
    out, log_dir = tmp_path / "run", tmp_path / "tb"
    assert main(["train", "mlp", "--data", "iris", "--epochs", "2", "--out", str(out), "--log",
                 f"tensorboard:{log_dir}", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    curves = scalars(events(log_dir))
    assert_curves_are_the_history(curves, history(out))
    assert curves["final/test_accuracy"][0][1] == pytest.approx(metrics["test_accuracy"])
    assert (out / "history.csv").is_file()


@pytest.mark.parametrize("spec, message", [("foo:x", "KIND one of tensorboard; got 'foo:x'"),
                                           ("tensorboard:", "needs a folder to write into")])
def test_the_commands_refuse_a_bad_log_in_one_line(tmp_path, capsys, spec, message):
    for argv in (["train", "mlp", "--data", "iris"], ["anomaly", "--data", "digits", "--normal-class", "0"],
                 ["meta-train", "maml", "--data", "sinusoid"]):
        assert main([*argv, "--out", str(tmp_path / "run"), "--log", spec]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_the_commands_refuse_logs_inside_the_checkpoint_folder(tmp_path, capsys):
    out = tmp_path / "run"
    for argv in (["train", "mlp", "--data", "iris"], ["anomaly", "--data", "digits", "--normal-class", "0"],
                 ["meta-train", "maml", "--data", "sinusoid"]):
        for log_dir in (out, out / "tb"):
            assert main([*argv, "--out", str(out), "--log", f"tensorboard:{log_dir}"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"is inside the checkpoint folder {out}" in err
    assert not out.exists()


def test_the_anomaly_command(tmp_path, capsys):
    out, log_dir = tmp_path / "run", tmp_path / "tb"
    assert main(["anomaly", "--data", "digits", "--normal-class", "0", "--epochs", "1", "--batch-size", "32",
                 "--set", "channels=[4]", "--out", str(out), "--log", f"tensorboard:{log_dir}", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    acc = events(log_dir)
    curves = scalars(acc)
    assert_curves_are_the_history(curves, history(out))
    for name in ("test_auroc", "threshold", "test_detection_rate"):
        assert curves[f"final/{name}"][0][1] == pytest.approx(metrics[name], rel=1e-6)
    values, metric_tags = hparams(acc)
    assert values["normal_class"] == "0" and values["model"] == "ae" and values["epochs"] == 1
    assert values["model.channels"] == "[4]" and "final/test_auroc" in metric_tags
    normal, anomalous = (acc.Histograms(f"test_scores/{k}")[0].histogram_value for k in ("normal", "anomalous"))
    assert normal.num > 0 and anomalous.num > 0 and anomalous.num > normal.num  # one class of ten is normal
    # the precision-recall counts (rows TP, FP, TN, FN, precision, recall at rising thresholds) trace
    # the ROC curve whose area the job reports
    counts = tensor_util.make_ndarray(acc.Tensors("test_anomaly")[0].tensor_proto)
    tp, fp, tn, fn = counts[:4]
    assert tp[0] == anomalous.num and fp[0] == normal.num  # at threshold 0 everything is flagged
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    area = -np.trapezoid(np.append(tpr, 0.0), np.append(fpr, 0.0))
    assert area == pytest.approx(metrics["test_auroc"], abs=0.02)


def test_the_meta_train_command(tmp_path, capsys, single_thread):
    out, log_dir = tmp_path / "run", tmp_path / "tb"
    assert main(["meta-train", "maml", "--data", "sinusoid", "--iterations", "4", "--meta-batch", "2",
                 "--log-every", "2", "--eval-tasks", "3", "--eval-steps", "0,1,3", "--out", str(out),
                 "--log", f"tensorboard:{log_dir}", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    acc = events(log_dir)
    curves = scalars(acc)
    assert_curves_are_the_history(curves, history(out))
    assert [s for s, _ in curves["adaptation/test_mse"]] == [0, 1, 3]
    np.testing.assert_allclose([v for _, v in curves["adaptation/test_mse"]],
                               [metrics[f"test_mse_step{k}"] for k in (0, 1, 3)], rtol=1e-6)
    values, _ = hparams(acc)
    assert values["algorithm"] == "maml" and values["iterations"] == 4 and values["data"] == "sinusoid"
