"""`archlab export`: every registered model is exported to ONNX (and checked against torch in
onnxruntime) or refused with its reason; TorchScript; predict on an exported file; bad inputs."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import archlab.export as export_lib
from archlab.cli import main
from archlab.data import Dataset, load_dataset
from archlab.errors import CheckpointError, ConfigError, DataError, ExportError
from archlab.export import UNEXPORTABLE
from archlab.export.graphs import export_graphs
from archlab.export.onnx import OnnxModel
from archlab.jobs import export_checkpoint, predict, train
from archlab.jobs.evaluate import load_checkpoint_data
from archlab.models.registry import list_models, load_model, model_info

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

WORDS = ["great", "lovely", "awful", "dull", "the", "film", "was", "plot"]
# Small sizes of each model, so that the whole set trains, exports and checks in seconds. The data:
# text tables have sentences of varied lengths (the lengths input is exercised), the rest are embedded.
TINY: dict[str, tuple[str, dict]] = {
    "cnn": ("digits", {"channels": [4], "hidden_dims": [8]}),
    "lenet5": ("digits", {}),
    "resnet": ("digits", {"channels": [4, 4, 4]}),
    "mlp": ("iris", {"hidden_dims": [8]}),
    "rnn": ("text", {"hidden_dim": 8, "embed_dim": 8, "pooling": "max", "bidirectional": True}),
    "lstm": ("text", {"hidden_dim": 8, "embed_dim": 8, "num_layers": 2, "bidirectional": True}),  # "last" pooling
    "gru": ("digits-seq", {"hidden_dim": 8, "pooling": "mean"}),
    "transformer": ("text", {"embed_dim": 8, "num_heads": 2, "num_layers": 1, "pooling": "cls"}),
    "bert": ("text", {"embed_dim": 8, "num_heads": 2, "num_layers": 1, "mlp_dim": 16, "context_length": 16}),
    "gpt": ("arithmetic", {"embed_dim": 8, "num_heads": 2, "num_layers": 1, "context_length": 16}),
    "ae": ("digits", {"hidden_dims": [8], "latent_dim": 2}),
    "vae": ("digits", {"hidden_dims": [8], "latent_dim": 2}),
    "aae": ("digits", {"hidden_dims": [8], "latent_dim": 2, "discriminator_dims": [8], "standardize_code": True}),
    "gcn": ("karate", {"hidden_dim": 4}),
    "gat": ("karate", {"hidden_dim": 2, "num_heads": 2}),
    "gae": ("karate", {}),
    "vgae": ("karate", {}),
}
# a model registered without a tiny setting trains at its default size on the first of these it takes
DATA_OF_KIND = {"image": "digits", "sequence": "digits-seq", "tabular": "iris", "text": "text", "graph": "karate",
                "graphs": "graph-families"}


def write_texts(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(n):
            writer.writerow([" ".join(rng.choice(WORDS, int(rng.integers(1, 9)))), "pos" if i % 2 else "neg"])
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


def checkpoint(workdir: Path, name: str) -> Path:
    """A checkpoint of `name` trained for one step on its tiny data (made once per module)."""
    out = workdir / name
    if (out / "config.json").is_file():
        return out
    info = model_info(name)
    data, kwargs = TINY.get(name) or ("arithmetic" if info.task == "language-modeling"
                                      else DATA_OF_KIND[info.data_kinds[0]], {})
    options = {}
    if data == "text":
        data = str(write_texts(workdir / "texts.csv"))
        options = {"data_format": "text-table", "data_options": {"context_length": 12}}
    elif data == "arithmetic":
        data = load_dataset("arithmetic", None, num_lines=200, context_length=16)
    train(name, data, model_kwargs=kwargs, out=out, steps=1, batch_size=8, quiet=True, **options)
    return out


def exportable(name: str) -> bool:
    return model_info(name).task not in UNEXPORTABLE


@pytest.mark.parametrize("name", [n for n in list_models() if exportable(n)])
def test_every_exportable_model_matches_torch_in_onnxruntime(workdir, name, single_thread):
    ckpt = checkpoint(workdir, name)
    result = export_checkpoint(ckpt, workdir / f"{name}.onnx", format="onnx")
    files = result.details["files"]
    assert [Path(f["path"]).exists() for f in files] == [True] * len(files)
    assert result.metrics["max_difference"] <= 1e-4
    # independently of the export's own check: another batch size, on the model rebuilt from the checkpoint
    config, dataset = load_checkpoint_data(ckpt, None, None)
    graphs = export_graphs(name, config["task"], load_model(ckpt), dataset)
    assert len(graphs) == len(files)
    for graph, file in zip(graphs, files):
        session = OnnxModel(file["path"])
        rows = 3 if config["task"] != "node-classification" else None
        inputs = tuple(t[:rows] for t in graph.check)
        with torch.no_grad():
            want = graph.reference(*inputs)
        got = session.run(*inputs)[0]
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=1e-4)
        assert session.metadata["model"] == name and session.metadata["graph"] == graph.name
        # the batch axis is dynamic (a fixed graph has no batch)
        shape = session.session.get_inputs()[0].shape
        assert isinstance(shape[0], str) == (config["task"] != "node-classification")


@pytest.mark.parametrize("name", ["cnn", "lstm", "gpt", "vae", "gat"])
def test_torchscript_export_matches_torch(workdir, name, single_thread):
    ckpt = checkpoint(workdir, name)
    result = export_checkpoint(ckpt, workdir / f"{name}.pt", format="torchscript")
    from archlab.export.torchscript import load_torchscript

    for file in result.details["files"]:
        module, metadata = load_torchscript(file["path"])
        assert metadata["model"] == name and file["max_difference"] <= 1e-4


@pytest.mark.parametrize("name", [n for n in list_models() if not exportable(n)])
def test_an_unexportable_model_is_refused_with_its_reason(workdir, name, capsys):
    ckpt = checkpoint(workdir, name)
    reason = UNEXPORTABLE[model_info(name).task][:40]
    with pytest.raises(ConfigError, match=f"cannot be exported: {re.escape(reason)}"):
        export_checkpoint(ckpt, workdir / f"{name}.onnx")
    assert main(["export", str(ckpt), "--out", str(workdir / f"{name}.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"archlab: error: model '{name}'") and len(err.splitlines()) == 1
    assert not (workdir / f"{name}.onnx").exists()


def test_a_folder_that_is_not_a_checkpoint_is_refused(tmp_path, capsys):
    with pytest.raises(CheckpointError, match="not an archlab checkpoint"):
        export_checkpoint(tmp_path, tmp_path / "m.onnx")
    assert main(["export", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"archlab: error: {tmp_path} is not an archlab checkpoint: it has no " \
                                              "config.json."


def test_a_format_whose_package_is_missing_is_named(workdir, monkeypatch, capsys):
    ckpt = checkpoint(workdir, "mlp")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs the package onnxruntime, which is not installed: "
                                          r"pip install 'archlab\[export\]'"):
        export_checkpoint(ckpt, workdir / "missing.onnx")
    assert main(["export", str(ckpt), "--out", str(workdir / "missing.onnx")]) == 2
    assert "onnxruntime" in capsys.readouterr().err
    assert not (workdir / "missing.onnx").exists()
    # TorchScript needs nothing beyond torch
    assert export_checkpoint(ckpt, workdir / "mlp.pt", format="torchscript").metrics["max_difference"] <= 1e-4


def test_an_unknown_format_is_refused(workdir):
    with pytest.raises(ConfigError, match="'format' parameter of export must be one of"):
        export_checkpoint(checkpoint(workdir, "mlp"), workdir / "m.tflite", format="tflite")


def test_an_export_that_differs_from_torch_fails_naming_the_difference_and_writes_nothing(workdir, monkeypatch):
    ckpt = checkpoint(workdir, "cnn")
    run = export_lib._run_exported
    monkeypatch.setattr(export_lib, "_run_exported", lambda *a: [o + 1e-3 for o in run(*a)])
    out = workdir / "off" / "cnn.onnx"
    with pytest.raises(ExportError, match=r"largest difference 0\.001 > 0\.0001.*Nothing was written"):
        export_checkpoint(ckpt, out)
    assert list(out.parent.iterdir()) == []  # neither the file nor its temporary
    # a looser tolerance accepts the same export
    assert export_checkpoint(ckpt, out, atol=2e-3).metrics["max_difference"] == pytest.approx(1e-3, rel=1e-3)


def test_an_autoencoder_writes_its_encoder_and_decoder(workdir):
    result = export_checkpoint(checkpoint(workdir, "vae"), workdir / "vae.onnx")
    paths = [Path(f["path"]).name for f in result.details["files"]]
    assert paths == ["vae.encoder.onnx", "vae.decoder.onnx"]
    decoder = OnnxModel(workdir / "vae.decoder.onnx")
    means = decoder.run(np.zeros((5, 2), np.float32))[0]
    assert means.shape == (5, 1, 8, 8) and ((means >= 0) & (means <= 1)).all()  # Bernoulli means


def test_predict_runs_an_exported_file_as_its_checkpoint(workdir, tmp_path):
    for name, raw in (("cnn", np.random.default_rng(0).uniform(0, 16, (5, 1, 8, 8))),
                      ("gru", np.random.default_rng(1).uniform(0, 16, (5, 8, 8)))):
        ckpt = checkpoint(workdir, name)
        export_checkpoint(ckpt, tmp_path / f"{name}.onnx")
        np.save(tmp_path / "x.npy", raw.astype(np.float32))
        torch_side = predict(ckpt, tmp_path / "x.npy").details
        onnx_side = predict(tmp_path / f"{name}.onnx", tmp_path / "x.npy").details
        assert onnx_side["labels"] == torch_side["labels"] and onnx_side["class_names"] == torch_side["class_names"]
        np.testing.assert_allclose(onnx_side["probabilities"], torch_side["probabilities"], atol=1e-5)


def test_predict_reads_new_texts_for_an_exported_text_classifier(workdir, tmp_path, capsys):
    ckpt = checkpoint(workdir, "lstm")
    export_checkpoint(ckpt, tmp_path / "lstm.onnx")
    with open(tmp_path / "new.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text"], ["great film"], ["the plot was dull and the film was awful"]])
    torch_side = predict(ckpt, tmp_path / "new.csv").details
    onnx_side = predict(tmp_path / "lstm.onnx", tmp_path / "new.csv").details
    np.testing.assert_allclose(onnx_side["probabilities"], torch_side["probabilities"], atol=1e-5)
    assert main(["predict", str(tmp_path / "lstm.onnx"), str(tmp_path / "new.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == torch_side["labels"]


def test_predict_refuses_an_onnx_file_archlab_did_not_write(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float32))
    with pytest.raises(CheckpointError, match="was not written by `archlab export`"):
        predict(tmp_path / "other.onnx", tmp_path / "x.npy")


def test_the_cli_prints_each_file_written(workdir, capsys):
    ckpt = checkpoint(workdir, "mlp")
    assert main(["export", str(ckpt), "--out", str(workdir / "cli.onnx")]) == 0
    assert capsys.readouterr().out.startswith(f"{workdir / 'cli.onnx'}: onnx model, largest difference from torch")
    assert main(["export", str(ckpt), "--format", "torchscript", "--json"]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert [Path(f["path"]) for f in files] == [ckpt / "model.pt"]


def test_predict_on_an_exported_regressor_is_in_the_targets_units(tmp_path):
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.normal(size=(80, 3)), rng.normal(size=80) * 20 + 100])
    np.savetxt(tmp_path / "t.csv", table, delimiter=",", header="a,b,c,target", comments="")
    train("mlp", str(tmp_path / "t.csv"), target="target", model_kwargs={"hidden_dims": [8]}, out=tmp_path / "run",
          steps=1, quiet=True)
    export_checkpoint(tmp_path / "run", tmp_path / "mlp.onnx")
    np.savetxt(tmp_path / "new.csv", table[:4, :3], delimiter=",", header="a,b,c", comments="")
    torch_side = predict(tmp_path / "run", tmp_path / "new.csv").details
    onnx_side = predict(tmp_path / "mlp.onnx", tmp_path / "new.csv").details
    assert onnx_side["probabilities"] is None and onnx_side["target"] == "target"
    np.testing.assert_allclose(onnx_side["predictions"], torch_side["predictions"], rtol=1e-5)
    assert 50 < np.mean(onnx_side["predictions"]) < 150  # the target's units, not standardized


def test_data_without_a_test_split_is_refused(workdir):
    ckpt = checkpoint(workdir, "mlp")
    _, full = load_checkpoint_data(ckpt, None, None)
    dataset = Dataset(full.spec, {k: v for k, v in full.splits.items() if k != "test"})
    with pytest.raises(DataError, match="has no test split \\(it has train, val\\)"):
        export_lib.export_model("mlp", "classification", load_model(ckpt), dataset, "onnx", workdir / "none.onnx")
    assert not (workdir / "none.onnx").exists()
