"""Every family from the user's own files, end to end from the command line: train on files the
test writes, evaluate the checkpoint (which re-reads its recorded source), then predict on (or
generate from, or meta-evaluate on) new files. The families the other files of this folder cover
(mlp on tables, lstm on a text table, cnn on an image folder, gcn on graph tables) are not repeated."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from archlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory):
    """scikit-learn's digits as PNGs: a training folder (one subfolder a class) and a folder of new images."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path_factory.mktemp("digits")
    for i, (image, label) in enumerate(zip(digits.images[:600], digits.target[:600])):
        (root / "train" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype("uint8")).save(root / "train" / str(label) / f"{i}.png")
    (root / "new").mkdir()
    for i in range(3):
        Image.fromarray((digits.images[1000 + i] * 255 / 16).astype("uint8")).save(root / "new" / f"{i}.png")
    return root


def test_an_autoencoder_on_an_image_folder_predicts_anomaly_scores(digit_folders, tmp_path, capsys):
    out = tmp_path / "ae"
    code, stdout, err = run(capsys, "anomaly", "--data", str(digit_folders / "train"), "--normal-class", "0",
                            "--epochs", "2", "--out", str(out), "--json")
    assert code == 0, err
    assert 0 <= json.loads(stdout)["metrics"]["test_auroc"] <= 1
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    code, stdout, err = run(capsys, "predict", str(out), str(digit_folders / "new"))
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(stdout)))
    assert rows[0] == ["row", "anomaly_score"] and len(rows) == 4
    scores = [float(r[1]) for r in rows[1:]]
    assert all(np.isfinite(scores)) and min(scores) >= 0


def test_a_vae_on_a_table_predicts_anomaly_scores(tmp_path, capsys):
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    frame.to_csv(tmp_path / "wine.csv", index=False)
    out = tmp_path / "vae"
    code, _, err = run(capsys, "train", "vae", "--data", str(tmp_path / "wine.csv"), "--target", "target",
                       "--epochs", "2", "--out", str(out), "--json")
    assert code == 0, err
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    frame.drop(columns="target").head(5).to_csv(tmp_path / "new.csv", index=False)
    code, stdout, err = run(capsys, "predict", str(out), str(tmp_path / "new.csv"), "--json")
    assert code == 0, err
    scores = json.loads(stdout)["predictions"]
    assert len(scores) == 5 and all(np.isfinite(scores))


def test_gpt_on_a_text_file_evaluates_and_generates(tmp_path, capsys):
    text = "".join(f"{a}+{b}={a + b}\n" for a in range(20) for b in range(20))
    (tmp_path / "sums.txt").write_text(text)
    out = tmp_path / "gpt"
    tiny = ["--set", "num_layers=1", "--set", "embed_dim=16", "--set", "num_heads=2", "--set", "context_length=16"]
    code, stdout, err = run(capsys, "train", "gpt", "--data", str(tmp_path / "sums.txt"), "--steps", "20",
                            "--eval-every", "20", "--out", str(out), "--json", *tiny)
    assert code == 0, err
    trained = json.loads(stdout)["metrics"]
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_loss"] == pytest.approx(trained["test_loss"], rel=1e-6)
    # a new file, every window of it, in the training characters' ids (a letter it never saw is U+FFFD's id)
    (tmp_path / "more.txt").write_text("".join(f"{a}+{b}={a + b}\n" for a in range(20, 30) for b in range(9)) + "x")
    code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "more.txt"), "--json")
    assert code == 0, err
    assert 0 < json.loads(stdout)["metrics"]["test_loss"] < 20
    (tmp_path / "short.txt").write_text("1+1=2\n")
    code, _, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "short.txt"))
    assert code == 1 and "too few for one window of context_length=256" in err
    code, stdout, err = run(capsys, "generate", str(out), "--prompt", "3+4=", "--max-new-tokens", "8", "--json")
    assert code == 0, err
    generated = json.loads(stdout)["text"]
    assert generated.startswith("3+4=") and set(generated) <= set("0123456789+=\n")


def test_a_transformer_on_a_text_table_predicts_new_texts(tmp_path, capsys):
    rows = [("a fine good film", "pos"), ("a bad dull film", "neg"), ("good and fine", "pos"),
            ("dull and bad", "neg")] * 20
    with open(tmp_path / "reviews.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(rows)
    out = tmp_path / "transformer"
    code, _, err = run(capsys, "train", "transformer", "--data", str(tmp_path / "reviews.csv"), "--data-format",
                       "text-table", "--data-set", "text_column=review", "--data-set", "label_column=sentiment",
                       "--epochs", "3", "--out", str(out), "--json")
    assert code == 0, err
    code, _, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    with open(tmp_path / "new.csv", "w", newline="") as f:
        csv.writer(f).writerows([["review"], ["a good film"], ["unseen words only"]])
    code, stdout, err = run(capsys, "predict", str(out), str(tmp_path / "new.csv"))
    assert code == 0, err
    table = list(csv.reader(io.StringIO(stdout)))
    assert table[0] == ["row", "prediction", "p_neg", "p_pos"] and len(table) == 3
    assert {r[1] for r in table[1:]} <= {"neg", "pos"}


def test_gae_on_graph_tables_trains_and_evaluates(tmp_path, capsys):
    import networkx as nx

    g = nx.karate_club_graph()
    folder = tmp_path / "karate"
    folder.mkdir()
    with open(folder / "edges.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        w.writerows(g.edges)
    out = tmp_path / "gae"
    code, stdout, err = run(capsys, "train", "gae", "--data", str(folder), "--data-set", "link_prediction=true",
                            "--epochs", "5", "--out", str(out), "--json")
    assert code == 0, err
    trained = json.loads(stdout)["metrics"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "edges.csv").write_text((folder / "edges.csv").read_text())
    code, _, err = run(capsys, "evaluate", str(out), "--data", str(other))
    assert code == 2 and "held-out edges of the graph it was trained on" in err
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_auroc"] == pytest.approx(trained["test_auroc"])
    code, _, err = run(capsys, "predict", str(out), str(folder))
    assert code == 2 and "archlab evaluate" in err


def test_meta_learning_on_an_image_folder_meta_evaluates_on_another(digit_folders, tmp_path, capsys):
    out = tmp_path / "maml"
    code, stdout, err = run(capsys, "meta-train", "maml", "--data", str(digit_folders / "train"), "--ways", "2",
                            "--shots", "1", "--meta-batch", "2", "--iterations", "3", "--eval-tasks", "4",
                            "--out", str(out), "--json")
    assert code == 0, err
    assert "test_accuracy_step1" in json.loads(stdout)["metrics"]
    code, stdout, err = run(capsys, "meta-eval", str(out), "--data", str(digit_folders / "train"), "--tasks", "4",
                            "--query", "3", "--json")
    assert code == 0, err
    assert 0 <= json.loads(stdout)["metrics"]["test_accuracy_step1"] <= 1


def test_meta_learning_on_a_table_names_its_target(tmp_path, capsys):
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True).frame.rename(columns={"target": "digit"})
    digits.to_csv(tmp_path / "digits.csv", index=False)
    out = tmp_path / "maml"
    common = ["--ways", "2", "--shots", "1", "--meta-batch", "2", "--iterations", "2"]
    code, _, err = run(capsys, "meta-train", "maml", "--data", str(tmp_path / "digits.csv"), *common,
                       "--eval-tasks", "2", "--out", str(out), "--json")
    assert code == 2 and "--target COLUMN" in err and "digit" in err  # the columns there are are listed
    code, stdout, err = run(capsys, "meta-train", "maml", "--data", str(tmp_path / "digits.csv"), "--target", "digit",
                            *common, "--eval-tasks", "2", "--out", str(out), "--json")
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())["meta"]
    assert saved["target"] == "digit"
    # meta-eval reads the data as it was meta-trained on it, or a file given with its own options
    code, stdout, err = run(capsys, "meta-eval", str(out), "--tasks", "3", "--query", "2", "--json")
    assert code == 0, err
    code, stdout, err = run(capsys, "meta-eval", str(out), "--data", str(tmp_path / "digits.csv"), "--target",
                            "digit", "--tasks", "3", "--query", "2", "--json")
    assert code == 0, err
    code, _, err = run(capsys, "meta-train", "maml", "--data", "sinusoid", "--target", "y", "--iterations", "1",
                       "--out", str(tmp_path / "s"))
    assert code == 2 and "the task source 'sinusoid' takes none" in err
