"""The dataset registry: `register_dataset`, `load_dataset`, `list_datasets`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import unknown_name
from .base import Dataset
from .paths import resolve_data_dir


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str
    loader: Callable[..., Dataset]
    description: str
    folder: str | None  # folder under the data directory; None for embedded data

    @property
    def embedded(self) -> bool:
        return self.folder is None


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, kind: str, description: str, folder: str | None = None) -> Callable:
    """Register a loader ``loader(root: Path | None, seed: int, **options) -> Dataset``.

    `root` is the dataset's folder in the data directory (None for embedded data).
    """

    def decorate(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        if name in _DATASETS:
            raise ValueError(f"dataset '{name}' is registered twice")
        _DATASETS[name] = DatasetInfo(name, kind, loader, description, folder)
        return loader

    return decorate


def dataset_info(name: str) -> DatasetInfo:
    if name not in _DATASETS:
        raise unknown_name("dataset", name, _DATASETS)
    return _DATASETS[name]


def list_datasets(kind: str | None = None) -> list[str]:
    return sorted(n for n, info in _DATASETS.items() if kind is None or info.kind == kind)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, seed: int = 0, **options: Any) -> Dataset:
    """Load a dataset with its train/val/test splits; the same `seed` gives the same splits."""
    info = dataset_info(name)
    root: Path | None = None
    if info.folder is not None:
        root = resolve_data_dir(data_dir) / info.folder
    return info.loader(root, seed, **options)
