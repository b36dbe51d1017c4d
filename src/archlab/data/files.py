"""Reading user inputs for `predict`: ``.npy``, ``.csv`` or an image file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import DataSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def read_inputs(path: str | os.PathLike, spec: DataSpec) -> np.ndarray:
    """Model inputs ``(N, *spec.input_shape)`` from a file.

    ``.npy`` and ``.csv`` hold raw values in the dataset's own units (e.g. 0-255
    pixels for MNIST, unscaled features for tabular data) and get the dataset's
    preprocessing; a ``.csv`` row is one flattened example. An image file is read
    as grayscale, resized to the model's input size and scaled to [0, 1].
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    expected = tuple(spec.input_shape)
    if suffix in IMAGE_SUFFIXES:
        if spec.kind != "image":
            raise DataError(f"{path}: an image file was given, but the model takes {spec.kind} data.")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                img = img.convert("L").resize((expected[-1], expected[-2]))
                x = np.asarray(img, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{path}: cannot read the image ({err}).") from err
        return np.broadcast_to(x, (1, *expected)).copy()
    if suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise DataError(f"{path}: not a plain numeric .npy array ({err}).") from err
    elif suffix == ".csv":
        try:
            raw = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        except ValueError as err:
            raise DataError(f"{path}: expected comma-separated numbers, one example a row ({err}).") from err
        if raw.shape[1] != int(np.prod(expected)):
            raise DataError(f"{path}: each row must hold {int(np.prod(expected))} values (an input of shape "
                            f"{expected}, flattened); got {raw.shape[1]}.")
        raw = raw.reshape(len(raw), *expected)
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}'; use .npy, .csv or an image file.")
    if tuple(raw.shape) == expected:
        raw = raw[None]
    if tuple(raw.shape[1:]) != expected:
        raise DataError(f"{path}: expected an input of shape {expected} or (N, {', '.join(map(str, expected))}); "
                        f"got {tuple(raw.shape)}.")
    return spec.apply_preprocess(raw)
