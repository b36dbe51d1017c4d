"""Checkpoint folders: round trip, atomic replacement, corrupt and foreign folders."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch

import archlab
from archlab.engine.checkpoint import read_config, save_checkpoint
from archlab.models.registry import load_model
from archlab.errors import CheckpointError, ConfigError


def small_model():
    torch.manual_seed(0)
    return archlab.create_model("mlp", in_features=3, num_classes=2, hidden_dims=[4])


def test_round_trip_rebuilds_the_model_without_pickle(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config}, metrics={"test_accuracy": 1.0},
                    history=[{"step": 1, "val_loss": 0.5}, {"step": 2, "val_loss": 0.4, "extra": 1}])
    back = load_model(tmp_path / "ck")
    x = torch.randn(5, 3)
    torch.testing.assert_close(back(x), model.eval()(x), rtol=0, atol=0)
    assert (tmp_path / "ck" / "history.csv").read_text().splitlines()[0] == "step,val_loss,extra"
    assert read_config(tmp_path / "ck")["archlab_version"] == archlab.__version__


def test_tied_weights_are_saved(tmp_path):
    model = small_model()
    model.mlp[2].weight = model.mlp[2].weight  # same tensor twice in the state dict is fine
    save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config})
    load_model(tmp_path / "ck")


def test_a_crash_while_writing_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    model = small_model()
    save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config}, metrics={"v": 1})
    before = {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("archlab.engine.checkpoint.save_file", crash)
    with torch.no_grad():
        model.mlp[0].weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config}, metrics={"v": 2})
    after = {p.name: p.read_bytes() for p in (tmp_path / "ck").iterdir()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary folder left behind


def test_config_records_the_step_the_revision_and_the_digests(tmp_path):
    model = small_model()
    for revision in (1, 2):
        save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config}, training_state={"step": 7})
        config = read_config(tmp_path / "ck")
        assert config["revision"] == revision and config["step"] == 7
    assert set(config["sha256"]) == {"model.safetensors", "training_state.pt"}
    assert config["sha256"]["model.safetensors"] == hashlib.sha256(
        (tmp_path / "ck" / "model.safetensors").read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # the lock file goes with the writer


def test_interrupted_swap_is_recovered(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config})
    os.rename(tmp_path / "ck", tmp_path / ".ck.old-123")  # crash between the two renames
    load_model(tmp_path / "ck")


def test_files_not_owned_by_archlab_are_carried_over(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config},
                    extra_files={"tokenizer.json": "{}"})
    (tmp_path / "ck" / "notes.txt").write_text("mine")
    save_checkpoint(tmp_path / "ck", model, meta={"model": model.archlab_config})
    assert (tmp_path / "ck" / "tokenizer.json").read_text() == "{}"
    assert (tmp_path / "ck" / "notes.txt").read_text() == "mine"


def test_refuses_to_overwrite_a_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not an archlab checkpoint; refusing"):
        save_checkpoint(tmp_path / "mine", small_model(), meta={})
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_corrupt_and_foreign_checkpoints_are_named(tmp_path):
    model = small_model()
    ck = tmp_path / "ck"
    save_checkpoint(ck, model, meta={"model": model.archlab_config})
    (ck / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        load_model(ck)
    (ck / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(ck)
    (ck / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="not an archlab checkpoint"):
        load_model(ck)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nowhere")


def test_weights_of_another_shape_are_refused(tmp_path):
    model = small_model()
    save_checkpoint(tmp_path / "ck", model, meta={"model": {"name": "mlp", "kwargs": {"in_features": 9}}})
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_model(tmp_path / "ck")
