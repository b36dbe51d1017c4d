"""Which checkpoint a job reads when it is given the folder of a `train --seeds` run.

``archlab train mlp --data wine --seeds 5`` writes one checkpoint per seed, ``runs/mlp-wine/seed-N``,
and nothing in ``runs/mlp-wine`` itself. The checkpoint-reading jobs accept that folder: `evaluate`
scores every seed's run and reports the mean and standard deviation, as training did; `predict`,
`explain` and `generate` read one model, the run of the lowest seed, and say so with a `RunNote`.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from ..errors import RunNote

SEED_FOLDER = re.compile(r"seed-(-?\d+)")


def seed_runs(path: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(seed, folder)`` of each seed run in `path`, by seed; empty when `path` is a checkpoint itself
    (it has a ``config.json``) or holds no ``seed-N`` checkpoint."""
    path = Path(path)
    if not path.is_dir() or (path / "config.json").exists():
        return []
    runs = [(int(match.group(1)), child) for child in path.iterdir()
            if child.is_dir() and (match := SEED_FOLDER.fullmatch(child.name)) and (child / "config.json").is_file()]
    return sorted(runs)


def single_run(path: str | os.PathLike, job: str) -> Path:
    """`path`, or for a folder of seed runs the run of its lowest seed, with a `RunNote` saying so."""
    runs = seed_runs(path)
    if not runs:
        return Path(path)
    seed, folder = runs[0]
    warnings.warn(f"{path} holds {len(runs)} seed runs; {job} reads the first, {folder} (seed {seed}). "
                  f"Name a seed-N folder to choose another.", RunNote, stacklevel=3)
    return folder
