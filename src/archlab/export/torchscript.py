"""TorchScript export: `torch.jit.trace` of a graph, saved with archlab's metadata as an extra file."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .graphs import ExportGraph

METADATA_FILE = "archlab.json"


def write_torchscript(graph: ExportGraph, path: Path, metadata: dict[str, Any]) -> None:
    """Trace `graph` and save it at `path`; `metadata` is the extra file ``archlab.json``."""
    # traced without autograd: a custom autograd function (a fused activation's forward that keeps its
    # derivative) has no TorchScript form, while its no-gradient branch is plain tensor ops
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes concern the input checks on the example
        traced = torch.jit.trace(graph.module, graph.example, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def load_torchscript(path: str | os.PathLike) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """A saved TorchScript export (on the CPU) and its archlab metadata."""
    files = {METADATA_FILE: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    return module.eval(), json.loads(files[METADATA_FILE] or "{}")
