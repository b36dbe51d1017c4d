"""`mlp` on the wine and breast-cancer tables written to CSV, beside scikit-learn on the same split.

Issue 15's target: on the same split, `mlp` (its registration's defaults, as `archlab train mlp --data
FILE.csv --target target` runs it) reaches at least scikit-learn's `LogisticRegression` test accuracy. Each
table is written to CSV from scikit-learn (classes by name, as users write them) and read with
`archlab.data.load_data`, so the split and the standardization are archlab's (seeded 70/15/15, stratified).
Printed side by side, as test examples right out of the test split's size, for each split seed and each
training seed: archlab's `mlp`, `LogisticRegression(max_iter=5000)` and, as the peer MLP, scikit-learn's
`MLPClassifier` (its defaults: one hidden layer of 100, Adam, L2 1e-4, 200 iterations) with the same seeds.

    OMP_NUM_THREADS=1 python scripts/repro/tables_vs_sklearn.py [--tables wine,breast_cancer]
        [--splits 1] [--seeds 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import warnings
from pathlib import Path

import numpy as np

import archlab
from archlab.data import load_data


def write_table(name: str, folder: Path) -> Path:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = np.asarray(bunch.target_names)[bunch.target]
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def right(accuracy: float, total: int) -> int:
    return int(round(accuracy * total))


def compare(path: Path, split_seed: int, seeds: int) -> tuple[int, dict[str, list[int]]]:
    """The test split's size, and the test examples each model gets right for each training seed."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    data = load_data(path, target="target", seed=split_seed)
    x, y = data.train["x"].numpy(), data.train["y"].numpy()
    x_test, y_test = data.test["x"].numpy(), data.test["y"].numpy()
    total = len(y_test)
    regression = right(LogisticRegression(max_iter=5000).fit(x, y).score(x_test, y_test), total)
    peer, ours = [], []
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            peer.append(right(MLPClassifier(random_state=seed).fit(x, y).score(x_test, y_test), total))
        ours.append(right(archlab.train("mlp", data, seed=seed, quiet=True).metrics["test_accuracy"], total))
    return total, {"LogisticRegression": [regression] * seeds, "sklearn MLPClassifier": peer, "archlab mlp": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="wine,breast_cancer")
    parser.add_argument("--splits", type=int, default=1, help="split seeds 0..N-1 (default: the split of seed 0)")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 on each split")
    parser.add_argument("--out", type=Path, default=None, help="folder for the CSV files (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() if args.out is None else contextlib.nullcontext(args.out) as folder:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.tables.split(","):
            path = write_table(name, folder)
            means: dict[str, list[float]] = {}
            for split_seed in range(args.splits):
                total, result = compare(path, split_seed, args.seeds)
                print(f"{name}, split seed {split_seed}: test examples right out of {total}, training seeds "
                      f"0-{args.seeds - 1}")
                for label, counts in result.items():
                    print(f"  {label:24s} {' '.join(f'{c:3d}' for c in counts)}   mean {np.mean(counts):6.2f}"
                          f" ({np.mean(counts) / total:.4f})")
                    means.setdefault(label, []).append(float(np.mean(counts)) / total)
            ours, baseline = np.mean(means["archlab mlp"]), np.mean(means["LogisticRegression"])
            print(f"{name}: archlab mlp {ours:.4f}, LogisticRegression {baseline:.4f}, sklearn MLPClassifier "
                  f"{np.mean(means['sklearn MLPClassifier']):.4f} (mean test accuracy over "
                  f"{args.splits} split(s)): {'ok' if ours >= baseline else 'BELOW'}")


if __name__ == "__main__":
    main()
