"""Reproducible stratified train/val/test splits."""

from __future__ import annotations

import numpy as np


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, val and test, stratified by label, fixed by `seed`."""
    index = np.arange(len(y))
    from sklearn.model_selection import train_test_split

    rest, test = train_test_split(index, test_size=test_fraction, stratify=y, random_state=seed)
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed)
    return np.sort(train), np.sort(val), np.sort(test)
