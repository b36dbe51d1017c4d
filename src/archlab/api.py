"""The public Python API the CLI is a thin layer over: `train`, `evaluate_checkpoint`, `predict`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import Dataset, DataSpec, load_dataset, read_inputs
from .data.registry import dataset_info, list_datasets
from .engine import TrainConfig, create_task, fit
from .engine.checkpoint import load_model, read_config, read_training_state, run_directory, save_checkpoint
from .engine.fit import default_meta, evaluate, scalars
from .errors import ConfigError
from .registry import check_model_kwargs, create_model, model_info
from .utils import resolve_device, seed_everything


@dataclass
class RunResult:
    metrics: dict[str, float]  # split-prefixed scalars: val_accuracy, test_loss, ...
    checkpoint: str | None
    seconds: float
    model: nn.Module
    history: list[dict[str, Any]]
    details: dict[str, Any]  # non-scalar results, e.g. test_confusion_matrix


def check_data_kind(model_name: str, spec: DataSpec) -> None:
    info = model_info(model_name)
    if spec.kind not in info.data_kinds:
        kinds = " or ".join(info.data_kinds)
        fitting = [d for k in info.data_kinds for d in list_datasets(k)]
        raise ConfigError(
            f"model '{model_name}' takes {kinds} data, but dataset '{spec.name}' is {spec.kind} data. "
            f"Datasets it can train on: {', '.join(fitting) or 'none registered'}."
        )


def model_kwargs_for(model_name: str, spec: DataSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The data-derived sizes (channels, classes, ...) joined with the user's hyperparameters."""
    check_model_kwargs(model_name, overrides)
    params = model_info(model_name).parameters
    derived = {k: v for k, v in spec.model_kwargs().items() if k in params}
    clash = {k: (derived[k], v) for k, v in overrides.items() if k in derived and list(np.atleast_1d(derived[k]))
             != list(np.atleast_1d(v))}
    if clash:
        k, (need, got) = next(iter(clash.items()))
        raise ConfigError(f"{k} is set by the data '{spec.name}' to {need}; got {got}.")
    return {**derived, **overrides}


def train_config(model_name: str, **options: Any) -> TrainConfig:
    """The model's training defaults, overridden by the options that are not None."""
    valid = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"unknown training option(s) {unknown}; valid: {', '.join(sorted(valid))}.")
    merged = {**model_info(model_name).train_defaults, **{k: v for k, v in options.items() if v is not None}}
    # A length given by the user replaces the model's default length of the other kind.
    if options.get("steps") is not None and options.get("epochs") is None:
        merged.pop("epochs", None)
    if options.get("epochs") is not None and options.get("steps") is None:
        merged.pop("steps", None)
    config = TrainConfig(**merged)
    config.validate()
    return config


def train(
    model: str,
    data: str | Dataset,
    *,
    model_kwargs: dict[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: tuple = (),
    task_options: dict[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Train a registered model on a dataset and score it on the test split.

    `options` are `TrainConfig` fields (epochs, steps, batch_size, lr, seed, device, ...);
    the model's own defaults fill the rest. With `out` the run is checkpointed there; a
    checkpoint already there is continued with `resume` or replaced with `overwrite`.
    `task_options` go to the model's training task (see `archlab.engine.tasks`).
    """
    started = time.perf_counter()
    model_kwargs = dict(model_kwargs or {})
    info = model_info(model)
    check_model_kwargs(model, model_kwargs)
    config = train_config(model, **options)
    if isinstance(data, str):
        dataset_info(data)  # unknown names fail before any file is read
        data = load_dataset(data, data_dir)
    check_data_kind(model, data.spec)
    kwargs = model_kwargs_for(model, data.spec, model_kwargs)
    if resume and out is not None and Path(out).is_dir():
        saved = read_config(out)
        if saved["model"] != {"name": model, "kwargs": kwargs}:
            raise ConfigError(f"--resume: {out} holds a {saved['model']['name']} with {saved['model']['kwargs']}; "
                              f"this run asks for {model} with {kwargs}.")
    seed_everything(config.seed)
    net = create_model(model, **kwargs)
    task_options = dict(task_options or {})
    task = create_task(info.task, net, data.spec, **task_options)
    meta = {**default_meta(net, data, config), "task": info.task, "task_options": task_options}
    with run_directory(out, resume=resume, overwrite=overwrite):
        return _train_and_test(net, task, data, config, out, resume, meta, callbacks, started)


def _train_and_test(net, task, data, config, out, resume, meta, callbacks, started) -> RunResult:
    # `train` checked `out` under the lock it holds; `fit` takes the same lock again.
    result = fit(net, task, data, config, out=out, resume=resume, overwrite=True, meta=meta, callbacks=callbacks,
                 extra_files=data.files)
    test = evaluate(net, task, data["test"].to(resolve_device(config.device)), prefix="test_",
                    batch_size=config.eval_batch_size) if "test" in data.splits else {}
    last_val = {k: v for k, v in (result.history[-1] if result.history else {}).items() if k.startswith("val_")}
    if config.patience is not None and result.best_step is not None:
        last_val = {k: v for k, v in next(r for r in result.history if r["step"] == result.best_step).items()
                    if k.startswith("val_")}
    metrics = {**last_val, **scalars(test)}
    details = {k: v for k, v in test.items() if k not in metrics}
    if out is not None:
        state = read_training_state(Path(out))
        save_checkpoint(out, net, meta=meta, metrics={"metrics": metrics, "details": details},
                        history=result.history, training_state=state, extra_files=data.files)
    return RunResult(metrics, str(out) if out is not None else None, time.perf_counter() - started, net,
                     result.history, details)


def train_seeds(model: str, data: str | Dataset, seeds: list[int], *, out: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None, **kwargs: Any) -> RunResult:
    """Train once per seed (data loaded once); metrics are the mean and standard deviation
    over seeds, with `_mean` and `_std` suffixes. Each seed's checkpoint is ``out/seed-N``."""
    if not seeds:
        raise ConfigError("seeds must name at least one seed.")
    started = time.perf_counter()
    if isinstance(data, str):
        dataset_info(data)
        data = load_dataset(data, data_dir)
    runs = [train(model, data, out=None if out is None else Path(out) / f"seed-{s}", seed=s, **kwargs)
            for s in seeds]
    metrics: dict[str, float] = {}
    for key in runs[0].metrics:
        values = np.array([r.metrics[key] for r in runs], dtype=np.float64)
        metrics[f"{key}_mean"] = float(values.mean())
        metrics[f"{key}_std"] = float(values.std())
    return RunResult(metrics, str(out) if out is not None else None, time.perf_counter() - started, runs[-1].model,
                     [row for r in runs for row in r.history], {"per_seed": [r.metrics for r in runs]})


def load_checkpoint_data(checkpoint: str | os.PathLike, data: str | None, data_dir) -> tuple[dict, Dataset]:
    config = read_config(checkpoint)
    spec = DataSpec.from_dict(config["data"]) if config.get("data") else None
    name = data or (spec.name if spec else None)
    if name is None:
        raise ConfigError("the checkpoint records no dataset; name one with --data.")
    dataset = load_dataset(name, data_dir, **(spec.options if spec and spec.name == name else {}))
    check_data_kind(config["model"]["name"], dataset.spec)
    return config, dataset


def evaluate_checkpoint(checkpoint: str | os.PathLike, data: str | None = None, *, split: str = "test",
                        data_dir: str | os.PathLike | None = None, batch_size: int = 512,
                        device: str = "auto", task_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metrics of a checkpoint on one split of a dataset (its own dataset by default).
    `task_options` override those the checkpoint was trained with."""
    config, dataset = load_checkpoint_data(checkpoint, data, data_dir)
    device = resolve_device(device)
    net = load_model(checkpoint, device)
    options = {**config.get("task_options", {}), **(task_options or {})}
    task = create_task(config.get("task", model_info(config["model"]["name"]).task), net, dataset.spec, **options)
    return evaluate(net, task, dataset[split].to(device), prefix=f"{split}_", batch_size=batch_size)


@dataclass
class Prediction:
    classes: list[int]
    probabilities: list[list[float]]
    class_names: list[str] | None


def predict(checkpoint: str | os.PathLike, inputs: str | os.PathLike | np.ndarray, *, device: str = "auto"
            ) -> Prediction:
    """Class predictions for inputs in a file (.npy, .csv, image) or an array of model inputs."""
    config = read_config(checkpoint)
    spec = DataSpec.from_dict(config["data"])
    task = model_info(config["model"]["name"]).task
    if spec.kind not in ("image", "sequence", "tabular") or task != "classification":
        raise ConfigError(f"predict reads image, sequence or tabular inputs for classifiers; {checkpoint} holds a "
                          f"{config['model']['name']} trained on {spec.kind} data ({task} task). "
                          "Use `archlab evaluate` (or `generate`) for it.")
    x = read_inputs(inputs, spec) if not isinstance(inputs, np.ndarray) else np.asarray(inputs, np.float32)
    device = resolve_device(device)
    net = load_model(checkpoint, device)
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(x).to(device)), -1).cpu()
    return Prediction(probs.argmax(-1).tolist(), probs.tolist(), spec.class_names)


__all__ = ["train", "train_seeds", "evaluate_checkpoint", "predict", "RunResult", "Prediction"]
