"""Embedded datasets: shapes, reproducible stratified splits, recorded preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archlab
from archlab.data import read_inputs
from archlab.errors import ConfigError, DataError

SHAPES = {"digits": (1, 8, 8), "digits-seq": (8, 8), "iris": (4,), "wine": (13,), "breast-cancer": (30,)}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_splits_are_disjoint_complete_and_reproducible(name):
    data = archlab.load_dataset(name, seed=3)
    again = archlab.load_dataset(name, seed=3)
    other = archlab.load_dataset(name, seed=4)
    assert data.spec.input_shape == SHAPES[name]
    rows = torch.cat([data[s]["x"].flatten(1) for s in ("train", "val", "test")])
    assert len(torch.unique(rows, dim=0)) >= len(rows) - 20  # a few duplicate digits exist in the source
    assert data.test["x"].equal(again.test["x"])
    assert not data.test["x"].equal(other.test["x"])
    # stratified: every class present in every split
    for split in ("train", "val", "test"):
        assert len(data[split]["y"].unique()) == data.spec.num_classes


def test_tabular_standardized_with_train_statistics():
    data = archlab.load_dataset("wine")
    x = data.train["x"]
    torch.testing.assert_close(x.mean(0), torch.zeros(13), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, unbiased=False), torch.ones(13), atol=1e-5, rtol=0)


def test_unknown_dataset_suggests_close_match():
    with pytest.raises(ConfigError, match="Did you mean 'digits'"):
        archlab.load_dataset("digts")


def test_read_inputs_applies_the_dataset_preprocessing(tmp_path):
    spec = archlab.load_dataset("digits").spec
    raw = np.full((2, 1, 8, 8), 16.0)
    np.save(tmp_path / "x.npy", raw)
    np.testing.assert_allclose(read_inputs(tmp_path / "x.npy", spec), np.ones((2, 1, 8, 8)))
    np.savetxt(tmp_path / "x.csv", raw.reshape(2, 64), delimiter=",")
    np.testing.assert_allclose(read_inputs(tmp_path / "x.csv", spec), np.ones((2, 1, 8, 8)))
    np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
    with pytest.raises(DataError, match=r"expected an input of shape \(1, 8, 8\)"):
        read_inputs(tmp_path / "bad.npy", spec)
