"""Tiny trained runs of every family the report draws, shared by the report tests (each trained
on first use, once a session)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from archlab.jobs import MetaConfig, meta_train, train, train_one_class, train_seeds, write_report

WORDS = ["the", "film", "was", "plot", "actors", "very", "and", "a", "story", "it"]


def text_table(path: Path, rows: int = 240) -> Path:
    """A CSV of short texts labelled by whether they say "good" or "bad": a text classifier learns it
    in one epoch."""
    rng = random.Random(0)
    lines = ["text,label"]
    for i in range(rows):
        label = i % 2
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        words.insert(rng.randint(0, len(words)), "good" if label else "bad")
        lines.append(f"{' '.join(words)},{'positive' if label else 'negative'}")
    path.write_text("\n".join(lines) + "\n")
    return path


# family -> how to train its run into `out` (tiny: one epoch or a few steps)
def _cnn(out, tmp):
    return train("cnn", "digits", epochs=1, out=out, quiet=True, model_kwargs={"channels": [8, 16]})


def _transformer(out, tmp):
    return train("transformer", text_table(tmp / "texts.csv"), data_format="text-table", epochs=1, out=out,
                 quiet=True, model_kwargs={"embed_dim": 32, "num_heads": 2, "num_layers": 2, "mlp_dim": 64})


def _gpt(out, tmp):
    return train("gpt", "arithmetic", steps=10, eval_every=5, out=out, quiet=True, data_options={"num_lines": 400},
                 model_kwargs={"embed_dim": 32, "num_heads": 2, "num_layers": 2})


def _vae(out, tmp):
    return train("vae", "digits", epochs=1, out=out, quiet=True)


def _anomaly(out, tmp):
    return train_one_class("ae", "digits", 0, epochs=1, out=out, quiet=True)


def _gcn(out, tmp):
    return train("gcn", "karate", epochs=20, out=out, quiet=True)


def _maml(out, tmp):
    config = MetaConfig(algorithm="maml", data="sinusoid", iterations=6, meta_batch=4)
    return meta_train(config, out=out, eval_tasks=5, log_every=3, quiet=True)


def _mlp_seeds(out, tmp):
    return train_seeds("mlp", "iris", [0, 1], epochs=3, out=out, quiet=True)


TRAININGS = {"cnn": _cnn, "transformer": _transformer, "gpt": _gpt, "vae": _vae, "anomaly": _anomaly,
             "gcn": _gcn, "maml": _maml, "mlp-seeds": _mlp_seeds}


class Runs:
    """``runs[family]``: the folder of that family's tiny run, trained the first time it is asked for."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[str, Path] = {}

    def __getitem__(self, family: str) -> Path:
        if family not in self.folders:
            out = self.root / family
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                TRAININGS[family](out, self.root)
            finally:
                torch.set_num_threads(threads)
            self.folders[family] = out
        return self.folders[family]


class Reports:
    """``reports[family]``: ``(page, result)`` of `write_report` on that family's run, written once."""

    def __init__(self, runs: Runs, root: Path):
        self.runs, self.root = runs, root
        self.written: dict[str, tuple[Path, object]] = {}

    def __getitem__(self, family: str):
        if family not in self.written:
            page = self.root / f"{family}.html"
            self.written[family] = (page, write_report([self.runs[family]], page))
        return self.written[family]


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("report-runs"))


@pytest.fixture(scope="session")
def family_reports(report_runs, tmp_path_factory) -> Reports:
    return Reports(report_runs, tmp_path_factory.mktemp("reports"))
