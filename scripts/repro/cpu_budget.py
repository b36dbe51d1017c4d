"""A training budget in CPU time, for the repro scripts whose targets say "N minutes on these cores".

On a shared machine a wall-clock budget measures the other jobs as much as the run: a niced process
on a loaded 2-core machine gets a tenth of a core. With one thread (OMP_NUM_THREADS=1), the CPU time
of the training process equals the wall time it would take alone on one core, a conservative proxy
for the budget on two cores. `CPUTimeLimit` stops `fit` once the process has used `seconds` of CPU
since the fit started, as `TimeLimit` does for wall time (resumable checkpoint, stopped="time_limit").
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from archlab.engine import Callback


class CPUTimeLimit(Callback):
    """Stop after `seconds` of this process's CPU time (all its threads) since `fit` started."""

    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ValueError(f"CPUTimeLimit takes seconds > 0; got {seconds!r}.")
        self.seconds = float(seconds)
        self.started: float | None = None
        self.used = 0.0  # CPU seconds of this fit, read after it returns

    def on_fit_start(self, state) -> None:
        self.started = time.process_time()

    def on_step_end(self, state) -> None:
        self.used = time.process_time() - self.started
        if state.step < state.total_steps and self.used >= self.seconds:
            state.stopped = "time_limit"


def read_clock(clock: Path | None) -> dict:
    """The budget spent so far: ``{"cpu_minutes", "minutes" (wall), "iteration"}``; zeros when there is
    no clock (or `clock` is None). A clock written before CPU time was counted has only wall minutes;
    with one thread the CPU time was at most that, so it counts as spent in full."""
    if clock is None or not clock.is_file():
        return {"cpu_minutes": 0.0, "minutes": 0.0, "iteration": 0}
    spent = json.loads(clock.read_text())
    spent.setdefault("cpu_minutes", spent["minutes"])
    return spent
