"""The CLI through `main([...])`: happy paths, the JSON contract, and every error path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from archlab.cli import main

from .conftest import require_dataset


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "mlp-iris"
    assert main(["train", "mlp", "--data", "iris", "--epochs", "5", "--out", str(out), "--quiet"]) == 0
    return out


def test_list(capsys):
    code, out, _ = run(capsys, "list", "models", "--json")
    names = [m["name"] for m in json.loads(out)["models"]]
    assert code == 0 and {"cnn", "lenet5", "resnet", "mlp", "rnn", "lstm", "gru"} <= set(names)
    code, out, _ = run(capsys, "list", "datasets")
    assert code == 0 and "digits-seq" in out


def test_train_json_contract(capsys, tmp_path):
    code, out, err = run(capsys, "train", "gru", "--data", "digits-seq", "--epochs", "1", "--json",
                         "--set", "hidden_dim=16", "--set", "bidirectional=true", "--out", str(tmp_path / "ck"))
    assert code == 0
    payload = json.loads(out)  # exactly one JSON object on stdout
    assert set(payload) == {"metrics", "checkpoint", "seconds"}
    assert {"test_accuracy", "test_loss", "test_macro_f1", "val_accuracy"} <= set(payload["metrics"])
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["model"]["kwargs"]["hidden_dim"] == 16 and config["model"]["kwargs"]["bidirectional"] is True


def test_task_set_reaches_the_training_task_and_unknown_options_are_named(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "mlp", "--data", "iris", "--epochs", "1", "--json",
                       "--task-set", "label_smoothing=0.2", "--out", str(tmp_path / "ck"))
    assert code == 0
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["task_options"] == {"label_smoothing": 0.2}
    code, _, err = run(capsys, "train", "mlp", "--data", "iris", "--epochs", "1", "--task-set", "smoothing=0.2",
                       "--out", str(tmp_path / "bad"))
    assert code != 0 and "task 'classification' has no option 'smoothing'" in err and "label_smoothing" in err
    assert not (tmp_path / "bad").exists()


def test_min_lr_ratio_sets_where_the_decay_ends(capsys, tmp_path):
    code, _, _ = run(capsys, "train", "mlp", "--data", "iris", "--epochs", "2", "--lr", "0.01", "--schedule", "cosine",
                     "--min-lr-ratio", "0.5", "--out", str(tmp_path / "ck"), "--quiet")
    assert code == 0
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["train"]["min_lr_ratio"] == 0.5
    last = (tmp_path / "ck" / "history.csv").read_text().splitlines()[-1].split(",")
    assert float(last[2]) == pytest.approx(0.005)  # the lr column after the last step: 0.5 * lr


def test_evaluate_and_predict(capsys, checkpoint, tmp_path):
    code, out, _ = run(capsys, "evaluate", str(checkpoint), "--json")
    assert code == 0 and 0 <= json.loads(out)["metrics"]["test_accuracy"] <= 1
    np.save(tmp_path / "x.npy", np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]))
    code, out, _ = run(capsys, "predict", str(checkpoint), str(tmp_path / "x.npy"), "--json")
    payload = json.loads(out)
    assert code == 0 and payload["labels"] == ["setosa", "virginica"]


def test_seeds_report_mean_and_std(capsys, tmp_path):
    code, out, _ = run(capsys, "train", "mlp", "--data", "iris", "--epochs", "2", "--seeds", "2", "--json",
                       "--out", str(tmp_path / "runs"))
    metrics = json.loads(out)["metrics"]
    assert code == 0 and {"test_accuracy_mean", "test_accuracy_std"} <= set(metrics)
    assert (tmp_path / "runs" / "seed-1" / "model.safetensors").is_file()


@pytest.mark.parametrize("argv, code, message", [
    (["train", "lstn", "--data", "digits"], 2, "unknown model 'lstn'. Did you mean 'lstm'?"),
    (["train", "cnn", "--data", "digts"], 2, "unknown dataset 'digts'. Did you mean 'digits'?"),
    (["train", "cnn", "--data", "iris"], 2, "model 'cnn' takes image data, but dataset 'iris' is tabular"),
    (["train", "cnn", "--data", "digits", "--lr", "0"], 2, "argument --lr: expected a finite number > 0"),
    (["train", "cnn", "--data", "digits", "--lr", "-1"], 2, "argument --lr"),
    (["train", "cnn", "--data", "digits", "--epochs", "-3"], 2, "argument --epochs: expected an int >= 1; got -3"),
    (["train", "cnn", "--data", "digits", "--batch-size", "0"], 2, "argument --batch-size: expected an int >= 1"),
    (["train", "cnn", "--data", "digits", "--set", "chanels=[8]"], 2, "no hyperparameter 'chanels'. Valid keys:"),
    (["train", "cnn", "--data", "digits", "--set", "novalue"], 2, "expected KEY=VALUE"),
    (["train", "cnn", "--data", "digits", "--set", "num_classes=3"], 2, "num_classes is set by the data"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, code, message):
    got, out, err = run(capsys, *argv)
    assert got == code
    assert message in err and "Traceback" not in err


def test_missing_data_file_exits_1_naming_it(capsys, tmp_path):
    code, _, err = run(capsys, "train", "lenet5", "--data", "mnist", "--data-dir", str(tmp_path))
    assert code == 1 and "train-images-idx3-ubyte.gz" in err and "Traceback" not in err


def test_corrupt_data_file_exits_1_naming_it(capsys, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    source = require_dataset("mnist")
    for f in source.glob("*.gz"):
        (folder / f.name).write_bytes(f.read_bytes()[:5000])
    code, _, err = run(capsys, "train", "lenet5", "--data", "mnist", "--data-dir", str(tmp_path))
    assert code == 1 and "idx" in err and "truncated or corrupt" in err


def test_predict_wrong_shape_says_expected(capsys, checkpoint, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 7)))
    code, _, err = run(capsys, "predict", str(checkpoint), str(tmp_path / "bad.npy"))
    assert code == 1 and "expected an input of shape (4,)" in err and "got (2, 7)" in err


def test_corrupt_or_foreign_checkpoint(capsys, checkpoint, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"architectures": ["BertModel"]}')
    code, _, err = run(capsys, "evaluate", str(foreign))
    assert code == 1 and "not an archlab checkpoint" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((checkpoint / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"12345678garbage")
    code, _, err = run(capsys, "predict", str(broken), str(tmp_path / "x.npy"))
    assert code == 1
    np.save(tmp_path / "x.npy", np.zeros((1, 4)))
    code, _, err = run(capsys, "predict", str(broken), str(tmp_path / "x.npy"))
    assert code == 1 and "model.safetensors is corrupt" in err
    code, _, err = run(capsys, "evaluate", str(tmp_path / "missing"))
    assert code == 1 and "checkpoint folder not found" in err


def test_out_folder_that_is_not_a_checkpoint_is_left_alone(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "train", "mlp", "--data", "iris", "--epochs", "1", "--out", str(tmp_path))
    assert code == 2 and "refusing to overwrite" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="unknown model"):
        main(["--debug", "train", "nope", "--data", "digits"])


def test_predict_an_image_file(capsys, tmp_path):
    from PIL import Image

    ck = tmp_path / "cnn"
    assert main(["train", "cnn", "--data", "digits", "--epochs", "1", "--out", str(ck), "--quiet"]) == 0
    capsys.readouterr()
    image = np.zeros((32, 32), np.uint8)
    image[4:28, 14:18] = 255  # a vertical bar, resized to the model's 8x8 input
    Image.fromarray(image).save(tmp_path / "one.png")
    code, out, _ = run(capsys, "predict", str(ck), str(tmp_path / "one.png"), "--json")
    payload = json.loads(out)
    assert code == 0 and len(payload["predictions"]) == 1 and abs(sum(payload["probabilities"][0]) - 1) < 1e-5


def test_python_dash_m_entry_point():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "archlab", "list", "models", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and '"lenet5"' in done.stdout


def test_predict_refuses_models_it_cannot_feed(capsys, tmp_path):
    ck = tmp_path / "gcn"
    assert main(["train", "gcn", "--data", "karate", "--epochs", "2", "--out", str(ck), "--quiet"]) == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 34)))
    code, _, err = run(capsys, "predict", str(ck), str(tmp_path / "x.npy"))
    assert code == 2 and "built-in 'karate' graph" in err and "archlab evaluate" in err
