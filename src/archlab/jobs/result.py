"""The one result every job returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class JobResult:
    """What a job did: its metrics, the checkpoint it wrote, how long it took and the figures it drew.

    `metrics` are split-prefixed scalars (``val_accuracy``, ``test_loss``, ...); `details` holds the
    non-scalar results (a confusion matrix, attributions, per-seed metrics, generated text).
    `stopped` says why training ended before its length: ``"time_limit"`` or ``"early_stopping"``.
    """

    metrics: dict[str, float]
    checkpoint: str | None = None
    seconds: float = 0.0
    figures: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON object `--json` prints: metrics, checkpoint, seconds, and figures and stop reason when set.
        Non-finite metrics become null, listed under ``non_finite``, so the output stays strict JSON."""
        metrics = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in self.metrics.items()}
        payload: dict[str, Any] = {"metrics": metrics, "checkpoint": self.checkpoint, "seconds": round(self.seconds, 3)}
        bad = sorted(k for k, v in self.metrics.items() if isinstance(v, float) and not math.isfinite(v))
        if bad:
            payload["non_finite"] = bad
        if self.figures:
            payload["figures"] = list(self.figures)
        if self.stopped is not None:
            payload["stopped"] = self.stopped
        return payload
