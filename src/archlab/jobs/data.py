"""The data a job runs on: a registered name, a user's file or folder, or a `Dataset`, with the same
options in every command (``--target``, ``--data-format``, ``--data-set KEY=VALUE``)."""

from __future__ import annotations

import os
from typing import Any

from ..data import Dataset, DataSpec, load_data, load_dataset
from ..data.sources import source_options


def open_data(data: str | os.PathLike | Dataset, data_dir: str | os.PathLike | None = None, *,
              target: str | None = None, data_format: str | None = None,
              data_options: dict[str, Any] | None = None) -> Dataset:
    """`data` loaded: a registered dataset, or a file or folder read by its format's reader."""
    return load_data(data, data_dir, format=data_format, target=target, **dict(data_options or {}))


def reopen_data(spec: DataSpec, data_dir: str | os.PathLike | None = None) -> Dataset:
    """The dataset a checkpoint was trained on, rebuilt from its recorded spec: the same file or folder
    read with the same options (and the same splits), or the same registered dataset."""
    dataset = Dataset(spec, {})
    recorded = source_options(dataset)
    if recorded is None:
        return load_dataset(spec.name, data_dir, **spec.options)
    return load_data(recorded["source"], data_dir, format=recorded["format"], target=recorded["target"],
                     seed=recorded["seed"], **recorded["options"])
