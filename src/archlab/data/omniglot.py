"""Omniglot few-shot tasks from ``images_background.zip`` / ``images_evaluation.zip``.

The 1623 characters of both zips (20 drawings each, 105x105 1-bit PNGs) are decoded
once, resized to 28x28 (Lanczos) and inverted so strokes are 1, and cached as one
uint8 array ``(1623, 20, 28, 28)`` in ``$XDG_CACHE_HOME/archlab/omniglot/`` (written
atomically, keyed by the zips' content), so later runs load it in well under a second.

Split (Finn et al., 2017, after Santoro et al., 2016): the characters are shuffled
with a fixed seed; 1200 are for meta-training (1100 meta-train, 100 meta-val) and the
other 423 are meta-test. Each character gives four classes, rotated by 0, 90, 180
and 270 degrees, in every split (4400 / 400 / 1692 classes).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .fewshot import SPLITS, TaskBatch, check_counts, split_episode
from .paths import resolve_data_dir
from ..validation import check_choice

ZIPS = ("images_background.zip", "images_evaluation.zip")
DRAWINGS = 20
N_CHARACTERS = 1623
N_TRAIN, N_VAL = 1100, 100
SPLIT_SEED = 1
IMAGE_SIZE = 28
ENTRY = re.compile(r"^images_(?:background|evaluation)/([^/]+)/(character\d+)/(\d{4})_(\d{2})\.png$")
SOURCE = "the Omniglot python/ zips of github.com/brendenlake/omniglot (or the rebuilt copies in shared/data/omniglot)"


def cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "archlab" / "omniglot"


def _zip_paths(root: Path) -> list[Path]:
    paths = [root / name for name in ZIPS]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"Omniglot file not found: {path}. Expected {' and '.join(ZIPS)} in {root}; they are {SOURCE}. "
                "Point --data-dir (or ARCHLAB_DATA) at the folder that holds omniglot/."
            )
    return paths


def _characters(archive: zipfile.ZipFile, path: Path) -> dict[str, list[str]]:
    """Character key (alphabet/characterNN) -> its sorted PNG entry names."""
    chars: dict[str, list[str]] = {}
    for name in archive.namelist():
        match = ENTRY.match(name)
        if match:
            chars.setdefault(f"{match.group(1)}/{match.group(2)}", []).append(name)
    bad = {k: len(v) for k, v in chars.items() if len(v) != DRAWINGS}
    if not chars or bad:
        detail = f"{len(bad)} characters without {DRAWINGS} drawings, e.g. {next(iter(bad.items()))}" if bad \
            else "no images_*/<alphabet>/characterNN/XXXX_YY.png entries"
        raise DataError(f"{path}: not an Omniglot zip ({detail}); expected {SOURCE}.")
    return {k: sorted(v) for k, v in sorted(chars.items())}


def _decode(data: bytes, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("L").resize((size, size), Image.LANCZOS)
        return 255 - np.asarray(img, dtype=np.uint8)  # strokes -> bright


def read_omniglot(root: str | os.PathLike, image_size: int = IMAGE_SIZE) -> tuple[np.ndarray, list[str]]:
    """All 1623 characters as uint8 ``(1623, 20, S, S)`` (background zip first, each sorted by
    alphabet/character) and their ``alphabet/characterNN`` names; decoded once, then cached."""
    paths = _zip_paths(Path(root))
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    archives = [zipfile.ZipFile(path) for path in paths]
    try:
        listings = [_characters(a, p) for a, p in zip(archives, paths)]
        names = [k for listing in listings for k in listing]
        if len(names) != N_CHARACTERS:
            raise DataError(f"{' and '.join(map(str, paths))}: expected {N_CHARACTERS} characters in all; found "
                            f"{len(names)}. They should be {SOURCE}.")
        cache = cache_dir() / f"omniglot-{image_size}px-{digest.hexdigest()[:16]}.npy"
        shape = (N_CHARACTERS, DRAWINGS, image_size, image_size)
        cached = _load_cache(cache, shape)
        if cached is not None:
            return cached, names
        images = np.empty(shape, dtype=np.uint8)
        i = 0
        for archive, listing in zip(archives, listings):
            for entries in listing.values():
                for j, entry in enumerate(entries):
                    images[i, j] = _decode(archive.read(entry), image_size)
                i += 1
    finally:
        for archive in archives:
            archive.close()
    _save_atomic(cache, images)
    return images, names


def _load_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached images, or None when the cache is missing, damaged or of another shape
    (the caller then decodes the archives again)."""
    if not path.is_file():
        return None
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return images if images.shape == shape and images.dtype == np.uint8 else None


def _save_atomic(path: Path, array: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError:
        return  # no writable cache: decode again next time
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def character_split(split: str) -> np.ndarray:
    """Indices (into `read_omniglot`'s order) of the characters of one meta-split."""
    order = np.random.default_rng(SPLIT_SEED).permutation(N_CHARACTERS)
    parts = {"train": order[:N_TRAIN], "val": order[N_TRAIN:N_TRAIN + N_VAL], "test": order[N_TRAIN + N_VAL:]}
    return np.sort(parts[split])


class Omniglot:
    """N-way K-shot Omniglot tasks of one meta-split; `sample(n_tasks, generator)` gives a `TaskBatch`.

    Shapes:
        ``support_x (T, ways * shots, 1, 28, 28)`` in [0, 1], ``support_y (T, ways * shots)``.
    """

    kind = "classification"
    name = "omniglot"

    def __init__(self, ways: int = 5, shots: int = 1, query: int = 15, *, split: str = "train",
                 data_dir: str | os.PathLike | None = None, rotations: bool = True, image_size: int = IMAGE_SIZE):
        check_counts("Omniglot", ways, shots, query)
        check_choice("Omniglot", "split", split, SPLITS)
        if shots + query > DRAWINGS:
            raise ConfigError(f"shots + query = {shots} + {query} = {shots + query} examples a class are "
                              f"needed, but an Omniglot character has only {DRAWINGS} drawings.")
        images, _ = read_omniglot(resolve_data_dir(data_dir) / "omniglot", image_size)
        base = images[character_split(split)]  # (C, 20, S, S)
        if rotations:
            base = np.concatenate([np.rot90(base, k, axes=(2, 3)) for k in range(4)])
        self.images = torch.from_numpy(np.ascontiguousarray(base))
        n_classes = len(self.images)
        if ways > n_classes:
            raise ConfigError(f"ways={ways} is larger than the {n_classes} meta-{split} classes of Omniglot.")
        self.ways, self.shots, self.query, self.split = ways, shots, query, split
        self.input_shape = (1, image_size, image_size)

    @property
    def output_dim(self) -> int:
        return self.ways

    @property
    def num_classes(self) -> int:
        return len(self.images)

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch:
        need = self.shots + self.query
        classes = torch.rand(n_tasks, len(self.images), generator=generator).argsort(-1)[:, :self.ways]
        drawings = torch.rand(n_tasks, self.ways, DRAWINGS, generator=generator).argsort(-1)[..., :need]
        x = self.images[classes[..., None], drawings]  # (T, ways, k + q, S, S)
        return split_episode(x.unsqueeze(3).float().div_(255.0), self.shots)
