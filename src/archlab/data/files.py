"""Reading user inputs for `predict` and `explain --input`: ``.npy``, ``.csv`` or an image file.

What a file holds is checked before it reaches a model: real numbers only (a complex array is
refused rather than cast, which would drop its imaginary part), every value finite and within
float32's range (a NaN or a 1e40, which float32 stores as inf, is refused naming its row and
column), and images no larger than `MAX_IMAGE_PIXELS`, checked from the header before decoding.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import DataSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# The largest image read: 8192 x 8192, above any camera photo yet small enough (64 MiB as 8-bit
# grayscale) to decode safely. A header claiming more is refused before any pixel is decoded: a
# small compressed file can declare 20000 x 20000 pixels and take gigabytes to expand.
MAX_IMAGE_PIXELS = 8192 * 8192
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _position(index: tuple[int, ...]) -> str:
    """Where a value sits in an ``(N, ...)`` batch: its row, then its column or position in the example."""
    row, rest = index[0], index[1:]
    if not rest:
        return f"row {row}"
    return f"row {row}, column {rest[0]}" if len(rest) == 1 else f"row {row}, position {rest}"


def check_values(raw: np.ndarray, source: str) -> np.ndarray:
    """`raw` ``(N, ...)`` as float32, refusing non-numeric or complex dtypes and any value that is
    not finite or does not fit float32 (it would become inf), naming the first such value by its row
    (and column) counting from 0, as `predict` numbers its outputs."""
    if raw.dtype.kind == "c":
        raise DataError(f"{source} holds complex numbers ({raw.dtype}); the model takes real inputs. "
                        "Pass the part you mean (x.real or abs(x)) explicitly.")
    if raw.dtype.kind not in "biuf":
        raise DataError(f"{source} must hold numbers; got an array of dtype {raw.dtype}.")
    wide = raw.astype(np.float64, copy=False)
    bad = ~np.isfinite(wide) | (np.abs(wide) > FLOAT32_MAX)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        value = wide[first]
        count = int(bad.sum())
        others = f" ({count} such values in all)" if count > 1 else ""
        if np.isfinite(value):
            raise DataError(f"{source}: {_position(first)} holds {value:g}, beyond float32's range "
                            f"(±{FLOAT32_MAX:.3g}), where it would become inf{others}. Inputs must be finite.")
        raise DataError(f"{source}: {_position(first)} holds {value}{others}. Inputs must be finite numbers.")
    return raw.astype(np.float32)


def _read_image(path: Path, expected: tuple[int, ...]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        # PIL warns above its own limit and raises above twice it; either way the header alone
        # was read. Both are refused here as one line.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        # PIL's message carries the pixel count its header declares; its own limit is not ours.
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(found.group(1))} pixels" if found else "more pixels than PIL decodes by default"
        raise DataError(f"{path}: the image is {size}, more than the {MAX_IMAGE_PIXELS} (8192 x 8192) that "
                        "archlab decodes; resize it first.") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot read the image ({err}).") from err
    with img:
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise DataError(f"{path}: the image is {width} x {height} pixels, more than the {MAX_IMAGE_PIXELS} "
                            "(8192 x 8192) that archlab decodes; resize it first.")
        try:
            small = img.convert("L").resize((expected[-1], expected[-2]))
        except (OSError, ValueError) as err:  # a truncated or inconsistent file fails only when decoded
            raise DataError(f"{path}: cannot read the image ({err}).") from err
    return np.asarray(small, dtype=np.float32) / 255.0


def read_inputs(path: str | os.PathLike, spec: DataSpec) -> np.ndarray:
    """Model inputs ``(N, *spec.input_shape)`` from a file.

    ``.npy`` and ``.csv`` hold raw values in the dataset's own units (e.g. 0-255
    pixels for MNIST, unscaled features for tabular data) and get the dataset's
    preprocessing; a ``.csv`` row is one flattened example. An image file is read
    as grayscale, resized to the model's input size and scaled to [0, 1]. A ``.npy``
    is read without pickle, so an object array is refused, never run.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    expected = tuple(spec.input_shape)
    if suffix in IMAGE_SUFFIXES:
        if spec.kind != "image":
            raise DataError(f"{path}: an image file was given, but the model takes {spec.kind} data.")
        return np.broadcast_to(_read_image(path, expected), (1, *expected)).copy()
    if suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise DataError(f"{path}: not a plain numeric .npy array ({err}).") from err
        if tuple(raw.shape) == expected:
            raw = raw[None]
        if tuple(raw.shape[1:]) != expected:
            raise DataError(f"{path}: expected an input of shape {expected} or "
                            f"(N, {', '.join(map(str, expected))}); got {tuple(raw.shape)}.")
        return spec.apply_preprocess(check_values(raw, str(path)))
    if suffix == ".csv":
        try:
            # float64 first, so that a value beyond float32's range is named, not read as inf
            raw = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise DataError(f"{path}: expected comma-separated numbers, one example a row ({err}).") from err
        if raw.shape[1] != int(np.prod(expected)):
            raise DataError(f"{path}: each row must hold {int(np.prod(expected))} values (an input of shape "
                            f"{expected}, flattened); got {raw.shape[1]}.")
        return spec.apply_preprocess(check_values(raw, str(path)).reshape(len(raw), *expected))
    raise DataError(f"{path}: unsupported file type '{suffix}'; use .npy, .csv or an image file.")
