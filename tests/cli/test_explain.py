"""`archlab explain`: attributions for one example, permutation importance, the JSON contract, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import archlab
from archlab.cli import main


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    archlab.train("lenet5", "digits", steps=40, out=root / "digits", quiet=True)
    archlab.train("mlp", "wine", steps=60, out=root / "wine", quiet=True)
    return root


def run_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on stdout
    return json.loads(out)


@pytest.mark.parametrize("method", ["integrated-gradients", "saliency", "gradcam", "occlusion", "smoothgrad"])
def test_explain_an_image(method, checkpoints, capsys, tmp_path):
    figure = tmp_path / f"{method}.png"
    payload = run_json(capsys, "explain", str(checkpoints / "digits"), "--method", method, "--index", "7",
                       "--out", str(figure), "--samples", "3")
    assert figure.is_file() and figure.stat().st_size > 1000
    assert payload["target"] == payload["predicted"]  # the predicted class by default
    assert np.asarray(payload["attributions"]).shape == ((1, 8, 8))
    assert set(payload) >= {"metrics", "checkpoint", "seconds"}
    if method == "integrated-gradients":
        assert abs(payload["metrics"]["convergence_delta"]) < 0.05


@pytest.mark.parametrize("method", ["deeplift", "gradient-shap", "kernel-shap", "lime"])
def test_explain_an_image_with_the_shap_family(method, checkpoints, capsys):
    payload = run_json(capsys, "explain", str(checkpoints / "digits"), "--method", method, "--index", "3",
                       "--samples", "40")
    attributions = np.asarray(payload["attributions"])
    assert attributions.shape == (1, 8, 8) and np.isfinite(attributions).all() and np.abs(attributions).sum() > 0
    if method == "deeplift":
        assert abs(payload["metrics"]["convergence_delta"]) < 1e-4
    if method in ("kernel-shap", "lime"):
        assert payload["metrics"]["features"] == 16  # 2 x 2 patches of the 8 x 8 digits
        patches = attributions.reshape(4, 2, 4, 2).transpose(0, 2, 1, 3).reshape(16, 4)
        assert np.ptp(patches, axis=1).max() < 1e-6  # one value per patch


def test_explain_a_table_with_kernel_shap(checkpoints, capsys):
    payload = run_json(capsys, "explain", str(checkpoints / "wine"), "--method", "kernel-shap", "--index", "1")
    assert len(payload["attributions"]) == 13 and payload["metrics"]["features"] == 13


def test_explain_a_target_and_an_input_file(checkpoints, capsys, tmp_path):
    raw = np.random.default_rng(0).integers(0, 17, size=(3, 1, 8, 8)).astype(np.float32)  # digits' raw units
    np.save(tmp_path / "inputs.npy", raw)
    payload = run_json(capsys, "explain", str(checkpoints / "digits"), "--input", str(tmp_path / "inputs.npy"),
                       "--index", "2", "--class", "4")
    assert payload["target"] == 4 and payload["index"] == 2


def test_explain_a_table_and_rank_its_features(checkpoints, capsys, tmp_path):
    payload = run_json(capsys, "explain", str(checkpoints / "wine"), "--method", "feature-ablation", "--index", "3",
                       "--out", str(tmp_path / "bars.png"))
    assert len(payload["attributions"]) == 13
    assert (tmp_path / "bars.png").is_file()
    ranked = run_json(capsys, "explain", str(checkpoints / "wine"), "--method", "permutation", "--data", "wine",
                      "--repeats", "3")
    means = [row["mean"] for row in ranked["importances"]]
    assert len(means) == 13 and means == sorted(means, reverse=True)
    assert "alcohol" in {row["feature"] for row in ranked["importances"]}
    assert 0.0 <= ranked["metrics"]["test_accuracy"] <= 1.0
    assert main(["explain", str(checkpoints / "wine"), "--method", "permutation", "--repeats", "2"]) == 0
    table = capsys.readouterr().out
    assert "permutation importance" in table and "rank" in table


@pytest.mark.parametrize("argv,message", [
    (["--method", "permutation"], "explains tabular data"),
    (["--class", "12"], "--target 12 is out of range: the model has 10 classes"),
    (["--index", "5000"], "--index 5000 is out of range"),
    (["--out", "figure.jpg"], "must end in .png"),
    (["--method", "gradcam", "--layer", "head.9"], "layer 'head.9' is not in the model"),
    (["--method", "kernel-shap", "--samples", "10"], "--samples 10 is too few for kernel-shap: the example has 16 "
                                                     "features"),
])
def test_explain_errors(argv, message, checkpoints, capsys, tmp_path):
    code = main(["explain", str(checkpoints / "digits"), *[str(tmp_path / a) if a.endswith(".jpg") else a
                                                           for a in argv]])
    assert code in (1, 2)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("method", [None, "gradcam"])
def test_explain_a_vision_transformer(method, tmp_path_factory, capsys):
    root = tmp_path_factory.getbasetemp() / "explain-vit"
    if not root.exists():
        archlab.train("vit", "digits", steps=10, out=root, quiet=True,
                      model_kwargs={"embed_dim": 16, "num_layers": 2, "num_heads": 2, "patch_size": 2})
    figure = tmp_path_factory.mktemp("vit") / "map.png"
    payload = run_json(capsys, "explain", str(root), *(["--method", method] if method else []), "--index", "3",
                       "--out", str(figure))
    assert payload["method"] == (method or "attention-rollout")  # the registration's default
    assert np.asarray(payload["attributions"]).shape == (1, 8, 8)  # one map over the image, 4x4 patches of 2x2
    assert figure.is_file() and figure.stat().st_size > 1000
