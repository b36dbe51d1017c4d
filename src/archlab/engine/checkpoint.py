"""Checkpoint folders, written atomically and read without pickle.

A checkpoint is a folder::

    config.json             model name and kwargs, data spec, training config, archlab version;
                            the training step, the save's revision and each binary file's SHA-256
    model.safetensors       the model's weights
    training_state.pt       optimizer/scheduler/RNG state and loop position (tensors and plain
                            containers only, read with ``torch.load(weights_only=True)``)
    best_model.safetensors  best weights so far, while early stopping watches a metric
    metrics.json            final metrics
    history.csv             one row per evaluation

The folder is assembled under a temporary name ``.NAME.tmp-*`` beside the target,
``config.json`` last, and swapped in by two renames (the old folder to
``.NAME.old-PID``, the new one into place), so a crash never leaves a half-written
checkpoint: a folder whose ``config.json`` exists and whose digests match is
complete. After a crash between the two renames the newest complete folder (by
revision, then step) is put back and the other leftovers are removed. Files in an
existing checkpoint that archlab does not write itself (e.g. a tokenizer) are
carried over. A writer holds the folder's lock (`archlab.engine.run_lock`).
"""

from __future__ import annotations

import csv
import errno
import glob
import hashlib
import io
import json
import os
import pickle
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .._version import __version__
from ..errors import CheckpointError, ConfigError, DiskFullError
from .run_lock import hold_run_dir, try_hold_run_dir

FORMAT = "archlab-checkpoint"
FORMAT_VERSION = 1
OWN_FILES = {"config.json", "model.safetensors", "training_state.pt", "best_model.safetensors",
             "metrics.json", "history.csv"}
DIGESTED = ("model.safetensors", "best_model.safetensors", "training_state.pt")
# A reader that finds the folder missing while a live writer holds its lock waits this long
# for the writer's second rename.
SWAP_WAIT = 2.0
# Room beyond the tensors' bytes: torch.save's zip and pickle headers, file-system blocks.
SLACK_BYTES = 64 * 1024


def _plain_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Separate CPU copies: safetensors refuses tensors that share memory (tied weights).
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def is_checkpoint(path: Path) -> bool:
    config = _read_json(Path(path) / "config.json")
    return isinstance(config, dict) and config.get("format") == FORMAT


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


# ---- crash recovery -----------------------------------------------------------------------


def _leftovers(path: Path) -> list[Path]:
    """The ``.NAME.tmp-*`` and ``.NAME.old-*`` folders of earlier writes beside `path`."""
    if not path.parent.is_dir():
        return []
    prefix = glob.escape(f".{path.name}.")
    return sorted(p for kind in ("tmp-*", "old-*") for p in path.parent.glob(prefix + kind) if p.is_dir())


def _complete(folder: Path) -> dict[str, Any] | None:
    """The config of a finished write, else None. A temporary folder is finished once its
    ``config.json`` (written last) exists; every recorded digest must match its file."""
    config = _read_json(folder / "config.json")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        return None
    digests = config.get("sha256")
    if ".tmp-" in folder.name and not isinstance(digests, dict):
        return None  # written before config.json came last: its weights may be partial
    for name, expected in (digests or {}).items():
        if not (folder / name).is_file() or _sha256(folder / name) != expected:
            return None
    return config


def _recorded_revision(config: dict[str, Any]) -> int:
    return config["revision"] if isinstance(config.get("revision"), int) else -1


def _recorded_step(folder: Path, config: dict[str, Any]) -> int:
    if isinstance(config.get("step"), int):
        return config["step"]
    try:
        state = read_training_state(folder, verify=False) or {}
    except CheckpointError:
        return -1
    return state.get("step", -1) if isinstance(state.get("step"), int) else -1


def _recover(path: Path) -> None:
    """Finish what a crashed write left: when `path` is missing, put back the newest complete
    folder among the leftovers; then remove the rest. Only the holder of the folder's lock
    touches them; a reader that finds a live writer mid-swap waits for its second rename."""
    if not _leftovers(path):
        return
    with try_hold_run_dir(path) as held:
        if not held:
            deadline = time.monotonic() + SWAP_WAIT
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            return
        leftovers = _leftovers(path)
        if not path.exists():
            candidates = [(_recorded_revision(config), _recorded_step(folder, config), folder)
                          for folder in leftovers if (config := _complete(folder)) is not None]
            if candidates:
                os.rename(max(candidates)[2], path)
                _fsync_dir(path.parent)
        for folder in leftovers:
            shutil.rmtree(folder, ignore_errors=True)


# ---- the run's folder ---------------------------------------------------------------------


def describe_checkpoint(path: Path) -> str:
    """What a checkpoint holds, for messages: ``model cnn, step 1234`` (the step from config.json,
    else from training_state.pt)."""
    config = _read_json(path / "config.json")
    config = config if isinstance(config, dict) else {}
    model = config.get("model")
    name = model.get("name", "unknown") if isinstance(model, dict) else "unknown"
    step = _recorded_step(path, config)
    return f"model {name}" + (f", step {step}" if step >= 0 else "")


def check_output_folder(path: str | os.PathLike | None, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to start a new run in `path` where it would replace something: a folder that is
    not a checkpoint always; a checkpoint unless `overwrite` is given (`resume` continues it)."""
    if path is None:
        return
    path = Path(path)
    _recover(path)
    if resume or not path.exists():
        return
    if not is_checkpoint(path):
        raise ConfigError(f"{path} exists and is not an archlab checkpoint; refusing to overwrite it. "
                          "Choose another --out.")
    if not overwrite:
        raise ConfigError(f"{path} already holds a checkpoint ({describe_checkpoint(path)}) that a new run "
                          "would replace; continue it with --resume, choose another --out, or pass --overwrite "
                          "to replace it.")


@contextmanager
def run_directory(path: str | os.PathLike | None, *, resume: bool = False, overwrite: bool = False
                  ) -> Iterator[None]:
    """Hold the lock on a run's folder until the block ends, however it ends, and check that
    the run may write there (`check_output_folder`). Nothing happens for a run that saves nothing
    (`path` None)."""
    if path is None:
        yield
        return
    with hold_run_dir(path):
        check_output_folder(path, resume=resume, overwrite=overwrite)
        yield


# ---- free space ---------------------------------------------------------------------------


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def estimate_checkpoint_bytes(model: nn.Module, *, optimizer_slots: int = 2, best: bool = False) -> int:
    """Bytes a checkpoint of `model` takes: its weights, the optimizer's `optimizer_slots` tensors
    per parameter (Adam's two moments, SGD's momentum) and, when `best`, the best weights."""
    weights = _tensor_bytes(model.state_dict())
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return weights * (2 if best else 1) + parameters * optimizer_slots + SLACK_BYTES


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def check_free_space(path: str | os.PathLike, nbytes: int) -> None:
    """`DiskFullError` when the disk that holds (or will hold) the checkpoint `path` has
    fewer than `nbytes` free: a run calls it before training, `save_checkpoint` before each save."""
    path = Path(path)
    where = _existing_parent(path if path.exists() else path.parent)
    free = shutil.disk_usage(where).free
    if free < nbytes:
        kept = "the previous checkpoint is kept" if is_checkpoint(path) else "nothing was written"
        raise DiskFullError(f"not enough free space for the checkpoint {path}: it needs about {_size(nbytes)} and "
                            f"{_size(free)} are free on {where}; {kept}. Free some space or choose another --out.")


def _disk_full(err: BaseException, folder: Path, nbytes: int) -> bool:
    """Whether a failed write ran out of space; torch.save says only ``[enforce fail at
    inline_container.cc]`` then, so the disk is asked."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(err, (SafetensorError, RuntimeError)):
        text = str(err)
        if "No space left" in text or "os error 28" in text:
            return True
        if "inline_container" in text or "PytorchStreamWriter" in text:
            return shutil.disk_usage(_existing_parent(folder)).free < nbytes
    return False


# ---- writing ------------------------------------------------------------------------------


def _history_csv(history: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def _disk_bytes(item: Path) -> int:
    if item.is_file():
        return item.stat().st_size
    return sum(p.stat().st_size for p in item.rglob("*") if p.is_file())


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
    `extra_files` (e.g. ``{"tokenizer.json": ...}``) are written beside the weights.
    `DiskFullError` (the previous checkpoint kept) when the disk cannot hold it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with hold_run_dir(path):
        _recover(path)
        if path.exists() and not is_checkpoint(path):
            raise ConfigError(f"{path} exists and is not an archlab checkpoint; refusing to overwrite it. "
                              "Choose another --out.")
        return _write(path, model, meta, metrics, history, training_state, best_state, extra_files or {})


def _write(path, model, meta, metrics, history, training_state, best_state, extra_files) -> Path:
    for name in extra_files:
        if name in OWN_FILES or Path(name).name != name:
            raise ValueError(f"extra file name {name!r} must be a plain file name not among {sorted(OWN_FILES)}")
    texts = {name: content.encode() if isinstance(content, str) else content for name, content in extra_files.items()}
    if metrics is not None:
        texts["metrics.json"] = json.dumps(metrics, indent=2).encode()
    if history:
        texts["history.csv"] = _history_csv(history).encode()
    weights = _plain_state(model.state_dict())
    best = _plain_state(best_state) if best_state is not None else None
    carried = [item for item in path.iterdir() if item.name not in OWN_FILES and item.name not in texts
               ] if path.exists() else []
    nbytes = (_tensor_bytes(weights) + _tensor_bytes(best) + _tensor_bytes(training_state)
              + sum(len(t) for t in texts.values()) + sum(_disk_bytes(item) for item in carried) + SLACK_BYTES)
    check_free_space(path, nbytes)
    previous = _read_json(path / "config.json") if path.exists() else None
    revision = max(_recorded_revision(previous), 0) + 1 if isinstance(previous, dict) else 1

    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        save_file(weights, tmp / "model.safetensors")
        if best is not None:
            save_file(best, tmp / "best_model.safetensors")
        if training_state is not None:
            torch.save(training_state, tmp / "training_state.pt")
        for name, content in texts.items():
            (tmp / name).write_bytes(content)
        for item in carried:
            copy = shutil.copytree if item.is_dir() else shutil.copy2
            copy(item, tmp / item.name)
        umask = os.umask(0)
        os.umask(umask)
        for item in tmp.iterdir():
            if item.is_file():
                os.chmod(item, 0o666 & ~umask)
                with open(item, "rb") as f:
                    os.fsync(f.fileno())
        # config.json comes last, after every file it describes is on disk: its presence
        # marks the folder complete for crash recovery.
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, "archlab_version": __version__, **meta,
                  "revision": revision,
                  "sha256": {name: _sha256(tmp / name) for name in DIGESTED if (tmp / name).is_file()}}
        if isinstance(training_state, dict) and isinstance(training_state.get("step"), int):
            config["step"] = training_state["step"]
        with open(tmp / "config.json", "w") as f:
            f.write(json.dumps(config, indent=2))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp / "config.json", 0o666 & ~umask)
        os.chmod(tmp, 0o777 & ~umask)
        _fsync_dir(tmp)
        if path.exists():
            backup = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.rename(path, backup)
            try:
                os.rename(tmp, path)
            except BaseException:
                if not path.exists():
                    os.rename(backup, path)
                raise
            _fsync_dir(path.parent)
            shutil.rmtree(backup)
        else:
            os.rename(tmp, path)
            _fsync_dir(path.parent)
    except BaseException as err:
        full = _disk_full(err, path.parent, nbytes)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if full:
            kept = "the previous checkpoint is kept" if is_checkpoint(path) else "nothing was written"
            raise DiskFullError(f"the disk filled up while saving the checkpoint {path} (it needs about "
                                f"{_size(nbytes)}); {kept}. Free some space or choose another --out.") from err
        raise
    return path


# ---- reading ------------------------------------------------------------------------------


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


def _verify(path: Path, filename: str) -> None:
    """Compare a file with the SHA-256 its checkpoint's config.json records (older checkpoints
    record none, and load unchecked)."""
    config = _read_json(path / "config.json")
    digests = config.get("sha256") if isinstance(config, dict) else None
    expected = digests.get(filename) if isinstance(digests, dict) else None
    if expected is None:
        return
    actual = _sha256(path / filename)
    if actual != expected:
        raise CheckpointError(f"{path / filename} does not match the SHA-256 that config.json records (expected "
                              f"{expected[:12]}..., got {actual[:12]}...): it was changed or damaged after it was "
                              "saved. Load it anyway with --no-verify (verify=False).")


def read_weights(path: Path, filename: str = "model.safetensors", *, verify: bool = True
                 ) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's weight file, checked against its recorded SHA-256 unless
    `verify` is False."""
    path = Path(path)
    _recover(path)
    file = path / filename
    if not file.is_file():
        raise CheckpointError(f"checkpoint {path} has no {filename}.")
    try:
        state = load_file(file)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{file} is corrupt ({err}).") from err
    if verify:
        _verify(path, filename)
    return state


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"{source}: the weights do not fit the model its config.json describes: "
                              f"{' '.join(line.strip() for line in first[:4])}") from err


def load_tensor_file(file: Path) -> Any:
    """A ``torch.save`` file read with ``weights_only=True``: tensors and plain containers only.
    Anything else is refused in one line; torch's own advice to load it with
    ``weights_only=False`` (which would run the file's code) is not passed on."""
    try:
        with warnings.catch_warnings():
            # torch's note that its weights_only reader may not handle a pickle protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{file} was refused: it holds Python objects other than tensors and plain "
                              "containers, which could run code when loaded (or it is damaged); archlab "
                              "reads only tensors from it.") from None
    except Exception as err:  # torch raises several types for a damaged zip
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        detail = "" if "weights_only" in str(err) else f": {detail}"
        raise CheckpointError(f"{file} is corrupt or not a torch tensor file ({type(err).__name__}{detail}).") from None


def read_training_state(path: Path, *, verify: bool = True) -> dict[str, Any] | None:
    """The loop state a run saved for `--resume` (None when there is none), checked against its
    recorded SHA-256 unless `verify` is False."""
    path = Path(path)
    _recover(path)
    file = path / "training_state.pt"
    if not file.is_file():
        return None
    state = load_tensor_file(file)
    if verify:
        _verify(path, "training_state.pt")
    return state
