"""Tables as datasets: CSV, TSV, Parquet and DataFrames; preprocessing fitted on the training split;
new files of the same columns for predict; every bad input refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import archlab
from archlab.data import from_arrays, from_table, list_formats, load_data
from archlab.data.sources import detect_format, format_info, source_options
from archlab.data import tables
from archlab.data.tables import table_inputs, table_split
from archlab.errors import ConfigError, DataError


def sklearn_frame(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    if name != "diabetes":
        frame["target"] = np.asarray(bunch.target_names)[bunch.target]  # classes by name, as users write them
    return frame


@pytest.fixture
def mixed(tmp_path):
    """A small table with numbers, a category, missing values, an id to drop and a class target."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({
        "id": np.arange(n),
        "height": rng.normal(170, 10, n).round(1),
        "colour": rng.choice(["red", "green", "blue"], n),
        "weight": rng.normal(70, 5, n).round(1),
        "label": np.where(np.arange(n) % 2 == 0, "yes", "no"),
    })
    frame.loc[[4, 10, 21], "height"] = np.nan
    frame.loc[[5, 9, 17], "colour"] = np.nan
    path = tmp_path / "mixed.csv"
    frame.to_csv(path, index=False)
    return path, frame


# ---------------------------------------------------------------------------------------------
# Targets from the issue: mlp against scikit-learn's LogisticRegression, regression with R^2 > 0


# The registration's defaults, as `archlab train mlp --data FILE.csv` runs them (seed 0). On breast-cancer the
# former default of two hidden layers of 64 missed 2-3 tumours of 86 where LogisticRegression misses 1; one
# layer of 100 misses 1 (scripts/repro/tables_vs_sklearn.py prints both over seeds and splits).
@pytest.mark.parametrize("name", ["wine", "breast_cancer"])
def test_mlp_reaches_logistic_regression_on_the_same_split(tmp_path, name):
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / f"{name}.csv"
    sklearn_frame(name).to_csv(path, index=False)
    data = load_data(path, target="target")
    baseline = LogisticRegression(max_iter=5000).fit(data.train["x"].numpy(), data.train["y"].numpy())
    expected = baseline.score(data.test["x"].numpy(), data.test["y"].numpy())
    got = archlab.train("mlp", data, quiet=True).metrics["test_accuracy"]
    assert got >= expected - 1e-9, \
        f"{name}: mlp test accuracy {got:.4f}, LogisticRegression {expected:.4f} ({len(data.test)} test rows)"


def test_mlp_regression_on_diabetes_explains_variance(tmp_path):
    path = tmp_path / "diabetes.csv"
    sklearn_frame("diabetes").to_csv(path, index=False)
    data = load_data(path, target="target")
    assert data.spec.preprocess["target_kind"] == "regression"
    assert data.spec.model_kwargs()["num_classes"] == 1 and data.train["y"].dtype == torch.float32
    result = archlab.train("mlp", data, epochs=10, quiet=True)
    assert result.metrics["test_r2"] > 0, result.metrics
    assert {"test_mse", "test_mae", "val_mse"} <= set(result.metrics)


def test_a_checkpoint_keeps_what_reads_new_files_and_scores_them(tmp_path):
    import archlab.jobs
    from archlab.data import DataSpec
    from archlab.engine.checkpoint import read_config
    from archlab.engine.fit import evaluate
    from archlab.engine.regression import RegressionTask
    from archlab.models.registry import create_task, load_model

    path = tmp_path / "diabetes.csv"
    frame = sklearn_frame("diabetes")
    frame.to_csv(path, index=False)
    archlab.jobs.train("mlp", load_data(path, target="target"), epochs=3, out=tmp_path / "run", quiet=True)
    config = read_config(tmp_path / "run")
    spec = DataSpec.from_dict(config["data"])
    net = load_model(tmp_path / "run")
    task = create_task(config["task"], net, spec)
    assert isinstance(task, RegressionTask)
    frame.drop(columns="target").head(5).to_csv(tmp_path / "new.csv", index=False)
    with torch.no_grad():
        predicted = task.predict(net, {"x": torch.from_numpy(table_inputs(tmp_path / "new.csv", spec))})
    assert predicted.shape == (5,) and 25 < float(predicted.mean()) < 350  # in the target's units
    scores = evaluate(net, task, table_split(path, spec))
    assert set(scores) == {"loss", "mse", "mae", "r2"}


# ---------------------------------------------------------------------------------------------
# Reading and preprocessing


def test_formats_are_registered_by_suffix(tmp_path):
    assert {"csv", "tsv", "parquet"} <= set(list_formats())
    for suffix, name in [(".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".parquet", "parquet"),
                         (".pq", "parquet")]:
        assert detect_format(tmp_path / f"t{suffix}") == name
        assert format_info(name).inputs is table_inputs


def test_csv_tsv_parquet_and_dataframe_give_the_same_dataset(tmp_path, mixed):
    path, frame = mixed
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    datasets = [load_data(path, target="label"), load_data(tmp_path / "t.tsv", target="label"),
                load_data(tmp_path / "t.parquet", target="label"), from_table(frame, "label")]
    first = datasets[0]
    for other in datasets[1:]:
        assert other.spec.preprocess == first.spec.preprocess
        for split in ("train", "val", "test"):
            torch.testing.assert_close(other[split]["x"], first[split]["x"])
            assert torch.equal(other[split]["y"], first[split]["y"])


def test_preprocessing_is_fitted_on_the_training_rows_only(mixed):
    path, frame = mixed
    part = np.resize(["train", "train", "val", "test"], len(frame))
    frame.assign(part=part).to_csv(path, index=False)
    data = load_data(path, target="label", drop=["id"], split_column="part")
    spec = data.spec
    columns = {c["name"]: c for c in spec.preprocess["columns"]}
    assert list(columns) == ["height", "colour", "weight"]  # the id dropped, the target and split apart
    assert spec.class_names == ["no", "yes"] and spec.num_classes == 2
    assert spec.preprocess["feature_names"] == ["height", "colour=blue", "colour=green", "colour=red",
                                                "colour=<missing>", "weight"]
    train = frame[part == "train"]
    height = train["height"]
    assert height.isna().any() and columns["height"]["median"] == pytest.approx(height.median())
    filled = height.fillna(height.median())  # imputed, then standardized
    assert columns["height"]["mean"] == pytest.approx(filled.mean(), rel=1e-6)
    assert columns["height"]["std"] == pytest.approx(filled.std(ddof=0), rel=1e-5)
    expected = (frame["weight"][part == "test"] - train["weight"].mean()) / train["weight"].std(ddof=0)
    torch.testing.assert_close(data.test["x"][:, 5].double(), torch.tensor(expected.to_numpy()), atol=1e-5, rtol=0)
    assert columns["colour"]["categories"] == sorted(set(train["colour"].dropna()))
    assert columns["colour"]["missing"] == bool(train["colour"].isna().any())
    onehot = data.train["x"][:, 1:5]
    assert torch.equal(onehot.sum(1), torch.ones(len(data.train)))  # exactly one category a row
    json.dumps(spec.to_dict())  # the spec goes into a checkpoint's config


def test_default_split_is_seeded_and_stratified(tmp_path):
    frame = pd.DataFrame({"x": np.arange(200.0), "y": np.repeat(["a", "b", "c", "d"], [80, 60, 40, 20])})
    data = from_table(frame, "y", seed=3)
    assert [len(data[s]) for s in ("train", "val", "test")] == [140, 30, 30]
    for split in ("train", "val", "test"):
        shares = torch.bincount(data[split]["y"], minlength=4).double() / len(data[split])
        torch.testing.assert_close(shares, torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64), atol=0.04, rtol=0)
    again, other = from_table(frame, "y", seed=3), from_table(frame, "y", seed=4)
    assert torch.equal(again.test["x"], data.test["x"]) and not torch.equal(other.test["x"], data.test["x"])


def test_split_column_and_separate_files(tmp_path, mixed):
    path, frame = mixed
    frame = frame.assign(part=np.resize(["train", "train", "val", "test"], len(frame)))
    frame.to_csv(path, index=False)
    data = load_data(path, target="label", split_column="part")
    assert [len(data[s]) for s in ("train", "val", "test")] == [30, 15, 15]
    assert "part" not in data.spec.preprocess["feature_names"]
    frame = frame.drop(columns="part")
    frame.iloc[:40].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[40:50].to_csv(tmp_path / "val.csv", index=False)
    frame.iloc[50:].to_csv(tmp_path / "test.csv", index=False)
    both = load_data(tmp_path / "train.csv", target="label", val=str(tmp_path / "val.csv"),
                     test=str(tmp_path / "test.csv"))
    assert [len(both[s]) for s in ("train", "val", "test")] == [40, 10, 10]
    assert both.spec.options["val"] == str((tmp_path / "val.csv").resolve())
    only_test = load_data(tmp_path / "train.csv", target="label", test=str(tmp_path / "test.csv"))
    assert [len(only_test[s]) for s in ("train", "val", "test")] == [34, 6, 10]  # val: 15% of the training rows
    frame.iloc[50:].astype({"weight": object}).assign(weight="?").to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match=r"test.csv: column 'weight' at line 2 holds '\?'; expected a number"):
        load_data(tmp_path / "train.csv", target="label", test=str(tmp_path / "test.csv"))


def test_spec_options_rebuild_the_same_dataset(mixed):
    path, _ = mixed
    data = load_data(path, target="label", drop=["id"], seed=2)
    rebuild = source_options(data)
    assert rebuild["source"] == str(path.resolve()) and rebuild["format"] == "csv"
    again = load_data(rebuild["source"], format=rebuild["format"], target=rebuild["target"], seed=rebuild["seed"],
                      **rebuild["options"])
    assert torch.equal(again.test["x"], data.test["x"])
    json.dumps(data.spec.options)


def test_options_typed_on_the_command_line_are_read_by_their_annotations(mixed):
    from archlab.validation import Text

    path, _ = mixed
    data = load_data(path, target="label", drop=Text('["id"]'), task=Text("classification"))
    assert data.spec.options["drop"] == ["id"] and "id" not in data.spec.preprocess["feature_names"]
    with pytest.raises(ConfigError, match="'task' parameter of data format 'csv' must be one of"):
        load_data(path, target="label", task=Text("ranking"))


def test_target_kind_auto_and_forced():
    n = 300
    x = np.linspace(0, 1, n)
    assert from_table(pd.DataFrame({"x": x, "y": x * 3.5}), "y").spec.preprocess["target_kind"] == "regression"
    ints = pd.DataFrame({"x": x, "y": np.arange(n) % 30})  # integers are classes, however many
    assert from_table(ints, "y").spec.num_classes == 30
    assert from_table(ints, "y", task="regression").spec.preprocess["target_kind"] == "regression"
    whole = pd.DataFrame({"x": x, "y": (np.arange(n) % 3).astype(float)})  # a class column read as floats
    assert from_table(whole, "y").spec.class_names == ["0", "1", "2"]
    with pytest.raises(DataError, match="task='regression' needs a numeric target"):
        from_table(pd.DataFrame({"x": x, "y": np.resize(["a", "b"], n)}), "y", task="regression")
    with pytest.raises(ConfigError, match="'task' parameter"):
        from_table(whole, "y", task="ranking")


def test_from_arrays():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    data = from_arrays(X, (X[:, 0] > 0).astype(int))
    assert data.spec.input_shape == (3,) and data.spec.num_classes == 2
    assert data.spec.preprocess["feature_names"] == ["x0", "x1", "x2"]
    assert from_arrays(X, X @ [1.0, 2.0, 3.0]).spec.preprocess["target_kind"] == "regression"
    with pytest.raises(DataError, match="2-D"):
        from_arrays(X[:, 0], X[:, 0])
    with pytest.raises(DataError, match="one target per row"):
        from_arrays(X, X[:10, 0])


# ---------------------------------------------------------------------------------------------
# New files of the training columns: predict's inputs, a labeled file to evaluate on


def test_inputs_of_a_new_file_match_the_training_preprocessing(tmp_path, mixed):
    path, frame = mixed
    data = load_data(path, target="label", drop=["id"])
    new = frame.drop(columns=["label", "id"])  # the target and the dropped column are optional
    new.to_csv(tmp_path / "new.csv", index=False)
    x = table_inputs(tmp_path / "new.csv", data.spec)
    assert x.dtype == np.float32 and x.shape == (len(frame), data.spec.input_shape[0])
    full = np.concatenate([data[s]["x"].numpy() for s in ("train", "val", "test")])
    assert sorted(map(tuple, np.round(x, 4))) == sorted(map(tuple, np.round(full, 4)))
    split = table_split(path, data.spec)
    assert torch.equal(split["y"], torch.from_numpy((frame["label"] == "yes").to_numpy().astype(np.int64)))


def test_unseen_category_is_all_zero_one_hot(tmp_path, mixed):
    path, frame = mixed
    data = load_data(path, target="label", drop=["id"])
    pd.DataFrame({"height": [170.0, None], "colour": ["purple", None], "weight": [70.0, 71.0]}).to_csv(
        tmp_path / "new.csv", index=False)
    x = table_inputs(tmp_path / "new.csv", data.spec)
    names = data.spec.preprocess["feature_names"]
    colour = [i for i, n in enumerate(names) if n.startswith("colour=")]
    assert x[0, colour].tolist() == [0.0] * len(colour)  # 'purple': no category of training
    missing = names.index("colour=<missing>")
    assert x[1, missing] == 1.0 and x[1, colour].sum() == 1.0  # missing: training had missing colours
    median = next(c for c in data.spec.preprocess["columns"] if c["name"] == "height")
    assert x[1, 0] == pytest.approx((median["median"] - median["mean"]) / median["std"], abs=1e-5)


def test_inputs_name_missing_and_extra_columns(tmp_path, mixed):
    path, frame = mixed
    data = load_data(path, target="label", drop=["id"])
    frame.drop(columns=["weight"]).assign(shoe=1).to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(DataError, match=r"new.csv: the columns differ .*missing 'weight'; extra 'shoe'"):
        table_inputs(tmp_path / "new.csv", data.spec)


def test_inputs_refuse_a_word_in_a_numeric_column(tmp_path, mixed):
    path, frame = mixed
    data = load_data(path, target="label")
    frame = frame.astype({"weight": object})
    frame.loc[4, "weight"] = "heavy"
    frame.to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(DataError, match=r"column 'weight' at line 6 holds 'heavy'; expected a number"):
        table_inputs(tmp_path / "new.csv", data.spec)


def test_evaluation_file_with_an_unknown_class_is_refused(tmp_path, mixed):
    path, frame = mixed
    data = load_data(path, target="label")
    frame.assign(label="maybe").to_csv(tmp_path / "new.csv", index=False)
    with pytest.raises(DataError, match=r"line 2 has the class 'maybe' of target 'label'"):
        table_split(tmp_path / "new.csv", data.spec)


# ---------------------------------------------------------------------------------------------
# Bad input: one line naming the file and the row or column


def write(tmp_path, text: bytes | str, name: str = "bad.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_missing_target_column_lists_the_columns(mixed):
    path, _ = mixed
    with pytest.raises(DataError, match=r"mixed.csv has no target column 'class'; its columns: id, height, colour"):
        load_data(path, target="class")
    with pytest.raises(ConfigError, match="name the target column"):
        load_data(path)
    with pytest.raises(DataError, match="no drop column 'name'"):
        load_data(path, target="label", drop=["name"])


def test_single_class_target(tmp_path):
    path = write(tmp_path, "x,y\n1,a\n2,a\n3,a\n")
    with pytest.raises(DataError, match=r"bad.csv: the target column 'y' has a single class \('a'\)"):
        load_data(path, target="y")


@pytest.mark.parametrize("text, line, fields", [("a,b,y\n1,2,p\n3,4,q\n5,6,7,8\n", 4, 4),
                                                ("a,b,y\n1,2,p\n3,4\n5,6,q\n", 3, 2),
                                                ("a,y\n1,2,p\n3,4,q\n", 2, 3)])
def test_row_with_the_wrong_number_of_fields(tmp_path, text, line, fields):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=rf"bad.csv: line {line} has {fields} fields; the header names"):
        load_data(path, target="y")


def test_an_empty_last_field_is_a_missing_value_not_a_short_row(tmp_path):
    lines = [f"{i},{'ab'[i % 2]},n,{'' if i % 5 == 0 else i}" for i in range(40)]
    path = write(tmp_path, "x,y,note,z\n" + "\n".join(lines) + '\n40,a,"two\nlines",1\n')  # a quoted line break
    data = load_data(path, target="y")
    assert data.spec.preprocess["feature_names"] == ["x", "note=n", "note=two\nlines", "z"]
    assert sum(map(len, data.splits.values())) == 41


def test_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataError, match="bad.csv is empty"):
        load_data(write(tmp_path, ""), target="y")
    with pytest.raises(DataError, match="has a header but no rows"):
        load_data(write(tmp_path, "x,y\n"), target="y")


def test_non_utf8_text(tmp_path):
    path = write(tmp_path, b"x,y\n1,caf\xe9\n2,bar\n")
    with pytest.raises(DataError, match=r"bad.csv: line 2 is not UTF-8 text \(byte 0xe9"):
        load_data(path, target="y")


def test_bad_split_column_value_and_missing_target_value(tmp_path):
    path = write(tmp_path, "x,y,part\n1,a,train\n2,b,valid\n3,a,test\n")
    with pytest.raises(DataError, match=r"split column 'part' holds 'valid' at line 3; expected one of"):
        load_data(path, target="y", split_column="part")
    path = write(tmp_path, "x,y\n1,a\n2,\n3,b\n")
    with pytest.raises(DataError, match=r"target column 'y' is missing at line 3"):
        load_data(path, target="y")


def test_unreadable_parquet_and_bad_options(tmp_path, mixed):
    with pytest.raises(DataError, match="bad.parquet: cannot be read as Parquet"):
        load_data(write(tmp_path, "not parquet", "bad.parquet"), target="y")
    path, _ = mixed
    with pytest.raises(ConfigError, match="has no option 'columns'. Valid options: drop, split_column"):
        load_data(path, target="label", columns=["x"])
    with pytest.raises(ConfigError, match="'sep' parameter"):
        load_data(path, target="label", sep=";;")


# ---------------------------------------------------------------------------------------------
# The fitting and applying of numeric columns, against the plain numpy formulations


def _median_cases(rng):
    n = 100_003  # above the size where the median is bracketed by a sample
    yield "normal", rng.normal(size=n)
    yield "even count", rng.normal(size=n + 1)
    yield "ties", rng.integers(0, 3, n).astype(float)
    yield "sorted", np.sort(rng.normal(size=n))
    yield "heavy tails", rng.standard_cauchy(n)
    yield "a third missing", np.where(rng.random(n) < 0.3, np.nan, rng.exponential(size=n))
    yield "small", rng.normal(size=11)
    # the strided sample sees only the large values: the bracket misses, and all values are partitioned
    yield "sample misses", np.where(np.arange(n) % (n // tables.SELECT_SAMPLE) == 0, 1e6, rng.normal(size=n))


@pytest.mark.parametrize("case", range(8))
def test_median_of_is_numpys_median_of_the_values_present(case):
    name, values = list(_median_cases(np.random.default_rng(case)))[case]
    values = values.astype(np.float32)
    present = values[~np.isnan(values)]
    got, expected = tables.median_of(values, len(present)), float(np.median(present))
    assert got == expected, name
    if name in ("normal", "ties", "heavy tails"):
        assert tables._bracketed(values, [(len(present) - 1) // 2, len(present) // 2]) is not None
    if name == "sample misses":
        assert tables._bracketed(values, [(len(present) - 1) // 2, len(present) // 2]) is None


def test_numeric_statistics_and_inputs_match_numpy_on_a_large_table():
    rng = np.random.default_rng(0)
    n = 150_000  # several chunks of every kind
    frame = pd.DataFrame({"a": rng.normal(5, 3, n), "b": rng.integers(0, 100, n), "c": rng.exponential(2, n),
                          "part": rng.choice(["train", "val", "test"], n, p=[0.7, 0.15, 0.15]),
                          "y": rng.integers(0, 3, n)})
    frame.loc[rng.random(n) < 0.1, "c"] = np.nan
    data = from_table(frame, "y", split_column="part")
    columns = data.spec.preprocess["columns"]
    raw = frame[["a", "b", "c"]].to_numpy(np.float64).astype(np.float32)  # as the inputs are made: float32
    train = raw[frame["part"].to_numpy() == "train"]
    for j, column in enumerate(columns):
        values = train[:, j]
        median = float(np.median(values[~np.isnan(values)]))
        filled = np.where(np.isnan(values), np.float32(median), values)
        assert column["median"] == median
        assert column["mean"] == float(filled.mean(dtype=np.float64))
        assert column["std"] == pytest.approx(float(filled.std(dtype=np.float64)), rel=1e-12)
    stats = {k: np.array([c[k] for c in columns], np.float32) for k in ("median", "mean", "std")}
    for split in ("train", "val", "test"):
        rows = raw[frame["part"].to_numpy() == split]
        expected = (np.where(np.isnan(rows), stats["median"], rows) - stats["mean"]) / stats["std"]
        x = data[split]["x"]
        assert x.is_contiguous() and torch.equal(x, torch.from_numpy(expected))


def plain_split(y: np.ndarray | None, n: int, seed: int) -> dict[str, np.ndarray]:
    """The default split's plain formulation: the rows in one seeded permutation, stably sorted by class when
    `y` is given, the first 15% of each class (of all rows without `y`) to val, the next 15% to test, each
    part sorted."""
    by_class = np.random.default_rng(seed).permutation(n)
    groups = [by_class]
    if y is not None:
        by_class = by_class[np.argsort(y[by_class], kind="stable")]
        groups = np.split(by_class, np.flatnonzero(np.diff(y[by_class])) + 1)
    parts = {"val": [], "test": [], "train": []}
    for group in groups:
        val, test = (int(np.floor(len(group) * 0.15 + 0.5)) for _ in range(2))
        parts["val"].append(group[:val])
        parts["test"].append(group[val:val + test])
        parts["train"].append(group[val + test:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def test_the_stratified_split_keeps_its_rows():
    """The split of `from_table` is the plain formulation's (`plain_split`)."""
    for seed, (n, weights) in enumerate([(40, [0.5, 0.5]), (1001, [0.7, 0.2, 0.1]), (5000, [0.01, 0.99]),
                                         (20_000, [0.25] * 4)]):
        y = np.random.default_rng(seed).choice(len(weights), n, p=weights)
        frame = pd.DataFrame({"row": np.arange(n, dtype=float), "y": y})
        data = from_table(frame, "y", seed=seed)
        # the feature is the row number, standardized: its order recovers the rows of each split
        for split, rows in plain_split(y, n, seed).items():
            mean, std = (data.spec.preprocess["columns"][0][k] for k in ("mean", "std"))
            got = np.rint(data[split]["x"][:, 0].double().numpy() * std + mean).astype(int)
            assert np.array_equal(got, rows), (seed, split)


def _reference_inputs(frame: pd.DataFrame, columns: list[dict], rows: np.ndarray) -> np.ndarray:
    """The model inputs of `frame`'s `rows` as the module docstring defines them, column by column: a number
    in float32, a missing one replaced by the training median, minus the mean, over the standard deviation;
    a category one-hot (a missing value its own feature when training had missing values)."""
    features = []
    for column in columns:
        values = frame[column["name"]].iloc[rows]
        if column["type"] == "numeric":
            x = values.to_numpy(np.float64).astype(np.float32)
            x = np.where(np.isnan(x), np.float32(column["median"]), x)
            features.append(((x - np.float32(column["mean"])) / np.float32(column["std"]))[:, None])
            continue
        text = values.astype(str).to_numpy()
        absent = values.isna().to_numpy()
        one_hot = [(text == c) & ~absent for c in column["categories"]] + ([absent] if column["missing"] else [])
        features.append(np.stack(one_hot, 1).astype(np.float32))
    return np.concatenate(features, 1)


def _varied_table(case: int) -> tuple[pd.DataFrame, dict]:
    """A table of `case`'s kind: sizes around the chunks and the bracketed median, missing values, integers,
    constant and empty columns, categories, and each way of giving the splits."""
    rng = np.random.default_rng(case)
    n = [1_000, tables.CHUNK - 1, 3 * tables.CHUNK + 17, tables.BRACKETED_FROM + 2 * tables.CHUNK + 5][case % 4]
    nan = rng.exponential(2, n)
    nan[rng.random(n) < 0.3] = np.nan
    ints = rng.integers(-50, 50, n)
    # every other case all numbers as floats: pandas keeps them as rows of one array, copied a chunk in one call
    frame = pd.DataFrame({"normal": rng.normal(3, 2, n), "nan": nan, "ints": ints if case % 2 else ints * 1.0,
                          "constant": np.full(n, 7.25), "empty": np.full(n, np.nan),
                          "sorted": np.sort(rng.standard_cauchy(n))})
    if case % 3 == 1:
        frame["colour"] = rng.choice(["red", "green", "blue"], n).astype(object)
        frame.loc[rng.random(n) < 0.05, "colour"] = np.nan
    classes = [np.array([0, 1, 2]), np.array([-5, 3, 10**12]), np.array([2.0, 5.0, 7.0]), None][case % 4]
    frame["y"] = rng.normal(100, 15, n) if classes is None else classes[rng.choice(3, n, p=[0.6, 0.3, 0.1])]
    options = {}
    if case % 4 == 2:
        frame["part"] = rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2])
        options["split_column"] = "part"
    if case % 4 == 3:  # val and test tables: the chunks of rows past the training table's are all val or test
        options["val"], options["test"] = frame.iloc[n // 2:3 * n // 4], frame.iloc[3 * n // 4:]
    return frame, options


@pytest.mark.parametrize("case", range(8))
def test_inputs_targets_and_splits_match_the_plain_reference(case):
    """Bit for bit, the inputs are `_reference_inputs` with the fitted statistics, which are numpy's median and
    mean of the training rows (in float32, as the inputs are made), the splits `plain_split`'s or the split
    column's, and the classes the sorted distinct targets."""
    frame, options = _varied_table(case)
    data = from_table(frame.iloc[:len(frame) // 2] if "val" in options else frame, "y", seed=case, **options)
    preprocess = data.spec.preprocess
    y = frame["y"].to_numpy()
    classes, codes = np.unique(y, return_inverse=True)
    regression = preprocess["target_kind"] == "regression"
    if "split_column" in options:
        parts = {name: np.flatnonzero(frame["part"].to_numpy() == name) for name in ("train", "val", "test")}
    elif "val" in options:
        n = len(frame)
        parts = dict(zip(("train", "val", "test"), np.split(np.arange(n), [n // 2, 3 * n // 4])))
    else:
        parts = plain_split(None if regression else codes, len(frame), case)
    train = parts["train"]
    for column in preprocess["columns"]:
        if column["type"] == "numeric":
            values = frame[column["name"]].to_numpy(np.float64)[train].astype(np.float32)
            present = values[~np.isnan(values)]
            median = float(np.median(present)) if len(present) else 0.0
            assert column["median"] == median
            filled = np.where(np.isnan(values), np.float32(median), values)
            assert column["mean"] == float(filled.mean(dtype=np.float64))
    if regression:
        assert preprocess["target_mean"] == float(y[train].mean())
    else:
        assert data.spec.class_names == [tables._class_name(c) for c in classes]
    for split, rows in parts.items():
        x = data[split]["x"]
        assert x.is_contiguous() and torch.equal(x, torch.from_numpy(_reference_inputs(frame, preprocess["columns"],
                                                                                         rows))), split
        expected_y = y[rows].astype(np.float32) if regression else codes[rows]
        assert torch.equal(data[split]["y"], torch.from_numpy(expected_y)), split


def test_float_columns_of_one_array_are_read_as_one_view():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "c": [5.0, 6.0], "n": [1, 2]})
    arrays = tables.numeric_arrays(frame, ["a", "b", "c", "n"], "t", str)
    matrix = tables._rows_of_one_array(arrays[:3])
    assert matrix is not None and np.shares_memory(matrix, arrays[0]) and np.array_equal(matrix, np.stack(arrays[:3]))
    assert np.array_equal(tables._rows_of_one_array(arrays[:3:2]), np.stack(arrays[:3:2]))
    for apart in ([arrays[0], arrays[2], arrays[1]], [arrays[0], arrays[1], arrays[3]], [arrays[0], arrays[0]]):
        assert tables._rows_of_one_array(apart) is None
