"""Progress on stderr: a rich bar with ETA and live metrics on a terminal; otherwise (a log file, a
pipe, CI) one line per evaluation and, between evaluations, one line every `LOG_INTERVAL` seconds;
nothing when quiet. `fit` runs it as its first callback."""

from __future__ import annotations

import sys
import time
from typing import Any

from .callbacks import Callback

#: seconds between two progress lines when stderr is not a terminal
LOG_INTERVAL = 30.0


def format_metrics(row: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())


class ProgressReporter(Callback):
    """Throttled progress display; updating it costs nothing measurable per step."""

    def __init__(self, *, quiet: bool = False, description: str = "train"):
        self.quiet = quiet
        self.description = description
        self.live = not quiet and sys.stderr.isatty()
        self._last = 0.0
        self._bar = None
        self._started = self._logged = time.monotonic()

    def on_fit_start(self, state) -> None:
        self._started = self._logged = time.monotonic()
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.console = Console(stderr=True)
            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"), console=self.console, transient=False,
            )
            self._task = self._bar.add_task(self.description, total=state.total_steps, completed=state.step,
                                            metrics="")
            self._bar.start()

    def on_step_end(self, state) -> None:
        if self._bar is None:
            if not self.quiet and time.monotonic() - self._logged >= LOG_INTERVAL:
                self.log({"step": f"{state.step}/{state.total_steps}", **state.last,
                          "elapsed": f"{time.monotonic() - self._started:.0f}s"})
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        self._bar.update(self._task, completed=state.step, metrics=format_metrics(state.last))

    def on_eval_end(self, state, row: dict[str, Any]) -> None:
        self.log(row)

    def log(self, row: dict[str, Any]) -> None:
        if self.quiet:
            return
        self._logged = time.monotonic()
        if self._bar is not None:
            self._bar.console.print(format_metrics(row))
        else:
            print(format_metrics(row), file=sys.stderr, flush=True)

    def on_fit_end(self, state) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
