"""Jobs: every end-to-end run — train, evaluate, predict, generate, explain, anomaly, meta-train,
meta-eval, export, report — above the libraries, each returning a `JobResult`. The command line calls only these.

Each job's module is imported on first use, so that `archlab list` pays for the registries alone and not for
the explanation, meta-learning, export and report code it does not run.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

# public name -> the module of this package that defines it
_EXPORTS = {
    "train_one_class": "anomaly",
    "dataset_summaries": "catalog", "format_summaries": "catalog", "model_summaries": "catalog",
    "evaluate_checkpoint": "evaluate",
    "explain": "explain",
    "export_checkpoint": "export",
    "generate": "generate",
    "launch": "launch", "main_process": "launch", "rank": "launch", "under_launcher": "launch",
    "MetaConfig": "meta", "meta_evaluate": "meta", "meta_train": "meta",
    "predict": "predict",
    "write_report": "report",
    "JobResult": "result",
    "train": "train", "train_seeds": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archlab.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Jobs(types.ModuleType):
    """Importing a submodule binds it on its package; where the submodule is named after the job it
    defines (`train`, `predict`, `generate`, `explain`, `launch`), the package's attribute stays the job."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Jobs
