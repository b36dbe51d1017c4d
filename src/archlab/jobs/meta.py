"""Meta-training and meta-evaluation runs with checkpoints: what ``archlab meta-train`` /
``archlab meta-eval`` call.

A run's checkpoint is an ordinary archlab checkpoint (`load_model` rebuilds the
meta-trained model); the meta-learner's settings are in ``config.json`` under ``meta``,
Meta-SGD's learned step sizes in ``inner_lrs.safetensors``, and the outer optimizer's
state and the iteration in ``training_state.pt``, so `resume=True` continues a run:
the task batch of iteration `i` is drawn from a generator seeded with ``(seed, i)``, so
a resumed run sees the same tasks as an uninterrupted one.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from ..data import task_sampler
from ..engine.checkpoint import is_checkpoint, read_config, read_training_state, save_checkpoint
from ..errors import CheckpointError, ConfigError
from ..meta.maml import MAML
from ..meta.reptile import Reptile
from ..models.registry import create_model, load_model, model_info
from ..utils import resolve_device, seed_everything
from .result import JobResult

ALGORITHMS = ("maml", "reptile")
INNER_LRS_FILE = "inner_lrs.safetensors"


@dataclass
class MetaConfig:
    """Settings of a meta-training run (None: the algorithm's and dataset's default)."""

    algorithm: str = "maml"
    data: str = "omniglot"
    ways: int = 5
    shots: int | None = None  # support examples a class (default 1; sinusoid: 10 points)
    query: int | None = None  # query examples a class at meta-train time (default: shots; sinusoid: 10)
    meta_batch: int | None = None
    inner_steps: int | None = None
    inner_lr: float | None = None
    iterations: int = 1000
    first_order: bool = False
    learn_inner_lr: bool = False
    strategy: str = "auto"
    meta_lr: float = 1e-3  # MAML's Adam outer learning rate
    meta_step_size: float = 1.0  # Reptile's initial epsilon, annealed to meta_step_size_final
    meta_step_size_final: float = 0.0
    inner_optimizer: str | None = None  # Reptile: sgd | adam
    seed: int = 0
    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> MetaConfig:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"The 'algorithm' parameter of MetaConfig must be one of {ALGORITHMS}. "
                              f"Got {self.algorithm!r} instead.")
        if self.inner_steps is not None and (not isinstance(self.inner_steps, int) or self.inner_steps < 0):
            raise ConfigError(f"The 'inner_steps' parameter of MetaConfig must be an int >= 0. "
                              f"Got {self.inner_steps!r} instead.")
        if self.algorithm == "reptile" and (self.first_order or self.learn_inner_lr):
            raise ConfigError("first_order and learn_inner_lr are MAML options; Reptile is first-order already.")
        if not 0 <= self.meta_step_size_final <= 1 or not 0 < self.meta_step_size <= 1:
            raise ConfigError(f"The 'meta_step_size' and 'meta_step_size_final' parameters of MetaConfig must be in "
                              f"(0, 1] and [0, 1]. Got {self.meta_step_size} and {self.meta_step_size_final} instead.")
        c = MetaConfig(**asdict(self))
        regression = c.data == "sinusoid"
        reptile = c.algorithm == "reptile"
        if c.shots is None:
            c.shots = 10 if regression else 1
        if c.query is None:
            c.query = 10 if regression else c.shots
        if c.meta_batch is None:
            c.meta_batch = 25 if regression else (5 if reptile else 32)
        if c.inner_optimizer is None:
            c.inner_optimizer = "sgd" if regression else "adam"
        if c.inner_steps is None:
            c.inner_steps = (10 if regression else 5) if reptile else 1
        if c.inner_lr is None:
            if reptile:
                c.inner_lr = 0.02 if c.inner_optimizer == "sgd" else 1e-3
            else:
                c.inner_lr = 0.01 if regression else 0.4
        return c


def default_model(sampler) -> tuple[str, dict[str, Any]]:
    """The papers' networks: an MLP 40-40 for sinusoids, for images the 4-block 64-filter conv
    net (3x3 conv, BatchNorm with batch statistics, ReLU, 2x2 max-pool; as many blocks as the
    image size allows, up to 4), an MLP 64-64 for feature vectors, a GRU for sequences."""
    shape = tuple(sampler.input_shape)
    out = sampler.output_dim
    if sampler.kind == "regression":
        return "mlp", {"in_features": shape[0], "num_classes": out, "hidden_dims": [40, 40]}
    if len(shape) == 3:
        blocks, size = 0, min(shape[1:])
        while blocks < 4 and size >= 2:
            blocks, size = blocks + 1, size // 2
        return "cnn", {"in_channels": shape[0], "num_classes": out, "input_size": list(shape[1:]),
                       "channels": [64] * blocks, "hidden_dims": [], "dropout": 0.0, "batch_norm": True,
                       "track_running_stats": False}
    if len(shape) == 1:
        return "mlp", {"in_features": shape[0], "num_classes": out, "hidden_dims": [64, 64]}
    return "gru", {"input_dim": shape[-1], "num_classes": out, "hidden_dim": 64}


def data_kwargs(name: str, sampler) -> dict[str, Any]:
    """The sizes a chosen model takes from the tasks (channels, image size, features, outputs)."""
    shape = tuple(sampler.input_shape)
    sizes: dict[str, Any] = {"num_classes": sampler.output_dim}
    if len(shape) == 3:
        sizes.update(in_channels=shape[0], input_size=list(shape[1:]))
    elif len(shape) == 1:
        sizes.update(in_features=shape[0], input_dim=shape[0])
    else:
        sizes.update(input_dim=shape[-1])
    params = model_info(name).parameters
    return {k: v for k, v in sizes.items() if k in params}


def build_learner(model: nn.Module, config: MetaConfig, kind: str) -> MAML | Reptile:
    if config.algorithm == "maml":
        return MAML(model, config.inner_lr, config.inner_steps, config.first_order,
                    learn_inner_lr=config.learn_inner_lr, kind=kind, strategy=config.strategy)
    return Reptile(model, config.inner_lr, config.inner_steps, config.meta_step_size, config.inner_optimizer,
                   meta_step_size_final=config.meta_step_size_final, total_iterations=config.iterations, kind=kind,
                   strategy=config.strategy)


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def _save(out: Path, learner, config: MetaConfig, kind: str, iteration: int, optimizer, history, metrics=None
          ) -> None:
    model = learner.model
    extra = {}
    if isinstance(learner, MAML) and learner.inner_lrs is not None:
        extra[INNER_LRS_FILE] = save_safetensors({n: v.detach().cpu().contiguous()
                                                  for n, v in learner.step_sizes().items()})
    state = {"iteration": iteration}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    save_checkpoint(out, model, meta={"model": model.archlab_config, "data": None, "task": None,
                                      "meta": {**asdict(config), "kind": kind}},
                    metrics=metrics, history=history, training_state=state, extra_files=extra)


def _read_history(path: Path) -> list[dict[str, Any]]:
    file = path / "history.csv"
    if not file.is_file():
        return []
    with open(file, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(f)]


def load_learner(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
                 ) -> tuple[MAML | Reptile, MetaConfig, str]:
    """The meta-learner saved in a checkpoint: its model, settings and (Meta-SGD) step sizes."""
    path = Path(checkpoint)
    saved = read_config(path).get("meta")
    if not isinstance(saved, dict) or "algorithm" not in saved:
        raise CheckpointError(f"{path} was not written by `archlab meta-train` (config.json has no 'meta').")
    kind = saved.pop("kind", "classification")
    config = MetaConfig(**saved)
    model = load_model(path, resolve_device(device))
    learner = build_learner(model, config, kind)
    if isinstance(learner, MAML) and learner.inner_lrs is not None:
        file = path / INNER_LRS_FILE
        if not file.is_file():
            raise CheckpointError(f"{path} was trained with learned inner step sizes but has no {INNER_LRS_FILE}.")
        saved_lrs = load_safetensors(file.read_bytes())
        with torch.no_grad():
            for name, lr in zip(learner.param_names, learner.inner_lrs):
                lr.copy_(saved_lrs[name])
    return learner, config, kind


def meta_train(config: MetaConfig, *, out: str | os.PathLike, resume: bool = False, data_dir=None,
               device: str = "auto", eval_tasks: int = 100, eval_steps: list[int] | None = None,
               checkpoint_every: int = 100, max_minutes: float | None = None, log_every: int = 10,
               quiet: bool = False) -> JobResult:
    """Meta-train, checkpoint to `out`, and score the meta-test split. `max_minutes` stops early
    (saved, resumable; ``stopped="time_limit"``)."""
    started = time.perf_counter()
    config = config.resolved()
    out = Path(out)
    dev = resolve_device(device)
    sampler = task_sampler(config.data, split="train", n_way=config.ways, k_shot=config.shots,
                           n_query=config.query, data_dir=data_dir, seed=config.seed)
    kind = sampler.kind
    start = 0
    history: list[dict[str, Any]] = []
    if resume and is_checkpoint(out):
        learner, saved, kind = load_learner(out, dev)
        free = {"iterations", "model", "model_kwargs"}
        differ = sorted(k for k, v in asdict(config).items() if k not in free and getattr(saved, k) != v)
        if differ:
            raise ConfigError(f"--resume continues the run in {out} with its own settings; these differ from the "
                              f"saved ones: {', '.join(differ)} (only --iterations may change).")
        config.model, config.model_kwargs = saved.model, saved.model_kwargs
        if isinstance(learner, Reptile):  # the annealing follows the new iteration count
            learner = build_learner(learner.model, config, kind)
        state = read_training_state(out) or {}
        start = int(state.get("iteration", 0))
        history = _read_history(out)
    else:
        if resume:
            _log(quiet, f"no checkpoint in {out}; starting a new run")
        seed_everything(config.seed)
        name, kwargs = default_model(sampler) if config.model is None else (config.model, data_kwargs(config.model,
                                                                                                   sampler))
        kwargs.update(config.model_kwargs)
        config.model, config.model_kwargs = name, kwargs
        learner = build_learner(create_model(name, **kwargs).to(dev), config, kind)
        state = {}
    optimizer = None
    if isinstance(learner, MAML):
        optimizer = torch.optim.Adam(learner.parameters(), lr=config.meta_lr)
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
    deadline = None if max_minutes is None else started + 60 * max_minutes
    iteration = start
    last_save = start
    window: list[dict[str, float]] = []
    while iteration < config.iterations:
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + iteration)
        tasks = sampler.sample(config.meta_batch, generator).to(dev)
        if isinstance(learner, MAML):
            stats = learner.meta_step(tasks, optimizer)
        else:
            stats = learner.meta_step(tasks, iteration)
        iteration += 1
        window.append(stats)
        if iteration % log_every == 0 or iteration == config.iterations:
            mean = {k: sum(s[k] for s in window) / len(window) for k in window[0]}
            history.append({"iteration": iteration, **{f"train_{k}": round(v, 6) for k, v in mean.items()}})
            _log(quiet, f"iteration {iteration}/{config.iterations}  " +
                 "  ".join(f"{k} {v:.4f}" for k, v in mean.items()) +
                 f"  ({time.perf_counter() - started:.0f} s)")
            window = []
        if iteration - last_save >= checkpoint_every:
            _save(out, learner, config, kind, iteration, optimizer, history)
            last_save = iteration
        if deadline is not None and time.perf_counter() > deadline:
            _log(quiet, f"stopping at iteration {iteration} after {max_minutes} minutes; continue with --resume")
            break
    metrics: dict[str, float] = {}
    if iteration >= config.iterations and eval_tasks > 0:
        test = task_sampler(config.data, split="test", n_way=config.ways, k_shot=config.shots,
                            n_query=15 if kind == "classification" else 100, data_dir=data_dir, seed=config.seed)
        scores = learner.evaluate(test, eval_tasks, eval_steps or [config.inner_steps], seed=config.seed)
        metrics = {f"test_{k}": v for k, v in scores.items()}
    metrics["iterations"] = iteration
    _save(out, learner, config, kind, iteration, optimizer, history, metrics)
    return JobResult(metrics, str(out), time.perf_counter() - started, model=learner.model, history=history,
                     stopped="time_limit" if iteration < config.iterations else None)


def meta_evaluate(checkpoint: str | os.PathLike, *, data: str | None = None, ways: int | None = None,
                  shots: int | None = None, query: int | None = None, tasks: int = 600,
                  steps: list[int] | None = None, split: str = "test", inner_lr: float | None = None,
                  data_dir=None, device: str = "auto", seed: int = 0) -> JobResult:
    """Adapt the checkpoint's model to `tasks` tasks of `split` and score their query sets after
    each of `steps`: ``{"test_accuracy_step1": ..., "test_accuracy_step1_ci95": ...}``."""
    started = time.perf_counter()
    learner, config, kind = load_learner(checkpoint, device)
    if inner_lr is not None:
        learner.inner_lr = float(inner_lr)
    data = data or config.data
    sampler = task_sampler(data, split=split, n_way=ways or config.ways, k_shot=shots or config.shots,
                           n_query=query or (15 if kind == "classification" else 100), data_dir=data_dir,
                           seed=config.seed)
    if sampler.kind != kind:
        raise ConfigError(f"checkpoint {checkpoint} was meta-trained on {kind} tasks ('{config.data}'); "
                          f"'{data}' gives {sampler.kind} tasks.")
    if kind == "classification" and sampler.output_dim != config.ways:
        raise ConfigError(f"checkpoint {checkpoint} has a {config.ways}-way output layer; got --ways "
                          f"{sampler.output_dim}.")
    scores = learner.evaluate(sampler, tasks, steps or [config.inner_steps], seed=seed)
    return JobResult({f"{split}_{k}": v for k, v in scores.items()}, str(checkpoint), time.perf_counter() - started,
                     model=learner.model)
