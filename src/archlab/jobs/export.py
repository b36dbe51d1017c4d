"""`export`: a checkpoint's forward as an ONNX or TorchScript file, checked against torch on the
checkpoint's own test inputs before it is kept (see `archlab.export`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..engine.checkpoint import read_config
from ..export import FORMATS, SUFFIXES, check_format, export_model, refuse_unexportable
from ..models.registry import load_model, model_info
from ..validation import check_choice
from .evaluate import load_checkpoint_data
from .result import JobResult
from .runs import single_run


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike | None = None, *, format: str = "onnx",
           data_dir: str | os.PathLike | None = None, atol: float = 1e-4, verify: bool = True) -> JobResult:
    """Export a checkpoint to `format` (``onnx`` or ``torchscript``) at `out` (default: beside the
    checkpoint, ``model.onnx`` / ``model.pt``). The batch size (and, for sequences and text, the number
    of steps) stays dynamic. ``details["files"]`` lists what was written, with each graph's largest
    difference from torch on the test inputs (an autoencoder writes its encoder and its decoder)."""
    started = time.perf_counter()
    check_choice("export", "format", format, tuple(FORMATS))
    checkpoint = single_run(checkpoint, "export")
    config = read_config(checkpoint)  # a folder that is not a checkpoint is refused here, by name
    name = config["model"]["name"]
    task = config.get("task") or model_info(name).task
    refuse_unexportable(name, task)  # before the data is read or a package is looked for
    check_format(format)
    config, dataset = load_checkpoint_data(checkpoint, None, data_dir)
    net = load_model(checkpoint, "cpu", verify=verify)
    out = Path(out) if out is not None else Path(checkpoint) / f"model{SUFFIXES[format]}"
    files = export_model(name, task, net, dataset, format, out, atol=atol, rtol=atol,
                         metadata={"checkpoint": str(Path(checkpoint).resolve()),
                                   "task_options": config.get("task_options", {})})
    return JobResult({"max_difference": max(f.max_difference for f in files)}, str(checkpoint),
                     time.perf_counter() - started,
                     details={"files": [{"path": str(f.path), "graph": f.graph, "max_difference": f.max_difference}
                                        for f in files], "format": format})
