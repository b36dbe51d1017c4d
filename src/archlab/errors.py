"""Exceptions that carry a message a user can act on.

`ConfigError` is a bad argument (the CLI exits 2); every other error raised by
archlab is about data, files or the run itself (the CLI exits 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A user-supplied name, option or hyperparameter is not valid."""


class DataError(ValueError):
    """A data file or an input array does not have the expected content or shape."""


class CheckpointError(ValueError):
    """A checkpoint folder is missing, corrupt, or was not written by archlab."""


class ExportError(RuntimeError):
    """An exported model could not be written, or does not reproduce torch's outputs; nothing was kept."""


class DiskFullError(RuntimeError):
    """The disk cannot hold a checkpoint; the previous one is kept."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""

    def __init__(self, step: int, value: float, checkpoint: str | None = None):
        where = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
        super().__init__(
            f"loss became {value} at step {step}: training stopped{where}. "
            "Try a lower --lr, gradient clipping (--grad-clip 1.0), or check the inputs for NaN."
        )
        self.step = step
        self.value = value
        self.checkpoint = checkpoint


class DivergenceError(NonFiniteLossError):
    """Training diverged before its loss turned NaN: a loss far above its start, a non-finite
    gradient norm, or non-finite validation metrics. The last good checkpoint is kept."""

    def __init__(self, step: int, what: str, checkpoint: str | None = None):
        where = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
        RuntimeError.__init__(
            self, f"training diverged at step {step}: {what}; training stopped{where}. "
            "Try a lower --lr, gradient clipping (--grad-clip 1.0), or check the inputs for NaN."
        )
        self.step = step
        self.value = float("nan")
        self.what = what
        self.checkpoint = checkpoint


class TrainingInterrupted(RuntimeError):
    """Training was interrupted (Ctrl-C); its state was saved for `--resume`."""

    def __init__(self, step: int, checkpoint: str | None):
        where = f"; saved to {checkpoint}, continue with --resume" if checkpoint else ""
        super().__init__(f"training interrupted at step {step}{where}")
        self.step = step
        self.checkpoint = checkpoint


class RunNote(UserWarning):
    """A choice a job made on the user's behalf that changes what it read (e.g. which seed run of a
    folder of seed runs); the CLI prints it as one ``archlab: note:`` line."""


def unknown_name(what: str, name: str, choices: Iterable[str]) -> ConfigError:
    """`ConfigError` for an unknown name, suggesting the closest valid one."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown {what} '{name}'.{hint} Available: {', '.join(choices)}.")
