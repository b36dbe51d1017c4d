"""One way in for data: a registered dataset name, or a user's file or folder.

`load_data(source, ...)` takes a registered name (``digits``, ``cora``, ...) or a path. A path's
format comes from its suffix or its layout, or from `format` when given; each format is a reader
registered with `register_format` in the file that implements it (tables, image folders, text,
graphs). A reader returns the same `Dataset` every model trains on, and records in its spec
everything needed to read new files of the same schema: ``spec.options`` rebuild the same splits
(``source``, ``format``, ``target`` and the reader's options), ``spec.preprocess`` holds what was
fitted on the training split.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, unknown_name
from ..validation import coerce_kwargs
from .base import Dataset
from .registry import dataset_info, list_datasets, load_dataset

Reader = Callable[..., Dataset]  # reader(path, *, target=None, seed=0, **options) -> Dataset


@dataclass(frozen=True)
class FormatInfo:
    name: str
    reader: Reader
    suffixes: tuple[str, ...]
    detect: Callable[[Path], bool] | None  # for folders: whether the layout is this format's
    description: str
    # ``inputs(path, spec) -> np.ndarray``: new raw inputs (a file of the training schema) as model inputs,
    # preprocessed with what the reader fitted on the training split (``spec.preprocess``); for `predict`
    inputs: Callable[[Path, Any], Any] | None = None
    # ``labeled(path, spec) -> split``: a new labeled file (or folder) of the training schema as one split,
    # every example of it, preprocessed as `inputs` does; for `evaluate --data`
    labeled: Callable[[Path, Any], Any] | None = None


_FORMATS: dict[str, FormatInfo] = {}


def register_format(name: str, *, suffixes: tuple[str, ...] = (), detect: Callable[[Path], bool] | None = None,
                    description: str = "", inputs: Callable[[Path, Any], Any] | None = None,
                    labeled: Callable[[Path, Any], Any] | None = None) -> Callable[[Reader], Reader]:
    """Register a reader of files (by `suffixes`, e.g. ``(".csv",)``) or folders (by `detect`);
    `inputs` reads new files of the same schema for `predict`, `labeled` new labeled ones for `evaluate`."""

    def decorate(reader: Reader) -> Reader:
        if name in _FORMATS:
            raise ValueError(f"data format '{name}' is registered twice")
        _FORMATS[name] = FormatInfo(name, reader, tuple(s.lower() for s in suffixes), detect,
                                    description or (inspect.getdoc(reader) or "").split("\n")[0], inputs, labeled)
        return reader

    return decorate


def list_formats() -> list[str]:
    return sorted(_FORMATS)


def format_info(name: str) -> FormatInfo:
    if name not in _FORMATS:
        raise unknown_name("data format", name, _FORMATS)
    return _FORMATS[name]


def detect_format(path: Path) -> str:
    """The format of `path`: by its suffix for a file, by its layout for a folder."""
    if path.is_dir():
        for info in _FORMATS.values():
            if info.detect is not None and info.detect(path):
                return info.name
        raise DataError(f"cannot tell the format of the folder {path}: it matches none of "
                        f"{', '.join(n for n, i in _FORMATS.items() if i.detect) or 'the known layouts'}. "
                        "Name one with --data-format.")
    suffixes = "".join(path.suffixes[-2:]).lower(), path.suffix.lower()
    for info in _FORMATS.values():
        if any(s in info.suffixes for s in suffixes):
            return info.name
    known = sorted({s for i in _FORMATS.values() for s in i.suffixes})
    raise DataError(f"cannot tell the format of {path} from its suffix '{path.suffix}'; known suffixes: "
                    f"{', '.join(known)}. Name one with --data-format.")


def reader_options(reader: Reader) -> list[str]:
    """The options a reader takes besides the path, `target` and `seed`."""
    return [n for n, p in inspect.signature(reader).parameters.items()
            if n not in ("path", "target", "seed") and p.kind is not inspect.Parameter.VAR_KEYWORD]


def load_data(source: str | os.PathLike | Dataset, data_dir: str | os.PathLike | None = None, *,
              format: str | None = None, target: str | None = None, seed: int = 0, **options: Any) -> Dataset:
    """A dataset from a registered name, a file or a folder (see the module docstring).

    `target` names the label (or value) column of a table; `options` go to the dataset's loader or
    the format's reader, and unknown ones are refused with the valid ones listed."""
    if isinstance(source, Dataset):
        return source
    text = os.fspath(source)
    path = Path(text)
    if format is None and not path.exists() and text in list_datasets():
        if target is not None:
            raise ConfigError(f"--target names a column of a table; the registered dataset '{text}' has its own "
                              "labels.")
        return load_dataset(text, data_dir, seed, **options)
    if not path.exists():
        if os.sep in text or path.suffix:
            raise DataError(f"data file or folder not found: {path}.")
        try:
            dataset_info(text)
        except ConfigError as err:
            raise ConfigError(f"{err} Or give the path of a file or folder of your own.") from None
    info = format_info(format) if format is not None else format_info(detect_format(path))
    valid = reader_options(info.reader)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"data format '{info.name}' has no option {', '.join(map(repr, unknown))}. "
                          f"Valid options: {', '.join(valid) or 'none'}.")
    options = coerce_kwargs(f"data format '{info.name}'", info.reader, options)
    kwargs = {"seed": seed, **options}
    if target is not None:
        parameters = inspect.signature(info.reader).parameters
        # the label column of a reader whose tables also name other columns (text, graph nodes)
        name = next((n for n in ("target", "label_column", "label") if n in parameters), None)
        if name is None:
            raise ConfigError(f"--target names a column of a table; data format '{info.name}' takes none.")
        kwargs[name] = target
    return info.reader(path, **kwargs)


def source_options(dataset: Dataset) -> dict[str, Any] | None:
    """How `load_data` rebuilds `dataset` when it was read from a file or folder, else None:
    ``{"source", "format", "target", "options"}`` as its reader recorded them in the spec."""
    options = dataset.spec.options
    if "source" not in options or "format" not in options:
        return None
    rest = {k: v for k, v in options.items() if k not in ("source", "format", "target", "seed")}
    return {"source": options["source"], "format": options["format"], "target": options.get("target"),
            "seed": options.get("seed", 0), "options": rest}
