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
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import EpisodeSplit, task_sampler
from ..engine import TrainConfig, fit
from ..engine.checkpoint import is_checkpoint, read_config
from ..engine.fit import evaluate
from ..engine.loggers import check_outside, closing, make_loggers
from ..engine.optim import SCHEDULES
from ..errors import CheckpointError, ConfigError
from ..meta.anil import ANIL
from ..meta.maml import MAML
from ..meta.protonet import ProtoNet
from ..meta.reptile import Reptile
from ..meta.task import meta_task, read_step_sizes
from ..models.registry import create_model, load_model, model_info, saved_kwargs
from ..utils import resolve_device, seed_everything
from ..validation import check_choice
from .result import JobResult

ALGORITHMS = ("maml", "anil", "reptile", "protonet")
GRADIENT_BASED = ("maml", "anil")
PROTONET_EMBEDDING = 64  # output units of a --model chosen as a prototypical network's embedding

# Per-dataset defaults of meta-training, as a model's train_defaults: what each MetaConfig field left at
# None takes, by algorithm and data ("*": any other data). The papers' recipes:
# - MAML on sinusoids (Finn et al., 2017, 5.1): K = 10 points, meta-batch 25, one inner step, at the inner
#   lr of Finn's released code (update_lr 0.001; at the paper's text's 0.01 a few test tasks diverge over
#   repeated steps). The paper's 70,000 iterations at Adam 1e-3 reach K = 5 test MSE 0.596 / 0.310 / 0.275
#   after 1 / 5 / 10 steps (paper 0.67 / 0.38 / 0.35) in over 5 minutes; 30,000 at 2e-3 decayed on a cosine
#   reach 0.636 / 0.307 / 0.271 in 270 s (30,000 at a constant 1e-3: 0.702, short of the first; 20,000 at
#   2e-3 cosine 0.735);
# - MAML on Omniglot 5-way: meta-batch 32, one inner step at 0.4, 60,000 iterations;
# - MAML on digits (3-way 1-shot, 6 meta-train classes): 10 inner steps at 0.1 (the step size of Finn's
#   20-way Omniglot, the step count of his MiniImagenet tests), 8 tasks an update, 60 iterations (about 70
#   CPU-seconds): 0.836 / 0.857 / 0.834 on 600 meta-test tasks with seeds 0 / 1 / 2, above the nearest
#   class mean of the raw pixels (0.817 / 0.821 / 0.827). The general recipe (one step at 0.4, meta-batch
#   32) peaks at 0.81 after 100 iterations and overfits the 6 classes to 0.77 after 1000; 5 steps score
#   0.82-0.85, below the mean on one seed of three (`benchmarks/baselines.py --only fewshot --seeds 3`);
# - Reptile (Nichol et al., 2018): 10 SGD steps (lr 0.02) on sinusoids; 5 Adam steps (1e-3), meta-batch 5.
META_TRAIN_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "maml": {
        "sinusoid": {"shots": 10, "query": 10, "meta_batch": 25, "inner_steps": 1, "inner_lr": 0.001,
                     "iterations": 30000, "meta_lr": 2e-3, "schedule": "cosine"},
        "omniglot": {"shots": 1, "meta_batch": 32, "inner_steps": 1, "inner_lr": 0.4, "iterations": 60000},
        "digits": {"shots": 1, "meta_batch": 8, "inner_steps": 10, "inner_lr": 0.1, "iterations": 60},
        "*": {"shots": 1, "meta_batch": 32, "inner_steps": 1, "inner_lr": 0.4, "iterations": 1000},
    },
    "reptile": {
        "sinusoid": {"shots": 10, "query": 10, "meta_batch": 25, "inner_steps": 10, "inner_optimizer": "sgd",
                     "iterations": 1000},
        "*": {"shots": 1, "meta_batch": 5, "inner_steps": 5, "inner_optimizer": "adam", "iterations": 1000},
    },
}
# ANIL, MAML restricted to the head: the same recipes, but on digits the general one (MAML's digits recipe
# scores lower there: 0.46 against 0.58 after 60 iterations, both below the nearest class mean's 0.82)
META_TRAIN_DEFAULTS["anil"] = {data: recipe for data, recipe in META_TRAIN_DEFAULTS["maml"].items() if data != "digits"}
# Snell et al. (2017): one episode an update, 5 query examples a class
META_TRAIN_DEFAULTS["protonet"] = {"*": {"shots": 1, "query": 5, "meta_batch": 1, "iterations": 1000}}
REPTILE_INNER_LR = {"sgd": 0.02, "adam": 1e-3}  # Reptile's inner lr goes with its inner optimizer


def reading(config: MetaConfig) -> dict[str, Any]:
    """How the run reads its data: the reading options of `task_sampler`."""
    return {"target": config.target, "data_format": config.data_format, "data_options": config.data_options}


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
    query: int | None = None  # query examples a class at meta-train time (default: shots; sinusoid: 10; protonet: 5)
    meta_batch: int | None = None
    inner_steps: int | None = None
    inner_lr: float | None = None
    iterations: int | None = None  # outer steps (default 1000; MAML: sinusoid 30,000, omniglot 60,000, digits 60)
    first_order: bool = False
    learn_inner_lr: bool = False
    strategy: str = "auto"
    meta_lr: float | None = None  # the Adam learning rate of MAML, ANIL and ProtoNet (default 1e-3; sinusoid 2e-3)
    schedule: str | None = None  # of meta_lr over the iterations: constant (default) | cosine (sinusoid) | linear
    meta_step_size: float = 1.0  # Reptile's initial epsilon, annealed to meta_step_size_final
    meta_step_size_final: float = 0.0
    inner_optimizer: str | None = None  # Reptile: sgd | adam
    seed: int = 0
    model: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # how to read `data` when it is a file or folder of the user's (`archlab.data.load_data`)
    target: str | None = None
    data_format: str | None = None
    data_options: dict[str, Any] | None = None

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
        if self.algorithm == "anil" and self.learn_inner_lr:
            raise ConfigError("learn_inner_lr (Meta-SGD) is a MAML option; ANIL adapts its head with one inner_lr.")
        if self.algorithm == "protonet":
            given = [name for name, value in (("inner_steps", self.inner_steps), ("inner_lr", self.inner_lr),
                                              ("first_order", self.first_order),
                                              ("learn_inner_lr", self.learn_inner_lr),
                                              ("inner_optimizer", self.inner_optimizer),
                                              ("strategy", self.strategy != "auto")) if value not in (None, False)]
            if given:
                raise ConfigError(f"protonet has no inner loop; leave out {', '.join(given)} (options of the "
                                  "gradient-based learners maml, anil and reptile).")
        if not 0 <= self.meta_step_size_final <= 1 or not 0 < self.meta_step_size <= 1:
            raise ConfigError(f"The 'meta_step_size' and 'meta_step_size_final' parameters of MetaConfig must be in "
                              f"(0, 1] and [0, 1]. Got {self.meta_step_size} and {self.meta_step_size_final} instead.")
        if self.algorithm == "reptile" and (self.meta_lr is not None or self.schedule is not None):
            raise ConfigError("meta_lr and schedule set the Adam optimizer of maml, anil and protonet; Reptile "
                              "moves the weights itself (meta_step_size, meta_step_size_final).")
        if self.schedule is not None:
            check_choice("MetaConfig", "schedule", self.schedule, SCHEDULES)
        c = MetaConfig(**asdict(self))
        for key, value in meta_train_defaults(c.algorithm, c.data).items():
            if getattr(c, key) is None:
                setattr(c, key, value)
        if c.algorithm != "reptile":
            c.meta_lr = 1e-3 if c.meta_lr is None else c.meta_lr
            c.schedule = c.schedule or "constant"
        if c.algorithm == "protonet":  # no inner loop to configure
            return c
        if c.query is None:
            c.query = c.shots
        if c.inner_lr is None:
            c.inner_lr = REPTILE_INNER_LR.get(c.inner_optimizer, 1e-3)
        return c


def default_model(sampler, algorithm: str = "maml") -> tuple[str, dict[str, Any]]:
    """The papers' networks: an MLP 40-40 for sinusoids (started as in Finn's code: truncated normal
    weights of std 0.01, zero biases), for images the 4-block 64-filter conv
    net (3x3 conv, BatchNorm with batch statistics, ReLU, 2x2 max-pool; as many blocks as the
    image size allows, up to 4), an MLP 64-64 for feature vectors, a GRU for sequences.

    For ``protonet`` the embedding network: on images Snell's Conv-4, the same conv net without
    a classifier (``num_classes=0``: the flattened features are the embedding) and with BatchNorm's
    running statistics, as in Snell's code; otherwise the same networks with 64 output units."""
    shape = tuple(sampler.input_shape)
    out = sampler.output_dim
    if algorithm == "protonet":
        name, kwargs = default_model(sampler)
        if name == "cnn":
            kwargs.update(num_classes=0, track_running_stats=True)
        else:
            kwargs.update(num_classes=PROTONET_EMBEDDING)
        return name, kwargs
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


def data_kwargs(name: str, sampler, algorithm: str = "maml") -> dict[str, Any]:
    """The sizes a chosen model takes from the tasks (channels, image size, features, outputs;
    a prototypical network's embedding has `PROTONET_EMBEDDING` outputs)."""
    shape = tuple(sampler.input_shape)
    sizes: dict[str, Any] = {"num_classes": PROTONET_EMBEDDING if algorithm == "protonet" else sampler.output_dim}
    if len(shape) == 3:
        sizes.update(in_channels=shape[0], input_size=list(shape[1:]))
    elif len(shape) == 1:
        sizes.update(in_features=shape[0], input_dim=shape[0])
    else:
        sizes.update(input_dim=shape[-1])
    params = model_info(name).parameters
    return {k: v for k, v in sizes.items() if k in params}


Learner = MAML | Reptile | ProtoNet


def build_learner(model: nn.Module, config: MetaConfig, kind: str) -> Learner:
    if config.algorithm == "maml":
        return MAML(model, config.inner_lr, config.inner_steps, config.first_order,
                    learn_inner_lr=config.learn_inner_lr, kind=kind, strategy=config.strategy)
    if config.algorithm == "anil":
        return ANIL(model, config.inner_lr, config.inner_steps, config.first_order, kind=kind,
                    strategy=config.strategy)
    if config.algorithm == "protonet":
        if kind != "classification":
            raise ConfigError(f"protonet classifies; '{config.data}' gives {kind} tasks.")
        return ProtoNet(model)
    return Reptile(model, config.inner_lr, config.inner_steps, config.meta_step_size, config.inner_optimizer,
                   meta_step_size_final=config.meta_step_size_final, total_iterations=config.iterations, kind=kind,
                   strategy=config.strategy)


def training_threads(learner: Learner, sampler, meta_batch: int, threads: int) -> int:
    """Intra-op threads for meta-training: 1 when a MAML (or ANIL) runs its task batches under
    `vmap` on a CPU, which it does only for a tiny model and tasks (`archlab.meta.strategy`), whose
    kernels are too small to split across cores; else `threads` (torch's current setting)."""
    if not isinstance(learner, MAML) or next(learner.model.parameters()).device.type != "cpu":
        return threads
    tasks = sampler.sample(meta_batch, torch.Generator().manual_seed(0))
    return 1 if learner.choose_strategy(tasks) == "vmap" else threads


def saved_settings(path: Path) -> tuple[MetaConfig, str]:
    """The `MetaConfig` and task kind in the ``meta`` entry of a meta-training checkpoint's config.json."""
    saved = read_config(path).get("meta")
    if not isinstance(saved, dict) or "algorithm" not in saved:
        raise CheckpointError(f"{path} was not written by `archlab meta-train` (config.json has no 'meta').")
    saved = dict(saved)
    kind = saved.pop("kind", "classification")
    if saved["algorithm"] != "reptile":  # saved before the outer schedule was an option: it was constant
        saved.setdefault("schedule", "constant")
    return MetaConfig(**saved), kind


def load_learner(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
                 ) -> tuple[Learner, MetaConfig, str]:
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
               checkpoint_every: int | None = None, time_limit: float | None = None, log_every: int = 10,
               quiet: bool = False, callbacks: tuple = (), log: Any = None, precision: str | None = None,
               compile: bool | None = None, backend: str | None = None, sync_batchnorm: bool | None = None
               ) -> JobResult:
    """Meta-train with `fit`, checkpoint to `out`, and score the meta-test split.

    One step of the run is one outer update on `meta_batch` tasks; the history logs the training
    statistics' means every `log_every` steps, and a checkpoint is written at the first history row
    after each `TrainConfig.checkpoint_interval` seconds (and at the end), or also every
    `checkpoint_every` steps when given. A tiny model whose task batches run under `vmap` on a CPU
    trains on one intra-op thread (`training_threads`).
    `resume=True` continues the run in `out` with its own settings (an option left unset takes the saved
    value, not today's default; only `iterations` may change),
    or starts one when `out` holds none; `overwrite=True` replaces a run already there. `time_limit`
    (seconds) stops early, saved and resumable, without the meta-test (``stopped="time_limit"``).
    `callbacks` go to `fit`; `precision`, `compile`, `backend` and `sync_batchnorm` are `TrainConfig`'s.
    Under torchrun each rank adapts to its part of every meta-batch and the meta-gradients are
    all-reduced (`archlab.engine.distributed`). `log` (``"tensorboard:DIR"``, see
    `archlab.engine.loggers`) also writes the curves, the hyperparameters, the final metrics and the
    meta-test scores against adaptation steps.
    """
    started = time.perf_counter()
    loggers = make_loggers(log, overwrite=overwrite)
    check_outside(loggers, out)
    if resume and is_checkpoint(out):  # what was left unset continues as the run was saved, not as today's default
        saved, _ = saved_settings(Path(out))
        config = replace(config, **{k: getattr(saved, k) for k, v in asdict(config).items()
                                    if v is None and getattr(saved, k) is not None})
    config = config.resolved()
    out = Path(out)
    dev = resolve_device(device)
    sampler = task_sampler(config.data, split="train", ways=config.ways, shots=config.shots,
                           query=config.query, data_dir=data_dir, seed=config.seed, **reading(config))
    kind = sampler.kind
    resume = resume and is_checkpoint(out)
    if resume:
        saved, kind = saved_settings(out)
        free = {"iterations", "model", "model_kwargs"}
        differ = sorted(k for k, v in asdict(config).items() if k not in free and getattr(saved, k) != v)
        if differ:
            raise ConfigError(f"--resume continues the run in {out} with its own settings; these differ from the "
                              f"saved ones: {', '.join(differ)} (only --iterations may change).")
        # the model as the checkpoint records it (every hyperparameter; the former defaults for an old one)
        recorded = read_config(out)["model"]
        config.model, config.model_kwargs = recorded["name"], saved_kwargs(recorded)
    else:
        seed_everything(config.seed)
        name, kwargs = (default_model(sampler, config.algorithm) if config.model is None
                        else (config.model, data_kwargs(config.model, sampler, config.algorithm)))
        kwargs.update(config.model_kwargs)
        config.model, config.model_kwargs = name, kwargs
    # On resume fit loads the weights into this freshly built model (and restores the RNG).
    learner = build_learner(create_model(config.model, **config.model_kwargs).to(dev), config, kind)
    if config.algorithm == "protonet" and eval_steps:
        raise ConfigError("protonet has no inner steps to score; leave out eval_steps (--eval-steps).")
    steps = None if config.algorithm == "protonet" else eval_steps or [config.inner_steps]
    task = meta_task(learner, eval_tasks=eval_tasks, eval_steps=steps, eval_seed=config.seed)
    train_config = TrainConfig(steps=config.iterations, batch_size=config.meta_batch, optimizer="adam",
                               lr=config.meta_lr or 1e-3, schedule=config.schedule or "constant",  # Reptile: unused
                               eval_every=log_every, checkpoint_every=checkpoint_every,
                               time_limit=time_limit, seed=config.seed, device=device, quiet=quiet,
                               **{k: v for k, v in (("precision", precision), ("compile", compile),
                                                    ("backend", backend), ("sync_batchnorm", sync_batchnorm))
                                  if v is not None})
    meta = {"model": learner.model.archlab_config, "data": None, "task": None,
            "meta": {**asdict(config), "kind": kind}, "train": asdict(train_config)}

    # built before training, so that a meta-test split too small for the tasks is refused at once
    test = task_sampler(config.data, split="test", ways=config.ways, shots=config.shots,
                        query=15 if kind == "classification" else 100, data_dir=data_dir, **reading(config),
                        seed=config.seed) if eval_tasks > 0 else None

    def final_metrics(model: nn.Module, result) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if result.stopped is None and test is not None:
            metrics = evaluate(model, task, EpisodeSplit(test), prefix="test_")
        metrics["iterations"] = result.steps
        return {"metrics": metrics, "details": {}}

    threads = torch.get_num_threads()
    with closing(loggers):
        try:
            torch.set_num_threads(training_threads(learner, sampler, config.meta_batch, threads))
            result = fit(learner.model, task, {"train": EpisodeSplit(sampler)}, train_config, out=out,
                         resume=resume, overwrite=overwrite, meta=meta, callbacks=(*callbacks, *loggers),
                         final_metrics=final_metrics)
        finally:
            torch.set_num_threads(threads)
        hparams = {**{k: v for k, v in asdict(config).items() if k != "model_kwargs"}, "eval_tasks": eval_tasks,
                   **{f"model.{k}": v for k, v in config.model_kwargs.items()}}
        for logger in loggers:
            for name, curve in adaptation_curves(result.metrics["metrics"]).items():
                logger.log_scalars(f"adaptation/{name}", curve)
            logger.log_final(result.metrics["metrics"], hparams)
    return JobResult(result.metrics["metrics"], str(out), time.perf_counter() - started, model=learner.model,
                     history=result.history, stopped=result.stopped)


def adaptation_curves(metrics: dict[str, Any]) -> dict[str, dict[int, float]]:
    """The meta-test scores against the inner steps taken: ``test_accuracy_step5`` is the point
    (5, value) of the curve ``test_accuracy``."""
    curves: dict[str, dict[int, float]] = {}
    for key, value in metrics.items():
        match = re.fullmatch(r"(.+)_step(\d+)", key)
        if match is not None:
            curves.setdefault(match[1], {})[int(match[2])] = value
    return curves


def meta_evaluate(checkpoint: str | os.PathLike, *, data: str | None = None, ways: int | None = None,
                  shots: int | None = None, query: int | None = None, tasks: int = 600,
                  steps: list[int] | None = None, split: str = "test", inner_lr: float | None = None,
                  data_dir=None, device: str = "auto", seed: int = 0, target: str | None = None,
                  data_format: str | None = None, data_options: dict[str, Any] | None = None) -> JobResult:
    """Adapt the checkpoint's model to `tasks` tasks of `split` and score their query sets after
    each of `steps`: ``{"test_accuracy_step1": ..., "test_accuracy_step1_ci95": ...}``. A
    prototypical network is scored at any number of ways: ``{"test_accuracy": ..., ...}``. Without
    `data` the tasks come from the data it was meta-trained on, read as it was; `target`,
    `data_format` and `data_options` say how to read a `data` file or folder of the user's."""
    started = time.perf_counter()
    learner, config, kind = load_learner(checkpoint, device)
    protonet = isinstance(learner, ProtoNet)
    if protonet and (steps or inner_lr is not None):
        raise ConfigError(f"checkpoint {checkpoint} is a prototypical network, which has no inner loop; leave out "
                          "--inner-steps and --inner-lr.")
    if inner_lr is not None:
        learner.inner_lr = float(inner_lr)
    given = {"target": target, "data_format": data_format, "data_options": data_options}
    options = reading(config) if data is None else given
    data = data or config.data
    sampler = task_sampler(data, split=split, ways=ways or config.ways, shots=shots or config.shots,
                           query=query or (15 if kind == "classification" else 100), data_dir=data_dir,
                           seed=config.seed, **options)
    if sampler.kind != kind:
        raise ConfigError(f"checkpoint {checkpoint} was meta-trained on {kind} tasks ('{config.data}'); "
                          f"'{data}' gives {sampler.kind} tasks.")
    if kind == "classification" and not protonet and sampler.output_dim != config.ways:
        raise ConfigError(f"checkpoint {checkpoint} has a {config.ways}-way output layer; got --ways "
                          f"{sampler.output_dim}.")
    if protonet:
        scores = learner.evaluate(sampler, tasks, seed=seed)
    else:
        scores = learner.evaluate(sampler, tasks, steps or [config.inner_steps], seed=seed)
    return JobResult({f"{split}_{k}": v for k, v in scores.items()}, str(checkpoint), time.perf_counter() - started,
                     model=learner.model)
