"""A small example batch for every data kind, so tests can run any registered model.

Families add their kinds (``graph``, ...) or model-specific batches here:
`example_for(name)` returns ``(spec, batch)`` with a `DataSpec` that sizes the model
and a batch in the form its task's `training_step` takes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archlab.data import DataSpec
from archlab.registry import model_info


def _image(g: torch.Generator):
    spec = DataSpec("example-image", "image", (1, 12, 12), num_classes=3)
    return spec, {"x": torch.rand(4, 1, 12, 12, generator=g), "y": torch.tensor([0, 1, 2, 1])}


def _sequence(g: torch.Generator):
    spec = DataSpec("example-sequence", "sequence", (6, 3), num_classes=3)
    return spec, {"x": torch.randn(4, 6, 3, generator=g), "y": torch.tensor([0, 1, 2, 1]),
                  "lengths": torch.tensor([6, 3, 5, 1])}


def _tabular(g: torch.Generator):
    spec = DataSpec("example-tabular", "tabular", (5,), num_classes=3)
    return spec, {"x": torch.randn(4, 5, generator=g), "y": torch.tensor([0, 1, 2, 1])}


# data kind (or model name, which wins) -> builder of (spec, batch)
EXAMPLES: dict[str, Callable] = {"image": _image, "sequence": _sequence, "tabular": _tabular}


def example_for(name: str, seed: int = 0):
    info = model_info(name)
    builder = EXAMPLES.get(name) or next(EXAMPLES[k] for k in info.data_kinds if k in EXAMPLES)
    return builder(torch.Generator().manual_seed(seed))
