"""Omniglot: decoding the zips, the cache, the standard split and rotations."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from archlab.data import Omniglot
from archlab.data import omniglot as om
from archlab.errors import ConfigError, DataError
from tests.conftest import require_dataset


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (105, 105), color=value).save(buf, format="PNG")
    return buf.getvalue()


def test_fake_zips_decode_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(om, "N_CHARACTERS", 3)
    root = tmp_path / "omniglot"
    root.mkdir()
    for zip_name, chars in (("images_background.zip", ["Alpha/character01", "Alpha/character02"]),
                            ("images_evaluation.zip", ["Beta/character01"])):
        folder = zip_name.removesuffix(".zip")
        with zipfile.ZipFile(root / zip_name, "w") as z:
            for c, char in enumerate(chars):
                for d in range(1, 21):
                    z.writestr(f"{folder}/{char}/{c:04d}_{d:02d}.png", _png(0 if char.startswith("Beta") else 1))
    images, names = om.read_omniglot(root)
    assert images.shape == (3, 20, 28, 28) and images.dtype == np.uint8
    assert names == ["Alpha/character01", "Alpha/character02", "Beta/character01"]
    assert images[0].max() == 0 and images[2].min() == 255  # inverted: a black page is all stroke
    cached = list((tmp_path / "cache" / "archlab" / "omniglot").glob("*.npy"))
    assert len(cached) == 1
    (root / "images_background.zip").unlink()
    with pytest.raises(FileNotFoundError, match="images_background.zip"):
        om.read_omniglot(root)


def test_not_omniglot_zip_is_refused(tmp_path):
    for name in om.ZIPS:
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            z.writestr("readme.txt", "hello")
    with pytest.raises(DataError, match="not an Omniglot zip"):
        om.read_omniglot(tmp_path)


def test_standard_split_is_a_partition():
    parts = [om.character_split(s) for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [1100, 100, 423]
    assert len(np.unique(np.concatenate(parts))) == 1623


def test_real_omniglot_tasks():
    root = require_dataset("omniglot")
    sampler = Omniglot(5, 1, 15, split="test", data_dir=root.parent)
    assert sampler.num_classes == 4 * 423
    tasks = sampler.sample(3, torch.Generator().manual_seed(0))
    assert tasks.support_x.shape == (3, 5, 1, 28, 28) and tasks.query_x.shape == (3, 75, 1, 28, 28)
    assert 0 <= tasks.support_x.min() and tasks.support_x.max() <= 1
    # rotated classes: class c + k * 423 is class c turned by k quarter turns
    torch.testing.assert_close(sampler.images[423], torch.rot90(sampler.images[0], 1, (1, 2)))
    with pytest.raises(ConfigError, match=r"shots \+ query = 5 \+ 16 = 21 .* only 20 drawings"):
        Omniglot(5, 5, 16, data_dir=root.parent)
    with pytest.raises(ConfigError, match="ways=2000 is larger than the 1692 meta-test classes"):
        Omniglot(2000, 1, 1, split="test", data_dir=root.parent)
