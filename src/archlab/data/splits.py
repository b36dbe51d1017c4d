"""Reproducible stratified train/val/test splits, in numpy.

`stratified_holdout` gives the same indices, in the same order, as scikit-learn's
``train_test_split(np.arange(n), test_size=..., stratify=labels, random_state=seed)`` (tests/parity
checks it), so that a split made before is made again without importing scikit-learn, SciPy and
pandas with it: that import is about 100 MB and a second of a streamed image folder's reading.
"""

from __future__ import annotations

import math

import numpy as np


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, val and test, stratified by label, fixed by `seed`."""
    y = np.asarray(y)
    rest, test = stratified_holdout(y, test_fraction, seed)
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = stratified_holdout(y[rest], val_share, seed)
    return np.sort(rest[train]), np.sort(rest[val]), np.sort(test)


def stratified_holdout(labels: np.ndarray, test_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held): positions of `labels`, `test_size` of them held out (a share in (0, 1), rounded up,
    or a count), each class in proportion, drawn from ``np.random.RandomState(seed)``. Raises ValueError
    when a class has a single example, or there are fewer kept or held-out positions than classes.

    The draws, in order: how many of each class are kept, then held out (`_proportional_counts`);
    a permutation of each class's positions (first kept, then held, the rest unused); a permutation
    of all kept positions, then of all held ones."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"stratified_holdout needs one label a position; got an array of shape {labels.shape}.")
    n_held, n_kept = _holdout_sizes(len(labels), test_size)
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"the classes {classes[counts < 2].tolist()} have a single example; a stratified split "
                         "needs two of each.")
    if n_kept < len(classes) or n_held < len(classes):
        raise ValueError(f"{n_kept} kept and {n_held} held-out examples cannot both hold each of "
                         f"{len(classes)} classes.")
    by_class = np.split(np.argsort(codes.reshape(-1), kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    kept_counts = _proportional_counts(counts, n_kept, rng)
    held_counts = _proportional_counts(counts - kept_counts, n_held, rng)
    kept, held = [], []
    for positions, k, h in zip(by_class, kept_counts, held_counts):
        shuffled = positions[rng.permutation(len(positions))]
        kept.append(shuffled[:k])
        held.append(shuffled[k:k + h])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(held))


def _holdout_sizes(n: int, test_size: float | int) -> tuple[int, int]:
    """(held, kept) counts of `n` examples for `test_size` (a share, rounded up, or a count)."""
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if not 0 < test_size < n:
            raise ValueError(f"a held-out count must be in [1, {n - 1}] for {n} examples; got {test_size}.")
        held = int(test_size)
    elif isinstance(test_size, (float, np.floating)) and 0 < test_size < 1:
        held = math.ceil(test_size * n)
    else:
        raise ValueError(f"a held-out share must be a float in (0, 1); got {test_size!r}.")
    if n - held <= 0:
        raise ValueError(f"holding out {held} of {n} examples leaves none to keep.")
    return held, n - held


def _proportional_counts(counts: np.ndarray, total: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of each class's `counts` to draw for `total` draws: each class's proportional share
    rounded down, then one more for the classes with the largest fractional parts until `total` is
    reached, ties among equal fractional parts broken at random by `rng`."""
    share = counts / counts.sum() * total
    drawn = np.floor(share)
    missing = int(total - drawn.sum())
    fraction = share - drawn
    for value in np.unique(fraction)[::-1]:  # the largest fractional part first
        if missing <= 0:
            break
        tied = np.flatnonzero(fraction == value)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        drawn[chosen] += 1
        missing -= len(chosen)
    return drawn.astype(int)
