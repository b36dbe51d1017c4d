"""`TensorBoardLogger`: a callback that writes a run to TensorBoard through the `tensorboard`
package's `SummaryWriter` (``torch.utils.tensorboard``), beside ``history.csv``, which stays.

Tags: ``train/<statistic>`` after every optimizer step (the step's own value), and at each
evaluation every column of its history row, split by its prefix (``val_accuracy`` is
``val/accuracy``, the window means ``train_loss`` are ``train_mean/loss``, ``lr`` is ``lr``).
`finish` adds the final metrics (``final/<metric>``), the hyperparameters (TensorBoard's HParams
dashboard, with the final metrics as its metrics) and the final figures as images.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .callbacks import Callback

#: history columns that say where a row is, not what was measured
POSITION = ("epoch", "step")


def summary_writer(log_dir: str | os.PathLike, purge_step: int | None = None):
    """A `SummaryWriter` on `log_dir`; `ConfigError` naming the extra when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ConfigError(f"logging to TensorBoard needs the tensorboard package ({err}); install it with "
                          "`pip install 'archlab[tensorboard]'`.") from None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _tag(column: str) -> str:
    for prefix, group in (("train_", "train_mean"), ("val_", "val"), ("test_", "test")):
        if column.startswith(prefix):
            return f"{group}/{column[len(prefix):]}"
    return column


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def hparam_values(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`settings` flattened (``model.kwargs.hidden_dim``) to the scalar types the HParams plugin
    takes: numbers, strings and bools as they are, None and lists as text."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(hparam_values(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class TensorBoardLogger(Callback):
    """Write the run's scalars to `log_dir` as TensorBoard events (see the module docstring).

    `hparams` are the run's settings, written by `finish`. A resumed run (``state.step > 0``)
    opens the writer with ``purge_step`` just past that step, so TensorBoard drops what an
    interrupted run logged after its last checkpoint. Call `finish` once the run is scored, or `close`.
    """

    def __init__(self, log_dir: str | os.PathLike, hparams: Mapping[str, Any] | None = None):
        self.log_dir = Path(log_dir)
        self.hparams = hparam_values(hparams or {})
        self.writer = None
        self.step = 0

    def _open(self, purge_step: int | None = None):
        if self.writer is None:
            self.writer = summary_writer(self.log_dir, purge_step)
        return self.writer

    def on_fit_start(self, state) -> None:
        self._open(purge_step=state.step + 1 if state.step > 0 else None)
        self.step = state.step

    def on_step_end(self, state) -> None:
        writer = self._open()
        self.step = state.step
        for name, value in state.last.items():
            if _finite(value):
                writer.add_scalar(f"train/{name}", value, state.step)

    def on_eval_end(self, state, row: dict[str, Any]) -> None:
        writer = self._open()
        for column, value in row.items():
            if column not in POSITION and _finite(value):
                writer.add_scalar(_tag(column), value, state.step)

    def on_fit_end(self, state) -> None:
        if self.writer is not None:
            self.writer.flush()

    def finish(self, metrics: Mapping[str, Any], images: Mapping[str, bytes] | None = None) -> None:
        """Log the final `metrics`, the hyperparameters with them, and `images` (name -> PNG bytes) at
        the last step; then close the writer."""
        from PIL import Image
        from torch.utils.tensorboard.summary import hparams

        writer = self._open()
        final = {f"final/{k}": float(v) for k, v in metrics.items() if _finite(v)}
        for tag, value in final.items():
            writer.add_scalar(tag, value, self.step)
        for summary in hparams(self.hparams, final):
            writer.file_writer.add_summary(summary, self.step)
        for name, png in (images or {}).items():
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            writer.add_image(f"figures/{name}", pixels, self.step, dataformats="HWC")
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
