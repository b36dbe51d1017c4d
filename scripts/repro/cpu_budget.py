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


def train_chunk(config, *, out: Path, clock: Path, spent: dict, args, every: int, unit: str) -> dict | None:
    """Meta-train `config` in `out` for one chunk of at most `args.minutes` CPU minutes, within
    `args.budget_minutes` in all, and record what was spent in `clock`. Returns the updated record when the
    budget (or `args.iterations`) is reached, so the caller evaluates; None when more chunks remain."""
    from archlab.jobs.meta import meta_train

    minutes = min(args.minutes, args.budget_minutes - spent["cpu_minutes"])
    if minutes <= 0:
        print(f"the {args.budget_minutes}-CPU-minute budget is spent; run with --evaluate-only")
        return None
    started, budget = time.perf_counter(), CPUTimeLimit(60 * minutes)
    result = meta_train(config, out=out, resume=args.resume, data_dir=args.data_dir, eval_tasks=0,
                        callbacks=(budget,), checkpoint_every=every, log_every=every)
    spent = {"cpu_minutes": spent["cpu_minutes"] + budget.used / 60,
             "minutes": spent["minutes"] + (time.perf_counter() - started) / 60,
             "iteration": result.metrics["iterations"]}
    clock.parent.mkdir(parents=True, exist_ok=True)
    clock.write_text(json.dumps(spent))
    print(f"{spent['iteration']} {unit}, {spent['cpu_minutes']:.1f} of {args.budget_minutes} training CPU "
          f"minutes spent ({spent['minutes']:.1f} wall minutes)")
    if spent["cpu_minutes"] < args.budget_minutes - 0.5 and spent["iteration"] < args.iterations:
        return None
    return spent
