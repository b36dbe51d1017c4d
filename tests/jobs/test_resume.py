"""`--resume` continues the saved run with its saved settings: options not given again come from the
checkpoint, a given option that differs is refused by name, and the length may be extended."""

from __future__ import annotations

import json

from archlab.cli import main
from archlab.engine.checkpoint import read_config, read_training_state

RUN = ["train", "mlp", "--data", "wine", "--batch-size", "32", "--lr", "0.002", "--set", "hidden_dims=[8]",
       "--quiet"]


def test_resume_uses_the_saved_length_and_settings_not_the_defaults(tmp_path):
    out = tmp_path / "run"
    assert main([*RUN, "--epochs", "2", "--out", str(out), "--time-limit", "0.001s"]) == 0
    stopped = read_training_state(out)["step"]
    assert stopped < 8  # 4 steps an epoch: stopped by the limit before the end
    assert main(["train", "mlp", "--data", "wine", "--resume", "--out", str(out), "--quiet"]) == 0
    config = read_config(out)
    assert read_training_state(out)["step"] == 8  # the saved 2 epochs, not mlp's default length
    assert config["train"]["lr"] == 0.002 and config["train"]["batch_size"] == 32
    assert config["model"]["kwargs"]["hidden_dims"] == [8]


def test_a_changed_option_on_resume_is_refused_by_name(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*RUN, "--epochs", "1", "--out", str(out), "--resume", "--lr", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "lr (saved 0.002, given 0.1)" in err and "\n" not in err
    assert main([*RUN, "--epochs", "1", "--out", str(out), "--resume", "--set", "hidden_dims=[16]"]) == 2


def test_resume_may_extend_the_run_and_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "mlp", "--data", "wine", "--resume", "--out", str(out), "--epochs", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "epochs 1 -> 3" in captured.err
    assert json.loads(captured.out)["checkpoint"] == str(out)
    assert read_training_state(out)["step"] == 12


def test_evaluate_finds_the_data_directory_the_run_recorded(tmp_path, capsys, monkeypatch):
    import pytest

    from archlab.data import load_dataset

    shared = __import__("pathlib").Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not (shared / "planetoid").is_dir():
        pytest.skip(f"needs the Planetoid files under {shared}")
    load_dataset("cora", shared)  # the files are readable
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    out = tmp_path / "run"
    assert main(["train", "gcn", "--data", "cora", "--data-dir", str(shared), "--epochs", "2", "--out", str(out),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["test_accuracy"] > 0


def test_a_run_saved_before_every_hyperparameter_was_recorded_resumes_with_the_former_default(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "mlp", "--data", "wine", "--set", "hidden_dims=[64,64]", "--epochs", "2", "--out", str(out),
                 "--time-limit", "0.001s", "--quiet"]) == 0
    config = read_config(out)
    config["model"]["kwargs"] = {k: v for k, v in config["model"]["kwargs"].items()
                                 if k in ("in_features", "num_classes")}  # as written before 2026-12-01
    (out / "config.json").write_text(json.dumps(config))
    assert main(["train", "mlp", "--data", "wine", "--resume", "--out", str(out), "--quiet"]) == 0
    assert read_training_state(out)["step"] == 8
    assert read_config(out)["model"]["kwargs"]["hidden_dims"] == [64, 64]  # now recorded with the rest
