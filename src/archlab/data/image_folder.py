"""Image folders in the layout torchvision's ``ImageFolder`` reads: one subfolder per class,
optionally under ``train/``, ``val/`` and ``test/``.

PNG, JPEG, BMP and WebP files are decoded with Pillow as grayscale or RGB, resized to one
size and normalized per channel with the training split's mean and standard deviation. A
folder whose decoded size fits `memory_budget` is decoded once into memory (`ImageTensorSplit`);
a larger one is decoded batch by batch by `torch.utils.data.DataLoader` workers
(`ImageFileSplit`). Both yield the same batches for the same seed: the order is
``torch.randperm(n, generator=seed)``, as `TensorSplit`'s, and a training batch's augmentation is
drawn from a generator seeded by ``(seed, batch index)``, so a resumed epoch sees the same batches.

Every file is decoded once when the folder is read (the streaming path keeps only the
statistics), so an unreadable image is named before training starts instead of in the middle
of an epoch.

New images are read with the training mode, size and statistics: an image or a folder of them for
`predict` (`read_images`), a folder of class folders named as the training classes (its ``test/``
folder, when it has one) for `evaluate` (`labeled_images`, decoded into memory).
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..validation import check_int, fail
from .base import SHARD_COUNT, SHARD_ROWS, Dataset, DataSpec, TensorSplit, shard_bounds
from .sources import register_format
from .splits import stratified_holdout, stratified_split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# Held out of the training files when the folder has no such split: 70/15/15 as for tables.
VAL_FRACTION = TEST_FRACTION = 0.15
# Pillow modes of one channel; an image folder is grayscale by default when every training image has one.
GRAYSCALE_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
SCALE = 1.0 / 255.0
CHUNK = 64  # files a worker decodes per task when the folder is read
OWNER = "from_image_folder"

_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_BYTES = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*")


def parse_bytes(value: int | str, owner: str = OWNER, name: str = "memory_budget") -> int:
    """A number of bytes from an int or a string such as ``"512MB"`` or ``"2GiB"`` (KB, MB, GB, TB are
    powers of 1000; KiB, MiB, GiB, TiB of 1024; a bare number is bytes)."""
    rule = "bytes (an int >= 0) or a string such as '512MB' or '2GiB'"
    if isinstance(value, bool):
        raise fail(owner, name, rule, value)
    if isinstance(value, int):
        if value < 0:
            raise fail(owner, name, rule, value)
        return value
    if isinstance(value, str):
        match = _BYTES.fullmatch(value.lower())
        if match and match.group(2) in ("", *_UNITS):
            return int(float(match.group(1)) * _UNITS.get(match.group(2), 1))
    raise fail(owner, name, rule, value)


# ---------------------------------------------------------------------------------------------
# Decoding (in DataLoader workers)


class BombError(Exception):
    """An image over Pillow's decompression-bomb limit: refused even with ``skip_bad_files``."""


def _open(path: str):
    from PIL import Image

    # Pillow warns between MAX_IMAGE_PIXELS and twice that and raises above; both are refused here.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise BombError(str(err)) from None


def read_header(path: str) -> tuple[int, int, str]:
    """``(height, width, mode)`` of an image file, read from its header only."""
    with _open(path) as img:
        return img.size[1], img.size[0], img.mode


def decode(path: str, mode: str, size: tuple[int, int]) -> np.ndarray:
    """The image as uint8 ``(C, H, W)`` in `mode` (``"L"`` or ``"RGB"``), resized to `size` ``(H, W)``."""
    from PIL import Image

    height, width = size
    with Image.open(path) as img:  # its size was checked against the bomb limit by `read_header`
        img.draft(mode, (width, height))  # JPEG: decode at the smallest scale that still covers the size
        img = img.convert(mode)
        if img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _try(function: Callable[[str], Any], path: str) -> tuple[Any, str | None, bool]:
    """``(function(path), None, False)``, or None, why the file cannot be read, and whether it is a
    decompression bomb. Errors come back as values: a worker's exception would reach the main
    process as a many-line traceback."""
    from PIL import Image

    try:
        return function(path), None, False
    except (BombError, Image.DecompressionBombError) as err:
        return None, str(err), True
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # what Pillow raises for damaged files
        return None, str(err) or type(err).__name__, False


def _bomb(path: str, error: str) -> DataError:
    return DataError(f"{path}: refused as a possible decompression bomb ({error}). Pillow's limit is "
                     "PIL.Image.MAX_IMAGE_PIXELS; raise it only for files you trust.")


class _Chunks(torch.utils.data.Dataset):
    """`_try` of `function` over `paths` in chunks of `CHUNK`, one chunk a worker task."""

    def __init__(self, function: Callable[[str], Any], paths: Sequence[str]):
        self.function, self.paths = function, paths

    def __len__(self) -> int:
        return -(-len(self.paths) // CHUNK)

    def __getitem__(self, chunk: int) -> list[tuple[Any, str | None, bool]]:
        return [_try(self.function, path) for path in self.paths[chunk * CHUNK:(chunk + 1) * CHUNK]]


def _identity(x: Any) -> Any:
    return x


def _map_files(function: Callable[[str], Any], paths: Sequence[str], num_workers: int
               ) -> Iterator[tuple[int, Any, str | None]]:
    """``(index, function(path) or None, error or None)`` for each path, in order, on `num_workers`
    DataLoader workers; a decompression bomb stops the read with a `DataError`."""
    loader = torch.utils.data.DataLoader(_Chunks(function, paths), batch_size=None, collate_fn=_identity,
                                         num_workers=min(num_workers, -(-len(paths) // CHUNK)),
                                         generator=torch.Generator())  # leaves the global RNG alone
    index = 0
    for chunk in loader:
        for value, error, bomb in chunk:
            if bomb:
                raise _bomb(paths[index], error)
            yield index, value, error
            index += 1


# ---------------------------------------------------------------------------------------------
# Normalization and augmentation, shared by both kinds of split


def normalize_pixels(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 pixels ``(B, C, H, W)`` to model inputs: :math:`(p / 255 - \\mu_c) / \\sigma_c`."""
    return (pixels.float() * SCALE - mean.to(pixels.device)) / std.to(pixels.device)


def augment_batch(x: torch.Tensor, generator: torch.Generator, rows: tuple[int, int, int] | None = None
                  ) -> torch.Tensor:
    """A random crop of each image padded with zeros (the training mean, when normalized) by an
    eighth of its size, then a horizontal flip with probability 1/2, as torchvision's CIFAR recipe.
    `rows` ``(start, stop, total)``: `x` holds those rows of a global batch (one rank's part), and
    the crops and flips are drawn for the whole batch, so each image gets the one it gets there.

    Shapes:
        input and output ``(B, C, H, W)``.
    """
    batch, _, height, width = x.shape
    start, stop, total = rows if rows is not None else (0, batch, batch)
    pad_h, pad_w = max(1, height // 8), max(1, width // 8)
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    dy = torch.randint(2 * pad_h + 1, (total,), generator=generator)[start:stop]
    dx = torch.randint(2 * pad_w + 1, (total,), generator=generator)[start:stop]
    flip = (torch.rand(total, generator=generator) < 0.5)[start:stop]
    rows = (dy[:, None] + torch.arange(height)).to(x.device)  # (B, H)
    cols = (dx[:, None] + torch.arange(width)).to(x.device)  # (B, W)
    cols = torch.where(flip.to(x.device)[:, None], cols.flip(1), cols)
    samples = torch.arange(batch, device=x.device)[:, None, None]
    crops = padded.permute(0, 2, 3, 1)[samples, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return crops.permute(0, 3, 1, 2).contiguous()


def _finish_part(finish: Callable, rows: dict[int, tuple[int, int, int]], pixels: torch.Tensor, number: int
                 ) -> torch.Tensor:
    """`finish` of batch `number`'s rows ``rows[number]`` (a rank's part): its draws are the whole batch's."""
    return finish(pixels, number, rows=rows[number])


def _batch_generator(seed: int, batch: int) -> torch.Generator:
    """The generator of batch `batch`'s augmentation in the epoch of `seed`: independent of where
    the epoch started, so a resumed epoch draws the same crops and flips."""
    state = np.random.SeedSequence([abs(int(seed)), batch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _order(size: int, shuffle: bool, seed: int) -> torch.Tensor:
    if shuffle:
        return torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return torch.arange(size)


class ImageTensorSplit(TensorSplit):
    """An image split decoded into memory: ``x`` (normalized, ``(N, C, H, W)``) and ``y``; with
    `augment`, shuffled (training) batches are randomly cropped and flipped."""

    def __init__(self, *, augment: bool = False, **tensors: torch.Tensor):
        super().__init__(**tensors)
        self.augment = augment

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ImageTensorSplit:
        return ImageTensorSplit(augment=self.augment, **TensorSplit.to(self, device, dtype).tensors)

    def subset(self, index: torch.Tensor | np.ndarray) -> ImageTensorSplit:
        return ImageTensorSplit(augment=self.augment, **TensorSplit.subset(self, index).tensors)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0,
                shard: tuple[int, int] | None = None) -> Iterator[dict[str, Any]]:
        """`TensorSplit.batches`; a shard's crops and flips are drawn for its whole batch."""
        order = _order(len(self), shuffle, seed)
        for i in range(start, self.num_batches(batch_size)):
            idx, marks = self.batch_rows(batch_size, i, order, shard)
            batch = {k: v[idx.to(v.device)] for k, v in self.tensors.items()}
            if shuffle and self.augment:
                batch["x"] = augment_batch(batch["x"], _batch_generator(seed, i), marks.get(SHARD_ROWS))
            yield {**batch, **marks}


class _Batches(torch.utils.data.Dataset):
    """Map-style dataset of whole batches: item ``(i, index)`` is batch `i`, the files at `index`
    decoded and stacked as uint8 ``(B, C, H, W)`` in the worker, then `finish(pixels, i)` there too
    when given (for a CPU split: the main process's threads are left to the model)."""

    def __init__(self, paths: Sequence[str], mode: str, size: tuple[int, int],
                 finish: Callable[[torch.Tensor, int], torch.Tensor] | None):
        self.paths, self.mode, self.size, self.finish = paths, mode, size, finish

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, list[int]]) -> tuple[torch.Tensor | None, str | None]:
        number, index = item
        images = []
        for i in index:
            image, error, _ = _try(partial(decode, mode=self.mode, size=self.size), self.paths[i])
            if image is None:
                return None, f"{self.paths[i]}: cannot read the image any more ({error}); it was readable when " \
                             "the folder was loaded. Load the folder again."
            images.append(image)
        pixels = torch.from_numpy(np.stack(images))
        return (pixels if self.finish is None else self.finish(pixels, number)), None


class ImageFileSplit:
    """An image split decoded on the fly by `num_workers` DataLoader workers, for folders larger
    than the memory budget; the split protocol of `TensorSplit` (without ``split["x"]``)."""

    def __init__(self, paths: Sequence[str], labels: torch.Tensor, *, mode: str, size: tuple[int, int],
                 mean: torch.Tensor, std: torch.Tensor, augment: bool = False, num_workers: int = 2,
                 device: torch.device | str = "cpu", dtype: torch.dtype | None = None):
        self.paths, self.labels = list(paths), labels
        self.mode, self.size, self.mean, self.std = mode, tuple(size), mean, std
        self.augment, self.num_workers, self.device = augment, num_workers, torch.device(device)
        self.dtype = dtype  # the decoded images' dtype, when not float32 (a float64 run)

    def _with(self, paths: Sequence[str], labels: torch.Tensor, device: torch.device | str,
              dtype: torch.dtype | None = None) -> ImageFileSplit:
        return ImageFileSplit(paths, labels, mode=self.mode, size=self.size, mean=self.mean, std=self.std,
                              augment=self.augment, num_workers=self.num_workers, device=device, dtype=dtype)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: str) -> torch.Tensor:
        if key == "y":
            return self.labels.to(self.device)
        raise DataError(f"this image split is decoded from its {len(self)} files batch by batch (the folder is "
                        f"larger than memory_budget), so it has no '{key}' tensor in memory; iterate "
                        "split.batches(batch_size), or raise memory_budget to hold the folder in memory.")

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ImageFileSplit:
        return self._with(self.paths, self.labels, device, dtype)

    def subset(self, index: torch.Tensor | np.ndarray) -> ImageFileSplit:
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        return self._with([self.paths[i] for i in index.tolist()], self.labels.cpu()[index], self.device,
                          self.dtype)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    #: `batches` reads one rank's part of each batch (`shard`): data-parallel training reads disjoint files
    reads_shards = True

    def _finish(self, pixels: torch.Tensor, number: int, *, augment: bool, seed: int,
                rows: tuple[int, int, int] | None = None) -> torch.Tensor:
        x = normalize_pixels(pixels, self.mean, self.std)
        return augment_batch(x, _batch_generator(seed, number), rows) if augment else x

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0,
                shard: tuple[int, int] | None = None) -> Iterator[dict[str, Any]]:
        """Batches from `start` on, decoded ahead by the workers and moved to the split's device as
        they come; the order and the augmentation are those of `ImageTensorSplit`. For an
        accelerator the workers send uint8 pixels (a quarter of float32's bytes to copy) and the
        device normalizes them. `shard` ``(rank, size)``: only rank `rank`'s contiguous part of each
        batch is read (`shard_bounds`), marked with ``SHARD_ROWS`` (a rank with no row of a batch
        holds its first as a stand-in, ``SHARD_COUNT`` 0)."""
        order = _order(len(self), shuffle, seed)
        items, parts = [], {}
        for i in range(start, self.num_batches(batch_size)):
            index = order[i * batch_size:(i + 1) * batch_size].tolist()
            if shard is not None:
                lo, hi = shard_bounds(len(index), *shard)
                parts[i] = (lo, hi) if hi > lo else (0, 1), hi - lo, len(index)
                index = index[parts[i][0][0]:parts[i][0][1]]
            items.append((i, index))
        if not items:
            return
        finish = partial(self._finish, augment=shuffle and self.augment, seed=seed)
        if shard is not None:
            finish = partial(_finish_part, finish, {i: (*rows, n) for i, (rows, _, n) in parts.items()})
        on_device = self.device.type != "cpu"
        loader = torch.utils.data.DataLoader(_Batches(self.paths, self.mode, self.size, None if on_device else finish),
                                             sampler=items, batch_size=None, collate_fn=_identity,
                                             pin_memory=self.device.type == "cuda",
                                             num_workers=min(self.num_workers, len(items)),
                                             # its own generator: a DataLoader draws its workers' seeds from
                                             # the global RNG otherwise, which a resumed run must replay
                                             generator=torch.Generator())
        labels = self.labels.cpu()
        for (i, index), (x, error) in zip(items, loader):
            if x is None:
                raise DataError(error)
            if on_device:
                x = finish(x.to(self.device, non_blocking=True), i)
            if self.dtype is not None:
                x = x.to(self.dtype)
            batch = {"x": x, "y": labels[index].to(self.device)}
            if shard is not None:
                (lo, hi), count, n = parts[i]
                batch.update({SHARD_ROWS: (lo, hi, n), SHARD_COUNT: count})
            yield batch


# ---------------------------------------------------------------------------------------------
# The folder's layout


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _holds_image(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.is_file() and _is_image(Path(e.name)) for e in entries)


def _split_folders(root: Path) -> dict[str, Path] | None:
    """``{"train": ..., "val": ..., "test": ...}`` (those present) when `root` holds a ``train/``
    folder of class folders, else None (`root` itself holds the class folders)."""
    train = root / "train"
    if not train.is_dir() or not any(_holds_image(c) for c in _subfolders(train)):
        return None
    found: dict[str, Path] = {}
    for folder in _subfolders(root):
        split = SPLIT_FOLDERS.get(folder.name.lower())
        if split is None:
            raise DataError(f"{folder}: unexpected folder beside {train}; a folder split into train/val/test holds "
                            f"only the folders {', '.join(sorted(SPLIT_FOLDERS))}, each with one subfolder per class.")
        if split in found:
            raise DataError(f"{root}: both {found[split].name}/ and {folder.name}/ name the {split} split; keep one.")
        found[split] = folder
    return found


def is_image_folder(path: Path) -> bool:
    """Whether `path` is a folder of class folders holding images (or train/ of them)."""
    root = path / "train" if (path / "train").is_dir() else path
    try:
        return any(_holds_image(c) for c in _subfolders(root))
    except OSError:
        return False


def _class_files(folder: Path, classes: list[str] | None) -> tuple[list[str], list[str], list[int]]:
    """The class names of `folder` (or `classes`, the training ones) and each image's path and label."""
    found = [c.name for c in _subfolders(folder)]
    if classes is None:
        classes = found
    else:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(f"{folder}: class folder(s) {', '.join(map(repr, unknown))} are not in the training "
                            f"split; the training classes are {', '.join(classes)}.")
    paths, labels = [], []
    for label, name in enumerate(classes):
        if name not in found:
            continue
        images = sorted(str(p) for p in (folder / name).iterdir() if p.is_file() and _is_image(p))
        if not images:
            raise DataError(f"{folder / name}: the class folder holds no images; expected files ending in "
                            f"{', '.join(IMAGE_SUFFIXES)}. Remove the folder or add its images.")
        paths += images
        labels += [label] * len(images)
    return classes, paths, labels


def _too_few(folder: Path, labels: np.ndarray, what: str) -> DataError:
    counts = np.bincount(labels)
    return DataError(f"{folder}: too few images to hold out a stratified {what} split ({len(labels)} images in "
                     f"{len(counts)} classes, the smallest with {counts.min()}); add images, or give train/, val/ "
                     "and test/ folders.")


def _hold_out(labels: np.ndarray, fraction: float, seed: int, what: str, folder: Path
              ) -> tuple[np.ndarray, np.ndarray]:
    """Indices kept and held out: a stratified `fraction` of `labels`, fixed by `seed`."""
    try:
        kept, held = stratified_holdout(labels, fraction, seed)
    except ValueError:
        raise _too_few(folder, labels, f"{fraction:.0%} {what}") from None
    return np.sort(kept), np.sort(held)


def _split_70_15_15(labels: np.ndarray, seed: int, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        return stratified_split(labels, VAL_FRACTION, TEST_FRACTION, seed)
    except ValueError:
        raise _too_few(folder, labels, "70/15/15 train/val/test") from None


def _layout(root: Path, seed: int) -> tuple[list[str], dict[str, tuple[list[str], np.ndarray]]]:
    """The class names and each split's ``(paths, labels)``."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; an image folder holds one subfolder per class.")
    folders = _split_folders(root)
    if folders is None:
        if not _subfolders(root):
            raise DataError(f"{root}: the folder holds no class folders; expected one subfolder per class "
                            "holding its images (optionally under train/, val/ and test/).")
        folders = {"train": root}
    classes, paths, labels = _class_files(folders["train"], None)
    splits = {"train": (paths, np.asarray(labels, np.int64))}
    for name in ("val", "test"):
        if name in folders:
            _, paths, labels = _class_files(folders[name], classes)
            if not paths:
                raise DataError(f"{folders[name]}: the {name} folder holds no class folders of images; add them "
                                f"(one subfolder per class, as in {folders['train']}), or remove it to hold the "
                                f"{name} split out of the training images.")
            splits[name] = (paths, np.asarray(labels, np.int64))
    # Splits without a folder are held out of the training files, stratified: 70/15/15 when both are.
    missing = [n for n in ("val", "test") if n not in splits]
    if missing:
        paths, labels = splits["train"]
        if len(missing) == 2:
            parts = _split_70_15_15(labels, seed, folders["train"])
        else:
            parts = _hold_out(labels, VAL_FRACTION, seed, missing[0], folders["train"])
        for name, index in zip(["train", *missing], parts):
            splits[name] = ([paths[j] for j in index], labels[index])
    return classes, splits


# ---------------------------------------------------------------------------------------------
# The reader


@dataclass
class _Decoded:
    """What one read of the files found: the pixels (in memory only), the training statistics and
    the files that could not be read."""

    pixels: np.ndarray | None  # (N, C, H, W) uint8 for the in-memory path
    sums: np.ndarray  # per channel, of the training pixels (exact integers)
    squares: np.ndarray
    bad: dict[int, str]


def _refuse_or_skip(bad: dict[int, str], paths: Sequence[str], skip: bool) -> None:
    if bad and not skip:
        first = min(bad)
        more = f" ({len(bad) - 1} more unreadable file(s) after it)" if len(bad) > 1 else ""
        raise DataError(f"{paths[first]}: cannot read the image ({bad[first]}){more}; expected a PNG, JPEG, BMP "
                        "or WebP file. Remove or replace it, or pass skip_bad_files=True "
                        "(--data-set skip_bad_files=true) to leave such files out.")


def _decode_all(paths: Sequence[str], train: np.ndarray, mode: str, size: tuple[int, int], in_memory: bool,
                num_workers: int, skip: bool) -> _Decoded:
    channels = 1 if mode == "L" else 3
    pixels = np.empty((len(paths), channels, *size), np.uint8) if in_memory else None
    sums, squares = np.zeros(channels, np.int64), np.zeros(channels, np.int64)
    bad: dict[int, str] = {}
    for i, image, error in _map_files(partial(decode, mode=mode, size=size), paths, num_workers):
        if error is not None:
            bad[i] = error
            _refuse_or_skip(bad, paths, skip)
            continue
        if pixels is not None:
            pixels[i] = image
        if train[i]:
            wide = image.reshape(channels, -1).astype(np.int64)
            sums += wide.sum(1)
            squares += (wide * wide).sum(1)
    return _Decoded(pixels, sums, squares, bad)


def _image_size(image_size: Any) -> tuple[int, int] | None:
    rule = "an int >= 1, a list [height, width] of ints >= 1, or None"
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size = (image_size, image_size)
    elif isinstance(image_size, (list, tuple)) and len(image_size) == 2:
        size = tuple(image_size)
    else:
        raise fail(OWNER, "image_size", rule, image_size)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise fail(OWNER, "image_size", rule, image_size)
    return size


def _check_bool(name: str, value: Any, optional: bool = False) -> None:
    if not isinstance(value, bool) and not (optional and value is None):
        raise fail(OWNER, name, "a bool" + (" or None" if optional else ""), value)


def _statistics(decoded: _Decoded, count: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of the training pixels in [0, 1]:
    :math:`\\mu = \\sum p / (255 n)`, :math:`\\sigma = \\sqrt{\\sum p^2 / (255^2 n) - \\mu^2}`;
    a constant channel keeps :math:`\\sigma = 1` (no division by zero)."""
    mean = decoded.sums / (255.0 * count)
    var = decoded.squares / (255.0**2 * count) - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    std[std < 1e-6] = 1.0
    return mean.tolist(), std.tolist()


def _per_channel(values: list[float]) -> torch.Tensor:
    """``(C, 1, 1)``: broadcasts over ``(N, C, H, W)``, in torch and in `DataSpec.apply_preprocess`."""
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1)


def image_files(path: str | os.PathLike) -> list[Path]:
    """The image files `predict` reads from `path`: the file itself, or the images under the folder
    (its subfolders too), sorted by their path."""
    path = Path(path)
    if path.is_file():
        if not _is_image(path):
            raise DataError(f"{path}: not an image file; expected one ending in {', '.join(IMAGE_SUFFIXES)}.")
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such image file or folder.")
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_image(p))
    if not files:
        raise DataError(f"{path}: the folder holds no images; expected files ending in {', '.join(IMAGE_SUFFIXES)}.")
    return files


def read_images(path: str | os.PathLike, spec: DataSpec) -> np.ndarray:
    """Model inputs ``(N, C, H, W)`` float32 from an image file or a folder of them (`image_files`' order),
    with the training preprocessing recorded in `spec`: its mode, size, mean and standard deviation."""
    return _preprocessed(image_files(path), spec)


def labeled_images(path: str | os.PathLike, spec: DataSpec) -> TensorSplit:
    """A new folder of class folders named as the training classes (or its ``test/`` folder, when it is
    split into train/val/test), every image of it, preprocessed as `read_images` does (for evaluate)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a folder; expected one subfolder of images per training class "
                        f"({', '.join(spec.class_names or [])}).")
    folders = _split_folders(path)
    if folders is None and (path / "test").is_dir() and "test" not in (spec.class_names or []):
        folders = {"test": path / "test"}  # a test/ folder alone
    if folders is not None and "test" not in folders:
        raise DataError(f"{path} is split into {'/, '.join(sorted(folders))}/ without a test/ folder to score.")
    folder = folders["test"] if folders is not None else path
    _, files, labels = _class_files(folder, list(spec.class_names or []))
    if not files:
        raise DataError(f"{folder}: no folder of any training class ({', '.join(spec.class_names or [])}) holds "
                        "images.")
    x = torch.from_numpy(np.ascontiguousarray(_preprocessed([Path(f) for f in files], spec)))
    return TensorSplit(x=x, y=torch.tensor(labels, dtype=torch.long))


def _preprocessed(files: list[Path], spec: DataSpec) -> np.ndarray:
    mode, size = spec.preprocess["mode"], tuple(spec.preprocess["image_size"])
    pixels = np.empty((len(files), 1 if mode == "L" else 3, *size), np.float32)
    for i, file in enumerate(files):
        _, error, bomb = _try(read_header, str(file))
        if error is None:
            image, error, bomb = _try(partial(decode, mode=mode, size=size), str(file))
        if bomb:
            raise _bomb(str(file), error)
        if error is not None:
            raise DataError(f"{file}: cannot read the image ({error}); expected a PNG, JPEG, BMP or WebP file.")
        pixels[i] = image
    return spec.apply_preprocess(pixels)


@register_format("image-folder", detect=is_image_folder, inputs=read_images, labeled=labeled_images,
                 description="one subfolder of images per class (PNG, JPEG, BMP, WebP), optionally under "
                             "train/, val/ and test/")
def from_image_folder(path: str | os.PathLike, *, image_size: int | list[int] | None = None,
                      grayscale: bool | None = None, normalize: bool = True, augment: bool = False,
                      memory_budget: int | str = "2GB", skip_bad_files: bool = False, seed: int = 0,
                      num_workers: int = 2) -> Dataset:
    """A `Dataset` of kind ``"image"`` from a folder of class folders (see the module docstring).

    `image_size` (an int or ``[height, width]``) defaults to the most common size of the training
    images; `grayscale` to whether every training image is. Inputs are normalized with the training
    split's per-channel mean and standard deviation, or with `normalize=False` only scaled to
    [0, 1] (what a Bernoulli decoder models, the autoencoders' default); `augment` randomly crops
    (padding an eighth of the size) and flips the shuffled training batches. Without ``train/``, ``val/`` and ``test/``
    folders the files get a stratified 70/15/15 split fixed by `seed`. The folder is decoded into
    memory when its float32 size fits `memory_budget` (bytes or ``"512MB"``), else batch by batch
    by `num_workers` DataLoader workers. `skip_bad_files` leaves unreadable images out, with a
    warning and their count in ``spec.preprocess["skipped_files"]``; an image over Pillow's
    decompression-bomb limit is always refused.
    """
    root = Path(path)
    size_option = _image_size(image_size)
    _check_bool("grayscale", grayscale, optional=True)
    _check_bool("normalize", normalize)
    _check_bool("augment", augment)
    _check_bool("skip_bad_files", skip_bad_files)
    budget = parse_bytes(memory_budget)
    check_int(OWNER, "seed", seed, minimum=0)
    check_int(OWNER, "num_workers", num_workers, minimum=0)

    classes, splits = _layout(root, seed)
    names = list(splits)
    paths = [p for name in names for p in splits[name][0]]
    labels = np.concatenate([splits[name][1] for name in names])
    split_of = np.concatenate([np.full(len(splits[name][0]), k) for k, name in enumerate(names)])
    train = split_of == names.index("train")

    headers: dict[int, tuple[int, int, str]] = {}
    bad: dict[int, str] = {}
    for i, header, error in _map_files(read_header, paths, num_workers):
        if error is None:
            headers[i] = header
        else:
            bad[i] = error
            _refuse_or_skip(bad, paths, skip_bad_files)
    train_headers = [headers[i] for i in np.flatnonzero(train) if i in headers]
    if not train_headers:
        raise DataError(f"{root}: none of the {int(train.sum())} training images can be read.")
    gray = all(m in GRAYSCALE_MODES for _, _, m in train_headers) if grayscale is None else grayscale
    mode = "L" if gray else "RGB"
    # Ties between sizes go to the first in file order, so the choice is fixed by the folder.
    size = size_option or Counter((h, w) for h, w, _ in train_headers).most_common(1)[0][0]
    channels = 1 if mode == "L" else 3

    readable = [i for i in range(len(paths)) if i in headers]
    in_memory = len(readable) * channels * size[0] * size[1] * 4 <= budget
    decoded = _decode_all([paths[i] for i in readable], train[readable], mode, size, in_memory, num_workers,
                          skip_bad_files)
    bad.update({readable[j]: error for j, error in decoded.bad.items()})
    good = np.asarray(sorted(set(readable) - set(bad)), dtype=np.int64)
    counts = np.bincount(labels[good[train[good]]], minlength=len(classes))
    if (counts == 0).any():
        empty = classes[int(np.flatnonzero(counts == 0)[0])]
        raise DataError(f"{root}: the class '{empty}' has no readable training images; every class needs at least "
                        "one.")
    mean, std = _statistics(decoded, int(counts.sum()) * size[0] * size[1]) if normalize else \
        ([0.0] * channels, [1.0] * channels)
    mean_t, std_t = _per_channel(mean), _per_channel(std)

    if bad:
        first = min(bad)
        warnings.warn(f"{root}: skipped {len(bad)} unreadable image(s) (skip_bad_files=True), the first "
                      f"{paths[first]} ({bad[first]}).", stacklevel=2)
    row_of = {i: j for j, i in enumerate(readable)}  # decoded.pixels rows follow `readable`
    out: dict[str, Any] = {}
    for k, name in enumerate(names):
        index = good[split_of[good] == k]
        y = torch.from_numpy(labels[index])
        if decoded.pixels is not None:
            rows = np.asarray([row_of[i] for i in index], dtype=np.int64)
            x = normalize_pixels(torch.from_numpy(decoded.pixels[rows]), mean_t, std_t)
            out[name] = ImageTensorSplit(augment=augment and name == "train", x=x, y=y)
        else:
            out[name] = ImageFileSplit([paths[i] for i in index], y, mode=mode, size=size, mean=mean_t, std=std_t,
                                       augment=augment and name == "train", num_workers=num_workers)
    preprocess: dict[str, Any] = {"mode": mode, "image_size": list(size), "scale": SCALE}
    if normalize:
        preprocess.update(mean=mean_t.tolist(), std=std_t.tolist())
    if bad:
        preprocess["skipped_files"] = len(bad)
    spec = DataSpec(
        name=root.resolve().name, kind="image", input_shape=(channels, *size), num_classes=len(classes),
        class_names=classes, preprocess=preprocess,
        options={"source": str(root.resolve()), "format": "image-folder", "target": None, "seed": seed,
                 "image_size": list(image_size) if isinstance(image_size, (list, tuple)) else image_size,
                 "grayscale": grayscale, "normalize": normalize, "augment": augment,
                 "memory_budget": memory_budget, "skip_bad_files": skip_bad_files, "num_workers": num_workers},
    )
    return Dataset(spec, {"train": out["train"], "val": out["val"], "test": out["test"]})
