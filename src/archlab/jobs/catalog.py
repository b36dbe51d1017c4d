"""What is registered, as plain rows for `archlab list`."""

from __future__ import annotations

from typing import Any

from ..data import FEWSHOT_SOURCES, dataset_info, list_datasets, list_formats
from ..data.sources import format_info
from ..models.registry import describe, list_models


def model_summaries() -> list[dict[str, Any]]:
    return [describe(name) for name in list_models()]


def dataset_summaries() -> list[dict[str, Any]]:
    rows = []
    for name in list_datasets():
        info = dataset_info(name)
        rows.append({"name": name, "kind": info.kind,
                     "source": "embedded" if info.embedded else f"<data-dir>/{info.folder}",
                     "description": info.description})
    for name, (source, description) in FEWSHOT_SOURCES.items():
        rows.append({"name": name, "kind": "few-shot tasks", "source": source, "description": description})
    return rows


def format_summaries() -> list[dict[str, Any]]:
    rows = []
    for name in list_formats():
        info = format_info(name)
        reads = ", ".join(info.suffixes) or ("a folder" if info.detect else "--data-format only")
        rows.append({"name": name, "reads": reads, "description": info.description})
    return rows
