"""`stratified_holdout` against scikit-learn's ``train_test_split(..., stratify=..., random_state=...)``:
the same indices in the same order, and a ValueError where scikit-learn raises one."""

from __future__ import annotations

import numpy as np
import pytest

from archlab.data.splits import stratified_holdout, stratified_split

train_test_split = pytest.importorskip("sklearn.model_selection").train_test_split


def label_cases():
    """(labels, test_size) over sizes, class counts, balances (ties among the classes' shares included),
    label types and held-out shares or counts."""
    rng = np.random.default_rng(0)
    for n in (4, 7, 10, 25, 60, 101, 333, 1000, 4321):
        for classes in (2, 3, 5, 10):
            if classes * 2 > n:
                continue
            for balance in ("equal", "skewed", "random"):
                if balance == "equal":
                    labels = np.arange(n) % classes
                elif balance == "skewed":
                    weights = 0.5 ** np.arange(classes)
                    labels = rng.choice(classes, n, p=weights / weights.sum())
                else:
                    labels = rng.integers(0, classes, n)
                for test_size in (0.15, 0.15 / 0.85, 0.3, 0.5, max(1, n // 7)):
                    yield labels, test_size
    yield np.array(list("abcabcabcaab")), 0.25  # text labels
    yield np.repeat([7, -3], [40, 9]), 0.2  # labels that are not 0..k-1


CASES = list(label_cases())


def both_splits(labels, test_size, seed):
    """(archlab's (kept, held), scikit-learn's) for one case and seed, or None where scikit-learn raises
    a ValueError, after checking that `stratified_holdout` raises one too."""
    try:
        expected = train_test_split(np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed)
    except ValueError:
        with pytest.raises(ValueError):
            stratified_holdout(labels, test_size, seed)
        return None
    return stratified_holdout(labels, test_size, seed), expected


@pytest.mark.parametrize("case", range(0, len(CASES), 7))  # a seventh of the cases, each with three seeds
def test_the_same_indices_as_train_test_split(case):
    labels, test_size = CASES[case]
    for seed in (0, 1, 12345):
        both = both_splits(labels, test_size, seed)
        if both is None:
            continue
        (kept, held), expected = both
        np.testing.assert_array_equal(kept, expected[0])
        np.testing.assert_array_equal(held, expected[1])


@pytest.mark.slow
def test_every_case_agrees():
    """All cases and seeds 0..4 (about 20 s), counted: the sampled test above names a failing case."""
    agree = raised = 0
    for labels, test_size in CASES:
        for seed in range(5):
            both = both_splits(labels, test_size, seed)
            if both is None:
                raised += 1
                continue
            (kept, held), expected = both
            agree += np.array_equal(kept, expected[0]) and np.array_equal(held, expected[1])
    assert agree + raised == 5 * len(CASES) and agree > raised


@pytest.mark.parametrize("labels", [[0, 0, 1], [0, 0, 1, 1], [0] * 5 + [1] * 5 + [2] * 2])
def test_too_few_examples_raise_as_scikit_learn_does(labels):
    labels = np.array(labels)
    with pytest.raises(ValueError):
        train_test_split(np.arange(len(labels)), test_size=0.15, stratify=labels, random_state=0)
    with pytest.raises(ValueError):
        stratified_holdout(labels, 0.15, 0)


def test_stratified_split_is_the_two_holdouts_of_before():
    """train/val/test as `stratified_split` made them with scikit-learn: test held out of all, then val
    out of the rest, each sorted."""
    labels = np.random.default_rng(3).choice(4, 500, p=[0.4, 0.3, 0.2, 0.1])
    for seed in range(4):
        rest, test = train_test_split(np.arange(500), test_size=0.15, stratify=labels, random_state=seed)
        train, val = train_test_split(rest, test_size=0.15 / 0.85, stratify=labels[rest], random_state=seed)
        got = stratified_split(labels, 0.15, 0.15, seed)
        for part, expected in zip(got, (train, val, test)):
            np.testing.assert_array_equal(part, np.sort(expected))
