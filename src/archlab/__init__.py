"""archlab: every major family of neural architecture in one place, verified against the
reference libraries.

The public API is loaded on first use, so that ``import archlab.cli`` (and ``archlab --help``)
does not pay for torch and the model families before it needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "train": "archlab.jobs", "train_seeds": "archlab.jobs", "evaluate_checkpoint": "archlab.jobs",
    "predict": "archlab.jobs", "generate": "archlab.jobs", "explain": "archlab.jobs",
    "train_one_class": "archlab.jobs", "meta_train": "archlab.jobs", "meta_evaluate": "archlab.jobs",
    "MetaConfig": "archlab.jobs", "JobResult": "archlab.jobs",
    "create_model": "archlab.models.registry", "list_models": "archlab.models.registry",
    "model_info": "archlab.models.registry", "register_model": "archlab.models.registry",
    "load_model": "archlab.models.registry", "create_task": "archlab.models.registry",
    "load_dataset": "archlab.data", "list_datasets": "archlab.data",
    "fit": "archlab.engine", "evaluate": "archlab.engine", "TrainConfig": "archlab.engine",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
