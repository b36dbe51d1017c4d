"""`task_sampler(name, ...)`: the few-shot task sampler for a dataset name.

``sinusoid`` and ``omniglot`` have their own samplers; any other registered dataset with
integer labels (e.g. the embedded ``digits``) is sampled with `NWayKShot`.
"""

from __future__ import annotations

import os

from .fewshot import NWayKShot
from .omniglot import Omniglot
from .sinusoid import Sinusoid

# The task sources that are not registered datasets: name -> (source, description)
FEWSHOT_SOURCES = {
    "sinusoid": ("generated", "few-shot regression: sinusoids of random amplitude and phase (Finn et al., 2017)"),
    "omniglot": ("<data-dir>/omniglot", "few-shot classification: 1623 handwritten characters, 20 drawings each"),
}


def task_sampler(name: str, *, split: str = "train", n_way: int = 5, k_shot: int = 1, n_query: int = 15,
                 data_dir: str | os.PathLike | None = None, seed: int = 0):
    """A sampler with ``sample(n_tasks, generator) -> TaskBatch``, ``kind``, ``input_shape`` and
    ``output_dim``. `n_way` is ignored for ``sinusoid`` (one regression output)."""
    if name == "sinusoid":
        return Sinusoid(k_shot, n_query)
    if name == "omniglot":
        return Omniglot(n_way, k_shot, n_query, split=split, data_dir=data_dir)
    return NWayKShot(name, n_way, k_shot, n_query, split=split, seed=seed, data_dir=data_dir)
