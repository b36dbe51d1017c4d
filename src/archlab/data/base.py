"""The one interface every dataset has: a `DataSpec` and train/val/test splits
that yield batches as dicts of tensors."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import DataError

#: the key of a batch that holds part of a global batch (one rank's, under torchrun): ``(start, stop, total)``
#: are the rows of the global batch it holds; a rank with no row holds row 0 as a stand-in, weighted 0,
#: and ``SHARD_COUNT`` says how many rows are its own
SHARD_ROWS, SHARD_COUNT = "shard_rows", "shard_count"


def to_device(tensor: torch.Tensor, device: torch.device | str | None, dtype: torch.dtype | None = None, *,
              non_blocking: bool = False) -> torch.Tensor:
    """`tensor` on `device`; `dtype` converts floating-point tensors only (labels, indices and masks keep
    theirs), as a split's ``to(device, dtype)`` does for a float64 run."""
    return tensor.to(device=device, dtype=dtype if dtype is not None and tensor.is_floating_point() else None,
                     non_blocking=non_blocking)


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rank `rank`'s contiguous rows ``[start, stop)`` of a global batch of `n` rows over `size` ranks."""
    return rank * n // size, (rank + 1) * n // size


def shard_part(n: int, rank: int, size: int) -> tuple[int, int, int]:
    """The rows ``(start, stop)`` of a global batch of `n` rows that rank `rank` holds, and how many
    are its own: a rank with none holds row 0 as a stand-in, weighted 0 (see ``SHARD_COUNT``)."""
    start, stop = shard_bounds(n, rank, size)
    return (start, stop, stop - start) if stop > start else (0, 1, 0)


def unknown_class(place: str, value: Any, column: str, class_names: list[str]) -> DataError:
    """The error for a new example whose class (`value`, in `column`, at `place`: a file and its line or row)
    is not among the training classes."""
    return DataError(f"{place} has the class {value!r} of target '{column}', which training did not have; classes: "
                     f"{', '.join(class_names)}.")


@dataclass
class DataSpec:
    """What a model needs to know about a dataset, and how to rebuild it.

    `preprocess` maps raw values (as stored in the source files) to model inputs:
    ``{"scale": s}`` multiplies, ``{"mean": m, "std": s}`` standardizes per feature.
    `options` are the arguments that rebuild the same splits (seed, sizes).
    """

    name: str
    kind: str  # image | sequence | tabular | text | graph | graphs (many small graphs, one label each)
    input_shape: tuple[int, ...]
    num_classes: int  # 0 for a numeric target (``preprocess["target_kind"] == "regression"``)
    class_names: list[str] | None = None
    preprocess: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        """A model's output size: one score per class, or one value for a numeric target."""
        return 1 if self.preprocess.get("target_kind") == "regression" else self.num_classes

    def model_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that size a model for this data (`num_classes` is its output size).
        Images standardized per channel (an image folder's default) are real values, not intensities
        in [0, 1]: an autoencoder models them with a Gaussian `decoder`."""
        shape = self.input_shape
        if self.kind == "image":
            sizes = {"in_channels": shape[0], "input_size": list(shape[1:]), "num_classes": self.num_outputs}
            return {**sizes, "decoder": "gaussian"} if "mean" in self.preprocess else sizes
        if self.kind == "sequence":
            return {"input_dim": shape[-1], "num_classes": self.num_outputs}
        if self.kind == "tabular":
            return {"in_features": shape[0], "num_classes": self.num_outputs}
        if self.kind in ("graph", "graphs"):
            return {"in_features": shape[0], "num_classes": self.num_outputs}
        if self.kind == "text" and "vocab_size" in self.preprocess:
            return {"vocab_size": self.preprocess["vocab_size"], "num_classes": self.num_outputs}
        return {"num_classes": self.num_outputs}

    def apply_preprocess(self, raw: np.ndarray) -> np.ndarray:
        """Map raw values to model inputs, as the dataset's loader did."""
        x = np.asarray(raw, dtype=np.float32)
        if "scale" in self.preprocess:
            x = x * np.float32(self.preprocess["scale"])
        if "mean" in self.preprocess:
            x = (x - np.asarray(self.preprocess["mean"], np.float32)) / np.asarray(self.preprocess["std"], np.float32)
        return x

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        d = dict(d)
        d["input_shape"] = tuple(d["input_shape"])
        return cls(**d)


class TensorSplit:
    """One split held in memory as tensors sharing their first dimension.

    Batches are made by indexing the tensors directly, which is about a third
    faster than a per-sample `DataLoader` for in-memory data.
    """

    def __init__(self, **tensors: torch.Tensor):
        if not tensors:
            raise ValueError("a split needs at least one tensor")
        sizes = {k: len(v) for k, v in tensors.items()}
        if len(set(sizes.values())) != 1:
            raise DataError(f"the tensors of a split must have the same length; got {sizes}.")
        self.tensors = tensors
        self._size = next(iter(sizes.values()))

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TensorSplit:
        """On `device`; `dtype` converts the floating-point tensors only (see `to_device`)."""
        return TensorSplit(**{k: to_device(v, device, dtype) for k, v in self.tensors.items()})

    def subset(self, index: torch.Tensor | np.ndarray) -> TensorSplit:
        index = torch.as_tensor(index, dtype=torch.long)
        return TensorSplit(**{k: v[index.to(v.device)] for k, v in self.tensors.items()})

    def num_batches(self, batch_size: int) -> int:
        return -(-self._size // batch_size)

    @property
    def reads_shards(self) -> bool:
        """Whether `batches` gathers one rank's part of each batch (`shard`), so that data-parallel
        training copies no other rank's rows; a subclass whose `batches` takes no `shard` does not."""
        return "shard" in inspect.signature(self.batches).parameters

    def batch_rows(self, batch_size: int, i: int, order: torch.Tensor | None,
                   shard: tuple[int, int] | None) -> tuple[torch.Tensor | slice, dict[str, Any]]:
        """The rows of batch `i` (of `order`, or in order when None), or of rank ``shard[0]``'s part of
        it, and the ``SHARD_ROWS`` / ``SHARD_COUNT`` marks such a part carries."""
        lo, hi = i * batch_size, min((i + 1) * batch_size, self._size)
        marks: dict[str, Any] = {}
        if shard is not None:
            start, stop, count = shard_part(hi - lo, *shard)
            marks = {SHARD_ROWS: (start, stop, hi - lo), SHARD_COUNT: count}
            lo, hi = lo + start, lo + stop
        return (order[lo:hi] if order is not None else slice(lo, hi)), marks

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0,
                shard: tuple[int, int] | None = None) -> Iterator[dict[str, Any]]:
        """Yield batches, skipping the first `start`. A shuffled order depends only
        on `seed`, so a resumed epoch sees the same batches as an uninterrupted one. `shard`
        ``(rank, size)``: only rank `rank`'s contiguous part of each batch (`shard_part`), marked
        with ``SHARD_ROWS`` and ``SHARD_COUNT``."""
        order = torch.randperm(self._size, generator=torch.Generator().manual_seed(seed)) if shuffle else None
        for i in range(start, self.num_batches(batch_size)):
            rows, marks = self.batch_rows(batch_size, i, order, shard)
            if isinstance(rows, slice):
                yield {**{k: v[rows] for k, v in self.tensors.items()}, **marks}
            else:
                yield {**{k: v[rows.to(v.device)] for k, v in self.tensors.items()}, **marks}


class Dataset:
    """A dataset: its spec and named splits (``train``, ``val``, ``test``).

    `files` are saved beside a checkpoint trained on it (e.g. ``tokenizer.json``).
    """

    def __init__(self, spec: DataSpec, splits: dict[str, Any], files: dict[str, bytes | str] | None = None):
        self.spec = spec
        self.splits = splits
        self.files = dict(files or {})

    def __getitem__(self, split: str):
        if split not in self.splits:
            raise DataError(f"dataset '{self.spec.name}' has no split '{split}'; it has {sorted(self.splits)}.")
        return self.splits[split]

    @property
    def train(self):
        return self["train"]

    @property
    def val(self):
        return self["val"]

    @property
    def test(self):
        return self["test"]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Dataset:
        return Dataset(self.spec, {k: v.to(device, dtype) for k, v in self.splits.items()}, self.files)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"Dataset({self.spec.name!r}, kind={self.spec.kind!r}, {sizes})"
