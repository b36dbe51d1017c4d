"""Run loggers: a run's curves, hyperparameters and final results, written for a viewer.

A logger is a callback of `fit` (see `archlab.engine.callbacks`) that writes the curves while
the run trains, and takes the rest from the job once the run is scored:

- ``on_step_end``: every `log_every_n_steps` steps, the step's own statistics as ``train_<name>_step``;
- ``on_eval_end``: each history row's numbers (``train_loss``, ``val_accuracy``, ``lr``, ``epoch``)
  under the row's column names, at the row's step, so the curves are those of ``history.csv``;
- ``log_histogram``, ``log_pr_curve``, ``log_text``, ``log_scalars``: the job's final figures;
- ``log_final(metrics, hparams)``: the final metrics as ``final/<name>`` scalars and a text table,
  and the hyperparameters with those metrics (TensorBoard's HParams tab); then ``close``.

Jobs take loggers as ``log=``: a ``"KIND:DIR"`` string (the command line's ``--log KIND:DIR``),
a logger object, or a list of them; `LOGGERS` names the kinds.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..validation import check_int
from .callbacks import Callback


def _summary_writer():
    """torch's `SummaryWriter`, or a `ConfigError` that says how to install what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--log tensorboard:DIR needs the tensorboard package, which is not installed: "
                          "pip install 'archlab[tensorboard]'.") from None
    return SummaryWriter


def _wait_for_a_later_name(log_dir: Path) -> None:
    """Wait, when an event file in `log_dir` was begun this second, for the next one. The viewer
    reads a folder's event files in the order of their names, which begin with the second the file
    was made, and the purge of a resumed session only reaches what was read before it; within one
    second the names' later parts (a process-wide counter) may sort out of order."""
    newest = max((int(p.name.split(".")[3]) for p in log_dir.glob("events.out.tfevents.*")
                  if p.name.split(".")[3].isdigit()), default=None)
    if newest is not None and newest == int(time.time()):
        time.sleep(max(0.0, newest + 1 - time.time()))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value)


class TensorBoardLogger(Callback):
    """Writes TensorBoard event files into `log_dir` with torch's `SummaryWriter` (which writes
    from a background thread, so the loop only queues events).

    `log_dir` is one run's, as a checkpoint folder is: a run that starts from step 0 refuses a
    folder that holds event files already, or deletes them with `overwrite`; a resumed run
    continues their curves, dropping what an earlier session logged past its checkpoint (the
    writer's `purge_step`). View with ``tensorboard --logdir DIR`` (or the parent of several runs').
    """

    kind = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike, *, log_every_n_steps: int = 50, overwrite: bool = False):
        check_int("TensorBoardLogger", "log_every_n_steps", log_every_n_steps, minimum=1)
        self.log_dir = Path(log_dir)
        self.log_every_n_steps = log_every_n_steps
        self.overwrite = bool(overwrite)
        self._writer_class = _summary_writer()
        self.writer = None
        self.step = 0  # the step of the latest event: final results are logged there

    def for_run(self, name: str) -> TensorBoardLogger:
        """A logger of the same settings into the subfolder `name` (one run of several, e.g. a seed)."""
        return TensorBoardLogger(self.log_dir / name, log_every_n_steps=self.log_every_n_steps,
                                 overwrite=self.overwrite)

    def _open(self, purge_step: int | None = None):
        if self.writer is None:
            _wait_for_a_later_name(self.log_dir)
            self.writer = self._writer_class(log_dir=str(self.log_dir), purge_step=purge_step)
        return self.writer

    def on_fit_start(self, state) -> None:
        self.close()
        self.step = state.step
        if state.step == 0:
            self._replace_earlier_runs()
            self._open()
        else:  # purge_step: the viewer drops the events of earlier sessions from this step on
            self._open(purge_step=state.step + 1)

    def _replace_earlier_runs(self) -> None:
        earlier = sorted(self.log_dir.glob("events.out.tfevents.*"))
        if earlier and not self.overwrite:
            raise ConfigError(f"{self.log_dir} holds the TensorBoard logs of another run; give each run its own "
                              f"folder (tensorboard --logdir on their parent shows them side by side), or replace "
                              f"them with --overwrite.")
        for path in earlier:
            path.unlink()

    def on_step_end(self, state) -> None:
        if state.step % self.log_every_n_steps == 0:
            writer = self._open()
            for name, value in state.last.items():
                writer.add_scalar(f"train_{name}_step", value, state.step)
            self.step = state.step

    def on_eval_end(self, state, row: Mapping[str, Any]) -> None:
        writer = self._open()
        step = int(row["step"])
        for name, value in row.items():
            value = _number(value)
            # the step is the x axis; the wall time is each event's own
            if name not in ("step", "seconds") and value is not None:
                writer.add_scalar(name, value, step)
        self.step = step

    def on_fit_end(self, state) -> None:
        self.step = state.step
        if self.writer is not None:
            self.writer.flush()

    def log_scalars(self, tag: str, values: Mapping[int, float]) -> None:
        """One curve from ``{step: value}`` (e.g. accuracy against adaptation steps)."""
        writer = self._open()
        for step, value in sorted(values.items()):
            writer.add_scalar(tag, float(value), int(step))

    def log_histogram(self, tag: str, values: Any) -> None:
        writer = self._open()
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size:
            writer.add_histogram(tag, values, self.step)

    def log_pr_curve(self, tag: str, labels: Any, scores: Any) -> None:
        """Precision-recall of `scores` (higher: more likely positive) against boolean `labels`. The
        scores are replaced by their ranks scaled into [0, 1], the range TensorBoard's curve takes,
        which keeps their order, and so the curve."""
        labels = np.asarray(labels, dtype=bool).ravel()
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if scores.size < 2:
            return
        ranks = np.empty(scores.size)
        ranks[np.argsort(scores, kind="stable")] = np.arange(scores.size) / (scores.size - 1)
        self._open().add_pr_curve(tag, labels, ranks, self.step)

    def log_text(self, tag: str, text: str) -> None:
        self._open().add_text(tag, text, self.step)

    def log_final(self, metrics: Mapping[str, Any], hparams: Mapping[str, Any] | None = None) -> None:
        """The final metrics (``final/<name>`` scalars and a table under ``final_metrics``) and the
        run's hyperparameters, shown against those metrics in the HParams tab; then close."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        writer = self._open()
        numbers = {k: v for k, v in ((k, _number(v)) for k, v in metrics.items()) if v is not None}
        for name, value in numbers.items():
            writer.add_scalar(f"final/{name}", value, self.step)
        if numbers:
            rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in numbers.items())
            writer.add_text("final_metrics", f"| metric | value |\n|---|---|\n{rows}", self.step)
        if hparams:
            tags = {f"final/{k}": v for k, v in numbers.items() if math.isfinite(v)}
            for summary in hparams_summaries(flat_hparams(hparams), tags):
                writer.file_writer.add_summary(summary, self.step)
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


#: the kinds of `--log KIND:DIR`
LOGGERS = {"tensorboard": TensorBoardLogger}


def flat_hparams(hparams: Mapping[str, Any], prefix: str = "") -> dict[str, int | float | str | bool]:
    """Hyperparameters as the flat ``name: number, text or bool`` that TensorBoard shows: nested
    mappings become dotted names, lists their JSON text; None (unset) is left out."""
    flat: dict[str, int | float | str | bool] = {}
    for key, value in hparams.items():
        name = f"{prefix}{key}"
        if value is None:  # unset: shown blank, not as a text among numbers
            continue
        if isinstance(value, Mapping):
            flat.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, str)):
            flat[name] = value
        elif _number(value) is not None:
            flat[name] = value.item() if isinstance(value, np.generic) else value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def make_logger(spec: Any, overwrite: bool = False) -> Any:
    """A logger from ``"KIND:DIR"`` (which replaces earlier logs there with `overwrite`); a logger
    object is returned as it is."""
    if not isinstance(spec, str):
        if callable(getattr(spec, "log_final", None)) and callable(getattr(spec, "on_eval_end", None)):
            return spec
        raise ConfigError(f"The 'log' parameter must be KIND:DIR with KIND one of {', '.join(LOGGERS)}, or a "
                          f"logger such as TensorBoardLogger. Got {type(spec).__name__} instead.")
    kind, sep, directory = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in LOGGERS:
        raise ConfigError(f"--log takes KIND:DIR with KIND one of {', '.join(LOGGERS)}; got {spec!r}.")
    if not sep or not directory.strip():
        raise ConfigError(f"--log {kind} needs a folder to write into: --log {kind}:DIR; got {spec!r}.")
    return LOGGERS[kind](directory, overwrite=overwrite)


def make_loggers(log: Any, *, run: str | None = None, overwrite: bool = False) -> list[Any]:
    """The loggers of a job's `log` argument (None, one spec or logger, or a list of them); with
    `run`, each writes into its subfolder `run` instead (see `TensorBoardLogger.for_run`). A job
    passes its own `overwrite`: its logs are replaced when its checkpoint is."""
    if log is None:
        return []
    specs = [log] if isinstance(log, str) or not isinstance(log, Iterable) else list(log)
    loggers = [make_logger(s, overwrite) for s in specs]
    return [lg.for_run(run) for lg in loggers] if run is not None else loggers


def check_outside(loggers: list[Any], out: str | os.PathLike | None) -> None:
    """Refuse a log folder in the checkpoint folder `out`, which each checkpoint replaces whole."""
    if out is None:
        return
    out = Path(out).resolve()
    for logger in loggers:
        folder = getattr(logger, "log_dir", None)
        if folder is not None and (Path(folder).resolve() == out or out in Path(folder).resolve().parents):
            raise ConfigError(f"--log {getattr(logger, 'kind', 'KIND')}:{folder} is inside the checkpoint folder "
                              f"{out}, which every checkpoint replaces; write the logs outside it, e.g. beside it.")


@contextmanager
def closing(loggers: list[Any]) -> Iterator[list[Any]]:
    """Close every logger at the end of the block, also when it raised (`log_final` closes too)."""
    try:
        yield loggers
    finally:
        for logger in loggers:
            logger.close()
