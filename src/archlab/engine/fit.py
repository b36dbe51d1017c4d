"""`fit` and `evaluate`: a training loop that is a helper, not a framework.

Everything family-specific lives in the `Task`; `fit` only iterates batches,
steps the optimizers and schedules, evaluates, stops early, checkpoints and
resumes. It is made of parts a user can take to write their own loop:

- `FitState`: where the loop is (step, epoch, best metric, history), all a resume needs;
- `Loop`: the epoch loop, one `train_step` and one `evaluate` at a time;
- `EarlyStopping`: the watched metric, patience and the best weights;
- `Checkpointer`: writes the checkpoint folder and restores a run from it;
- callbacks (`archlab.engine.callbacks`): the progress display, the time limit, the user's.

Meta-learning runs through the same loop: its task's step is one outer update on a batch of
tasks drawn from an episodes split (`archlab.data.episodes.EpisodeSplit`).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, DivergenceError, NonFiniteLossError, TrainingInterrupted
from ..utils import resolve_device
from ..validation import check_choice, check_float, check_int
from .distributed import (BACKENDS, Shard, StepAgreement, broadcast_module, broadcast_object, env_world, join,
                          rank_device, shard_batch)
from .acceleration import PRECISIONS, Precision, compile_model, is_compile_error, uncompile
from .callbacks import CallbackList, TimeLimit
from .checkpoint import (check_free_space, check_output_folder, estimate_checkpoint_bytes, is_checkpoint,
                         load_weights, read_training_state, read_weights, run_directory, save_checkpoint)
from .optim import OPTIMIZERS, SCHEDULES, build_optimizer, build_scheduler
from .progress import ProgressReporter
from .tasks import Task, check_gradients


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
    min_lr_ratio: float = 0.0  # cosine/linear decay ends at min_lr_ratio * lr (nanoGPT: 0.1)
    grad_clip: float | None = None  # max global gradient norm
    patience: int | None = None  # early stopping: evaluations without improvement; restores the best weights
    monitor: str | None = None  # metric watched for early stopping; the task's default when None
    eval_every: int | None = None  # steps between evaluations; every epoch when None
    checkpoint_every: int | None = None  # steps between extra mid-epoch checkpoints
    checkpoint_interval: float = 10.0  # seconds: evaluations save a checkpoint when this long has passed
    time_limit: float | None = None  # seconds of training in this call; then save (resumable) and stop
    seed: int = 0
    device: str = "auto"
    quiet: bool = False
    precision: str = "32"  # 32 | 64 (all float64) | bf16 | 16-mixed (CUDA): the forward passes' autocast dtype
    compile: bool = False  # torch.compile the model (eager after one warning where it cannot)
    backend: str = "auto"  # torch.distributed backend under torchrun: auto (nccl on CUDA, gloo on CPU) | gloo | nccl
    sync_batchnorm: bool = False  # under torchrun: BatchNorm statistics over every rank's examples (CUDA)

    def validate(self) -> None:
        """Every field checked, in `archlab.validation`'s one message style."""
        owner = "TrainConfig"
        for name in ("epochs", "steps", "eval_every", "checkpoint_every", "patience"):
            check_int(owner, name, getattr(self, name), minimum=1, optional=True)
        for name in ("batch_size", "eval_batch_size"):
            check_int(owner, name, getattr(self, name), minimum=1)
        check_float(owner, "lr", self.lr, low=0, low_open=True)
        check_float(owner, "weight_decay", self.weight_decay, low=0)
        check_float(owner, "momentum", self.momentum, low=0, high=1, high_open=True)
        check_float(owner, "eps", self.eps, low=0, low_open=True)
        check_int(owner, "warmup_steps", self.warmup_steps, minimum=0)
        check_float(owner, "min_lr_ratio", self.min_lr_ratio, low=0, high=1)
        check_float(owner, "grad_clip", self.grad_clip, low=0, low_open=True, optional=True)
        check_float(owner, "checkpoint_interval", self.checkpoint_interval, low=0)
        check_float(owner, "time_limit", self.time_limit, low=0, low_open=True, optional=True)
        check_choice(owner, "optimizer", self.optimizer, OPTIMIZERS)
        check_choice(owner, "schedule", self.schedule, SCHEDULES)
        check_choice(owner, "precision", self.precision, PRECISIONS)
        check_choice(owner, "backend", self.backend, BACKENDS)
        for name in ("compile", "sync_batchnorm"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"The '{name}' parameter of {owner} must be a bool. Got {getattr(self, name)!r} "
                                  "instead.")


@dataclass
class FitState:
    """Where the loop is; saved in ``training_state.pt`` so a run can resume.

    `window` sums each training statistic (``loss``, and any other the task's step returns) over the
    `window_steps` steps since the last evaluation, which logs their means as ``train_<name>``.
    `stopped` says why the run ended before `total_steps`: ``"early_stopping"``, ``"time_limit"``, or
    the reason a callback set. `last` holds the statistics of the latest step (not saved).
    """

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    total_steps: int = 0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    window: dict[str, float] = field(default_factory=dict)
    window_steps: int = 0
    stopped: str | None = None
    start_loss: float | None = None  # the mean loss of the first `DIVERGENCE_WARMUP` steps
    last: dict[str, float] = field(default_factory=dict)

    #: what a resumed run takes back from the checkpoint (`total_steps` follows the new config)
    RESUMED = ("step", "epoch", "batch", "best", "best_step", "bad_evals", "history")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "last"}


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    steps: int
    best: float | None
    best_step: int | None
    stopped: str | None = None  # see `FitState.stopped`
    metrics: dict[str, Any] | None = None  # what `final_metrics` returned, also written to metrics.json

    @property
    def stopped_early(self) -> bool:
        return self.stopped == "early_stopping"


def evaluate(model: nn.Module, task: Task, split: Any, *, prefix: str = "", batch_size: int = 512
             ) -> dict[str, Any]:
    """Score one split with the task; keys get `prefix` (e.g. ``test_``)."""
    metrics = task.evaluate(model, split, batch_size)
    return {f"{prefix}{k}": v for k, v in metrics.items()}


def move_split(split: Any, device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """`split` on `device`, with its floating-point tensors converted to `dtype` when one is given (a
    float64 run, `archlab.engine.acceleration.precision_dtype`); a split whose ``to`` takes only a
    device is moved as before."""
    return split.to(device) if dtype is None else split.to(device, dtype)


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


class EarlyStopping:
    """Watches `monitor` in each evaluation row: records the best value and its step in the state,
    keeps a copy of the best weights when `patience` is set, and says when `patience` evaluations
    in a row did not improve on it."""

    def __init__(self, monitor: str, mode: str, patience: int | None):
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, state: FitState, row: dict[str, Any], model: nn.Module) -> bool:
        """Record `row`; True when the run should stop."""
        value = row.get(self.monitor)
        if value is None:
            return False
        if state.best is None or (value > state.best if self.mode == "max" else value < state.best):
            state.best, state.best_step, state.bad_evals = float(value), state.step, 0
            if self.patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        state.bad_evals += 1
        return self.patience is not None and state.bad_evals >= self.patience


class Checkpointer:
    """The run's checkpoint folder (`archlab.engine.checkpoint`): `save` writes the weights, the
    loop's state, the optimizers', schedulers' and RNG states, the history, the task's own files and
    `extra_files`; `restore` puts all of it back into a `Loop`. Without a folder it only keeps time."""

    def __init__(self, out: str | Path | None, meta: dict[str, Any], extra_files: dict[str, bytes | str] | None,
                 interval: float, *, writer: bool = True):
        self.out = Path(out) if out is not None else None
        self.writer = writer  # under torchrun only rank 0 writes; the others read on resume
        self.meta = meta
        self.extra_files = dict(extra_files or {})
        self.interval = interval
        self.last_time = time.perf_counter()
        self.last_step: int | None = None

    def due(self) -> bool:
        return time.perf_counter() - self.last_time >= self.interval

    def saved_at(self) -> str | None:
        return str(self.out) if self.out is not None and is_checkpoint(self.out) else None

    def save(self, loop: Loop, metrics: dict[str, Any] | None = None) -> None:
        self.last_time = time.perf_counter()
        self.last_step = loop.state.step
        if self.out is None or not self.writer:
            return
        training_state = {
            **loop.state.to_dict(),
            "optimizers": [opt.state_dict() for opt in loop.optimizers],
            "schedulers": [s.state_dict() for s in loop.schedulers],
            "rng": torch.get_rng_state(),
        }
        if loop.device.type == "cuda":
            training_state["cuda_rng"] = torch.cuda.get_rng_state(loop.device)
        if loop.precision.scaler is not None:
            training_state["grad_scaler"] = loop.precision.scaler.state_dict()
        save_checkpoint(self.out, loop.model, meta=self.meta, metrics=metrics, history=loop.state.history,
                        training_state=training_state, best_state=loop.early_stopping.best_state,
                        extra_files={**self.extra_files, **loop.task.checkpoint_files()})

    def check_target(self, resume: bool) -> None:
        if self.writer and self.out is not None and not resume and self.out.exists() and not is_checkpoint(self.out):
            raise ConfigError(f"{self.out} exists and is not an archlab checkpoint; refusing to overwrite it. "
                              "Choose another --out.")

    def restore(self, loop: Loop) -> None:
        out = self.out
        if out is None or not is_checkpoint(out):
            raise ConfigError(f"--resume needs an existing checkpoint folder as --out; found none at {out}.")
        saved = read_training_state(out)
        if saved is None:
            raise CheckpointError(f"{out} has no training_state.pt to resume from.")
        missing = [k for k in (*FitState.RESUMED, "optimizers", "schedulers", "rng") if k not in saved]
        if missing or len(saved["optimizers"]) != len(loop.optimizers):
            raise CheckpointError(f"{out}/training_state.pt was not written by this version of fit for this task "
                                  f"(missing {missing or 'nothing'}, {len(saved.get('optimizers', []))} optimizer "
                                  f"states for {len(loop.optimizers)} optimizers); the run cannot be resumed.")
        load_weights(loop.model, read_weights(out), out)
        loop.task.load_checkpoint_files(out)
        for opt, s in zip(loop.optimizers, saved["optimizers"]):
            opt.load_state_dict(s)
        for sched, s in zip(loop.schedulers, saved["schedulers"]):
            sched.load_state_dict(s)
        torch.set_rng_state(saved["rng"])
        if loop.device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], loop.device)
        if loop.precision.scaler is not None and "grad_scaler" in saved:
            loop.precision.scaler.load_state_dict(saved["grad_scaler"])
        for key in FitState.RESUMED:
            setattr(loop.state, key, saved[key])
        loop.state.window = dict(saved.get("window", {}))
        loop.state.start_loss = saved.get("start_loss")
        loop.state.window_steps = int(saved.get("window_steps", 0))
        if (out / "best_model.safetensors").is_file():
            loop.early_stopping.best_state = {k: v.to(loop.device)
                                              for k, v in read_weights(out, "best_model.safetensors").items()}


#: Divergence: after its first `DIVERGENCE_WARMUP` steps, a run whose loss is more than
#: `DIVERGENCE_FACTOR` times the larger of 1 and the magnitude of their mean has diverged: a loss
#: that high has left every training curve of a working run, long before it turns NaN.
DIVERGENCE_WARMUP = 5
DIVERGENCE_FACTOR = 1e3


def step_statistics(out: Any) -> dict[str, float]:
    """A step's statistics: those a task's `optimization_step` returned, or its loss."""
    return {k: float(v) for k, v in (out.items() if isinstance(out, Mapping) else (("loss", out),))}


class _TrainingStep(nn.Module):
    """The task's loss of a batch as a module's forward, so that `DistributedDataParallel` wraps the
    whole training step, whichever of the model's methods the task calls (Lightning's device)."""

    def __init__(self, model: nn.Module, task: Task):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, batch: Any) -> torch.Tensor:
        return self.task.training_step(self.model, batch)


class Loop:
    """The epoch loop over ``data["train"]``, evaluating on ``data["val"]`` when there is one.

    `run` repeats `run_epoch` until the configured steps are done or the run is stopped; an epoch
    is `train_step` on each batch, with `evaluate` every `eval_every` steps or at the epoch's end.
    Under torchrun each rank trains on its shard of every batch (`archlab.engine.distributed`).
    """

    def __init__(self, model: nn.Module, task: Task, data: Any, config: TrainConfig, *, checkpointer: Checkpointer,
                 callbacks: Iterable[Any] = ()):
        self.task, self.config = task, config
        device = resolve_device(config.device)
        self.world = join(config.backend, device)
        self.device = rank_device(device, self.world)
        self.precision = Precision(config.precision, self.device)
        # a task that does not step itself is stepped here: under DDP, with autocast and a GradScaler
        self.plain_step = type(task).optimization_step is Task.optimization_step
        if self.precision.scaler is not None and not self.plain_step:
            raise ConfigError(f"--precision 16-mixed scales the loss of a task trained by one loss and one optimizer; "
                              f"{type(task).__name__} steps its own optimizers. Use --precision bf16.")
        if config.sync_batchnorm:
            from .acceleration import check_sync_batchnorm

            model = check_sync_batchnorm(model, self.device, self.world.size)
        self.model = model
        dtype = self.precision.true_dtype
        model.to(device=self.device, dtype=dtype)
        splits: Mapping[str, Any] = data.splits if hasattr(data, "splits") else data
        self.train = move_split(task.train_split(data["train"]), self.device, dtype)
        self.val = move_split(splits["val"], self.device, dtype) if "val" in splits else None
        make_optimizer = partial(build_optimizer, name=config.optimizer, lr=config.lr,
                                 weight_decay=config.weight_decay, momentum=config.momentum, eps=config.eps)
        self.optimizers = task.configure_optimizers(model, make_optimizer)
        self.steps_per_epoch = self.train.num_batches(config.batch_size)
        total = config.steps if config.steps is not None else config.epochs * self.steps_per_epoch
        self.schedulers = [build_scheduler(opt, config.schedule, total, config.warmup_steps, config.min_lr_ratio)
                           for opt in self.optimizers]
        self.state = FitState(total_steps=total)
        self.early_stopping = EarlyStopping(config.monitor or task.monitor, task.mode, config.patience)
        self.checkpointer = checkpointer
        checkpointer.writer = self.world.main
        limit = () if config.time_limit is None else (TimeLimit(config.time_limit),)
        self.callbacks = CallbackList([ProgressReporter(quiet=config.quiet or not self.world.main), *callbacks,
                                       *limit])
        self.stop_flag: _StopFlag | None = None
        self.interrupted = False  # Ctrl-C seen (under torchrun: on any rank, agreed in a step's all-reduce)
        # under torchrun: a callback's stop request on this rank, held until a step's all-reduce agrees on it
        self.requested: str | None = None
        self.agreed: tuple[dict[str, float], dict[str, bool]] | None = None  # the current step's agreement
        self.started = time.perf_counter()  # the rows' "seconds" count from here, reset by `run`
        self.replicated = bool(getattr(self.train, "full_batch", False))
        self.ddp: nn.Module | None = None
        if self.world.distributed:
            self.agreement = StepAgreement(self.device)
            if self.plain_step:
                from torch.nn.parallel import DistributedDataParallel

                self.ddp = DistributedDataParallel(
                    _TrainingStep(model, task), device_ids=[self.device.index] if self.device.type == "cuda" else None)
            else:
                broadcast_module(model)
        self.compiled = compile_model(model, self.device) if config.compile else False

    def stop_requests(self) -> dict[str, bool]:
        """This rank's stop requests for the next `StepAgreement`: Ctrl-C, and a callback's reason."""
        return {"interrupt": self.stop_flag is not None and self.stop_flag.requested,
                "time_limit": self.requested == "time_limit",
                "other": self.requested not in (None, "time_limit")}

    def optimize(self, shard: Shard) -> Any:
        """One update on this rank's shard: the task's own `optimization_step` (under autocast), or,
        for a task trained by one loss, the loss's backward (through DDP under torchrun, weighted by
        the shard's share of the batch, scaled for float16) and one optimizer step. Under DDP the
        step's `StepAgreement` runs during the backward; a NaN loss on any rank is seen in it, and
        every rank stops at this step before its weights change."""
        if not self.plain_step:
            with self.precision.autocast():
                return self.task.optimization_step(self.model, shard.batch, self.optimizers, self.config.grad_clip)
        (optimizer,) = self.optimizers
        with self.precision.autocast():
            loss = (self.ddp(shard.batch) if self.ddp is not None
                    else self.task.training_step(self.model, shard.batch))
        raw = loss.detach()
        if self.ddp is None:
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(step=-1, value=value)
        else:
            work = self.agreement.start({"loss": raw}, shard.count, self.stop_requests())
        optimizer.zero_grad(set_to_none=True)
        if self.ddp is not None:  # DDP averages over ranks: weighted, the average is the batch's mean
            weight = shard.weight(self.world.size)
            if weight != 1.0:
                loss = loss * weight
        scaler = self.precision.scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if self.ddp is not None:
            self.agreed = work.wait()
            mean = self.agreed[0]["loss"]
            if not math.isfinite(mean):
                raise NonFiniteLossError(step=-1, value=mean)
        if scaler is not None:  # a step with inf gradients is skipped by the scaler, which lowers its scale
            scaler.unscale_(optimizer)
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            check_gradients(self.model.parameters(), self.config.grad_clip)
            optimizer.step()
        return raw

    def train_step(self, batch: Any) -> None:
        """One optimizer step (the task's), the schedules' step, and the step's statistics (under
        torchrun: their means over every rank's examples, agreed with the stop requests)."""
        state = self.state
        if not self.model.training:  # after an evaluation; not every step, as it walks every module
            self.model.train()
        shard = shard_batch(batch, self.world, replicated=self.replicated)
        self.agreed = None
        try:
            try:
                out = self.optimize(shard)
            except Exception as err:
                if not (self.compiled and is_compile_error(err)):
                    raise
                uncompile(self.model, err)
                self.compiled = False
                out = self.optimize(shard)
        except DivergenceError as err:
            raise DivergenceError(state.step + 1, err.what, self.checkpointer.saved_at()) from None
        except NonFiniteLossError as err:
            raise NonFiniteLossError(state.step + 1, err.value, self.checkpointer.saved_at()) from None
        for sched in self.schedulers:
            sched.step()
        state.step += 1
        state.batch += 1
        if not self.world.distributed:
            state.last = step_statistics(out)
            self.check_divergence(state.last.get("loss"))
            self.record(state.last)
            self.callbacks.on_step_end(state)
            self.interrupted = self.stop_flag is not None and self.stop_flag.requested
            return
        if self.agreed is None:  # a task that steps itself: its statistics are known after its step
            self.agreed = self.agreement.reduce(step_statistics(out), shard.count, self.stop_requests())
        state.last, agreed = self.agreed
        self.check_divergence(state.last.get("loss"))
        self.record(state.last)
        self.callbacks.on_step_end(state)
        # a stop a callback asks for now is agreed in the next step's all-reduce, which every rank joins;
        # until then this rank goes on as the others do
        self.requested, state.stopped = self.requested or state.stopped, None
        self.interrupted = agreed["interrupt"]
        if (agreed["time_limit"] or agreed["other"]) and state.step < state.total_steps:  # else the run is done
            own = self.requested not in (None, "time_limit")
            state.stopped = ("time_limit" if agreed["time_limit"] else self.requested if own
                             else "stopped on another rank")

    def record(self, stats: dict[str, float]) -> None:
        state = self.state
        for k, v in stats.items():
            state.window[k] = state.window.get(k, 0.0) + v
        state.window_steps += 1

    def check_divergence(self, loss: float | None) -> None:
        """Stop a run whose loss has grown far above its start (see `DIVERGENCE_FACTOR`)."""
        state = self.state
        if loss is None:
            return
        if state.step <= DIVERGENCE_WARMUP:
            state.start_loss = (state.start_loss or 0.0) + loss / DIVERGENCE_WARMUP
            return
        if state.start_loss is not None and abs(loss) > DIVERGENCE_FACTOR * max(1.0, abs(state.start_loss)):
            raise DivergenceError(state.step, f"the loss {loss:.4g} is more than {DIVERGENCE_FACTOR:g} times its "
                                  f"start ({state.start_loss:.4g})", self.checkpointer.saved_at())

    def evaluate(self) -> bool:
        """Log a history row (the training statistics' means since the last row, then the validation
        metrics), update early stopping and checkpoint when due; True when early stopping says stop."""
        state, config = self.state, self.config
        row: dict[str, Any] = {"epoch": state.epoch, "step": state.step}
        if self.optimizers:
            row["lr"] = self.optimizers[0].param_groups[0]["lr"]
        row.update({f"train_{k}": v / max(1, state.window_steps) for k, v in state.window.items()})
        state.window, state.window_steps = {}, 0
        self.task.calibrate(self.model, self.train, config.eval_batch_size)
        if self.val is not None and self.world.main:  # the ranks' weights are equal: rank 0 scores for all
            row.update(scalars(evaluate(self.model, self.task, self.val, prefix="val_",
                                        batch_size=config.eval_batch_size)))
        if self.world.distributed:
            row = broadcast_object(row)
        bad = sorted(k for k, v in row.items()
                     if k.startswith("val_") and isinstance(v, float) and not math.isfinite(v))
        if bad:  # the weights that scored so are not kept as a good checkpoint
            raise DivergenceError(state.step, f"the validation metrics {', '.join(bad)} are not finite",
                                  self.checkpointer.saved_at())
        row["seconds"] = round(time.perf_counter() - self.started, 3)
        state.history.append(row)
        stop = self.early_stopping.update(state, row, self.model)
        self.callbacks.on_eval_end(state, row)
        if self.checkpointer.due():
            self.checkpointer.save(self)
        return stop

    def run_epoch(self) -> None:
        """The rest of the current epoch, from batch ``state.batch``; the order of an epoch's
        batches depends only on the seed and the epoch, so a resumed epoch sees the same ones."""
        state, config = self.state, self.config
        # a split that reads one rank's part of each batch does so (disjoint files); others are cut by shard_batch
        shard = ({"shard": (self.world.rank, self.world.size)}
                 if self.world.distributed and getattr(self.train, "reads_shards", False) else {})
        batches = self.train.batches(config.batch_size, shuffle=True, seed=config.seed * 1_000_003 + state.epoch,
                                     start=state.batch, **shard)
        for batch in batches:
            self.train_step(batch)
            if config.eval_every is not None and state.step % config.eval_every == 0 and self.evaluate():
                state.stopped = "early_stopping"
            if (config.checkpoint_every is not None and state.step % config.checkpoint_every == 0
                    and self.checkpointer.last_step != state.step):
                self.checkpointer.save(self)
            if self.interrupted:
                self.checkpointer.save(self)
                raise TrainingInterrupted(state.step, str(self.checkpointer.out)
                                          if self.checkpointer.out is not None else None)
            if state.step >= state.total_steps or state.stopped is not None:
                break
        if state.batch >= self.steps_per_epoch:
            state.epoch += 1
            state.batch = 0
            if config.eval_every is None and state.stopped != "early_stopping" and self.evaluate():
                state.stopped = "early_stopping"

    def run(self) -> None:
        """Epochs until the steps are done or the run is stopped. A finished run (not one stopped by
        its time limit or a callback, which must resume as if never stopped) ends with an evaluation
        of its last step and its best weights when early stopping kept them."""
        state = self.state
        self.started = time.perf_counter()
        self.callbacks.on_fit_start(state)
        try:
            with _StopFlag() as self.stop_flag:
                while state.step < state.total_steps and state.stopped is None:
                    self.run_epoch()
                if state.stopped in (None, "early_stopping") and (not state.history
                                                                  or state.history[-1]["step"] != state.step):
                    self.evaluate()
        finally:
            self.stop_flag = None
            self.callbacks.on_fit_end(state)
        if state.stopped in (None, "early_stopping"):
            if self.early_stopping.best_state is not None:
                self.model.load_state_dict(self.early_stopping.best_state)
            state.finished = True


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
    callbacks: Iterable[Any] = (),
    extra_files: dict[str, bytes | str] | None = None,
    final_metrics: Callable[[nn.Module, FitResult], dict[str, Any]] | None = None,
) -> FitResult:
    """Train `model` on ``data["train"]``, evaluating on ``data["val"]`` (`data`: a `Dataset` or a
    mapping of split names to splits).

    With `out`, a checkpoint is written at an evaluation when `checkpoint_interval` seconds
    have passed since the last one, every `checkpoint_every` steps, on Ctrl-C, when the time
    limit or a callback stops the run, and at the end (with `extra_files`, such as a tokenizer,
    beside it); `resume=True` continues from it and ends with the same weights as an
    uninterrupted run. A NaN/inf loss raises `NonFiniteLossError` and leaves the last good
    checkpoint untouched. `out` is locked for the whole run, and a checkpoint already there is
    replaced only with `overwrite` (see `archlab.engine.checkpoint.run_directory`).

    `final_metrics(model, result)` is called once training is over (best weights restored) and
    before the last checkpoint, which writes what it returns as ``metrics.json``; it is also
    ``result.metrics``. So the checkpoint is written once, with its metrics (and without them,
    before the error propagates, when `final_metrics` raises).

    `callbacks`: see `archlab.engine.callbacks` (a `Callback`, or any object with some of its hooks).
    """
    writer = env_world().main  # under torchrun, rank 0 holds the folder and writes to it
    if not writer:  # the others refuse what rank 0 refuses, before any of them waits for it in a collective
        check_output_folder(out, resume=resume, overwrite=overwrite)
    with run_directory(out if writer else None, resume=resume, overwrite=overwrite):
        return _fit(model, task, data, config, out=out, resume=resume, meta=meta, callbacks=callbacks,
                    extra_files=extra_files, final_metrics=final_metrics)


def _fit(model, task, data, config, *, out, resume, meta, callbacks, extra_files, final_metrics) -> FitResult:
    config = config or TrainConfig()
    config.validate()
    if config.epochs is None and config.steps is None:
        config.epochs = 10
    checkpointer = Checkpointer(out, meta if meta is not None else default_meta(model, data, config), extra_files,
                                config.checkpoint_interval)
    loop = Loop(model, task, data, config, checkpointer=checkpointer, callbacks=callbacks)
    torch.manual_seed(config.seed)
    checkpointer.check_target(resume)
    if out is not None and checkpointer.writer:
        check_free_space(out, estimate_checkpoint_bytes(model, optimizer_slots=1 if config.optimizer == "sgd" else 2,
                                                        best=config.patience is not None))
    if resume:
        checkpointer.restore(loop)
    with loop.precision.default_dtype():
        loop.run()
        state = loop.state
        result = FitResult(state.history, state.step, state.best, state.best_step, state.stopped)
        if final_metrics is not None:
            try:
                result.metrics = final_metrics(model, result)
            except BaseException:
                checkpointer.save(loop)  # the trained run is kept, without metrics
                raise
    checkpointer.save(loop, result.metrics)
    return result
