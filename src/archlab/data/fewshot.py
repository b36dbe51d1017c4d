"""Few-shot tasks: the `TaskBatch` every sampler yields, and `NWayKShot` over any labeled dataset.

An N-way K-shot task draws N classes, K labeled support examples of each, and
`query` query examples of each; labels are renumbered ``0..N-1`` in a random order
per task, so a model cannot memorise which class is which. Meta-train, meta-val and
meta-test use disjoint classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from .base import Dataset, to_device
from ..validation import check_choice, fail

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TaskBatch:
    """A batch of tasks, stacked on a leading task dimension.

    Shapes:
        ``support_x (T, S, *input_shape)``, ``support_y (T, S)`` (class ids) or ``(T, S, 1)``
        (regression targets), and the same for the query with ``Q`` examples a task.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def task(self, i: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Task `i` as ``(support, query)`` batches ``{"x": ..., "y": ...}``."""
        return {"x": self.support_x[i], "y": self.support_y[i]}, {"x": self.query_x[i], "y": self.query_y[i]}

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> TaskBatch:
        """Move to `device`; `dtype` converts the floating-point tensors only (see `to_device`)."""
        return TaskBatch(*(to_device(t, device, dtype) for t in (self.support_x, self.support_y, self.query_x,
                                                                  self.query_y)))

    @property
    def examples_per_task(self) -> int:
        return self.support_x.shape[1] + self.query_x.shape[1]


def check_counts(owner: str, ways: int, shots: int, query: int) -> None:
    for name, value, low in (("ways", ways, 1), ("shots", shots, 1), ("query", query, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise fail(owner, name, f"an int >= {low}", value)


def episode_labels(n_tasks: int, ways: int, per_class: int) -> torch.Tensor:
    """Labels ``(T, ways, per_class)``: class ``c`` of a task gets label ``c``."""
    return torch.arange(ways).view(1, ways, 1).expand(n_tasks, ways, per_class)


def split_episode(x: torch.Tensor, shots: int) -> TaskBatch:
    """``(T, ways, shots + query, ...)`` examples -> support and query, class-major."""
    t, ways, per_class = x.shape[:3]
    y = episode_labels(t, ways, per_class)
    sx, qx = x[:, :, :shots], x[:, :, shots:]
    sy, qy = y[:, :, :shots], y[:, :, shots:]
    return TaskBatch(sx.flatten(1, 2), sy.flatten(1, 2), qx.flatten(1, 2), qy.flatten(1, 2))


def draw_classes(n_tasks: int, n_classes: int, ways: int, generator: torch.Generator) -> torch.Tensor:
    """``(T, ways)`` distinct class ids per task, in random order."""
    return torch.stack([torch.randperm(n_classes, generator=generator)[:ways] for _ in range(n_tasks)])


class NWayKShot:
    """N-way K-shot tasks over the classes of one meta-split of a labeled dataset.

    Args:
        dataset: an archlab `Dataset` (its train/val/test examples are pooled and
            re-split by class), a registered dataset name, or a labeled file or folder.
        ways, shots, query: classes a task, support and query examples a class.
        split: ``train``, ``val`` or ``test``: which classes tasks are drawn from.
        classes: the class ids of each meta-split, e.g. ``{"train": [0, 1, 2, 3, 4, 5],
            "test": [6, 7, 8, 9]}``. Default for ``digits``: train on 0-5 and test on 6-9;
            for any other dataset a seeded 60/20/20 partition of its classes (at least one class
            in meta-val and meta-test).
    """

    kind = "classification"

    def __init__(self, dataset: Dataset | str, ways: int, shots: int, query: int, *, split: str = "train",
                 classes: Mapping[str, Sequence[int]] | None = None, seed: int = 0, data_dir=None):
        check_counts("NWayKShot", ways, shots, query)
        if not isinstance(dataset, Dataset):
            from .sources import load_data  # a registered name, or a labeled file or folder of the user's

            dataset = load_data(dataset, data_dir, seed=seed)
        check_choice("NWayKShot", "split", split, SPLITS)
        parts = [dataset[s] for s in SPLITS if s in dataset.splits]
        x = torch.cat([p["x"] for p in parts])
        y = torch.cat([p["y"] for p in parts])
        if y.dtype not in (torch.int64, torch.int32) or y.dim() != 1:
            raise ConfigError(f"NWayKShot needs integer class labels (N,); dataset '{dataset.spec.name}' has "
                              f"{y.dtype} labels of shape {tuple(y.shape)}.")
        classes = dict(classes) if classes is not None else default_class_splits(dataset.spec.name,
                                                                                  dataset.spec.num_classes, seed)
        present = set(y.unique().tolist())
        chosen = [int(c) for c in classes.get(split, [])]
        if not chosen:
            raise ConfigError(f"dataset '{dataset.spec.name}' has no meta-{split} classes; its class splits are "
                              f"{ {k: list(v) for k, v in classes.items()} }.")
        missing = sorted(set(chosen) - present)
        if missing:
            raise ConfigError(f"meta-{split} classes {missing} have no examples in dataset '{dataset.spec.name}'.")
        overlap = {s: sorted(set(chosen) & {int(c) for c in v}) for s, v in classes.items() if s != split}
        overlap = {s: v for s, v in overlap.items() if v}
        if overlap:
            raise ConfigError(f"meta-{split} classes must be disjoint from the other meta-splits; shared: {overlap}.")
        if ways > len(chosen):
            raise ConfigError(f"ways={ways} is larger than the {len(chosen)} meta-{split} classes of dataset "
                              f"'{dataset.spec.name}' ({chosen}).")
        self.index = [torch.nonzero(y == c).flatten() for c in chosen]
        need = shots + query
        short = [(c, len(i)) for c, i in zip(chosen, self.index) if len(i) < need]
        if short:
            c, have = min(short, key=lambda t: t[1])
            raise ConfigError(f"shots + query = {shots} + {query} = {need} examples a class are needed, but "
                              f"class {c} of dataset '{dataset.spec.name}' has only {have}.")
        self.x = x
        self.classes = chosen
        self.ways, self.shots, self.query, self.split = ways, shots, query, split
        self.input_shape = tuple(x.shape[1:])
        self.name = dataset.spec.name

    @property
    def output_dim(self) -> int:
        return self.ways

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch:
        """`n_tasks` tasks drawn with `generator` (the same generator state gives the same tasks)."""
        need = self.shots + self.query
        picks = draw_classes(n_tasks, len(self.classes), self.ways, generator)
        rows = torch.stack([
            torch.stack([self.index[c][torch.randperm(len(self.index[c]), generator=generator)[:need]] for c in task])
            for task in picks.tolist()
        ])  # (T, ways, k + q)
        return split_episode(self.x[rows], self.shots)


def default_class_splits(name: str, num_classes: int, seed: int = 0) -> dict[str, list[int]]:
    """Digits: meta-train on 0-5, meta-test on 6-9 (no meta-val). Otherwise a seeded
    60/20/20 partition of the classes, with at least one class in meta-val and meta-test."""
    if name in ("digits", "digits-seq", "mnist", "mnist-seq"):
        return {"train": list(range(6)), "test": list(range(6, 10))}
    order = np.random.default_rng(seed).permutation(num_classes).tolist()
    n_held = max(1, round(0.2 * num_classes))  # classes each of meta-val and meta-test get
    return {"train": sorted(order[2 * n_held:]), "val": sorted(order[n_held:2 * n_held]),
            "test": sorted(order[:n_held])}
