"""Meta-training and meta-evaluation runs with checkpoints: what ``archlab meta-train`` /
``archlab meta-eval`` call.

Meta-training runs through the engine's `fit`, as every other training job: the meta-learner's
task (`archlab.meta.task`) makes one outer update a step on the task batches of an episodes split,
whose batch `i` is drawn from a generator seeded with ``(seed, i)``, so a resumed run sees the same
tasks as an uninterrupted one. Its checkpoint is an ordinary archlab checkpoint (`load_model`
rebuilds the meta-trained model, `fit` resumes it); the meta-learner's settings are in
``config.json`` under ``meta``, and Meta-SGD's learned step sizes in ``inner_lrs.safetensors``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import EpisodeSplit, task_sampler
from ..engine import TrainConfig, fit
from ..engine.checkpoint import is_checkpoint, read_config
from ..engine.fit import evaluate
from ..errors import CheckpointError, ConfigError
from ..meta.maml import MAML
from ..meta.reptile import Reptile
from ..meta.task import meta_task, read_step_sizes
from ..models.registry import create_model, load_model, model_info
from ..utils import resolve_device, seed_everything
from .result import JobResult

ALGORITHMS = ("maml", "reptile")

# Per-dataset defaults of meta-training, as a model's train_defaults: what each MetaConfig field left at
# None takes, by algorithm and data ("*": any other data). The papers' recipes:
# - MAML on sinusoids (Finn et al., 2017, 5.1): K = 10 points, meta-batch 25, one inner step, at the inner
#   lr of Finn's released code (update_lr 0.001; at the paper's text's 0.01 a few test tasks diverge over
#   repeated steps), and the paper's 70,000 iterations: K = 5 test MSE 0.596 / 0.310 / 0.275 after 1 / 5 / 10
#   steps (paper 0.67 / 0.38 / 0.35); 30,000 reach 0.702 / 0.364 / 0.327, short of the first;
# - MAML on Omniglot 5-way: meta-batch 32, one inner step at 0.4, 60,000 iterations;
# - Reptile (Nichol et al., 2018): 10 SGD steps (lr 0.02) on sinusoids; 5 Adam steps (1e-3), meta-batch 5.
META_TRAIN_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "maml": {
        "sinusoid": {"shots": 10, "query": 10, "meta_batch": 25, "inner_steps": 1, "inner_lr": 0.001,
                     "iterations": 70000},
        "omniglot": {"shots": 1, "meta_batch": 32, "inner_steps": 1, "inner_lr": 0.4, "iterations": 60000},
        "*": {"shots": 1, "meta_batch": 32, "inner_steps": 1, "inner_lr": 0.4, "iterations": 1000},
    },
    "reptile": {
        "sinusoid": {"shots": 10, "query": 10, "meta_batch": 25, "inner_steps": 10, "inner_optimizer": "sgd",
                     "iterations": 1000},
        "*": {"shots": 1, "meta_batch": 5, "inner_steps": 5, "inner_optimizer": "adam", "iterations": 1000},
    },
}
REPTILE_INNER_LR = {"sgd": 0.02, "adam": 1e-3}  # Reptile's inner lr goes with its inner optimizer


def meta_train_defaults(algorithm: str, data: str) -> dict[str, Any]:
    """The defaults `MetaConfig.resolved` fills in for `algorithm` on `data`."""
    table = META_TRAIN_DEFAULTS[algorithm]
    return table.get(data, table["*"])


@dataclass
class MetaConfig:
    """Settings of a meta-training run (None: the default for the algorithm and the data,
    `META_TRAIN_DEFAULTS`)."""

    algorithm: str = "maml"
    data: str = "omniglot"
    ways: int = 5
    shots: int | None = None  # support examples a class (default 1; sinusoid: 10 points)
    query: int | None = None  # query examples a class at meta-train time (default: shots; sinusoid: 10)
    meta_batch: int | None = None
    inner_steps: int | None = None
    inner_lr: float | None = None
    iterations: int | None = None  # outer steps (default 1000; MAML: sinusoid 70,000, omniglot 60,000)
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
        if self.iterations is not None and (isinstance(self.iterations, bool) or not isinstance(self.iterations, int)
                                            or self.iterations < 1):
            raise ConfigError(f"The 'iterations' parameter of MetaConfig must be an int >= 1. "
                              f"Got {self.iterations!r} instead.")
        if self.algorithm == "reptile" and (self.first_order or self.learn_inner_lr):
            raise ConfigError("first_order and learn_inner_lr are MAML options; Reptile is first-order already.")
        if not 0 <= self.meta_step_size_final <= 1 or not 0 < self.meta_step_size <= 1:
            raise ConfigError(f"The 'meta_step_size' and 'meta_step_size_final' parameters of MetaConfig must be in "
                              f"(0, 1] and [0, 1]. Got {self.meta_step_size} and {self.meta_step_size_final} instead.")
        c = MetaConfig(**asdict(self))
        for key, value in meta_train_defaults(c.algorithm, c.data).items():
            if getattr(c, key) is None:
                setattr(c, key, value)
        if c.query is None:
            c.query = c.shots
        if c.inner_lr is None:
            c.inner_lr = REPTILE_INNER_LR.get(c.inner_optimizer, 1e-3)
        return c


def default_model(sampler) -> tuple[str, dict[str, Any]]:
    """The papers' networks: an MLP 40-40 for sinusoids (started as in Finn's code: truncated normal
    weights of std 0.01, zero biases), for images the 4-block 64-filter conv
    net (3x3 conv, BatchNorm with batch statistics, ReLU, 2x2 max-pool; as many blocks as the
    image size allows, up to 4), an MLP 64-64 for feature vectors, a GRU for sequences."""
    shape = tuple(sampler.input_shape)
    out = sampler.output_dim
    if sampler.kind == "regression":
        return "mlp", {"in_features": shape[0], "num_classes": out, "hidden_dims": [40, 40], "init_std": 0.01}
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


def saved_settings(path: Path) -> tuple[MetaConfig, str]:
    """The `MetaConfig` and task kind in the ``meta`` entry of a meta-training checkpoint's config.json."""
    saved = read_config(path).get("meta")
    if not isinstance(saved, dict) or "algorithm" not in saved:
        raise CheckpointError(f"{path} was not written by `archlab meta-train` (config.json has no 'meta').")
    saved = dict(saved)
    kind = saved.pop("kind", "classification")
    return MetaConfig(**saved), kind


def load_learner(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
                 ) -> tuple[MAML | Reptile, MetaConfig, str]:
    """The meta-learner saved in a checkpoint: its model, settings and (Meta-SGD) step sizes."""
    path = Path(checkpoint)
    config, kind = saved_settings(path)
    model = load_model(path, resolve_device(device))
    learner = build_learner(model, config, kind)
    if isinstance(learner, MAML) and learner.inner_lrs is not None:
        read_step_sizes(learner, path)
    return learner, config, kind


def meta_train(config: MetaConfig, *, out: str | os.PathLike, resume: bool = False, overwrite: bool = False,
               data_dir=None,
               device: str = "auto", eval_tasks: int = 100, eval_steps: list[int] | None = None,
               checkpoint_every: int = 100, time_limit: float | None = None, log_every: int = 10,
               quiet: bool = False, callbacks: tuple = ()) -> JobResult:
    """Meta-train with `fit`, checkpoint to `out`, and score the meta-test split.

    One step of the run is one outer update on `meta_batch` tasks; the history logs the training
    statistics' means every `log_every` steps, and a checkpoint is written every `checkpoint_every`.
    `resume=True` continues the run in `out` (with its own settings; only `iterations` may change),
    or starts one when `out` holds none; `overwrite=True` replaces a run already there. `time_limit`
    (seconds) stops early, saved and resumable, without the meta-test (``stopped="time_limit"``).
    `callbacks` go to `fit`.
    """
    started = time.perf_counter()
    config = config.resolved()
    out = Path(out)
    dev = resolve_device(device)
    sampler = task_sampler(config.data, split="train", ways=config.ways, shots=config.shots,
                           query=config.query, data_dir=data_dir, seed=config.seed)
    kind = sampler.kind
    resume = resume and is_checkpoint(out)
    if resume:
        saved, kind = saved_settings(out)
        free = {"iterations", "model", "model_kwargs"}
        differ = sorted(k for k, v in asdict(config).items() if k not in free and getattr(saved, k) != v)
        if differ:
            raise ConfigError(f"--resume continues the run in {out} with its own settings; these differ from the "
                              f"saved ones: {', '.join(differ)} (only --iterations may change).")
        config.model, config.model_kwargs = saved.model, saved.model_kwargs
    else:
        seed_everything(config.seed)
        name, kwargs = default_model(sampler) if config.model is None else (config.model, data_kwargs(config.model,
                                                                                                   sampler))
        kwargs.update(config.model_kwargs)
        config.model, config.model_kwargs = name, kwargs
    # On resume fit loads the weights into this freshly built model (and restores the RNG).
    learner = build_learner(create_model(config.model, **config.model_kwargs).to(dev), config, kind)
    steps = eval_steps or [config.inner_steps]
    task = meta_task(learner, eval_tasks=eval_tasks, eval_steps=steps, eval_seed=config.seed)
    train_config = TrainConfig(steps=config.iterations, batch_size=config.meta_batch, optimizer="adam",
                               lr=config.meta_lr, eval_every=log_every, checkpoint_every=checkpoint_every,
                               time_limit=time_limit, seed=config.seed, device=device, quiet=quiet)
    meta = {"model": learner.model.archlab_config, "data": None, "task": None,
            "meta": {**asdict(config), "kind": kind}, "train": asdict(train_config)}

    def final_metrics(model: nn.Module, result) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if result.stopped is None and eval_tasks > 0:
            test = task_sampler(config.data, split="test", ways=config.ways, shots=config.shots,
                                query=15 if kind == "classification" else 100, data_dir=data_dir, seed=config.seed)
            metrics = evaluate(model, task, EpisodeSplit(test), prefix="test_")
        metrics["iterations"] = result.steps
        return {"metrics": metrics, "details": {}}

    result = fit(learner.model, task, {"train": EpisodeSplit(sampler)}, train_config, out=out, resume=resume,
                 overwrite=overwrite, meta=meta, callbacks=callbacks, final_metrics=final_metrics)
    return JobResult(result.metrics["metrics"], str(out), time.perf_counter() - started, model=learner.model,
                     history=result.history, stopped=result.stopped)


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
    sampler = task_sampler(data, split=split, ways=ways or config.ways, shots=shots or config.shots,
                           query=query or (15 if kind == "classification" else 100), data_dir=data_dir,
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
