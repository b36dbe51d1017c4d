"""The model registry: `register_model`, `create_model`, `list_models`, `load_model`.

A family is declared once, in its registration: the kinds of data its model takes (``image``,
``sequence``, ``tabular``, ``text``, ``graph``, ``graphs``), the training task that turns a batch into a
loss, its training defaults, what it can generate, how it loads pretrained weights and how it
is explained by default. The jobs and the command line read this declaration; none of them
names a model.

Importing `archlab.models` runs every registration, and this module is only reachable through
that package, so the table is complete whenever it is read.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engine.checkpoint import load_weights, read_config, read_weights
from ..engine.tasks import Task, classification_task
from ..errors import CheckpointError, ConfigError, DataError, unknown_name
from ..validation import check_choice, coerce_kwargs
from .model_size import check_model_size

DATA_KINDS = ("image", "sequence", "tabular", "text", "graph", "graphs")
GENERATES = ("text", "images")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    family: str
    data_kinds: tuple[str, ...]
    task_factory: Callable[..., Task]  # ``factory(model, spec, **options) -> Task``, named by ``task_name``
    description: str
    train_defaults: dict[str, Any] = field(default_factory=dict)
    generates: str | None = None  # "text" (a language model's `generate`) or "images" (a prior's `sample`)
    # ``pretrained(folder) -> (model_kwargs, tokenizer_folder)``: the architecture of a pretrained folder
    # (its weights are loaded by the builder from ``model_kwargs["pretrained"]``)
    pretrained: Callable[[Path], tuple[dict[str, Any], str | None]] | None = None
    explanation: str | None = "integrated-gradients"  # the method `archlab explain` uses by default (None: none)
    # defaults changed since checkpoints recorded only the hyperparameters they were given (before
    # 2026-12-01): the value each had then, which such a checkpoint was built with
    former_defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        """The task's name, as recorded in a checkpoint's ``config.json``."""
        return self.task_factory.task_name

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The keyword arguments the builder accepts, with their defaults."""
        return dict(inspect.signature(self.builder).parameters)

    @property
    def task_options(self) -> dict[str, inspect.Parameter]:
        """The options of the training task (``--task-set``), with their defaults."""
        return task_options(self.task_factory)


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    family: str,
    data_kinds: tuple[str, ...],
    task: Callable[..., Task] = classification_task,
    train_defaults: dict[str, Any] | None = None,
    generates: str | None = None,
    pretrained: Callable[[Path], tuple[dict[str, Any], str | None]] | None = None,
    explanation: str | None = "integrated-gradients",
    former_defaults: dict[str, Any] | None = None,
) -> Callable:
    """Register a model builder under `name` (decorator)."""
    bad = [k for k in data_kinds if k not in DATA_KINDS]
    if bad:
        raise ValueError(f"data kinds {bad} are not among {DATA_KINDS}")
    if generates is not None:
        check_choice("register_model", "generates", generates, GENERATES)
    if not hasattr(task, "task_name"):
        raise ValueError(f"the task of model '{name}' must be a factory decorated with @training_task")

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model '{name}' is registered twice")
        doc = inspect.getdoc(builder) or ""
        _MODELS[name] = ModelInfo(
            name=name, builder=builder, family=family, data_kinds=tuple(data_kinds), task_factory=task,
            description=doc.split("\n\n")[0].replace("\n", " ") if doc else "",
            train_defaults=dict(train_defaults or {}), generates=generates, pretrained=pretrained,
            explanation=explanation, former_defaults=dict(former_defaults or {}),
        )
        return builder

    return decorate


def model_info(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name]


def list_models(family: str | None = None) -> list[str]:
    """Names of the registered models, optionally of one family."""
    return sorted(n for n, info in _MODELS.items() if family is None or info.family == family)


def check_model_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` checked against the model's signature: unknown keys are refused, listing the valid
    ones, and every value must fit its parameter's annotation (text from the command line is read
    as that type). Returns the checked values."""
    info = model_info(name)
    params = info.parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        valid = ", ".join(sorted(params))
        raise ConfigError(
            f"model '{name}' has no hyperparameter {', '.join(repr(k) for k in unknown)}. "
            f"Valid keys: {valid}."
        )
    return coerce_kwargs(f"model '{name}'", info.builder, kwargs)


def _refused(what: str, build: Callable[[], Any]) -> Any:
    """`build()`, with the errors a bad hyperparameter raises inside torch or a constructor turned
    into one `ConfigError` (files a builder reads keep their own data errors)."""
    try:
        return build()
    except (ConfigError, DataError, CheckpointError):
        raise
    except (TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{what}: {first}") from err


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. The name and every hyperparameter, its defaults included, are kept on
    the model as ``model.archlab_config``, so that a checkpoint rebuilds it without pickle, and as it was
    built even after a default changes."""
    info = model_info(name)
    kwargs = check_model_kwargs(name, kwargs)
    model = _refused(f"model '{name}' cannot be built with {kwargs}", lambda: info.builder(**kwargs))
    defaults = {k: p.default for k, p in info.parameters.items() if p.default is not inspect.Parameter.empty}
    model.archlab_config = {"name": name, "kwargs": {**defaults, **kwargs}}
    return model


def task_options(factory: Callable[..., Task]) -> dict[str, inspect.Parameter]:
    return dict(list(inspect.signature(factory).parameters.items())[2:])  # after (model, spec)


def task_factory(name: str) -> Callable[..., Task]:
    """The task factory recorded under `name` by some registered model."""
    factories = {info.task: info.task_factory for info in _MODELS.values()}
    factories.setdefault(classification_task.task_name, classification_task)
    if name not in factories:
        raise unknown_name("task", name, factories)
    return factories[name]


def check_task_options(task: str | Callable[..., Task], options: dict[str, Any]) -> dict[str, Any]:
    """`options` checked against the task factory's signature, as `check_model_kwargs` does."""
    factory = task_factory(task) if isinstance(task, str) else task
    valid = list(task_options(factory))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"task '{factory.task_name}' has no option {', '.join(map(repr, unknown))}. "
                          f"Valid options: {', '.join(valid) or 'none'}.")
    return coerce_kwargs(f"task '{factory.task_name}'", factory, options)


def create_task(task: str | Callable[..., Task], model: nn.Module, spec, **options: Any) -> Task:
    """The training task (by name or factory) for `model` on data described by `spec`;
    unknown options are refused, listing the valid ones."""
    factory = task_factory(task) if isinstance(task, str) else task
    options = check_task_options(factory, options)
    return _refused(f"task '{factory.task_name}' cannot be set up with {options}",
                    lambda: factory(model, spec, **options))


def saved_kwargs(saved: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters a checkpoint's model was built with, from its ``config.json`` entry ``{"name",
    "kwargs"}``: those recorded, and, for a checkpoint that recorded only those it was given, the former
    value of each default that has changed since (`ModelInfo.former_defaults`)."""
    kwargs = dict(saved.get("kwargs", {}))
    former = model_info(saved["name"]).former_defaults
    return {**{k: v for k, v in former.items() if k not in kwargs}, **kwargs}


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", *, verify: bool = True) -> nn.Module:
    """Rebuild a model from a checkpoint folder (no pickle), in eval mode. The size its config
    describes is checked before anything is allocated (`check_model_size`); the weights are
    checked against their recorded SHA-256 unless `verify` is False."""
    path = Path(path)
    config = read_config(path)
    name, kwargs = config["model"]["name"], saved_kwargs(config["model"])
    check_model_size(name, kwargs, path / "config.json", lambda **shapes: create_model(name, **shapes))
    model = create_model(name, **kwargs)
    load_weights(model, read_weights(path, verify=verify), path)
    return model.to(device).eval()


def describe(name: str) -> dict[str, Any]:
    """A registration as plain data (for `archlab list --json`)."""
    info = model_info(name)
    return {"name": name, "family": info.family, "data_kinds": list(info.data_kinds), "task": info.task,
            "generates": info.generates, "pretrained": info.pretrained is not None,
            "explanation": info.explanation, "description": info.description}


__all__ = ["register_model", "create_model", "list_models", "model_info", "check_model_kwargs", "check_task_options",
           "create_task",
           "task_factory", "load_model", "describe", "ModelInfo", "DATA_KINDS"]
