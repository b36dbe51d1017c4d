"""Progress on stderr: a rich bar with ETA and live metrics on a terminal, one line
per evaluation otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def format_metrics(row: dict[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())


class ProgressReporter:
    """Throttled progress display; updating it costs nothing measurable per step."""

    def __init__(self, total_steps: int, *, quiet: bool = False, description: str = "train", start: int = 0):
        self.quiet = quiet
        self.console = Console(stderr=True)
        self.live = not quiet and sys.stderr.isatty()
        self._last = 0.0
        self._bar = None
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"), console=self.console, transient=False,
            )
            self._task = self._bar.add_task(description, total=total_steps, completed=start, metrics="")
            self._bar.start()

    def step(self, step: int, metrics: dict[str, float]) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        self._bar.update(self._task, completed=step, metrics=format_metrics(metrics))

    def log(self, row: dict[str, Any]) -> None:
        if self.quiet:
            return
        if self.live:
            self._bar.console.print(format_metrics(row))
        else:
            print(format_metrics(row), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
