"""A small example batch for every data kind, so tests can run any registered model.

Families add their kinds (``graph``, ...) or model-specific batches here:
`example_for(name)` returns ``(spec, batch)`` with a `DataSpec` that sizes the model
and a batch in the form its task's `training_step` takes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archlab.data import DataSpec
from archlab.models.registry import model_info


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


def _text(g: torch.Generator):
    from archlab.data.text import text_spec

    spec = text_spec("example-text", vocab_size=20, context_length=7, num_classes=3, target="class")
    x = torch.randint(5, 20, (4, 7), generator=g)
    x[:, 0] = 2  # [CLS]
    lengths = torch.tensor([7, 3, 5, 2])
    x[torch.arange(7)[None, :] >= lengths[:, None]] = 0  # [PAD]
    return spec, {"x": x, "lengths": lengths, "y": torch.tensor([0, 1, 2, 1])}


def _language_modeling(g: torch.Generator):
    from archlab.data.text import text_spec

    spec = text_spec("example-lm", vocab_size=11, context_length=8, num_classes=11, target="next-token")
    window = torch.randint(0, 11, (3, 9), generator=g)
    return spec, {"x": window[:, :-1], "y": window[:, 1:]}


def _autoencoder_image(g: torch.Generator):
    # Pixels in [0, 1] (a Bernoulli decoder's range) on an odd size, which the conv variants mirror exactly.
    spec = DataSpec("example-autoencoder", "image", (1, 10, 10), num_classes=3)
    return spec, {"x": torch.rand(4, 1, 10, 10, generator=g), "y": torch.tensor([0, 1, 2, 1])}


def _graph(g: torch.Generator):
    # 10 nodes on a ring with chords, as a transductive dataset's training batch (node masks and GAE edges).
    from archlab.data.graph import Graph, graph_dataset

    ring = torch.arange(10)
    source = torch.cat([ring, ring[:5]])
    target = torch.cat([(ring + 1) % 10, ring[:5] + 5])
    edge_index = torch.cat([torch.stack([source, target]), torch.stack([target, source])], 1)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[:4] = True
    graph = Graph(x=torch.rand(10, 5, generator=g), edge_index=edge_index, y=torch.randint(0, 3, (10,), generator=g),
                  train_mask=mask, val_mask=~mask, test_mask=~mask)
    data = graph_dataset(graph, "example-graph", 3, None, seed=0)
    return data.spec, data["train"].batch()


def _graphs(g: torch.Generator):
    # three small graphs (a triangle, a path, a star) as a graph-classification batch
    from archlab.data.graph_collection import collection_dataset, from_graphs
    import numpy as np

    def both(pairs):
        e = torch.tensor(pairs).t()
        return torch.cat([e, e.flip(0)], 1)

    graphs = [(torch.rand(3, 5, generator=g), both([[0, 1], [1, 2], [2, 0]])),
              (torch.rand(4, 5, generator=g), both([[0, 1], [1, 2], [2, 3]])),
              (torch.rand(5, 5, generator=g), both([[0, 1], [0, 2], [0, 3], [0, 4]]))]
    collection = from_graphs(graphs, torch.tensor([0, 1, 2]))
    every = np.ones(3, dtype=bool)
    data = collection_dataset(collection, {"train": every, "val": every, "test": every}, "example-graphs",
                              ["a", "b", "c"])
    return data.spec, next(data["train"].batches(3))


# data kind (or model name, which wins) -> builder of (spec, batch)
EXAMPLES: dict[str, Callable] = {"image": _image, "sequence": _sequence, "tabular": _tabular, "text": _text,
                                 "gpt": _language_modeling}
EXAMPLES.update(ae=_autoencoder_image, vae=_autoencoder_image, aae=_autoencoder_image)
EXAMPLES.update(graph=_graph, graphs=_graphs)


def example_for(name: str, seed: int = 0):
    info = model_info(name)
    builder = EXAMPLES.get(name) or next(EXAMPLES[k] for k in info.data_kinds if k in EXAMPLES)
    return builder(torch.Generator().manual_seed(seed))
