"""Callbacks: code that `fit` runs at fixed points of the loop, and the time budget built on them.

`fit` calls, on every callback it is given, in order:

- ``on_fit_start(state)`` once, after a resumed run's state is restored;
- ``on_step_end(state)`` after every optimizer step (``state.step`` counts it, ``state.last``
  holds its training statistics, such as ``{"loss": 0.41}``);
- ``on_eval_end(state, row)`` after every evaluation, with the history row it appended;
- ``on_fit_end(state)`` once, when the loop ends, also when it raised (to close what
  ``on_fit_start`` opened).

A callback ends a run by setting ``state.stopped`` to a reason (`TimeLimit` sets
``"time_limit"``): `fit` stops after the current step, saves a resumable checkpoint and returns
(under torchrun, after the next step, whose all-reduce carries the request to every rank).
Subclass `Callback` and override what you need; an object that defines only some of the
methods works too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError

HOOKS = ("on_fit_start", "on_step_end", "on_eval_end", "on_fit_end")


class Callback:
    """Base class: every hook does nothing."""

    def on_fit_start(self, state) -> None:
        """The loop is about to run (from ``state.step``, which is not 0 for a resumed run)."""

    def on_step_end(self, state) -> None:
        """One optimizer step is done."""

    def on_eval_end(self, state, row: dict[str, Any]) -> None:
        """An evaluation appended `row` to ``state.history``."""

    def on_fit_end(self, state) -> None:
        """The loop is over, normally or by an exception."""


class CallbackList(Callback):
    """Several callbacks called in order; each hook reaches those that define it."""

    def __init__(self, callbacks: Iterable[Any] = ()):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not any(callable(getattr(cb, hook, None)) for hook in HOOKS):
                raise ConfigError(f"a callback must define at least one of {', '.join(HOOKS)}; "
                                  f"{type(cb).__name__} defines none.")

    def _each(self, hook: str):
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is not None:
                yield method

    def on_fit_start(self, state) -> None:
        for method in self._each("on_fit_start"):
            method(state)

    def on_step_end(self, state) -> None:
        for method in self._each("on_step_end"):
            method(state)

    def on_eval_end(self, state, row) -> None:
        for method in self._each("on_eval_end"):
            method(state, row)

    def on_fit_end(self, state) -> None:
        for method in self._each("on_fit_end"):
            method(state)


def now() -> float:
    """Seconds on the monotonic clock that `TimeLimit` reads. A module function, so that a test can
    replace this one clock without touching the rest of the process's."""
    return time.monotonic()


class TimeLimit(Callback):
    """Stop the run once `seconds` have passed since `fit` started (in this call: a resumed run
    gets its own budget). Checked after every step, so a run ends within one step of its limit (two
    under torchrun); the checkpoint it leaves resumes to the same weights as a run that was never
    stopped."""

    def __init__(self, seconds: float):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ConfigError(f"The 'time_limit' parameter of TrainConfig must be a number of seconds > 0 or None. "
                              f"Got {seconds!r} instead.")
        self.seconds = float(seconds)
        self.started: float | None = None

    def on_fit_start(self, state) -> None:
        self.started = now()

    def on_step_end(self, state) -> None:
        if state.step < state.total_steps and now() - self.started >= self.seconds:
            state.stopped = "time_limit"
