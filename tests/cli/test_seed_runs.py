"""The checkpoint commands on the folder a `train --seeds` run writes (only ``seed-N`` checkpoints
inside), and `predict`/`explain --input` refusing non-finite inputs, end to end through `main`."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from archlab.cli import main


@pytest.fixture(scope="module")
def seed_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mlp-wine"
    assert main(["train", "mlp", "--data", "wine", "--epochs", "2", "--seeds", "2", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed-0", "seed-1"]
    return out


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_scores_every_seed_and_reports_mean_and_std(seed_folder, capsys):
    capsys.readouterr()
    code, out, _ = run(capsys, "evaluate", str(seed_folder), "--json")
    assert code == 0
    metrics = json.loads(out)["metrics"]
    singles = []
    for seed in (0, 1):
        code, single, _ = run(capsys, "evaluate", str(seed_folder / f"seed-{seed}"), "--json")
        singles.append(json.loads(single)["metrics"]["test_accuracy"])
    assert metrics["test_accuracy_mean"] == pytest.approx(np.mean(singles))
    assert metrics["test_accuracy_std"] == pytest.approx(np.std(singles))
    assert {"test_loss_mean", "test_loss_std"} <= set(metrics)


def test_predict_and_explain_read_the_first_seed_and_say_so(seed_folder, capsys, tmp_path):
    capsys.readouterr()
    np.save(tmp_path / "x.npy", np.full((2, 13), 1.0))
    code, out, err = run(capsys, "predict", str(seed_folder), str(tmp_path / "x.npy"), "--json")
    assert code == 0 and json.loads(out)["checkpoint"] == str(seed_folder / "seed-0")
    assert err.startswith("archlab: note:") and "holds 2 seed runs" in err and "seed-0" in err
    assert err.count("\n") == 1
    _, direct, _ = run(capsys, "predict", str(seed_folder / "seed-0"), str(tmp_path / "x.npy"), "--json")
    assert json.loads(direct)["probabilities"] == json.loads(out)["probabilities"]
    code, out, err = run(capsys, "explain", str(seed_folder), "--method", "permutation", "--repeats", "2", "--json")
    assert code == 0 and json.loads(out)["checkpoint"] == str(seed_folder / "seed-0") and "archlab: note:" in err
    code, out, err = run(capsys, "explain", str(seed_folder), "--method", "saliency", "--json")
    assert code == 0 and len(json.loads(out)["attributions"]) == 13


@pytest.mark.parametrize("command", ["predict", "explain"])
@pytest.mark.parametrize("value, where", [("nan", "row 1, column 4 holds nan"),
                                          ("1e40", r"row 1, column 4 holds 1e\+40, beyond float32's range")])
def test_non_finite_inputs_are_refused_naming_the_row(seed_folder, capsys, tmp_path, command, value, where):
    rows = ["1," * 12 + "1", "1,1,1,1," + value + ",1,1,1,1,1,1,1,1"]
    (tmp_path / "x.csv").write_text("\n".join(rows) + "\n")
    args = [str(tmp_path / "x.csv")] if command == "predict" else ["--input", str(tmp_path / "x.csv")]
    code, out, err = run(capsys, command, str(seed_folder / "seed-0"), *args, "--json")
    assert code == 1 and out == ""
    assert re.search(where, err) and err.count("\n") == 1 and "Traceback" not in err


def test_a_complex_npy_is_refused(seed_folder, capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((1, 13)) * (1 + 2j))
    code, _, err = run(capsys, "predict", str(seed_folder / "seed-0"), str(tmp_path / "x.npy"))
    assert code == 1 and "complex numbers" in err
