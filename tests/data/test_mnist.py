"""MNIST from the shared IDX files, and the errors for missing or damaged files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import archlab
from archlab.data.idx import IDXFormatError, write_idx
from archlab.data.mnist import FILES
from archlab.errors import DataError

from ..conftest import require_dataset


@pytest.fixture(scope="module")
def mnist():
    return archlab.load_dataset("mnist", require_dataset("mnist").parent)


def test_official_counts_and_scaling(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (55000, 5000, 10000)
    x = mnist.train["x"]
    assert x.shape[1:] == (1, 28, 28) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    full_mean = (x.sum() + mnist.val["x"].sum()) / (60000 * 784)
    assert abs(float(full_mean) - 0.1307) < 1e-3  # the README's figure
    assert sorted(mnist.test["y"].unique().tolist()) == list(range(10))


def test_sequence_view(shared_data):
    seq = archlab.load_dataset("mnist-seq", shared_data)
    assert seq.spec.kind == "sequence" and seq.test["x"].shape == (10000, 28, 28)


def test_split_is_reproducible_and_disjoint(shared_data):
    a = archlab.load_dataset("mnist", shared_data, seed=1)
    b = archlab.load_dataset("mnist", shared_data, seed=1)
    assert a.val["x"].equal(b.val["x"])
    c = archlab.load_dataset("mnist", shared_data, seed=2)
    assert not a.val["x"].equal(c.val["x"])


def test_missing_file_names_it_and_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.gz.*official MNIST"):
        archlab.load_dataset("mnist", tmp_path)


def _fake_mnist(root, n_train=60000, n_test=10000, image_shape=(28, 28)):
    folder = root / "mnist"
    folder.mkdir()
    for split, n in (("train", n_train), ("test", n_test)):
        write_idx(folder / FILES[f"{split}_images"], np.zeros((n, *image_shape), np.uint8))
        write_idx(folder / FILES[f"{split}_labels"], np.zeros(n, np.uint8))
    return folder


def test_wrong_counts_are_refused(tmp_path):
    _fake_mnist(tmp_path, n_train=100)
    with pytest.raises(DataError, match="expected 60000 train images and labels; got 100"):
        archlab.load_dataset("mnist", tmp_path)


def test_wrong_image_size_is_refused(tmp_path):
    _fake_mnist(tmp_path, n_train=10, n_test=10, image_shape=(20, 20))
    with pytest.raises(DataError, match=r"\(N, 28, 28\)"):
        archlab.load_dataset("mnist", tmp_path)


def test_truncated_file_is_named(tmp_path):
    source = require_dataset("mnist")
    folder = tmp_path / "mnist"
    shutil.copytree(source, folder)
    target = folder / FILES["test_labels"]
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(IDXFormatError, match="t10k-labels-idx1-ubyte.gz"):
        archlab.load_dataset("mnist", tmp_path)
