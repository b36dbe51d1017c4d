"""Training jobs: `train` one registered model on a dataset, `train_seeds` over several seeds."""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Dataset, DataSpec, load_dataset
from ..data.registry import dataset_info, list_datasets
from ..data.sources import detect_format, format_info
from ..engine import TrainConfig, fit
from ..engine.checkpoint import is_checkpoint, read_config
from ..engine.distributed import env_world
from ..engine.acceleration import precision_dtype
from ..engine.fit import default_meta, evaluate, move_split, scalars
from ..engine.loggers import check_outside, closing, make_loggers
from ..errors import ConfigError
from ..models.registry import (check_model_kwargs, check_task_options, create_model, create_task, list_models,
                               model_info, saved_kwargs)
from ..utils import resolve_device, seed_everything
from .data import open_data
from .launch import main_process
from .report import write_report
from .result import JobResult


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
    overrides = check_model_kwargs(model_name, overrides)
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


#: Training options a resumed run may change: how long it runs, and what does not change its result.
RESUME_SAFE = ("epochs", "steps", "time_limit", "quiet", "device", "checkpoint_every", "checkpoint_interval",
               "eval_batch_size", "compile", "backend")


def resumed_config(model_name: str, out: Path, saved: dict[str, Any], options: dict[str, Any]) -> TrainConfig:
    """The saved run's training configuration, with the options that may change on resume
    (`RESUME_SAFE`) taken from `options`; any other option given that differs is refused by name."""
    recorded = dict(saved.get("train") or {})
    given = {k: v for k, v in options.items() if v is not None}
    differ = sorted(k for k, v in given.items() if k not in RESUME_SAFE and recorded.get(k, v) != v)
    if differ:
        shown = ", ".join(f"{k} (saved {recorded[k]!r}, given {given[k]!r})" for k in differ)
        raise ConfigError(f"--resume continues the run in {out} with its saved settings; these differ from them: "
                          f"{shown}. Drop them, or start a new run with another --out. Only "
                          f"{', '.join(RESUME_SAFE)} may change on resume.")
    valid = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in recorded.items() if k in valid}
    # a time limit and quietness belong to one invocation: a resumed run has its own or none
    merged.update(time_limit=None, quiet=False)
    merged.update({k: v for k, v in given.items() if k in RESUME_SAFE})
    if "epochs" in given and "steps" not in given:
        merged["steps"] = None
    if "steps" in given and "epochs" not in given:
        merged["epochs"] = None
    config = TrainConfig(**merged)
    config.validate()
    changed = [k for k in ("epochs", "steps") if k in given and recorded.get(k) != given[k]]
    if changed and env_world().main:  # said even when quiet: the run goes on longer than its saved length
        print(f"archlab: resuming {out} with {', '.join(f'{k} {recorded.get(k)} -> {given[k]}' for k in changed)}",
              file=sys.stderr)
    return config


def pretrained_setup(model: str, data: str | Dataset, folder: str | os.PathLike, model_kwargs: dict[str, Any],
                     data_dir, data_options: dict[str, Any] | None = None, data_format: str | None = None
                     ) -> tuple[str | Dataset, dict[str, Any], dict[str, Any] | None]:
    """The data (tokenized with the folder's vocabulary when it has one), the hyperparameters and the
    data options of a run that starts from the pretrained weights in `folder`; the user's own
    hyperparameters win. A registered text dataset is loaded with the folder's tokenizer; a user's
    text table gets it as its reader's `tokenizer` option, and texts are cut at the model's context
    when its reader's default context is longer."""
    info = model_info(model)
    if info.pretrained is None:
        loaders = [n for n in list_models() if model_info(n).pretrained is not None]
        raise ConfigError(f"model '{model}' cannot start from pretrained weights; models that can: "
                          f"{', '.join(loaders) or 'none'}.")
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"the 'pretrained' parameter must be a folder of pretrained weights; {path} is not one.")
    kwargs, tokenizer = info.pretrained(path)
    model_kwargs = {**kwargs, **model_kwargs}
    if tokenizer is None:
        return data, model_kwargs, data_options
    if isinstance(data, (str, os.PathLike)) and Path(data).exists():  # a user's file: its reader tokenizes
        options = dict(data_options or {})
        if options.get("tokenizer", tokenizer) != tokenizer:
            raise ConfigError(f"--pretrained {folder} brings its own tokenizer; --data-set "
                              f"tokenizer={options['tokenizer']!r} would give the model other token ids. Leave it out.")
        options["tokenizer"] = tokenizer
        reader = inspect.signature(format_info(data_format or detect_format(Path(data))).reader).parameters
        context = model_kwargs.get("context_length")
        if "context_length" in reader and context is not None and "context_length" not in options:
            options["context_length"] = min(int(reader["context_length"].default), int(context))
        return data, model_kwargs, options
    if not isinstance(data, str) or "tokenizer" not in inspect.signature(dataset_info(data).loader).parameters:
        raise ConfigError(f"pretrained weights with a vocabulary need text data that can be tokenized with it "
                          f"(sst2, or a text table: --data-format text-table); "
                          f"'{data if isinstance(data, str) else data.spec.name}' cannot.")
    return load_dataset(data, data_dir, tokenizer=tokenizer), model_kwargs, data_options


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
    pretrained: str | os.PathLike | None = None,
    target: str | None = None,
    data_format: str | None = None,
    data_options: dict[str, Any] | None = None,
    log: Any = None,
    report: bool = False,
    **options: Any,
) -> JobResult:
    """Train a registered model on a dataset and score it on the test split.

    `data` is a registered dataset name, a file or folder of the user's (read by its format: `target`
    names a table's label column, `data_format` forces a format, `data_options` go to its reader), or a
    `Dataset`. `options` are `TrainConfig` fields (epochs, steps, batch_size, lr, seed, device, ...);
    the model's own defaults fill the rest. With `out` the run is checkpointed there, once at the end
    with its metrics; a checkpoint already there is continued with `resume` or replaced with `overwrite`.
    `time_limit` (seconds) stops a run early with a resumable checkpoint, without
    testing it (``stopped="time_limit"``; continue it with `resume=True`).
    `task_options` go to the model's training task (see `ModelInfo.task_options`). `pretrained` names a
    folder of pretrained weights for a model whose registration can load one (bert: a Hugging Face folder):
    its architecture fills the hyperparameters the user did not set, and text data is tokenized with its
    vocabulary. `log` (``"tensorboard:DIR"``, a logger, or a list; see `archlab.engine.loggers`) also
    writes the curves, the hyperparameters and the final metrics for a viewer. `report` writes
    ``report.html`` (see `write_report`) into `out` at the end.
    """
    started = time.perf_counter()
    check_report(report, out)
    loggers = make_loggers(log, overwrite=overwrite)
    check_outside(loggers, out)
    model_kwargs = dict(model_kwargs or {})
    info = model_info(model)
    model_kwargs = check_model_kwargs(model, model_kwargs)
    saved = read_config(out) if resume and out is not None and is_checkpoint(Path(out)) else None
    if saved is not None:
        # a resumed run continues with its saved settings: hyperparameters and task options not given
        # again come from the checkpoint, and given ones must agree with it
        if saved["model"]["name"] != model:
            raise ConfigError(f"--resume: {out} holds a {saved['model']['name']}; this run asks for {model}.")
        built_with = saved_kwargs(saved["model"])
        model_kwargs = {**built_with, **model_kwargs}
        task_options = {**saved.get("task_options", {}), **dict(task_options or {})}
        config = resumed_config(model, Path(out), saved, options)
    else:
        config = train_config(model, **options)
    if pretrained is not None:
        data, model_kwargs, data_options = pretrained_setup(model, data, pretrained, model_kwargs, data_dir,
                                                            data_options, data_format)
    data = open_data(data, data_dir, target=target, data_format=data_format, data_options=data_options)
    trained_on = (saved.get("data") or {}).get("name") if saved is not None else None
    if trained_on is not None and trained_on != data.spec.name:
        raise ConfigError(f"--resume: {out} was trained on the data '{trained_on}'; this run reads "
                          f"'{data.spec.name}'. Resume with the same --data, or start a new run with another --out.")
    check_data_kind(model, data.spec)
    kwargs = model_kwargs_for(model, data.spec, model_kwargs)
    if saved is not None:
        recorded, asked = (json.loads(json.dumps(k)) for k in (built_with, kwargs))  # as JSON
        differ = sorted(k for k in set(recorded) | set(asked) if recorded.get(k) != asked.get(k))
        if differ:
            raise ConfigError(f"--resume: {out} holds a {model} with "
                              f"{', '.join(f'{k}={recorded.get(k)!r}' for k in differ)}; this run asks for "
                              f"{', '.join(f'{k}={asked.get(k)!r}' for k in differ)}.")
    seed_everything(config.seed)
    net = create_model(model, **kwargs)
    task_options = check_task_options(info.task_factory, dict(task_options or {}))
    task = create_task(info.task_factory, net, data.spec, **task_options)
    meta = {**default_meta(net, data, config), "task": info.task, "task_options": task_options,
            # where the data was read from, so evaluate and explain find it again without --data-dir
            "data_dir": str(Path(data_dir).resolve()) if data_dir is not None else None}
    device = resolve_device(config.device)

    def final_metrics(net, result) -> dict[str, Any]:
        """The last (or, with early stopping, the best) validation row and the test split's scores;
        a run stopped by its time limit is not finished, so it is not tested."""
        rows = result.history
        if config.patience is not None and result.best_step is not None:
            rows = [next(r for r in rows if r["step"] == result.best_step)]
        last_val = {k: v for k, v in (rows[-1] if rows else {}).items() if k.startswith("val_")}
        test = {}
        if "test" in data.splits and result.stopped != "time_limit":
            test = evaluate(net, task, move_split(data["test"], device, precision_dtype(config.precision)),
                            prefix="test_", batch_size=config.eval_batch_size)
        metrics = {**last_val, **scalars(test)}
        return {"metrics": metrics, "details": {k: v for k, v in test.items() if k not in metrics}}

    with closing(loggers):
        result = fit(net, task, data, config, out=out, resume=resume, overwrite=overwrite, meta=meta,
                     callbacks=(*callbacks, *loggers), extra_files=data.files, final_metrics=final_metrics)
        for logger in loggers:
            log_results(logger, result.metrics, data.spec)
            logger.log_final(result.metrics["metrics"], run_hparams(model, data.spec.name, kwargs, config,
                                                                   task_options, pretrained))
    job = JobResult(result.metrics["metrics"], str(out) if out is not None else None, time.perf_counter() - started,
                    details=result.metrics["details"], model=net, history=result.history, stopped=result.stopped)
    if report:
        run_report(job, data, data_dir, config.device)
    return job


def check_report(report: bool, out) -> None:
    if report and out is None:
        raise ConfigError("report=True writes report.html into the run's folder; give the run an out folder.")


def run_report(job: JobResult, data, data_dir, device: str) -> None:
    """Write the report of the run in ``job.checkpoint`` beside it; its path joins the job's figures
    and ``details["report_seconds"]`` (``report_cpu_seconds``) says how long it took. Under torchrun
    rank 0 writes it, as it writes the checkpoint."""
    if not main_process():
        return
    written = write_report([job.checkpoint], Path(job.checkpoint) / "report.html", data=data, data_dir=data_dir,
                           device=device)
    job.figures.append(written.figures[0])
    job.details["report_seconds"] = written.seconds
    job.details["report_cpu_seconds"] = written.details["cpu_seconds"]


#: training options that do not change what a run learns, left out of its logged hyperparameters
NOT_HPARAMS = ("device", "quiet", "time_limit", "checkpoint_every", "checkpoint_interval", "eval_batch_size")


def run_hparams(model: str, data: str, model_kwargs: dict[str, Any], config: TrainConfig,
                task_options: dict[str, Any], pretrained=None) -> dict[str, Any]:
    """What a run was trained with, as a logger's hyperparameters: the model and its
    hyperparameters (``model.NAME``), the data, the training options and the task's (``task.NAME``)."""
    train = {f.name: getattr(config, f.name) for f in fields(TrainConfig) if f.name not in NOT_HPARAMS}
    return {"model": model, "data": data, **({"pretrained": str(pretrained)} if pretrained is not None else {}),
            **train, **{f"model.{k}": v for k, v in model_kwargs.items()},
            **{f"task.{k}": v for k, v in task_options.items()}}


def log_results(logger, metrics: dict[str, Any], spec: DataSpec) -> None:
    """A classifier's test confusion matrix, as a text table (rows: true class, columns: predicted)."""
    confusion = metrics["details"].get("test_confusion_matrix")
    if not confusion:
        return
    names = spec.class_names or [str(i) for i in range(len(confusion))]
    head = "| true \\ predicted | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    rows = "\n".join(f"| {name} | " + " | ".join(str(int(c)) for c in row) + " |"
                     for name, row in zip(names, confusion))
    logger.log_text("test_confusion_matrix", f"{head}\n{rows}")


def train_seeds(model: str, data: str | Dataset, seeds: list[int], *, out: str | os.PathLike | None = None,
                data_dir: str | os.PathLike | None = None, target: str | None = None, data_format: str | None = None,
                data_options: dict[str, Any] | None = None, report: bool = False, **kwargs: Any) -> JobResult:
    """Train once per seed (data loaded once); metrics are the mean and standard deviation
    over seeds, with `_mean` and `_std` suffixes. Each seed's checkpoint is ``out/seed-N``, and each
    seed's logs (`log`) are in ``DIR/seed-N``; `report` writes one ``out/report.html`` over all of them."""
    check_report(report, out)
    if not seeds:
        raise ConfigError("seeds must name at least one seed.")
    started = time.perf_counter()
    if kwargs.get("pretrained") is None:  # data read once (pretrained weights bring their own tokenizer)
        data = open_data(data, data_dir, target=target, data_format=data_format, data_options=data_options)
    else:
        kwargs.update(data_dir=data_dir, target=target, data_format=data_format, data_options=data_options)
    log = kwargs.pop("log", None)
    overwrite = kwargs.get("overwrite", False)
    make_loggers(log)  # refused before the first seed trains
    runs = [train(model, data, out=None if out is None else Path(out) / f"seed-{s}", seed=s,
                  log=make_loggers(log, run=f"seed-{s}", overwrite=overwrite), **kwargs) for s in seeds]
    metrics: dict[str, float] = {}
    for key in [k for k in runs[0].metrics if all(k in r.metrics for r in runs)]:  # time-limited runs lack test_
        values = np.array([r.metrics[key] for r in runs], dtype=np.float64)
        metrics[f"{key}_mean"] = float(values.mean())
        metrics[f"{key}_std"] = float(values.std())
    job = JobResult(metrics, str(out) if out is not None else None, time.perf_counter() - started,
                    details={"per_seed": [r.metrics for r in runs]}, model=runs[-1].model,
                    history=[row for r in runs for row in r.history],
                    stopped="time_limit" if any(r.stopped == "time_limit" for r in runs) else None)
    if report:
        run_report(job, data, data_dir, kwargs.get("device") or "auto")
    return job
