"""MNIST from the four official IDX files in ``<data-dir>/mnist/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, DataSpec, TensorSplit
from .idx import read_idx
from .registry import register_dataset

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
COUNTS = {"train": 60000, "test": 10000}
VAL_SIZE = 5000
SOURCE = "the official MNIST files (yann.lecun.com/exdb/mnist, or any mirror of the same four .gz files)"


def _find(root: Path, filename: str) -> Path:
    for candidate in (root / filename, root / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MNIST file not found: {root / filename}. Expected the four IDX files {', '.join(FILES.values())} "
        f"in {root}; they are {SOURCE}. Point --data-dir (or ARCHLAB_DATA) at the folder that holds mnist/."
    )


def read_mnist(root: Path) -> dict[str, np.ndarray]:
    """The raw uint8 images ``(N, 28, 28)`` and labels ``(N,)`` of both official splits."""
    arrays = {}
    for split in ("train", "test"):
        img_path, lab_path = _find(root, FILES[f"{split}_images"]), _find(root, FILES[f"{split}_labels"])
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DataError(f"{img_path}: expected uint8 images of shape (N, 28, 28); got {images.dtype} {images.shape}.")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{lab_path}: expected uint8 labels of shape (N,); got {labels.dtype} {labels.shape}.")
        if len(images) != COUNTS[split] or len(labels) != COUNTS[split]:
            raise DataError(
                f"{img_path} and {lab_path}: expected {COUNTS[split]} {split} images and labels; "
                f"got {len(images)} and {len(labels)}. They should be {SOURCE}."
            )
        if labels.max() > 9:
            raise DataError(f"{lab_path}: labels must be digits 0-9; found {int(labels.max())}.")
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def _load(root: Path, seed: int, as_sequence: bool) -> Dataset:
    raw = read_mnist(root)
    scale = 1.0 / 255.0
    shape = (28, 28) if as_sequence else (1, 28, 28)

    def split(images: np.ndarray, labels: np.ndarray) -> TensorSplit:
        x = torch.from_numpy(images.reshape(len(images), *shape).astype(np.float32) * np.float32(scale))
        return TensorSplit(x=x, y=torch.from_numpy(labels.astype(np.int64)))

    # A seeded 5,000-image validation split held out of the 60,000 training images.
    order = np.random.default_rng(seed).permutation(COUNTS["train"])
    val_idx, train_idx = np.sort(order[:VAL_SIZE]), np.sort(order[VAL_SIZE:])
    images, labels = raw["train_images"], raw["train_labels"]
    spec = DataSpec(
        name="mnist-seq" if as_sequence else "mnist", kind="sequence" if as_sequence else "image",
        input_shape=shape, num_classes=10, class_names=[str(i) for i in range(10)],
        preprocess={"scale": scale}, options={"seed": seed},
    )
    return Dataset(spec, {
        "train": split(images[train_idx], labels[train_idx]),
        "val": split(images[val_idx], labels[val_idx]),
        "test": split(raw["test_images"], raw["test_labels"]),
    })


@register_dataset("mnist", kind="image", folder="mnist",
                  description="MNIST 28x28 digits from the official IDX files (55k train / 5k val / 10k test)")
def load_mnist(root: Path, seed: int = 0) -> Dataset:
    return _load(root, seed, as_sequence=False)


@register_dataset("mnist-seq", kind="sequence", folder="mnist",
                  description="MNIST as sequences of 28 rows of 28 pixels")
def load_mnist_seq(root: Path, seed: int = 0) -> Dataset:
    return _load(root, seed, as_sequence=True)
