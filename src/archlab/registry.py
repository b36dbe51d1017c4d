"""The model registry: `register_model`, `create_model`, `list_models`.

Every registered builder declares the kinds of data its model takes
(``image``, ``sequence``, ``tabular``, ``text``, ``graph``) and the training
task that turns a batch into a loss, so a mismatch is caught before training.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .errors import ConfigError, unknown_name

DATA_KINDS = ("image", "sequence", "tabular", "text", "graph")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    family: str
    data_kinds: tuple[str, ...]
    task: str  # name of the training task in archlab.engine.tasks
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The keyword arguments the builder accepts, with their defaults."""
        return dict(inspect.signature(self.builder).parameters)


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    family: str,
    data_kinds: tuple[str, ...],
    task: str = "classification",
    train_defaults: dict[str, Any] | None = None,
) -> Callable:
    """Register a model builder under `name` (decorator)."""
    bad = [k for k in data_kinds if k not in DATA_KINDS]
    if bad:
        raise ValueError(f"data kinds {bad} are not among {DATA_KINDS}")

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model '{name}' is registered twice")
        doc = inspect.getdoc(builder) or ""
        _MODELS[name] = ModelInfo(
            name=name,
            builder=builder,
            family=family,
            data_kinds=tuple(data_kinds),
            task=task,
            description=doc.splitlines()[0] if doc else "",
            train_defaults=dict(train_defaults or {}),
        )
        return builder

    return decorate


def _ensure_loaded() -> None:
    # Importing the models package runs every @register_model.
    from . import models  # noqa: F401


def model_info(name: str) -> ModelInfo:
    _ensure_loaded()
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name]


def list_models(family: str | None = None) -> list[str]:
    """Names of the registered models, optionally of one family."""
    _ensure_loaded()
    return sorted(n for n, info in _MODELS.items() if family is None or info.family == family)


def check_model_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments the model does not take, listing the valid ones."""
    params = model_info(name).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = ", ".join(sorted(params))
        raise ConfigError(
            f"model '{name}' has no hyperparameter {', '.join(repr(k) for k in unknown)}. "
            f"Valid keys: {valid}."
        )


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. The name and kwargs are kept on the model as
    ``model.archlab_config`` so checkpoints can rebuild it without pickle."""
    info = model_info(name)
    check_model_kwargs(name, kwargs)
    try:
        model = info.builder(**kwargs)
    except TypeError as err:  # e.g. a list where an int was expected
        raise ConfigError(f"model '{name}': {err}") from err
    model.archlab_config = {"name": name, "kwargs": dict(kwargs)}
    return model
