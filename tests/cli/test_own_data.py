"""The user's own files, end to end from the command line: train, then evaluate the checkpoint
(re-read from its recorded source) and predict on a new file of the same schema."""

from __future__ import annotations

import csv
import io
import json

import networkx as nx
import pytest

from archlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_graph_from_node_and_edge_tables(tmp_path, capsys):
    g = nx.karate_club_graph()
    folder = tmp_path / "karate"
    folder.mkdir()
    with open(folder / "nodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "degree", "label"])
        w.writerows([n, g.degree(n), g.nodes[n]["club"]] for n in g.nodes)
    with open(folder / "edges.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        w.writerows(g.edges)
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "gcn", "--data", str(folder), "--epochs", "20", "--out", str(out), "--json")
    assert code == 0, err
    trained = json.loads(stdout)["metrics"]
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_accuracy"] == trained["test_accuracy"]

    # predict on a new graph of the same schema: the karate graph with new ids, its nodes in another
    # order and no label column; a GCN is permutation-equivariant, so each node keeps its class
    order = list(reversed(list(g.nodes)))
    new = tmp_path / "renamed"
    new.mkdir()
    with open(new / "nodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "degree"])
        w.writerows([f"n{n}", g.degree(n)] for n in order)
    with open(new / "edges.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        w.writerows((f"n{a}", f"n{b}") for a, b in g.edges)
    # evaluate on a new labeled graph of the schema: every labelled node is scored; renamed and reordered,
    # the karate graph gives what a copy of it gives
    labeled = tmp_path / "labeled"
    labeled.mkdir()
    with open(labeled / "nodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "degree", "label"])
        w.writerows([f"n{n}", g.degree(n), g.nodes[n]["club"]] for n in reversed(list(g.nodes)))
    with open(labeled / "edges.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        w.writerows((f"n{a}", f"n{b}") for a, b in g.edges)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("nodes.csv", "edges.csv"):
        (copy / name).write_text((folder / name).read_text())
    scores = []
    for graph in (labeled, copy):
        code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(graph), "--json")
        assert code == 0, err
        scores.append(json.loads(stdout)["metrics"]["test_accuracy"])
    assert scores[0] == scores[1]
    with open(labeled / "nodes.csv", "a", newline="") as f:
        csv.writer(f).writerow(["n99", 1, "Coach"])
    code, _, err = run(capsys, "evaluate", str(out), "--data", str(labeled))
    assert code == 1 and "line 36 has the class 'Coach'" in err

    code, stdout, err = run(capsys, "predict", str(out), str(folder))
    assert code == 0, err
    original = {row["node"]: row for row in csv.DictReader(io.StringIO(stdout))}
    right = sum(original[str(n)]["prediction"] == g.nodes[n]["club"] for n in g.nodes)
    assert scores[0] == pytest.approx(right / g.number_of_nodes())  # every node scored, as predict sees it
    code, stdout, err = run(capsys, "predict", str(out), str(new))
    assert code == 0, err
    renamed = list(csv.DictReader(io.StringIO(stdout)))
    assert [row["node"] for row in renamed] == [f"n{n}" for n in order]
    assert set(renamed[0]) == {"node", "prediction", "p_Mr. Hi", "p_Officer"}
    for row in renamed:
        before = original[row["node"][1:]]
        assert row["prediction"] == before["prediction"]
        assert abs(float(row["p_Officer"]) - float(before["p_Officer"])) < 1e-5

    # a nodes table whose feature columns are not the training graph's
    with open(new / "nodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "size"])
        w.writerows([f"n{n}", 1] for n in order)
    code, stdout, err = run(capsys, "predict", str(out), str(new))
    assert code == 1
    assert "missing ['degree'], extra ['size']" in err and "Traceback" not in err


def test_a_featureless_graph_model_cannot_predict_on_another_graph(tmp_path, capsys):
    g = nx.karate_club_graph()
    nx.set_node_attributes(g, {n: g.nodes[n]["club"] for n in g.nodes}, "label")
    for n in g.nodes:
        del g.nodes[n]["club"]
    path = tmp_path / "karate.graphml"
    nx.write_graphml(g, path)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "gcn", "--data", str(path), "--epochs", "2", "--out", str(out), "--json")
    assert code == 0, err
    code, _, err = run(capsys, "predict", str(out), str(path))
    assert code == 1
    assert "features='identity'" in err and "features='degree'" in err
    out = tmp_path / "degree"
    code, _, err = run(capsys, "train", "gcn", "--data", str(path), "--data-set", "features=degree", "--epochs", "2",
                       "--out", str(out), "--json")
    assert code == 0, err
    code, stdout, err = run(capsys, "predict", str(out), str(path), "--json")
    assert code == 0, err
    answer = json.loads(stdout)
    assert answer["ids"] == [str(n) for n in g.nodes] and len(answer["predictions"]) == g.number_of_nodes()


def test_a_text_table_trains_evaluates_and_predicts(tmp_path, capsys):
    rows = [("a fine good film", "pos"), ("a bad dull film", "neg")] * 40
    with open(tmp_path / "reviews.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "sentiment"])
        w.writerows(rows)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "lstm", "--data", str(tmp_path / "reviews.csv"), "--data-format", "text-table",
                       "--target", "sentiment", "--epochs", "3", "--out", str(out), "--quiet")
    assert code == 0, err
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0 and json.loads(stdout)["metrics"]["test_accuracy"] >= 0.9, err
    with open(tmp_path / "labeled.csv", "w", newline="") as f:  # new texts, with the training tokenizer
        csv.writer(f).writerows([["text", "sentiment"]] + [["fine good film", "pos"], ["film dull bad", "neg"]] * 3)
    code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "labeled.csv"), "--json")
    assert code == 0 and json.loads(stdout)["metrics"]["test_accuracy"] == 1.0, err
    with open(tmp_path / "labeled.csv", "a", newline="") as f:
        csv.writer(f).writerow(["so so", "meh"])
    code, _, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "labeled.csv"))
    assert code == 1 and "line 8 has the class 'meh'" in err and "classes: neg, pos" in err
    with open(tmp_path / "new.csv", "w", newline="") as f:
        csv.writer(f).writerows([["text"], ["good fine film"], ["dull bad film"]])
    code, stdout, err = run(capsys, "predict", str(out), str(tmp_path / "new.csv"))
    assert code == 0, err
    table = list(csv.reader(io.StringIO(stdout)))
    assert table[0] == ["row", "prediction", "p_neg", "p_pos"]
    assert [r[1] for r in table[1:]] == ["pos", "neg"]


def test_an_image_folder_trains_evaluates_and_predicts(tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "digits"
    for i, (image, label) in enumerate(zip(digits.images[:400], digits.target[:400])):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype("uint8")).save(folder / str(label) / f"{i}.png")
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "cnn", "--data", str(folder), "--epochs", "8", "--out", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_accuracy"] > 0.7
    code, stdout, err = run(capsys, "evaluate", str(out), "--json")
    assert code == 0, err
    labeled = tmp_path / "labeled"  # new images of the training classes, read with the training size and statistics
    for i, (image, label) in enumerate(zip(digits.images[400:600], digits.target[400:600])):
        (labeled / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype("uint8")).save(labeled / str(label) / f"{i}.png")
    code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(labeled), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_accuracy"] > 0.7
    (labeled / "cat").mkdir()
    Image.fromarray((digits.images[0] * 255 / 16).astype("uint8")).save(labeled / "cat" / "x.png")
    code, _, err = run(capsys, "evaluate", str(out), "--data", str(labeled))
    assert code == 1 and "'cat'" in err and "training classes are 0, 1" in err
    new = tmp_path / "new"
    new.mkdir()
    Image.fromarray((digits.images[500] * 255 / 16).astype("uint8")).save(new / "a.png")
    code, stdout, err = run(capsys, "predict", str(out), str(new))
    assert code == 0, err
    table = list(csv.reader(io.StringIO(stdout)))
    assert table[0][:2] == ["row", "prediction"] and len(table) == 2 and len(table[0]) == 12


def test_a_regression_table_trains_and_predicts_in_the_targets_units(tmp_path, capsys):
    import numpy as np
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True).frame
    data.to_csv(tmp_path / "diabetes.csv", index=False)
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "mlp", "--data", str(tmp_path / "diabetes.csv"), "--target", "target",
                            "--epochs", "30", "--out", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_r2"] > 0.2
    data.drop(columns="target").head(3).to_csv(tmp_path / "new.csv", index=False)
    code, stdout, err = run(capsys, "predict", str(out), str(tmp_path / "new.csv"))
    assert code == 0, err
    table = list(csv.reader(io.StringIO(stdout)))
    values = np.array([float(r[1]) for r in table[1:]])
    assert table[0] == ["row", "target"] and len(values) == 3
    assert 25 < values.mean() < 346  # in the target's units (diabetes progression, 25..346), not standardized


def test_a_classification_table_with_categories_and_missing_values(tmp_path, capsys):
    rows = [{"id": i, "size": ["small", "large"][i % 2], "weight": (i % 7) if i % 5 else "", "label": ["a", "b"][i % 2]}
            for i in range(120)]
    with open(tmp_path / "t.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", "mlp", "--data", str(tmp_path / "t.csv"), "--target", "label",
                            "--data-set", 'drop=["id"]', "--epochs", "20", "--out", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_accuracy"] == 1.0
    code, stdout, err = run(capsys, "train", "mlp", "--data", str(tmp_path / "t.csv"), "--target", "colour",
                            "--out", str(tmp_path / "other"))
    assert code == 1 and "colour" in err and "label" in err and len(err.strip().splitlines()) == 1


def trained_on_wine(tmp_path, capsys, epochs: int):
    """scikit-learn's wine table as wine.csv, and an mlp trained on it: (the table, the run folder)."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True).frame
    data.to_csv(tmp_path / "wine.csv", index=False)
    out = tmp_path / "run"
    assert run(capsys, "train", "mlp", "--data", str(tmp_path / "wine.csv"), "--target", "target", "--epochs",
               str(epochs), "--out", str(out), "--quiet")[0] == 0
    return data, out


def test_explain_reads_an_input_of_the_training_schema(tmp_path, capsys):
    data, out = trained_on_wine(tmp_path, capsys, epochs=5)
    data.drop(columns="target").head(2).to_csv(tmp_path / "new.csv", index=False)
    code, stdout, err = run(capsys, "explain", str(out), "--input", str(tmp_path / "new.csv"), "--index", "1",
                            "--json")
    assert code == 0, err
    assert len(json.loads(stdout)["attributions"]) == 13  # one per column of the table


def test_evaluate_scores_a_new_table_with_the_training_preprocessing(tmp_path, capsys):
    data, out = trained_on_wine(tmp_path, capsys, epochs=20)
    code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "wine.csv"), "--json")
    assert code == 0, err  # its own file: the recorded test split
    assert json.loads(stdout)["metrics"] == json.loads(run(capsys, "evaluate", str(out), "--json")[1])["metrics"]

    data.to_csv(tmp_path / "copy.csv", index=False)  # another file: every row, standardized as in training
    code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "copy.csv"), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_accuracy"] >= 0.95
    shifted = data.copy()
    features = [c for c in data.columns if c != "target"]
    shifted[features] = shifted[features] * 10 + 5  # refitting the scaling on this file would hide the shift
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    code, stdout, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "shifted.csv"), "--json")
    assert code == 0, err
    assert json.loads(stdout)["metrics"]["test_accuracy"] < 0.8

    data.drop(columns="alcohol").to_csv(tmp_path / "fewer.csv", index=False)
    code, _, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "fewer.csv"))
    assert code == 1 and "alcohol" in err and len(err.strip().splitlines()) == 1
    for argv, expected in ((["--split", "val"], "scored whole, as the test split"),
                           (["--target", "alcohol"], "'target'"), (["--data-set", "seed=3"], "takes no options")):
        code, _, err = run(capsys, "evaluate", str(out), "--data", str(tmp_path / "copy.csv"), *argv)
        assert code in (1, 2) and expected in err and "Traceback" not in err, argv


def test_a_single_class_image_folder_is_refused_for_classification(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "faces" / "me").mkdir(parents=True)
    for i in range(20):
        Image.new("L", (8, 8), color=i * 10).save(tmp_path / "faces" / "me" / f"{i}.png")
    code, _, err = run(capsys, "train", "cnn", "--data", str(tmp_path / "faces"), "--epochs", "1",
                       "--out", str(tmp_path / "run"))
    assert code == 1 and "single class ('me')" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_predict_writes_its_table_to_a_file_and_unknown_data_options_are_listed(tmp_path, capsys):
    data, out = trained_on_wine(tmp_path, capsys, epochs=5)
    code, _, err = run(capsys, "train", "mlp", "--data", str(tmp_path / "wine.csv"), "--target", "target",
                       "--data-set", "splt_column=part", "--out", str(tmp_path / "bad"))
    assert code == 2 and "no option 'splt_column'" in err and "Valid options: drop, split_column" in err
    data.drop(columns="target").head(4).to_csv(tmp_path / "new.csv", index=False)
    code, stdout, err = run(capsys, "predict", str(out), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"))
    assert code == 0, err
    table = list(csv.reader(open(tmp_path / "p.csv")))
    assert table[0] == ["row", "prediction", "p_0", "p_1", "p_2"] and len(table) == 5 and stdout.strip() == ""
