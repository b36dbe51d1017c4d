"""Few-shot tasks for training: `task_sampler(name, ...)`, the sampler for a dataset name, and
`EpisodeSplit`, a sampler's task batches as a split that `archlab.engine.fit` iterates.

``sinusoid`` and ``omniglot`` have their own samplers; any other registered dataset with
integer labels (e.g. the embedded ``digits``) is sampled with `NWayKShot`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import ConfigError
from .fewshot import NWayKShot, TaskBatch
from .omniglot import Omniglot
from .sinusoid import Sinusoid

# The task sources that are not registered datasets: name -> (source, description)
FEWSHOT_SOURCES = {
    "sinusoid": ("generated", "few-shot regression: sinusoids of random amplitude and phase (Finn et al., 2017)"),
    "omniglot": ("<data-dir>/omniglot", "few-shot classification: 1623 handwritten characters, 20 drawings each"),
}


def task_sampler(name: str, *, split: str = "train", ways: int = 5, shots: int = 1, query: int = 15,
                 data_dir: str | os.PathLike | None = None, seed: int = 0, target: str | None = None,
                 data_format: str | None = None, data_options: dict[str, Any] | None = None):
    """A sampler with ``sample(n_tasks, generator) -> TaskBatch``, ``kind``, ``input_shape`` and
    ``output_dim``. `ways` is ignored for ``sinusoid`` (one regression output). `target`,
    `data_format` and `data_options` say how to read `name` when it is a file or folder of the
    user's (as `load_data` reads it: a table's label column, a format, the reader's options)."""
    reading = {"target": target, "data_format": data_format, "data_options": data_options or None}
    given = [k for k, v in reading.items() if v is not None]
    if name in ("sinusoid", "omniglot"):
        if given:
            raise ConfigError(f"{', '.join(given)} say how to read a file or folder of your own; the task source "
                              f"'{name}' takes none.")
        return Sinusoid(shots, query) if name == "sinusoid" else Omniglot(ways, shots, query, split=split,
                                                                          data_dir=data_dir)
    if given:
        from .sources import load_data

        dataset = load_data(name, data_dir, format=data_format, target=target, seed=seed, **(data_options or {}))
        return NWayKShot(dataset, ways, shots, query, split=split, seed=seed)
    return NWayKShot(name, ways, shots, query, split=split, seed=seed, data_dir=data_dir)


class EpisodeSplit:
    """Task batches of `sampler` as a training split: one endless epoch, whose batch `i` is the
    `batch_size` tasks drawn from a generator seeded with ``seed + i`` (`fit` passes its run's
    seed). Batch `i` depends on nothing else, so a resumed run, or one continued for more steps,
    sees the same tasks as an uninterrupted one. Give `fit` a number of steps, not epochs.

    A batch is ``{"tasks": TaskBatch, "index": i}``; `sampler` is also what a meta-learner's
    evaluation adapts to (`archlab.meta.task`).
    """

    def __init__(self, sampler: Any, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        self.sampler = sampler
        self.device = device
        self.dtype = dtype  # the tasks' floating-point tensors are converted to it (a float64 run)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> EpisodeSplit:
        return EpisodeSplit(self.sampler, device, dtype)

    def num_batches(self, batch_size: int) -> int:
        return sys.maxsize

    def batches(self, batch_size: int, *, shuffle: bool = True, seed: int = 0, start: int = 0
                ) -> Iterator[dict[str, TaskBatch | int]]:
        """Batches `start`, `start + 1`, ...; tasks are random by construction, so `shuffle` changes
        nothing."""
        for i in range(start, sys.maxsize):
            tasks = self.sampler.sample(batch_size, torch.Generator().manual_seed(seed + i))
            moved = self.device is None and self.dtype is None
            yield {"tasks": tasks if moved else tasks.to(self.device, self.dtype), "index": i}
