"""`fit` and `evaluate`: a training loop that is a helper, not a framework.

Everything family-specific lives in the `Task`; `fit` only iterates batches,
steps the optimizers and schedules, evaluates, stops early, checkpoints and
resumes. A user can always write their own loop around the same pieces.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, NonFiniteLossError, TrainingInterrupted
from ..utils import resolve_device
from .checkpoint import (check_free_space, estimate_checkpoint_bytes, is_checkpoint, load_weights,
                         read_training_state, read_weights, run_directory, save_checkpoint)
from .optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_scheduler
from .progress import ProgressReporter
from .tasks import Task


@dataclass
class TrainConfig:
    """Training hyperparameters. Give `epochs` or `steps` (steps win when both are set)."""

    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 64
    eval_batch_size: int = 512
    optimizer: str = "adamw"  # adamw | adam | sgd (with momentum)
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    eps: float = 1e-8  # Adam / AdamW only: added to the denominator
    schedule: str = "constant"  # constant | cosine | linear, per step
    warmup_steps: int = 0
    grad_clip: float | None = None  # max global gradient norm
    patience: int | None = None  # early stopping: evaluations without improvement; restores the best weights
    monitor: str | None = None  # metric watched for early stopping; the task's default when None
    eval_every: int | None = None  # steps between evaluations; every epoch when None
    checkpoint_every: int | None = None  # steps between extra mid-epoch checkpoints
    checkpoint_interval: float = 10.0  # seconds: evaluations save a checkpoint when this long has passed
    seed: int = 0
    device: str = "auto"
    quiet: bool = False

    def validate(self) -> None:
        def check(name: str, ok: bool, rule: str) -> None:
            if not ok:
                raise ConfigError(f"{name} must be {rule}; got {getattr(self, name)!r}.")

        for name in ("epochs", "steps", "eval_every", "checkpoint_every", "patience"):
            value = getattr(self, name)
            check(name, value is None or (isinstance(value, int) and value >= 1), "an int >= 1")
        for name in ("batch_size", "eval_batch_size"):
            value = getattr(self, name)
            check(name, isinstance(value, int) and value >= 1, "an int >= 1")
        check("lr", isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr), "a number > 0")
        check("weight_decay", self.weight_decay >= 0, "a number >= 0")
        check("momentum", 0 <= self.momentum < 1, "in [0, 1)")
        check("eps", isinstance(self.eps, (int, float)) and self.eps > 0 and math.isfinite(self.eps), "a number > 0")
        check("warmup_steps", isinstance(self.warmup_steps, int) and self.warmup_steps >= 0, "an int >= 0")
        check("grad_clip", self.grad_clip is None or self.grad_clip > 0, "a number > 0")
        check("checkpoint_interval", self.checkpoint_interval >= 0, "a number >= 0")
        check("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}")
        check("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}")


@dataclass
class FitState:
    """Where the loop is; saved in ``training_state.pt`` so a run can resume."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    total_steps: int = 0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    steps: int
    best: float | None
    best_step: int | None
    stopped_early: bool


def evaluate(model: nn.Module, task: Task, split: Any, *, prefix: str = "", batch_size: int = 512
             ) -> dict[str, Any]:
    """Score one split with the task; keys get `prefix` (e.g. ``test_``)."""
    metrics = task.evaluate(model, split, batch_size)
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def default_meta(model: nn.Module, data: Any, config: TrainConfig) -> dict[str, Any]:
    return {
        "model": getattr(model, "archlab_config", None),
        "data": data.spec.to_dict() if hasattr(data, "spec") else None,
        "train": asdict(config),
    }


class _StopFlag:
    """First Ctrl-C asks the loop to save and stop after the current step; a second one
    interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def fit(
    model: nn.Module,
    task: Task,
    data: Any,
    config: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    meta: dict[str, Any] | None = None,
    callbacks: tuple = (),
    extra_files: dict[str, bytes | str] | None = None,
) -> FitResult:
    """Train `model` on ``data["train"]``, evaluating on ``data["val"]``.

    With `out`, a checkpoint is written at an evaluation when `checkpoint_interval` seconds
    have passed since the last one, every `checkpoint_every` steps, on Ctrl-C and at the end
    (with `extra_files`, such as a tokenizer, beside it); `resume=True` continues from it and ends with the
    same weights as an uninterrupted run. A NaN/inf loss raises `NonFiniteLossError`
    and leaves the last good checkpoint untouched. `out` is locked for the whole run, and a
    checkpoint already there is replaced only with `overwrite` (see `run_directory`).

    `callbacks` are objects with optional ``on_step_end(state)`` / ``on_eval_end(state, row)``.
    """
    with run_directory(out, resume=resume, overwrite=overwrite):
        return _fit(model, task, data, config, out=out, resume=resume, meta=meta, callbacks=callbacks,
                    extra_files=extra_files)


def _fit(model, task, data, config, *, out, resume, meta, callbacks, extra_files) -> FitResult:
    config = config or TrainConfig()
    config.validate()
    if config.epochs is None and config.steps is None:
        config.epochs = 10
    out = Path(out) if out is not None else None
    device = resolve_device(config.device)
    model.to(device)
    train = data["train"].to(device)
    val = data.splits["val"].to(device) if "val" in getattr(data, "splits", {}) else None
    make_optimizer = partial(build_optimizer, name=config.optimizer, lr=config.lr,
                             weight_decay=config.weight_decay, momentum=config.momentum, eps=config.eps)
    optimizers = task.configure_optimizers(model, make_optimizer)
    steps_per_epoch = train.num_batches(config.batch_size)
    total = config.steps if config.steps is not None else config.epochs * steps_per_epoch
    schedulers = [build_scheduler(opt, config.schedule, total, config.warmup_steps) for opt in optimizers]
    meta = meta if meta is not None else default_meta(model, data, config)
    monitor = config.monitor or task.monitor
    state = FitState(total_steps=total)
    best_state: dict[str, torch.Tensor] | None = None
    torch.manual_seed(config.seed)

    if out is not None:
        check_free_space(out, estimate_checkpoint_bytes(model, optimizer_slots=1 if config.optimizer == "sgd" else 2,
                                                        best=config.patience is not None))
    if resume:
        if out is None or not is_checkpoint(out):
            raise ConfigError(f"--resume needs an existing checkpoint folder as --out; found none at {out}.")
        saved = read_training_state(out)
        if saved is None:
            raise CheckpointError(f"{out} has no training_state.pt to resume from.")
        load_weights(model, read_weights(out), out)
        for opt, s in zip(optimizers, saved["optimizers"]):
            opt.load_state_dict(s)
        for sched, s in zip(schedulers, saved["schedulers"]):
            sched.load_state_dict(s)
        torch.set_rng_state(saved["rng"])
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        for key in ("step", "epoch", "batch", "best", "best_step", "bad_evals", "history"):
            setattr(state, key, saved[key])
        if (out / "best_model.safetensors").is_file():
            best_state = {k: v.to(device) for k, v in read_weights(out, "best_model.safetensors").items()}

    last_save = time.perf_counter()

    def save() -> None:
        nonlocal last_save
        last_save = time.perf_counter()
        if out is None:
            return
        training_state = {
            **{k: v for k, v in asdict(state).items()},
            "optimizers": [opt.state_dict() for opt in optimizers],
            "schedulers": [s.state_dict() for s in schedulers],
            "rng": torch.get_rng_state(),
        }
        if device.type == "cuda":
            training_state["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_checkpoint(out, model, meta=meta, history=state.history, training_state=training_state,
                        best_state=best_state, extra_files=extra_files)

    def run_eval(train_loss: float) -> bool:
        """Evaluate, log and checkpoint; True when early stopping says stop."""
        nonlocal best_state
        row: dict[str, Any] = {"epoch": state.epoch, "step": state.step, "lr": optimizers[0].param_groups[0]["lr"],
                               "train_loss": train_loss}
        task.calibrate(model, train, config.eval_batch_size)
        if val is not None:
            row.update(scalars(evaluate(model, task, val, prefix="val_", batch_size=config.eval_batch_size)))
        row["seconds"] = round(time.perf_counter() - started, 3)
        state.history.append(row)
        stop = False
        value = row.get(monitor)
        if value is not None:
            improved = state.best is None or (value > state.best if task.mode == "max" else value < state.best)
            if improved:
                state.best, state.best_step, state.bad_evals = float(value), state.step, 0
                if config.patience is not None:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state.bad_evals += 1
                stop = config.patience is not None and state.bad_evals >= config.patience
        progress.log(row)
        for cb in callbacks:
            if hasattr(cb, "on_eval_end"):
                cb.on_eval_end(state, row)
        if time.perf_counter() - last_save >= config.checkpoint_interval:
            save()
        return stop

    started = time.perf_counter()
    progress = ProgressReporter(total, quiet=config.quiet, start=state.step)
    stopped_early = False
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    try:
        with _StopFlag() as stop_flag:
            while state.step < total and not stopped_early:
                batches = train.batches(config.batch_size, shuffle=True, seed=config.seed * 1_000_003 + state.epoch,
                                        start=state.batch)
                for batch in batches:
                    model.train()
                    try:
                        loss = task.optimization_step(model, batch, optimizers, config.grad_clip)
                    except NonFiniteLossError as err:
                        saved_at = str(out) if out is not None and is_checkpoint(out) else None
                        raise NonFiniteLossError(state.step + 1, err.value, saved_at) from None
                    for sched in schedulers:
                        sched.step()
                    state.step += 1
                    state.batch += 1
                    loss_sum += loss
                    loss_count += 1
                    progress.step(state.step, {"loss": float(loss)})
                    for cb in callbacks:
                        if hasattr(cb, "on_step_end"):
                            cb.on_step_end(state)
                    if config.eval_every is not None and state.step % config.eval_every == 0:
                        stopped_early = run_eval(float(loss_sum) / max(1, loss_count))
                        loss_sum.zero_()
                        loss_count = 0
                    elif config.checkpoint_every is not None and state.step % config.checkpoint_every == 0:
                        save()
                    if stop_flag.requested:
                        save()
                        raise TrainingInterrupted(state.step, str(out) if out is not None else None)
                    if state.step >= total or stopped_early:
                        break
                if state.batch >= steps_per_epoch:
                    state.epoch += 1
                    state.batch = 0
                    if config.eval_every is None and not stopped_early:
                        stopped_early = run_eval(float(loss_sum) / max(1, loss_count))
                        loss_sum.zero_()
                        loss_count = 0
            if not state.history or state.history[-1]["step"] != state.step:
                run_eval(float(loss_sum) / max(1, loss_count))
    finally:
        progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    state.finished = True
    save()
    return FitResult(state.history, state.step, state.best, state.best_step, stopped_early)
