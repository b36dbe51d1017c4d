"""Reproduce the GCN, GAT and (V)GAE papers on Cora with archlab's default hyperparameters.

    python scripts/repro/gnn_planetoid.py [--models gcn gat gae vgae] [--seeds 10] [--data-dir ../shared/data]

Node classification (GCN, GAT) trains on the public Planetoid split, once per seed
(`archlab.train_seeds`, as ``archlab train gcn --data cora --seeds 10``). Link prediction
(GAE, VGAE) draws a fresh 85/5/10 edge split per seed, as the reference code does on each
run. Prints the mean +- std over seeds beside the paper's figure and the target (met on the mean),
then each seed's figure.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import archlab

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# model -> [(metric, paper figure, target)]
PAPER = {
    "gcn": [("test_accuracy", 0.815, 0.810)],  # Kipf & Welling 2017, Table 2
    "gat": [("test_accuracy", 0.830, 0.825)],  # Velickovic et al. 2018, Table 2 (83.0 +- 0.7)
    "gae": [("test_auroc", 0.910, 0.90), ("test_ap", 0.920, 0.90)],  # Kipf & Welling 2016, Table 1
    "vgae": [("test_auroc", 0.914, 0.90), ("test_ap", 0.926, 0.90)],
}


def run(model: str, seeds: list[int], data_dir: str) -> tuple[dict[str, np.ndarray], float]:
    started = time.perf_counter()
    if model in ("gcn", "gat"):
        result = archlab.train_seeds(model, "cora", seeds, data_dir=data_dir, quiet=True)
        per_seed = result.details["per_seed"]
    else:
        per_seed = [archlab.train(model, archlab.load_dataset("cora", data_dir, seed=s), seed=s, quiet=True).metrics
                    for s in seeds]
    values = {metric: np.array([m[metric] for m in per_seed]) for metric, _, _ in PAPER[model]}
    return values, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PAPER), choices=list(PAPER))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    print(f"{'model':5s} {'metric':14s} {'measured':>16s} {'paper':>6s} {'target':>7s} {'seconds':>8s}")
    for model in args.models:
        values, seconds = run(model, seeds, args.data_dir)
        for metric, paper, target in PAPER[model]:
            v = values[metric]
            verdict = "ok" if v.mean() >= target else "MISSED"
            print(f"{model:5s} {metric:14s} {100 * v.mean():8.2f} +- {100 * v.std():4.2f} {100 * paper:6.1f} "
                  f">={100 * target:5.1f} {seconds:8.1f}  {verdict}", flush=True)
            print(f"{'':5s} {'':14s} per seed {seeds[0]}-{seeds[-1]}: " + " ".join(f"{100 * x:.1f}" for x in v))


if __name__ == "__main__":
    main()
