"""Tables of the user's own: CSV, TSV and Parquet files, or a pandas DataFrame from Python.

`from_table(source, target)` turns a table into the `Dataset` every tabular model trains on:

- a feature column is **numeric** when pandas reads it as numbers (or booleans), else **categorical**
  (its values as text);
- preprocessing is fitted on the training split only: a missing number becomes the column's training
  median, then every numeric column is standardized with its training mean and standard deviation
  (``(x - mean) / std``, a constant column keeps ``std = 1``); a categorical column becomes one-hot
  features over its training categories, plus one for a missing value when training had missing values.
  A category (or a missing value) that training never saw becomes all-zero one-hot features: the model
  sees none of the column's categories, rather than a crash;
- the target is a class (text, booleans, integers, or floats holding at most `MAX_FLOAT_CLASSES` whole
  numbers: **classification**) or a number (other floats: **regression**, with the target standardized
  by its training mean and standard deviation, recorded for the task to undo); ``task`` forces one.
  A row without a target is refused (by its line), never dropped silently;
- the splits come from a ``split_column`` (values ``train``, ``val``, ``test``), or from separate
  ``val`` and ``test`` files of the same columns, else from a seeded 70/15/15 split of the rows
  (for classification, of each class's rows, rounded: a class of one row stays in training); a split
  neither given nor in the column is carved out of the training rows (15% of them);
- bad input is refused with one `DataError` line naming the file and the line (a text table's header
  is line 1), row or column: a row with the wrong number of fields, text that is not UTF-8, an empty
  file, a missing column (the columns there are are listed), a single class, a word in a numeric
  column of a new file.

Everything fitted is in ``spec.preprocess`` (JSON), so `table_inputs` reads a new file of the same
columns for predict, and `table_split` a new labeled one for evaluation.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch


if TYPE_CHECKING:  # pandas is imported when a table is read, not with the package
    import pandas as pd

from ..errors import ConfigError, DataError
from ..validation import check_choice, check_int, fail
from .base import Dataset, DataSpec, TensorSplit, unknown_class
from .sources import register_format

SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
MAX_FLOAT_CLASSES = 20  # a float target with more distinct values than this (or any fraction) is a regression one
MAX_CATEGORIES = 1000  # a categorical column with more training categories is refused: leave it out with `drop`
MISSING = "<missing>"  # the name of a categorical column's missing-value feature

FORMAT_SUFFIXES = {"csv": (".csv",), "tsv": (".tsv", ".tab"), "parquet": (".parquet", ".pq")}
TaskKind = Literal["auto", "classification", "regression"]


# ---------------------------------------------------------------------------------------------
# Reading a file into a DataFrame, with bad input refused by file and line


def table_format(path: Path) -> str:
    """The table format of `path` by its suffix; CSV for any other suffix."""
    suffix = path.suffix.lower()
    return next((name for name, suffixes in FORMAT_SUFFIXES.items() if suffix in suffixes), "csv")


def _separator(fmt: str, sep: str | None) -> str:
    if sep is None:
        return "\t" if fmt == "tsv" else ","
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\"\r\n":
        raise fail("from_table", "sep", "one character other than a quote or a line break", sep)
    return sep


def _not_utf8(path: Path) -> DataError:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return DataError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
                         f"{err.start}); save the file as UTF-8.")
    return DataError(f"{path}: cannot be decoded as UTF-8 text; save the file as UTF-8.")


def _check_field_counts(path: Path, sep: str, width: int) -> None:
    """Refuse the first row whose field count differs from the header's `width`, by its line
    (pyarrow's parser reports short rows too, which pandas' fills with missing values). The file is
    streamed, every field read as text, so that nothing but the row's length can stop the scan."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad = []

    def first_bad(row) -> str:
        bad.append(row)
        return "error"

    names = [f"column{j}" for j in range(width)]
    try:  # one thread, so that the parser knows each row's number (the header is row 1)
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(use_threads=False, column_names=names,
                                                                     skip_rows=1),
                                parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True,
                                                                 invalid_row_handler=first_bad),
                                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))
        for _ in reader:
            pass
    except pa.ArrowInvalid:
        pass
    if bad:
        row = bad[0]
        raise DataError(f"{path}: line {row.number} has {row.actual_columns} fields; the header names "
                        f"{row.expected_columns}. Got: {row.text[:80]!r}.")


def _read_csv(path: Path, sep: str, dtype: dict[str, Any] | None = None) -> pd.DataFrame:
    import pandas as pd
    try:
        with warnings.catch_warnings():
            # index_col=False: rows longer than the header are an error, not a silent index column
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=sep, dtype=dtype, index_col=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: expected a header row naming the columns, then one row per "
                        "example.") from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except pd.errors.ParserWarning:
        _check_field_counts(path, sep, len(pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8").columns))
        raise DataError(f"{path}: the rows have more fields than the header names.") from None
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found:
            expected, line, saw = found.groups()
            raise DataError(f"{path}: line {line} has {saw} fields; the header names {expected}.") from None
        raise DataError(f"{path}: cannot be read as a table ({str(err).strip().splitlines()[0]}).") from None
    if len(frame.columns) and frame.iloc[:, -1].isna().any():
        _check_field_counts(path, sep, len(frame.columns))  # a short row leaves the last column missing
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd
    try:
        return pd.read_parquet(path)
    except ImportError as err:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'archlab[parquet]'); {err}") from None
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: cannot be read as Parquet ({first}).") from None


def read_frame(path: Path, fmt: str, sep: str | None = None, dtype: dict[str, Any] | None = None) -> pd.DataFrame:
    """The table in `path` (format `fmt`: csv, tsv or parquet) with its column names as text."""
    if not path.is_file():
        raise DataError(f"table file not found: {path}.")
    if fmt == "parquet":
        frame = _read_parquet(path)
    else:
        frame = _read_csv(path, _separator(fmt, sep), dtype)
    return _named(frame, str(path))


def _named(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    names = [str(c) for c in frame.columns]
    if len(names) == 0:
        raise DataError(f"{where} is empty: it has no columns.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"{where}: the column names {duplicates} appear more than once.")
    if list(frame.columns) != names:
        frame = frame.set_axis(names, axis=1)
    return frame


# ---------------------------------------------------------------------------------------------
# The target: classes or numbers


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd
    return pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)


def _class_name(value: Any) -> str:
    """A class's name: whole floats print as integers (a label column read with missing values is float)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _class_names_of(series: pd.Series) -> list[str]:
    if _is_numeric(series):
        return [_class_name(v) for v in _distinct(series.to_numpy())[0]]
    return sorted(series.astype(str).unique().tolist())


def _distinct(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``np.unique(raw)``, the position of each of `raw`'s values in it). Integers spanning a range no
    wider than their count are counted (`np.bincount`) rather than hashed and searched."""
    if raw.dtype.kind in "iu" and len(raw):
        low, high = int(raw.min()), int(raw.max())
        if high - low <= max(len(raw), 1024) and high <= np.iinfo(np.int64).max:
            offsets = raw.astype(np.int64, copy=False) - low
            present = np.bincount(offsets, minlength=high - low + 1) > 0
            values = (np.flatnonzero(present) + low).astype(raw.dtype)
            return values, (np.cumsum(present) - 1)[offsets]
    values = np.unique(raw)
    return values, np.searchsorted(values, raw)  # unique's own inverse sorts all the rows


def target_kind(series: pd.Series, task: str, where: str) -> str:
    """``classification`` or ``regression`` for a target column (see the module docstring)."""
    import pandas as pd
    numeric = _is_numeric(series) and not pd.api.types.is_bool_dtype(series.dtype)
    if task == "regression":
        if not numeric:
            raise DataError(f"{where}: task='regression' needs a numeric target; column '{series.name}' holds "
                            f"{series.dtype} values such as {series.iloc[0]!r}.")
        return "regression"
    if task == "classification" or not numeric or pd.api.types.is_integer_dtype(series.dtype):
        return "classification"
    values = series.to_numpy(dtype=np.float64)
    whole = bool(np.all(values == np.round(values)))
    return "classification" if whole and len(np.unique(values)) <= MAX_FLOAT_CLASSES else "regression"


def _check_target_present(series: pd.Series, where: str, row_name) -> None:
    missing = np.flatnonzero(series.isna().to_numpy())
    if len(missing):
        raise DataError(f"{where}: the target column '{series.name}' is missing at {row_name(missing[0])} "
                        f"({len(missing)} row(s) in all); fill or remove those rows.")


def encode_classes(series: pd.Series, class_names: list[str], where: str, row_name) -> np.ndarray:
    """Class indices of `series` in `class_names`; a class not among them is refused."""
    import pandas as pd
    if _is_numeric(series):  # name each distinct value once, not each row
        values, inverse = _distinct(series.to_numpy())
        lookup = pd.Categorical([_class_name(v) for v in values], categories=class_names).codes.astype(np.int64)
        codes = lookup[inverse]
    else:
        codes = pd.Categorical(series.astype(str), categories=class_names).codes.astype(np.int64)
    unknown = np.flatnonzero(codes < 0)
    if len(unknown):
        raise unknown_class(f"{where}: {row_name(unknown[0])}", series.iloc[unknown[0]], series.name, class_names)
    return codes


# ---------------------------------------------------------------------------------------------
# Features: fitted on the training rows, applied to any rows of the same columns


def numeric_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
    return [n for n in features if _is_numeric(frame[n])]


def numeric_arrays(frame: pd.DataFrame, names: list[str], where: str, row_name) -> list[np.ndarray]:
    """The numeric columns `names` of `frame`, each as a float64 array (a view of a float column), NaN where
    missing; a value that is not a number is refused by its column and row."""
    import pandas as pd
    arrays = []
    for name in names:
        column = frame[name]
        if not _is_numeric(column):
            numbers = pd.to_numeric(column, errors="coerce")
            bad = np.flatnonzero((numbers.isna() & column.notna()).to_numpy())
            if len(bad):
                raise DataError(f"{where}: column '{name}' at {row_name(bad[0])} holds {column.iloc[bad[0]]!r}; "
                                "expected a number, as in training.")
            column = numbers
        arrays.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
    return arrays


# Work is done a chunk at a time so that its temporaries stay in cache: CHUNK consecutive rows of every numeric
# column (float32; 1024 transposes faster than 4096, see benchmarks/NOTES.md), or COLUMN_CHUNK values of one
# column (float64)
CHUNK = 1024
COLUMN_CHUNK = 65536


def _gathered(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``array[index]`` as float32, gathered a chunk at a time."""
    values = np.empty(len(index), np.float32)
    for start in range(0, len(index), COLUMN_CHUNK):
        values[start:start + COLUMN_CHUNK] = array[index[start:start + COLUMN_CHUNK]]
    return values


def in_threads(function, count: int) -> list:
    """``[function(j) for j in range(count)]`` in threads: numpy's copies, selections and reductions
    release the GIL, so columns are processed in parallel, as pandas reads them."""
    with ThreadPoolExecutor(max_workers=max(1, min(count, os.cpu_count() or 1))) as pool:
        return list(pool.map(function, range(count)))


def fit_columns(frame: pd.DataFrame, features: list[str], train: np.ndarray, where: str,
                arrays: list[np.ndarray]) -> list[dict[str, Any]]:
    """The preprocessing of each feature column, fitted on the rows `train` of `frame`; `arrays` holds
    its `numeric_columns` as `numeric_arrays` gives them."""
    import pandas as pd
    stats = dict(zip(numeric_columns(frame, features),
                     in_threads(lambda j: _numeric_stats(_gathered(arrays[j], train)), len(arrays))))
    columns = []
    for name in features:
        if name in stats:
            median, mean, std = stats[name]
            columns.append({"name": name, "type": "numeric", "median": median, "mean": mean, "std": std})
            continue
        column = frame[name].iloc[train]
        kind = column.dtype
        if pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_timedelta64_dtype(kind):
            raise DataError(f"{where}: column '{name}' holds dates or durations ({kind}); convert it to numbers "
                            f"or leave it out with drop=['{name}'].")
        categories = sorted(column[column.notna()].astype(str).unique().tolist())
        if len(categories) > MAX_CATEGORIES:
            raise DataError(f"{where}: column '{name}' has {len(categories)} distinct text values in the training "
                            f"rows (at most {MAX_CATEGORIES} categories are one-hot encoded); if it is an "
                            f"identifier or free text, leave it out with drop=['{name}'].")
        columns.append({"name": name, "type": "categorical", "categories": categories,
                        "missing": bool(column.isna().any())})
    return columns


def _numeric_stats(values: np.ndarray) -> tuple[float, float, float]:
    """(median, mean, std) of one column's values: the median of those present (0 for none), then the
    mean and standard deviation once missing values are imputed with it (a constant column's std is 1)."""
    # in float64: a float32 sum of a million values loses digits; a NaN sum is how a missing value shows
    mean = float(values.mean(dtype=np.float64))
    missing = np.isnan(values) if math.isnan(mean) else None
    count = len(values) if missing is None else len(values) - int(np.count_nonzero(missing))
    median = median_of(values, count) if count else 0.0
    if missing is not None and count < len(values):
        values = np.where(missing, np.float32(median), values)
        mean = float(values.mean(dtype=np.float64))
    std = _spread(values, mean)
    return median, mean, std if std > 0 else 1.0


def _spread(values: np.ndarray, mean: float) -> float:
    """The standard deviation ``sqrt(mean((x - mean)^2))`` of float32 `values` about their `mean`, in
    float64 a chunk at a time (``values.std(dtype=float64)`` makes a float64 copy of them all)."""
    buffer = np.empty(min(len(values), COLUMN_CHUNK))
    total = 0.0
    for start in range(0, len(values), len(buffer)):
        part = buffer[:len(values) - start]
        np.subtract(values[start:start + len(buffer)], mean, out=part, dtype=np.float64)
        total += float(np.square(part, out=part).sum())  # not np.dot: BLAS would start threads of its own
    return math.sqrt(total / len(values))


# values sampled to bracket the median: its rank is within two hundredths of the middle, so that about 4% of
# the values are picked out and partitioned (copying them out costs more the more there are)
SELECT_SAMPLE = 16384
BRACKETED_FROM = 65536  # a median of more values is bracketed by a sample; fewer are partitioned in a millisecond


def median_of(values: np.ndarray, count: int) -> float:
    """``np.median`` of the `count` values of `values` that are not NaN, without sorting them all: a sample
    brackets the middle ranks, and only the values in the bracket are partitioned (all of them when the
    sample misses)."""
    ranks = [(count - 1) // 2, count // 2]  # the middle one, or the middle two
    middle = _bracketed(values, ranks) if count > BRACKETED_FROM else None
    if middle is None:
        present = values[~np.isnan(values)] if count < len(values) else values
        middle = np.partition(present, ranks)[ranks]
    # the mean of the middle one (or two) in the values' own precision, as np.median takes it
    return float(np.mean(middle[:1] if count % 2 else middle))


def _bracketed(values: np.ndarray, ranks: list[int]) -> np.ndarray | None:
    """The values of `ranks` among those of `values` that are not NaN, partitioning only those between two
    values of a strided sample; None when the ranks fall outside them."""
    sample = np.sort(values[::max(1, len(values) // SELECT_SAMPLE)])  # NaN sort last
    sample = sample[:len(sample) - int(np.count_nonzero(np.isnan(sample)))]
    if len(sample) < SELECT_SAMPLE // 4:
        return None
    margin = 5 * 0.5 / math.sqrt(len(sample))  # five standard deviations of a sampled median's rank
    low = sample[max(0, int(len(sample) * (0.5 - margin)))]
    high = sample[min(len(sample) - 1, int(len(sample) * (0.5 + margin)))]
    below = int(np.count_nonzero(values < low))  # NaN compare false: neither below nor inside
    inside = values[(values >= low) & (values <= high)]
    if not (below <= ranks[0] and ranks[-1] < below + len(inside)):
        return None
    kth = [r - below for r in ranks]
    return np.partition(inside, kth)[kth]


def feature_names(columns: list[dict[str, Any]]) -> list[str]:
    """One name per model input: the column's, or ``column=category`` for a one-hot feature."""
    names = []
    for column in columns:
        if column["type"] == "numeric":
            names.append(column["name"])
        else:
            names += [f"{column['name']}={c}" for c in column["categories"]]
            if column["missing"]:
                names.append(f"{column['name']}={MISSING}")
    return names


def transform(frame: pd.DataFrame, columns: list[dict[str, Any]], where: str, row_name) -> np.ndarray:
    """Model inputs ``(N, features)`` float32 of all of `frame`'s rows, with the fitted `columns`."""
    return transform_parts(frame, columns, where, row_name, {"rows": np.arange(len(frame))})["rows"]


def transform_parts(frame: pd.DataFrame, columns: list[dict[str, Any]], where: str, row_name,
                    parts: dict[str, np.ndarray], arrays: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Model inputs ``(N, features)`` float32 of each part's rows of `frame` (sorted row indices, as the
    splits are), with the fitted `columns`. `arrays`: the numeric columns of `frame` as `numeric_arrays`
    gives them (read when None)."""
    import pandas as pd
    numeric = [c for c in columns if c["type"] == "numeric"]
    if arrays is None:
        arrays = numeric_arrays(frame, [c["name"] for c in numeric], where, row_name)
    standardized = _standardized(arrays, parts, *(np.array([c[k] for c in numeric], np.float32)[:, None]
                                                  for k in ("median", "mean", "std")))
    if len(numeric) == len(columns):
        return standardized
    xs = {}
    for name, index in parts.items():
        x = new_rows(len(index), len(feature_names(columns)))
        x.fill(0)
        position = 0
        numeric_positions = []
        for column in columns:
            if column["type"] == "numeric":
                numeric_positions.append(position)
                position += 1
                continue
            values = frame[column["name"]].iloc[index]
            codes = pd.Categorical(values.astype(str), categories=column["categories"]).codes.astype(np.int64)
            codes[values.isna().to_numpy()] = len(column["categories"]) if column["missing"] else -1
            seen = np.flatnonzero(codes >= 0)  # unseen categories (code -1) stay all zero
            x[seen, position + codes[seen]] = 1.0
            position += len(column["categories"]) + column["missing"]
        x[:, numeric_positions] = standardized[name]
        xs[name] = x
    return xs


def new_rows(count: int, width: int) -> np.ndarray:
    """An uninitialized float32 ``(count, width)`` array in memory from torch's allocator, for model inputs:
    numpy asks for transparent huge pages for a large array, and on the machines measured a fresh one costs
    several times more system time to fault in than plain pages."""
    return torch.empty((count, width), dtype=torch.float32).numpy()


def _standardized(arrays: list[np.ndarray], parts: dict[str, np.ndarray], median: np.ndarray, mean: np.ndarray,
                  std: np.ndarray) -> dict[str, np.ndarray]:
    """``(x - mean) / std`` of each part's rows (sorted row indices) of the columns `arrays`, missing values
    imputed with the median, as C-contiguous ``(N, k)`` float32 arrays so that a batch gathers whole
    examples. The rows are read once, a chunk of consecutive rows at a time (a part's rows picked out of
    column-major data touch nearly every cache line of it, whatever their share): each chunk is copied,
    standardized and transposed in cache, then its rows go to their parts, in threads."""
    xs = {name: new_rows(len(index), len(arrays)) for name, index in parts.items()}
    size = len(arrays[0]) if arrays else 0
    starts = np.arange(0, size, CHUNK)
    # part `name` holds rows parts[name][bounds[name][i]:bounds[name][i + 1]] of chunk i
    bounds = {name: np.searchsorted(index, np.append(starts, size)) for name, index in parts.items()}
    chunks = iter(range(len(starts)))  # shared by the threads: next() is atomic
    matrix = _rows_of_one_array(arrays)

    def work(_) -> None:
        # one block for all of a thread's chunks: a fresh one per chunk costs page faults
        # the block's rows 64 bytes longer than CHUNK values: rows a multiple of 4 KiB apart share cache sets,
        # and the transposed copy, which reads one value of each row in turn, runs up to half slower
        block = np.empty((len(arrays), CHUNK + 16), np.float32)
        missing = np.empty((len(arrays), CHUNK), bool)
        rows = np.empty((CHUNK, len(arrays)), np.float32)
        for i in chunks:
            start, stop = int(starts[i]), min(size, int(starts[i]) + CHUNK)
            wanted = [(name, int(b[i]), int(b[i + 1])) for name, b in bounds.items() if b[i] < b[i + 1]]
            if not wanted:
                continue
            part, absent = block[:, :stop - start], missing[:, :stop - start]  # (k, chunk)
            if matrix is not None:
                part[:] = matrix[:, start:stop]
            else:
                for j, array in enumerate(arrays):
                    part[j] = array[start:stop]
            if np.isnan(part, out=absent).any():
                np.copyto(part, median, where=absent)
            part -= mean
            part /= std
            transposed = None
            for name, low, high in wanted:
                if high - low == stop - start:  # every row of the chunk (the rows are distinct and sorted)
                    xs[name][low:high] = part.T
                    continue
                if transposed is None:
                    transposed = rows[:stop - start]
                    transposed[:] = part.T
                np.take(transposed, parts[name][low:high] - start, axis=0, out=xs[name][low:high], mode="clip")

    in_threads(work, min(os.cpu_count() or 1, len(starts)))
    return xs


def _rows_of_one_array(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The columns `arrays` as one ``(k, N)`` view when they are equally spaced rows of one 2-D array, as
    pandas keeps a table's float columns, else None: a chunk of them is then copied in one call, not k."""
    base = arrays[0].base if arrays else None
    if not isinstance(base, np.ndarray) or base.ndim != 2 or base.shape[1] != len(arrays[0]) or \
            any(a.base is not base or a.dtype != base.dtype or a.strides != base.strides[1:] for a in arrays):
        return None
    offsets = [a.__array_interface__["data"][0] - base.__array_interface__["data"][0] for a in arrays]
    rows = [offset // base.strides[0] for offset in offsets]
    step = rows[1] - rows[0] if len(rows) > 1 else 1
    if step <= 0 or any(offset % base.strides[0] for offset in offsets) or \
            rows != list(range(rows[0], rows[0] + step * len(rows), step)):
        return None
    return base[rows[0]:rows[-1] + 1:step]


# ---------------------------------------------------------------------------------------------
# Splits


def random_parts(index: np.ndarray, fractions: dict[str, float], y: np.ndarray | None, seed: int
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`index` split at random, fixed by `seed`, into the parts named in `fractions` (each that share
    of the rows, rounded, of each class of `y` when given) and the rest, each sorted."""
    shuffled = np.random.default_rng(seed).permutation(index)
    if y is None or len(index) == 0:
        groups = [shuffled]
    else:  # a stable sort by class keeps each class's rows in their random order
        classes = y[shuffled]
        if classes.dtype.kind in "iu" and 0 <= classes.min() and classes.max() <= np.iinfo(np.int16).max:
            classes = classes.astype(np.int16)  # class indices: numpy's stable sort of 16-bit integers is a radix sort
        order = np.argsort(classes, kind="stable")
        by_class, classes = shuffled[order], classes[order]
        groups = np.split(by_class, np.flatnonzero(classes[1:] != classes[:-1]) + 1)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fractions}
    rest = []
    for group in groups:
        start = 0
        for name, fraction in fractions.items():
            count = int(np.floor(len(group) * fraction + 0.5))
            parts[name].append(group[start:start + count])
            start += count
        rest.append(group[start:])
    rest_rows, *part_rows = _sorted_each([np.concatenate(rest), *(np.concatenate(p) for p in parts.values())],
                                         int(index.max()) + 1 if len(index) else 0)
    return rest_rows, dict(zip(parts, part_rows))


def _sorted_each(pieces: list[np.ndarray], size: int) -> list[np.ndarray]:
    """``np.sort`` of each of `pieces`, disjoint sets of row indices below `size`, by marking each row with
    its piece and listing each piece's marks in order: passes over the rows rather than sorts."""
    owner = np.full(size, -1, np.int8 if len(pieces) < 128 else np.int64)
    for number, piece in enumerate(pieces):
        owner[piece] = number
    return [np.flatnonzero(owner == number).astype(piece.dtype, copy=False) for number, piece in enumerate(pieces)]


def _split_column_parts(values: pd.Series, where: str, row_name) -> dict[str, np.ndarray]:
    text = values.astype(str).str.strip().str.lower()
    bad = np.flatnonzero(~text.isin(SPLITS).to_numpy() | values.isna().to_numpy())
    if len(bad):
        raise DataError(f"{where}: the split column '{values.name}' holds {values.iloc[bad[0]]!r} at "
                        f"{row_name(bad[0])}; expected one of {', '.join(SPLITS)}.")
    return {name: np.flatnonzero((text == name).to_numpy()) for name in SPLITS}


def _row_namer(where_kind: str):
    """How a 0-based data row is named in messages: its line in a text file (the header is line 1)."""
    if where_kind == "text":
        return lambda i: f"line {int(i) + 2}"
    return lambda i: f"row {int(i) + 1}"


def _check_columns(frame: pd.DataFrame, expected: list[str], where: str, optional: Sequence[str] = ()) -> None:
    """Refuse a table whose columns differ from `expected` (those in `optional` may be absent or present)."""
    have = list(frame.columns)
    missing = [c for c in expected if c not in have]
    extra = [c for c in have if c not in expected and c not in optional]
    if missing or extra:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"extra {', '.join(map(repr, extra))}"] if extra else [])
        raise DataError(f"{where}: the columns differ from the training table's: {'; '.join(parts)}. "
                        f"Expected: {', '.join(expected)}.")


# ---------------------------------------------------------------------------------------------
# The public entry points


def _load(source, fmt: str | None, sep: str | None) -> tuple[pd.DataFrame, str, str]:
    """(frame, where, row kind) of a path or a DataFrame."""
    import pandas as pd
    if isinstance(source, pd.DataFrame):
        return _named(source.copy(), "the DataFrame"), "the DataFrame", "frame"
    path = Path(source)
    fmt = fmt or table_format(path)
    return read_frame(path, fmt, sep), str(path), "frame" if fmt == "parquet" else "text"


def from_table(source: str | os.PathLike | pd.DataFrame, target: str | None = None, *, drop: Sequence[str] = (),
               split_column: str | None = None, val: str | os.PathLike | pd.DataFrame | None = None,
               test: str | os.PathLike | pd.DataFrame | None = None, seed: int = 0, task: TaskKind = "auto",
               sep: str | None = None, format: str | None = None) -> Dataset:
    """A `Dataset` of a CSV, TSV or Parquet table, or of a pandas DataFrame (see the module docstring).

    `target` names the label or value column; `drop` names columns to leave out (an id); `split_column`
    names a column of ``train``/``val``/``test``; `val` and `test` are tables of the same columns; `task`
    is ``auto``, ``classification`` or ``regression``; `sep` is the field separator of a text table
    (``,`` for CSV, a tab for TSV by default); `format` (csv, tsv, parquet) overrides the file's suffix.
    """
    import pandas as pd
    check_choice("from_table", "task", task, ("auto", "classification", "regression"))
    check_int("from_table", "seed", seed)
    if format is not None:
        check_choice("from_table", "format", format, tuple(FORMAT_SUFFIXES))
    if isinstance(drop, str) or not all(isinstance(d, str) for d in drop):
        raise fail("from_table", "drop", "a list of column names", drop)
    if split_column is not None and (val is not None or test is not None):
        raise ConfigError("give the splits either with split_column or with val/test tables, not both.")
    frame, where, rows = _load(source, format, sep)
    row_name = _row_namer(rows)
    columns = list(frame.columns)
    if target is None:
        raise ConfigError(f"name the target column of {where} (--target COLUMN, or target=...); its columns: "
                          f"{', '.join(columns)}.")
    for what, name in [("target", target), ("split", split_column), *(("drop", d) for d in drop)]:
        if name is not None and name not in columns:
            raise DataError(f"{where} has no {what} column '{name}'; its columns: {', '.join(columns)}.")
    if target in drop or target == split_column:
        raise ConfigError(f"the target column '{target}' cannot also be dropped or be the split column.")
    features = [c for c in columns if c != target and c != split_column and c not in drop]
    if not features:
        raise DataError(f"{where}: no feature columns are left besides the target '{target}'.")
    if len(frame) == 0:
        raise DataError(f"{where} has a header but no rows.")
    _check_target_present(frame[target], where, row_name)

    # the splits, as row indices into one frame holding every table given
    if split_column is not None:
        parts = _split_column_parts(frame[split_column], where, row_name)
        frames = [frame]
    else:
        frames, parts = [frame], {"train": np.arange(len(frame))}
        for name, extra in (("val", val), ("test", test)):
            if extra is None:
                continue
            other, other_where, other_rows = _load(extra, format if not isinstance(extra, pd.DataFrame) else None,
                                                   sep)
            _check_columns(other, columns, other_where)
            _check_target_present(other[target], other_where, _row_namer(other_rows))
            # a word where the training table has numbers is refused by its own file and line
            numeric_arrays(other, numeric_columns(frame, features), other_where, _row_namer(other_rows))
            start = sum(map(len, frames))
            parts[name] = np.arange(start, start + len(other))
            frames.append(other)
    if len(frames) > 1:
        frame = pd.concat(frames, ignore_index=True)
    kind = target_kind(frame[target], task, where)
    y_all = frame[target]
    class_names = None
    if kind == "classification":
        class_names = _class_names_of(y_all)
        if len(class_names) < 2:
            raise DataError(f"{where}: the target column '{target}' has a single class ({class_names[0]!r}); "
                            "classification needs at least two.")
        y = encode_classes(y_all, class_names, where, row_name)
    else:
        y = y_all.to_numpy(dtype=np.float64)
    # a split neither in the split column nor given as a table: carved out of the training rows
    shares = {"val": VAL_FRACTION, "test": TEST_FRACTION} if len(parts) == 1 else \
        {name: VAL_FRACTION for name in SPLITS if name not in parts}
    if shares:
        parts["train"], carved = random_parts(parts["train"], shares, y if kind == "classification" else None, seed)
        parts.update(carved)
    empty = [name for name in SPLITS if len(parts[name]) == 0]
    if empty:
        raise DataError(f"{where}: the {' and '.join(empty)} split(s) have no rows "
                        f"({', '.join(f'{n}={len(parts[n])}' for n in SPLITS)}).")

    # the numeric columns as float64 views: the training rows are gathered to fit, each split's rows to apply
    numeric = numeric_columns(frame, features)
    arrays = numeric_arrays(frame, numeric, where, row_name)
    fitted = fit_columns(frame, features, parts["train"], where, arrays)
    xs = transform_parts(frame, fitted, where, row_name, {name: parts[name] for name in SPLITS}, arrays)
    preprocess: dict[str, Any] = {"target": target, "target_kind": kind, "columns": fitted,
                                  "feature_names": feature_names(fitted)}
    if kind == "regression":
        train_y = y[parts["train"]]
        preprocess["target_mean"] = float(train_y.mean())
        preprocess["target_std"] = float(train_y.std()) if train_y.std() > 0 else 1.0
    options: dict[str, Any] = {}
    if not isinstance(source, pd.DataFrame):
        options = {"source": str(Path(source).resolve()), "format": format or table_format(Path(source))}
    options.update({"target": target, "seed": seed, "drop": list(drop), "split_column": split_column,
                    "task": task, **({"sep": sep} if sep is not None else {})})
    for name, extra in (("val", val), ("test", test)):
        if extra is not None and not isinstance(extra, pd.DataFrame):
            options[name] = str(Path(extra).resolve())
    name = Path(source).stem if not isinstance(source, pd.DataFrame) else "table"
    spec = DataSpec(name=name, kind="tabular", input_shape=(xs["train"].shape[1],),
                    num_classes=len(class_names) if class_names else 0, class_names=class_names,
                    preprocess=preprocess, options=options)
    y = y.astype(np.int64 if kind == "classification" else np.float32)
    splits = {name: TensorSplit(x=torch.from_numpy(xs[name]), y=torch.from_numpy(np.take(y, parts[name])))
              for name in SPLITS}
    return Dataset(spec, splits)


def from_arrays(X: np.ndarray, y: np.ndarray, *, seed: int = 0, task: TaskKind = "auto") -> Dataset:
    """A `Dataset` of a feature matrix ``X (N, F)`` and targets ``y (N,)``, split and preprocessed as
    `from_table` does a table of numeric columns ``x0 .. x{F-1}`` and the target ``y``."""
    import pandas as pd
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (examples, features); got shape {X.shape}.")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"y must be a 1-D array of one target per row of X ({len(X)}); got shape {y.shape}.")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"X must hold numbers; got dtype {X.dtype}.")
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["y"] = y
    dataset = from_table(frame, "y", seed=seed, task=task)
    dataset.spec.name = "arrays"
    return dataset


def _new_table(path: str | os.PathLike, spec: DataSpec) -> tuple[pd.DataFrame, str, Any]:
    """A new file of the training table's columns (the target and split column optional), read as training read
    its files: (frame, where, row namer)."""
    path = Path(path)
    options = spec.options
    known = any(path.suffix.lower() in suffixes for suffixes in FORMAT_SUFFIXES.values())
    fmt = table_format(path) if known else options.get("format", "csv")
    columns = spec.preprocess["columns"]
    text = {c["name"]: str for c in columns if c["type"] == "categorical"}
    frame = read_frame(path, fmt, options.get("sep"), dtype=text if fmt != "parquet" else None)
    expected = [c["name"] for c in columns]
    optional = [spec.preprocess["target"], *options.get("drop", ()),
                *([options["split_column"]] if options.get("split_column") else [])]
    _check_columns(frame, expected, str(path), optional)
    if len(frame) == 0:
        raise DataError(f"{path} has a header but no rows.")
    return frame, str(path), _row_namer("frame" if fmt == "parquet" else "text")


def table_inputs(path: str | os.PathLike, spec: DataSpec) -> np.ndarray:
    """Model inputs ``(N, features)`` of a new table with the training table's columns (for predict),
    preprocessed with what was fitted on the training split."""
    frame, where, row_name = _new_table(path, spec)
    return transform(frame, spec.preprocess["columns"], where, row_name)


def table_split(path: str | os.PathLike, spec: DataSpec) -> TensorSplit:
    """A new labeled table of the training table's columns as one split (to evaluate a trained model on it),
    preprocessed with what was fitted on the training split."""
    import pandas as pd
    frame, where, row_name = _new_table(path, spec)
    target = spec.preprocess["target"]
    if target not in frame.columns:
        raise DataError(f"{where} has no target column '{target}'; its columns: {', '.join(frame.columns)}.")
    _check_target_present(frame[target], where, row_name)
    x = transform(frame, spec.preprocess["columns"], where, row_name)
    if spec.preprocess["target_kind"] == "classification":
        y = torch.from_numpy(encode_classes(frame[target], spec.class_names, where, row_name))
    else:
        values = pd.to_numeric(frame[target], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if len(bad):
            raise DataError(f"{where}: the target '{target}' at {row_name(bad[0])} holds "
                            f"{frame[target].iloc[bad[0]]!r}; expected a number.")
        y = torch.from_numpy(values.to_numpy(dtype=np.float32))
    return TensorSplit(x=torch.from_numpy(x), y=y)


@register_format("csv", suffixes=FORMAT_SUFFIXES["csv"], inputs=table_inputs, labeled=table_split,
                 description="a comma-separated table with a header row")
def read_csv_table(path: Path, *, target: str | None = None, seed: int = 0, drop: Sequence[str] = (),
                   split_column: str | None = None, val: str | None = None, test: str | None = None,
                   task: TaskKind = "auto", sep: str | None = None) -> Dataset:
    return from_table(path, target, drop=drop, split_column=split_column, val=val, test=test, seed=seed,
                      task=task, sep=sep, format="csv")


@register_format("tsv", suffixes=FORMAT_SUFFIXES["tsv"], inputs=table_inputs, labeled=table_split,
                 description="a tab-separated table with a header row")
def read_tsv_table(path: Path, *, target: str | None = None, seed: int = 0, drop: Sequence[str] = (),
                   split_column: str | None = None, val: str | None = None, test: str | None = None,
                   task: TaskKind = "auto", sep: str | None = None) -> Dataset:
    return from_table(path, target, drop=drop, split_column=split_column, val=val, test=test, seed=seed,
                      task=task, sep=sep, format="tsv")


@register_format("parquet", suffixes=FORMAT_SUFFIXES["parquet"], inputs=table_inputs, labeled=table_split,
                 description="a Parquet table (pyarrow)")
def read_parquet_table(path: Path, *, target: str | None = None, seed: int = 0, drop: Sequence[str] = (),
                       split_column: str | None = None, val: str | None = None, test: str | None = None,
                       task: TaskKind = "auto") -> Dataset:
    return from_table(path, target, drop=drop, split_column=split_column, val=val, test=test, seed=seed,
                      task=task, format="parquet")
