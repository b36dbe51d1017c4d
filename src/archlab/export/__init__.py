"""Export a trained model's forward to ONNX or TorchScript, checked against torch before it is kept.

`export_model` traces each graph a model exports (`graphs.export_graphs`: one, or an autoencoder's
encoder and decoder), writes it under a temporary name beside its destination, runs the written
file (onnxruntime for ONNX, ``torch.jit.load`` for TorchScript) on the checkpoint's test inputs,
and renames it into place only when every output equals torch's to `atol` + `rtol` * ``|torch|``.
A failed check raises `ExportError` naming the largest difference, and leaves no file behind.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..data import Dataset
from ..errors import ConfigError, ExportError
from ..validation import check_choice
from .graphs import UNEXPORTABLE, ExportGraph, export_graphs, refuse_unexportable

#: format -> the packages it needs beyond torch
FORMATS = {"onnx": ("onnx", "onnxruntime"), "torchscript": ()}
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    graph: str  # "model", "encoder" or "decoder"
    max_difference: float  # the largest |exported - torch| over the checked outputs


def check_format(fmt: str) -> None:
    """Refuse an unknown format, or one whose packages are not installed, naming them."""
    check_choice("export", "format", fmt, tuple(FORMATS))
    missing = [name for name in FORMATS[fmt] if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"export to {fmt} needs the package{'s' if len(missing) > 1 else ''} "
                          f"{' and '.join(missing)}, which {'are' if len(missing) > 1 else 'is'} not installed: "
                          f"pip install 'archlab[export]'.")


def output_paths(out: str | os.PathLike, graphs: list[ExportGraph]) -> list[Path]:
    """`out` for a single graph; for several, `out` with each graph's name before the suffix
    (``vae.onnx`` -> ``vae.encoder.onnx``, ``vae.decoder.onnx``)."""
    out = Path(out)
    if len(graphs) == 1:
        return [out]
    return [out.with_name(f"{out.stem}.{g.name}{out.suffix}") for g in graphs]


def _run_exported(fmt: str, path: Path, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    if fmt == "onnx":
        from .onnx import OnnxModel

        return OnnxModel(path).run(*inputs)
    from .torchscript import load_torchscript

    module, _ = load_torchscript(path)
    with torch.no_grad():
        outputs = module(*inputs)
    return [t.numpy() for t in (outputs if isinstance(outputs, tuple) else (outputs,))]


def check_export(fmt: str, path: Path, graph: ExportGraph, *, atol: float, rtol: float) -> float:
    """The largest |exported - torch| of `graph`'s outputs on its check inputs; `ExportError` when
    an output differs by more than ``atol + rtol * |torch|`` (or has another shape)."""
    with torch.no_grad():
        expected = graph.reference(*graph.check)
    expected = [t.float().numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
    actual = _run_exported(fmt, path, graph.check)
    largest = 0.0
    for name, want, got in zip(graph.output_names, expected, actual):
        if want.shape != got.shape:
            raise ExportError(f"the {fmt} export's '{name}' has shape {got.shape}; torch's is {want.shape} "
                              f"(on {len(graph.check[0])} test inputs). Nothing was written.")
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        diff[np.isnan(got) != np.isnan(want)] = np.inf
        diff[np.isnan(got) & np.isnan(want)] = 0.0
        worst = float(diff.max()) if diff.size else 0.0
        bad = diff > atol + rtol * np.abs(want)
        if bad.any():
            at = np.unravel_index(int(diff.argmax()), diff.shape)
            raise ExportError(f"the {fmt} export of the {graph.name} differs from torch on its test inputs: "
                              f"'{name}' at {tuple(int(i) for i in at)} is {got[at]:.7g} against {want[at]:.7g} "
                              f"(largest difference {worst:.3g} > {atol:g} + {rtol:g} * |torch|). "
                              "Nothing was written.")
        largest = max(largest, worst)
    return largest


def export_model(model_name: str, task: str, model: nn.Module, dataset: Dataset, fmt: str,
                 out: str | os.PathLike, *, atol: float = 1e-4, rtol: float = 1e-4,
                 metadata: dict[str, Any] | None = None) -> list[ExportedFile]:
    """Export `model` (registered as `model_name`, trained for `task` on `dataset`) to `fmt` at `out`,
    checked on `dataset`'s test split (in float32: the model is cast in place and put in eval mode).
    Returns the files written (an autoencoder writes two).
    `metadata` joins what each file records about its model (``data``: the data spec, ``task``, ...)."""
    check_format(fmt)
    model = model.float().eval()
    graphs = export_graphs(model_name, task, model, dataset)
    paths = output_paths(out, graphs)
    written: list[ExportedFile] = []
    temporary: list[tuple[Path, Path]] = []
    try:
        for graph, path in zip(graphs, paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
            os.close(handle)
            temp = Path(name)
            temporary.append((temp, path))
            info = {"archlab_version": __version__, "model": model_name, "task": task, "graph": graph.name,
                    "inputs": list(graph.input_names), "outputs": list(graph.output_names),
                    "data": dataset.spec.to_dict(), **(metadata or {})}
            try:
                if fmt == "onnx":
                    from .onnx import write_onnx

                    write_onnx(graph, temp, info)
                else:
                    from .torchscript import write_torchscript

                    write_torchscript(graph, temp, info)
            except (RuntimeError, TypeError, ValueError) as err:
                if isinstance(err, (ExportError, ConfigError)):
                    raise
                first = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
                raise ExportError(f"torch could not export the {graph.name} of model '{model_name}' to {fmt}: "
                                  f"{first}. Nothing was written.") from err
            written.append(ExportedFile(path, graph.name, check_export(fmt, temp, graph, atol=atol, rtol=rtol)))
        umask = os.umask(0)
        os.umask(umask)
        for temp, path in temporary:
            temp.chmod(0o666 & ~umask)  # mkstemp makes the file private; the export is an ordinary file
            os.replace(temp, path)
        temporary.clear()
    finally:
        for temp, _ in temporary:
            temp.unlink(missing_ok=True)
    return written


__all__ = ["export_model", "check_format", "check_export", "output_paths", "refuse_unexportable", "export_graphs",
           "ExportedFile", "ExportGraph", "FORMATS", "SUFFIXES", "UNEXPORTABLE"]
