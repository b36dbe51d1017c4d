"""Checkpoint folders, written atomically and read without pickle.

A checkpoint is a folder::

    config.json             model name and kwargs, data spec, training config, archlab version
    model.safetensors       the model's weights
    training_state.pt       optimizer/scheduler/RNG state and loop position (tensors and plain
                            containers only, read with ``torch.load(weights_only=True)``)
    best_model.safetensors  best weights so far, while early stopping watches a metric
    metrics.json            final metrics
    history.csv             one row per evaluation

The folder is assembled under a temporary name beside the target and renamed
into place, so a crash never leaves a half-written checkpoint. Files in an
existing checkpoint that archlab does not write itself (e.g. a tokenizer) are
carried over.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .._version import __version__
from ..errors import CheckpointError, ConfigError

FORMAT = "archlab-checkpoint"
FORMAT_VERSION = 1
OWN_FILES = {"config.json", "model.safetensors", "training_state.pt", "best_model.safetensors",
             "metrics.json", "history.csv"}


def _plain_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Separate CPU copies: safetensors refuses tensors that share memory (tied weights).
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def is_checkpoint(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _recover(path: Path) -> None:
    """Finish a swap that a crash interrupted: bring the previous folder back."""
    if path.exists():
        return
    for backup in sorted(path.parent.glob(f".{path.name}.old-*")):
        if is_checkpoint(backup):
            os.rename(backup, path)
            return


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    path.write_text(buf.getvalue())


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    meta: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    training_state: dict[str, Any] | None = None,
    best_state: dict[str, torch.Tensor] | None = None,
    extra_files: dict[str, bytes | str] | None = None,
) -> Path:
    """Write a checkpoint folder atomically. `meta` is merged into ``config.json``;
    `extra_files` (e.g. ``{"tokenizer.json": ...}``) are written beside the weights."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _recover(path)
    if path.exists() and not is_checkpoint(path):
        raise ConfigError(f"{path} exists and is not an archlab checkpoint; refusing to overwrite it. "
                          "Choose another --out.")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, "archlab_version": __version__, **meta}
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_file(_plain_state(model.state_dict()), tmp / "model.safetensors")
        if best_state is not None:
            save_file(_plain_state(best_state), tmp / "best_model.safetensors")
        if training_state is not None:
            torch.save(training_state, tmp / "training_state.pt")
        if metrics is not None:
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if history:
            _write_history(tmp / "history.csv", history)
        for name, content in (extra_files or {}).items():
            if name in OWN_FILES or Path(name).name != name:
                raise ValueError(f"extra file name {name!r} must be a plain file name not among {sorted(OWN_FILES)}")
            (tmp / name).write_bytes(content.encode() if isinstance(content, str) else content)
        if path.exists():
            for item in path.iterdir():
                if item.name not in OWN_FILES and not (tmp / item.name).exists():
                    copy = shutil.copytree if item.is_dir() else shutil.copy2
                    copy(item, tmp / item.name)
        umask = os.umask(0)
        os.umask(umask)
        for item in tmp.iterdir():
            if item.is_file():
                os.chmod(item, 0o666 & ~umask)
                with open(item, "rb") as f:
                    os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~umask)
        if path.exists():
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.rename(path, backup)
            os.rename(tmp, path)
            shutil.rmtree(backup)
        else:
            os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of a checkpoint, checked to be archlab's."""
    path = Path(path)
    _recover(path)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {path}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{path} is not an archlab checkpoint: it has no config.json.")
    try:
        config = json.loads(config_path.read_text())
    except ValueError as err:
        raise CheckpointError(f"{config_path} is corrupt: not valid JSON ({err}).") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an archlab checkpoint: config.json lacks \"format\": \"{FORMAT}\".")
    if not isinstance(config.get("model"), dict) or "name" not in config["model"]:
        raise CheckpointError(f"{config_path} names no registered model; only weights can be read from it.")
    return config


def read_weights(path: Path, filename: str = "model.safetensors") -> dict[str, torch.Tensor]:
    file = path / filename
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path} has no {filename}.")
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt ({err}).") from err


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"{source}: the weights do not fit the model its config.json describes: "
                              f"{' '.join(line.strip() for line in first[:4])}") from err


def read_training_state(path: Path) -> dict[str, Any] | None:
    file = path / "training_state.pt"
    if not file.is_file():
        return None
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged zip/pickle
        raise CheckpointError(f"{file} is corrupt or not archlab's ({type(err).__name__}: {err}).") from err
