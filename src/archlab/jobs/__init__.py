"""Jobs: every end-to-end run — train, evaluate, predict, generate, explain, anomaly, meta-train,
meta-eval — above the libraries, each returning a `JobResult`. The command line calls only these.

Each job's module is imported when the job is first used, so that a command pays only for its own
(``archlab list`` does not import the attribution methods or the meta-learners).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module of this package that defines it
_JOBS = {
    "JobResult": "result", "train": "train", "train_seeds": "train", "evaluate_checkpoint": "evaluate",
    "predict": "predict", "generate": "generate", "explain": "explain",
    "train_one_class": "anomaly", "meta_train": "meta", "meta_evaluate": "meta", "MetaConfig": "meta",
    "model_summaries": "catalog", "dataset_summaries": "catalog", "format_summaries": "catalog",
}

__all__ = sorted(_JOBS)


def __getattr__(name: str) -> Any:
    if name not in _JOBS:
        raise AttributeError(f"module 'archlab.jobs' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_JOBS[name]}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
