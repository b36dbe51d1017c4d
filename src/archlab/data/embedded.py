"""Datasets that ship inside installed packages (scikit-learn) and need no files."""

from __future__ import annotations

import numpy as np
import torch

from .base import Dataset, DataSpec, TensorSplit
from .registry import register_dataset
from .splits import stratified_split

VAL_FRACTION = 0.15
TEST_FRACTION = 0.15


def _sklearn_datasets():
    # scikit-learn is imported when an embedded dataset is first loaded, not with the package.
    from sklearn import datasets

    return datasets


def _splits(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, TensorSplit]:
    parts = stratified_split(y, VAL_FRACTION, TEST_FRACTION, seed)
    return {
        name: TensorSplit(x=torch.from_numpy(x[idx]).float(), y=torch.from_numpy(y[idx]).long())
        for name, idx in zip(("train", "val", "test"), parts)
    }


def _digits(seed: int, as_sequence: bool) -> Dataset:
    bunch = _sklearn_datasets().load_digits()
    raw = bunch.images.astype(np.float32)  # (1797, 8, 8), values 0..16
    scale = 1.0 / 16.0
    x = raw * scale
    kind, shape = ("sequence", (8, 8)) if as_sequence else ("image", (1, 8, 8))
    x = x.reshape(len(x), *shape)
    spec = DataSpec(
        name="digits-seq" if as_sequence else "digits", kind=kind, input_shape=shape, num_classes=10,
        class_names=[str(i) for i in range(10)], preprocess={"scale": scale}, options={"seed": seed},
    )
    return Dataset(spec, _splits(x, bunch.target.astype(np.int64), seed))


@register_dataset("digits", kind="image", description="scikit-learn's 1797 8x8 handwritten digits as 1x8x8 images")
def load_digits(root, seed: int = 0) -> Dataset:
    return _digits(seed, as_sequence=False)


@register_dataset("digits-seq", kind="sequence", description="scikit-learn's digits as sequences of 8 rows of 8 pixels")
def load_digits_seq(root, seed: int = 0) -> Dataset:
    return _digits(seed, as_sequence=True)


def _tabular(name: str, bunch, seed: int) -> Dataset:
    raw = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    parts = stratified_split(y, VAL_FRACTION, TEST_FRACTION, seed)
    # Standardize with the training split's statistics only.
    mean = raw[parts[0]].mean(0)
    std = raw[parts[0]].std(0)
    std[std == 0] = 1.0
    spec = DataSpec(
        name=name, kind="tabular", input_shape=(raw.shape[1],), num_classes=int(y.max()) + 1,
        class_names=[str(c) for c in bunch.target_names],
        preprocess={"mean": mean.tolist(), "std": std.tolist(), "feature_names": list(map(str, bunch.feature_names))},
        options={"seed": seed},
    )
    x = spec.apply_preprocess(raw)
    return Dataset(spec, _splits(x, y, seed))


@register_dataset("iris", kind="tabular", description="scikit-learn's iris: 150 flowers, 4 features, 3 classes")
def load_iris(root, seed: int = 0) -> Dataset:
    return _tabular("iris", _sklearn_datasets().load_iris(), seed)


@register_dataset("wine", kind="tabular", description="scikit-learn's wine: 178 wines, 13 features, 3 classes")
def load_wine(root, seed: int = 0) -> Dataset:
    return _tabular("wine", _sklearn_datasets().load_wine(), seed)


@register_dataset("breast-cancer", kind="tabular",
                  description="scikit-learn's breast cancer: 569 tumours, 30 features, 2 classes")
def load_breast_cancer(root, seed: int = 0) -> Dataset:
    return _tabular("breast-cancer", _sklearn_datasets().load_breast_cancer(), seed)
