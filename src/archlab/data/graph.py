"""Graphs: the `Graph` type, its converters to and from PyG and networkx, and the
full-batch split that trains on one graph with a node mask."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset, DataSpec, to_device
from .link_split import link_batches, split_edges

MASKS = ("train_mask", "val_mask", "test_mask")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DataError(message)


@dataclass
class Graph:
    """One graph: node features, edges, labels and node masks.

    `x` may be a sparse COO tensor (bag-of-words features are ~99% zeros); `edge_index[0]`
    holds the source and `edge_index[1]` the target of each edge, an undirected graph
    listing both directions.

    Shapes:
        x ``(N, F)``, edge_index ``(2, E)`` long, edge_weight ``(E,)``, y ``(N,)`` long,
        masks ``(N,)`` bool.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor | None = None
    edge_weight: torch.Tensor | None = None
    train_mask: torch.Tensor | None = None
    val_mask: torch.Tensor | None = None
    test_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.x.size(0) if self.x.dim() == 2 else -1
        _check(self.x.dim() == 2, f"x must have shape (num_nodes, num_features); got {tuple(self.x.shape)}.")
        ei = self.edge_index
        _check(ei.dim() == 2 and ei.size(0) == 2 and ei.dtype == torch.long,
               f"edge_index must be a long tensor of shape (2, E); got {ei.dtype} {tuple(ei.shape)}.")
        if ei.numel():
            lo, hi = int(ei.min()), int(ei.max())
            _check(lo >= 0 and hi < n, f"edge_index must hold node ids in [0, {n}); got ids in [{lo}, {hi}].")
        if self.edge_weight is not None:
            _check(self.edge_weight.shape == (ei.size(1),),
                   f"edge_weight must have shape ({ei.size(1)},); got {tuple(self.edge_weight.shape)}.")
        if self.y is not None:
            _check(self.y.shape == (n,), f"y must have shape ({n},); got {tuple(self.y.shape)}.")
        for name in MASKS:
            mask = getattr(self, name)
            if mask is not None:
                _check(mask.shape == (n,) and mask.dtype == torch.bool,
                       f"{name} must be a bool tensor of shape ({n},); got {mask.dtype} {tuple(mask.shape)}.")

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def num_features(self) -> int:
        return self.x.size(1)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Graph:
        """On `device`; `dtype` converts the floating-point tensors only (features, edge weights)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return Graph(**{k: to_device(v, device, dtype) if v is not None else None for k, v in moved.items()})

    def dense_x(self) -> torch.Tensor:
        """The features as a dense ``(N, F)`` tensor."""
        return self.x.to_dense() if self.x.layout != torch.strided else self.x

    # -- converters ---------------------------------------------------------------------------

    def to_pyg(self):
        """A `torch_geometric.data.Data` with the same tensors (dense `x`)."""
        from torch_geometric.data import Data

        extra = {name: getattr(self, name) for name in MASKS if getattr(self, name) is not None}
        return Data(x=self.dense_x(), edge_index=self.edge_index, y=self.y, edge_weight=self.edge_weight, **extra)

    @classmethod
    def from_pyg(cls, data) -> Graph:
        """From a `torch_geometric.data.Data` with ``x`` and ``edge_index`` (``y``, ``edge_weight``
        and the masks when present)."""
        if getattr(data, "x", None) is None:
            raise DataError("the PyG graph has no node features x; give it some (e.g. torch.eye(num_nodes)).")
        get = lambda k: getattr(data, k, None)  # noqa: E731
        return cls(x=data.x, edge_index=data.edge_index.long(), y=get("y"), edge_weight=get("edge_weight"),
                   **{name: get(name) for name in MASKS})

    def to_networkx(self):
        """A `networkx.DiGraph`: node attributes ``x`` (list) and ``y``, edge attribute ``weight``.
        Parallel edges collapse into one (the last weight wins)."""
        import networkx as nx

        g = nx.DiGraph()
        x = self.dense_x().tolist()
        y = self.y.tolist() if self.y is not None else None
        for i in range(self.num_nodes):
            g.add_node(i, x=x[i], **({"y": y[i]} if y is not None else {}))
        weights = self.edge_weight.tolist() if self.edge_weight is not None else [1.0] * self.num_edges
        for (s, t), w in zip(self.edge_index.t().tolist(), weights):
            g.add_edge(s, t, weight=w)
        return g

    @classmethod
    def from_networkx(cls, g, *, x: torch.Tensor | None = None, label: str | None = None,
                      weight: str | None = None) -> Graph:
        """From a networkx graph; an undirected one gives both directions of each edge.

        Nodes are numbered in `g.nodes` order. `x` defaults to the one-hot identity (each
        node its own feature); `label` names a node attribute to read as `y` (string values
        are numbered in sorted order); `weight` names an edge attribute to read as `edge_weight`.
        """
        nodes = list(g.nodes)
        index = {node: i for i, node in enumerate(nodes)}
        pairs, weights = [], []
        for s, t, attrs in g.edges(data=True):
            w = float(attrs.get(weight, 1.0)) if weight is not None else 1.0
            pairs.append((index[s], index[t]))
            weights.append(w)
            if not g.is_directed() and s != t:
                pairs.append((index[t], index[s]))
                weights.append(w)
        edge_index = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
        y = None
        if label is not None:
            values = [g.nodes[node].get(label) for node in nodes]
            if any(v is None for v in values):
                raise DataError(f"label '{label}' is missing on some nodes of the networkx graph.")
            if all(isinstance(v, (int, np.integer)) for v in values):
                y = torch.tensor(values, dtype=torch.long)
            else:
                names = sorted(set(map(str, values)))
                y = torch.tensor([names.index(str(v)) for v in values], dtype=torch.long)
        features = torch.eye(len(nodes)) if x is None else x
        return cls(x=features, edge_index=edge_index, y=y,
                   edge_weight=torch.tensor(weights) if weight is not None else None)

    def with_masks(self, **masks: torch.Tensor) -> Graph:
        return replace(self, **masks)


def index_mask(index: np.ndarray | torch.Tensor, num_nodes: int) -> torch.Tensor:
    """A bool ``(num_nodes,)`` mask that is True at `index`."""
    mask = torch.zeros(num_nodes, dtype=torch.bool)
    mask[torch.as_tensor(np.asarray(index), dtype=torch.long)] = True
    return mask


class GraphSplit:
    """One split of a transductive graph dataset: the whole graph plus this split's node mask.

    Training is full-batch: `batches` yields a single dict per epoch, ``x``, ``edge_index``,
    ``y``, ``mask`` (and ``edge_weight`` when the graph has one), plus the split's
    link-prediction edges when the dataset has them (``link_edge_index``: the training edges
    a link predictor may see; ``pos_edge_index`` / ``neg_edge_index``: this split's node pairs;
    ``link_x``: the features link prediction takes, when they differ from ``x``).
    `len` is the number of masked nodes.
    """

    #: one batch that is the whole graph: data-parallel training replicates it on every rank
    full_batch = True

    def __init__(self, graph: Graph, mask: torch.Tensor, links: dict[str, torch.Tensor] | None = None):
        if mask.shape != (graph.num_nodes,) or mask.dtype != torch.bool:
            raise DataError(f"mask must be a bool tensor of shape ({graph.num_nodes},); "
                            f"got {mask.dtype} {tuple(mask.shape)}.")
        self.graph = graph
        self.mask = mask
        self.links = dict(links or {})
        self._size = int(mask.sum())

    def __len__(self) -> int:
        return self._size

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> GraphSplit:
        if self.mask.device == torch.device(device) and dtype in (None, self.graph.x.dtype):
            return self
        return GraphSplit(self.graph.to(device, dtype), self.mask.to(device),
                          {k: to_device(v, device, dtype) for k, v in self.links.items()})

    def num_batches(self, batch_size: int) -> int:
        return 1

    def batch(self) -> dict[str, Any]:
        g = self.graph
        out: dict[str, Any] = {"x": g.x, "edge_index": g.edge_index, "mask": self.mask}
        if g.y is not None:
            out["y"] = g.y
        if g.edge_weight is not None:
            out["edge_weight"] = g.edge_weight
        out.update(self.links)
        return out

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0
                ) -> Iterator[dict[str, Any]]:
        """The one full batch (none when `start` >= 1); `batch_size`, `shuffle` and `seed` do not apply."""
        if start < 1:
            yield self.batch()


def graph_dataset(graph: Graph, name: str, num_classes: int, class_names: list[str] | None, seed: int, *,
                  link_features: torch.Tensor | None = None) -> Dataset:
    """A transductive dataset: train/val/test share the graph; each split has its node mask
    and the link-prediction edges of `split_edges` (fixed by `seed`), with `link_features`
    as ``link_x`` when link prediction should see other features than ``x``."""
    links = link_batches(split_edges(graph.edge_index, graph.num_nodes, seed=seed))
    if link_features is not None:
        if link_features.shape != graph.x.shape:
            raise DataError(f"link_features must have the shape of x, {tuple(graph.x.shape)}; "
                            f"got {tuple(link_features.shape)}.")
        links = {split: {**entries, "link_x": link_features} for split, entries in links.items()}
    spec = DataSpec(name=name, kind="graph", input_shape=(graph.num_features,), num_classes=num_classes,
                    class_names=class_names, options={"seed": seed})
    splits = {split: GraphSplit(graph, getattr(graph, f"{split}_mask"), links[split])
              for split in ("train", "val", "test")}
    return Dataset(spec, splits)
