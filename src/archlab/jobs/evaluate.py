"""Scoring a checkpoint: `evaluate_checkpoint`, and `load_checkpoint_data`, the dataset a checkpoint
was trained on, which the other checkpoint jobs share."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..data import Dataset, DataSpec
from ..data.registry import list_datasets
from ..data.sources import format_info
from ..engine.checkpoint import read_config
from ..engine.fit import evaluate, scalars
from ..errors import ConfigError, DataError
from ..models.registry import create_task, load_model, model_info
from ..utils import resolve_device
from .data import open_data, reopen_data
from .result import JobResult
from .runs import seed_runs
from .train import check_data_kind


def load_checkpoint_data(checkpoint: str | os.PathLike, data: str | os.PathLike | Dataset | None, data_dir, *,
                         target: str | None = None, data_format: str | None = None,
                         data_options: dict[str, Any] | None = None) -> tuple[dict, Dataset]:
    """The checkpoint's config and a dataset to score it on: `data` when given (a name, a file or
    folder of the training schema, or a `Dataset`), else the one it was trained on, rebuilt. The data
    directory is `data_dir`, else the one the run recorded."""
    config = read_config(checkpoint)
    data_dir = data_dir if data_dir is not None else config.get("data_dir")  # the run's, unless given
    spec = DataSpec.from_dict(config["data"]) if config.get("data") else None
    if data is None:
        if spec is None:
            raise ConfigError("the checkpoint records no dataset; name one with --data.")
        dataset = reopen_data(spec, data_dir)
    elif isinstance(data, str) and spec is not None and data == spec.name and target is None and not data_options:
        dataset = reopen_data(spec, data_dir)
    elif spec is not None and "source" in spec.options and not isinstance(data, Dataset) and \
            (Path(data).exists() or os.fspath(data) not in list_datasets()):
        dataset = _new_file_data(spec, Path(data), data_dir, target, data_format, data_options)
    else:
        dataset = open_data(data, data_dir, target=target, data_format=data_format, data_options=data_options)
    check_data_kind(config["model"]["name"], dataset.spec)
    return config, dataset


def _new_file_data(spec: DataSpec, path: Path, data_dir, target: str | None, data_format: str | None,
                   data_options: dict[str, Any] | None) -> Dataset:
    """The data a checkpoint trained on a file of the user's is scored on when given a file: that
    same file, its recorded splits; another file of its schema, every example of it as the test split,
    read with the preprocessing fitted in training (`FormatInfo.labeled`)."""
    fmt = spec.options["format"]
    trained = next((spec.options[k] for k in ("target", "label_column", "label") if spec.options.get(k)), None)
    if target is not None and trained is None:
        raise ConfigError(f"--target {target}: the checkpoint was trained on {fmt} data, which names no target "
                          "column.")
    if target is not None and target != trained:
        raise ConfigError(f"--target {target}: the checkpoint was trained on the column '{trained}', which a file "
                          "of its schema holds.")
    if data_format is not None and data_format != fmt:
        raise ConfigError(f"--data-format {data_format}: the checkpoint was trained on {fmt} data and scores files "
                          f"of that format.")
    if path.exists() and path.resolve() == Path(spec.options["source"]):
        if data_options:
            raise ConfigError("--data-set: the checkpoint's own file is read with the options it was trained "
                              "with; give another file to score it on that file.")
        return reopen_data(spec, data_dir)
    if data_options:
        raise ConfigError(f"--data-set {', '.join(sorted(data_options))}: a new file is read with the options and "
                          "the preprocessing the checkpoint was trained with; it takes no options.")
    labeled = format_info(fmt).labeled
    if labeled is None:
        raise ConfigError(f"the checkpoint was trained on {fmt} data; scoring it on another {fmt} file is not "
                          "supported. Evaluate it on its own data (no --data).")
    if not path.exists():
        raise DataError(f"data file or folder not found: {path}.")
    return Dataset(spec, {"test": labeled(path, spec)})


def _check_split(dataset: Dataset, split: str, data) -> None:
    if list(dataset.splits) == ["test"] and split != "test":  # a new file of the schema, scored whole
        raise ConfigError(f"--split {split}: {data} is scored whole, as the test split; --split names a split of "
                          "the data the checkpoint was trained on.")


def _score(checkpoint: Path, config: dict, dataset: Dataset, split: str, batch_size: int, device,
           task_options: dict[str, Any] | None, verify: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    net = load_model(checkpoint, device, verify=verify)
    options = {**config.get("task_options", {}), **(task_options or {})}
    task = create_task(config.get("task") or model_info(config["model"]["name"]).task, net, dataset.spec, **options)
    return net, evaluate(net, task, dataset[split].to(device), prefix=f"{split}_", batch_size=batch_size)


def evaluate_checkpoint(checkpoint: str | os.PathLike, data: str | os.PathLike | Dataset | None = None, *,
                        split: str = "test", data_dir: str | os.PathLike | None = None, batch_size: int = 512,
                        device: str = "auto", task_options: dict[str, Any] | None = None,
                        target: str | None = None, data_format: str | None = None,
                        data_options: dict[str, Any] | None = None, verify: bool = True) -> JobResult:
    """Metrics of a checkpoint on one split of a dataset (its own dataset by default).
    `task_options` override those the checkpoint was trained with (a VAE's ``iw_samples``, ...).

    Given the folder of a ``train --seeds`` run (only ``seed-N`` checkpoints inside), every seed's
    run is scored on the same data, and the metrics are their mean and standard deviation with
    `_mean` and `_std` suffixes, as `train_seeds` reports them; ``details["per_seed"]`` maps each
    seed to its own metrics."""
    started = time.perf_counter()
    source = {"target": target, "data_format": data_format, "data_options": data_options}
    device = resolve_device(device)
    runs = seed_runs(checkpoint)
    if not runs:
        config, dataset = load_checkpoint_data(checkpoint, data, data_dir, **source)
        _check_split(dataset, split, data)
        net, metrics = _score(Path(checkpoint), config, dataset, split, batch_size, device, task_options, verify)
        scalar = scalars(metrics)
        return JobResult(scalar, str(checkpoint), time.perf_counter() - started, model=net,
                         details={k: v for k, v in metrics.items() if k not in scalar})
    # The seeds of one run share its data (train_seeds loads it once): load it once here too.
    _, dataset = load_checkpoint_data(runs[0][1], data, data_dir, **source)
    _check_split(dataset, split, data)
    per_seed = {}
    for seed, folder in runs:
        config = read_config(folder)
        check_data_kind(config["model"]["name"], dataset.spec)
        per_seed[seed] = scalars(_score(folder, config, dataset, split, batch_size, device, task_options, verify)[1])
    metrics: dict[str, float] = {}
    for key in per_seed[runs[0][0]]:
        values = np.array([m[key] for m in per_seed.values()], dtype=np.float64)
        metrics[f"{key}_mean"] = float(values.mean())
        metrics[f"{key}_std"] = float(values.std())
    return JobResult(metrics, str(checkpoint), time.perf_counter() - started, details={"per_seed": per_seed})
