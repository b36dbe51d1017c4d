"""Reading a large CSV with `load_data`, and training `mlp` on it, against pandas and a hand loop.

A generated CSV of `--rows` rows: 49 numeric feature columns and an integer class column. Two
timings, each the median of `--rounds` rounds alternating the order of the two sides:

- `load_data(path, target="y")` (read, split, fit and apply the preprocessing, make tensors)
  against `pandas.read_csv(path)` alone. Target: ratio <= 1.3.
- one epoch of `mlp` over the training split through archlab's `fit` against a hand-written loop
  over the same tensors (same model, batch size, AdamW, shuffled batches). Target: rows/s ratio >= 0.9.

    python benchmarks/table.py [--rows 1000000] [--rounds 7] [--batch-size 512] [--path table.csv]

The CSV is written once to `--path` (default: the temporary folder) and reused by later runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import archlab
from archlab.data import Dataset, load_data
from archlab.engine import TrainConfig, classification_task, fit
from engine_overhead import hand_loop  # the same hand-written loop the engine is measured against

FEATURES = 49


def write_table(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64) + 2 * (x[:, 3] > 0.5)  # 4 classes, learnable
    columns = {f"f{j}": x[:, j] for j in range(FEATURES)} | {"y": y}
    pacsv.write_csv(pa.table(columns), path)


def alternate(first, second, rounds):
    a, b = [], []
    for r in range(rounds):
        pair = (first, second) if r % 2 == 0 else (second, first)
        times = {f: f() for f in pair}
        a.append(times[first])
        b.append(times[second])
    return statistics.median(a), statistics.median(b)


def timed(function):
    def run():
        t = time.perf_counter()
        function()
        return time.perf_counter() - t

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--path", type=Path, default=None)
    args = parser.parse_args()
    path = args.path or Path(tempfile.gettempdir()) / f"archlab-table-{args.rows}.csv"
    if not path.is_file():
        t = time.perf_counter()
        write_table(path, args.rows)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")

    ours, pandas_alone = alternate(timed(lambda: load_data(path, target="y")), timed(lambda: pd.read_csv(path)),
                                   args.rounds)
    print(f"rows: {args.rows:,}, columns: {FEATURES + 1}, torch threads: {torch.get_num_threads()}")
    print(f"pandas.read_csv alone : {pandas_alone:.2f} s")
    print(f"archlab load_data     : {ours:.2f} s")
    print(f"ratio load/read_csv   : {ours / pandas_alone:.3f}  (target <= 1.3)")

    data = load_data(path, target="y")
    train = data.train
    x, y = train["x"], train["y"]
    kwargs = data.spec.model_kwargs()
    config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=1e-3, quiet=True, device="cpu")
    only_train = Dataset(data.spec, {"train": train})

    def archlab_epoch():
        model = archlab.create_model("mlp", **kwargs)
        fit(model, classification_task(model, data.spec), only_train, config)

    def hand_epoch():
        hand_loop(archlab.create_model("mlp", **kwargs), x, y, args.batch_size, 1e-3, 0)

    timed(archlab_epoch)(), timed(hand_epoch)()  # warm-up
    ours, theirs = alternate(timed(archlab_epoch), timed(hand_epoch), args.rounds)
    rows = len(train)
    print(f"hand-written loop     : {rows / theirs:,.0f} rows/s")
    print(f"archlab fit (mlp)     : {rows / ours:,.0f} rows/s")
    print(f"ratio rows/s fit/loop : {theirs / ours:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
