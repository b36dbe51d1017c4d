"""Sampled-neighbourhood mini-batches (GraphSAGE's, PyG's ``NeighborLoader``) from a CSR graph.

A batch is `batch_size` seed nodes and, hop by hop, at most ``num_neighbors[h]`` in-neighbours
of each node first reached at the hop before (all of them for ``-1``), drawn without
replacement. It is a small graph in the form a full-batch node classifier takes: ``x``, ``y``,
``edge_index`` over local ids, ``mask`` (True on the seeds), plus

- ``n_id``: the global id of each local node; the seeds come first, then the nodes each hop
  reached first, hop by hop;
- ``num_sampled_nodes`` (one count per hop, seeds first) and ``num_sampled_edges`` (one per hop):
  the edges of hop ``h`` come after those of hop ``h - 1``, and point from their sampled
  neighbour to a node of hop ``h - 1``, so a model can compute each layer on a prefix of the
  nodes and edges (`archlab.models.sage.GraphSAGE`).

The graph's memory is the CSR (``rowptr`` and ``col``, int64) and its features; a batch's is
its own subgraph, so graphs whose full-batch activations do not fit still train. Batches are
seeded: the seed order of an epoch depends on its seed, and batch ``i``'s draws on the seed and
``i`` alone, so a resumed epoch and any number of DataLoader workers give the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from ..errors import DataError
from ..validation import check_int, fail
from .base import to_device


class CSRGraph:
    """The in-neighbours of every node: node ``i``'s are ``col[rowptr[i]:rowptr[i + 1]]``, and
    ``edge_id`` gives each entry's column in the original ``edge_index`` (for edge weights).

    Shapes:
        edge_index ``(2, E)`` -> rowptr ``(N + 1,)``, col ``(E,)``, edge_id ``(E,)``.
    """

    def __init__(self, edge_index: torch.Tensor, num_nodes: int):
        target = edge_index[1]
        order = torch.sort(target, stable=True).indices  # by target, sources kept in their order
        self.num_nodes = num_nodes
        self.col = edge_index[0].index_select(0, order).contiguous()
        self.edge_id = order
        counts = torch.bincount(target, minlength=num_nodes)
        self.rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
        torch.cumsum(counts, 0, out=self.rowptr[1:])

    def degree(self, nodes: torch.Tensor) -> torch.Tensor:
        return self.rowptr[nodes + 1] - self.rowptr[nodes]


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cat([arange(s, s + c) for s, c in zip(starts, counts)])`` and each entry's range index."""
    total = int(counts.sum())
    segment = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts, output_size=total)
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(total, device=counts.device) - offsets.index_select(0, segment)
    return starts.index_select(0, segment) + within, within


def sample_hop(csr: CSRGraph, frontier: torch.Tensor, fanout: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """At most `fanout` in-edges of each frontier node, drawn without replacement (all for -1).

    Returns the CSR positions of the edges and, for each, its frontier row.
    A node with more in-edges than `fanout` keeps the `fanout` of smallest random key: a uniform
    draw of a subset, at the cost of one key per in-edge of such nodes.

    Shapes:
        frontier ``(F,)`` global ids -> positions ``(S,)``, rows ``(S,)`` in ``[0, F)``.
    """
    degree = csr.degree(frontier)
    positions, within = _ranges(csr.rowptr.index_select(0, frontier), degree)
    rows = torch.repeat_interleave(torch.arange(len(frontier), device=frontier.device), degree,
                                   output_size=len(positions))
    if fanout < 0 or len(positions) == 0 or int(degree.max()) <= fanout:
        return positions, rows
    # every row's keys lie in [row, row + 1): one sort orders the rows and shuffles within each
    keys = torch.rand(len(positions), generator=generator, dtype=torch.float64, device=frontier.device)
    order = torch.argsort(keys + rows.to(torch.float64))
    keep = order[within < fanout]  # the sorted row of entry k is rows[k], so its rank there is within[k]
    return positions.index_select(0, keep), rows.index_select(0, keep)


class NeighborSampler:
    """Draws the sampled subgraph of a set of seed nodes (see the module docstring).

    One instance per process: it keeps an ``(N,)`` map from global to local ids, reset after
    each batch, so relabelling costs the batch's size and not the graph's.
    """

    def __init__(self, csr: CSRGraph, num_neighbors: Sequence[int]):
        self.csr = csr
        self.num_neighbors = list(num_neighbors)
        self._local: torch.Tensor | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_local": None}  # each worker process makes its own

    def sample(self, seeds: torch.Tensor, generator: torch.Generator) -> dict[str, Any]:
        csr = self.csr
        if self._local is None or self._local.device != seeds.device:
            self._local = torch.full((csr.num_nodes,), -1, dtype=torch.long, device=seeds.device)
        local = self._local
        n_id = [seeds]
        local[seeds] = torch.arange(len(seeds), device=seeds.device)
        count = len(seeds)
        frontier = seeds
        sources, targets, positions = [], [], []
        nodes_per_hop, edges_per_hop = [len(seeds)], []
        try:
            for fanout in self.num_neighbors:
                position, row = sample_hop(csr, frontier, fanout, generator)
                source = csr.col.index_select(0, position)
                new = torch.unique(source[local.index_select(0, source) < 0])  # sorted, so seeded and stable
                local[new] = torch.arange(count, count + len(new), device=seeds.device)
                targets.append(local.index_select(0, frontier).index_select(0, row))
                sources.append(local.index_select(0, source))
                positions.append(position)
                n_id.append(new)
                count += len(new)
                nodes_per_hop.append(len(new))
                edges_per_hop.append(len(position))
                frontier = new
        finally:
            nodes = torch.cat(n_id)
            local[nodes] = -1
        return {"n_id": nodes, "edge_index": torch.stack([torch.cat(sources), torch.cat(targets)]),
                "edge_position": torch.cat(positions), "num_sampled_nodes": nodes_per_hop,
                "num_sampled_edges": edges_per_hop}


def check_num_neighbors(owner: str, num_neighbors: Any) -> list[int]:
    """A list of fan-outs, each a positive int or -1 (every neighbour)."""
    rule = "a non-empty list of ints, each >= 1 or -1 (every neighbour)"
    if not isinstance(num_neighbors, (list, tuple)) or not num_neighbors:
        raise fail(owner, "num_neighbors", rule, num_neighbors)
    for k in num_neighbors:
        if isinstance(k, bool) or not isinstance(k, int) or not (k >= 1 or k == -1):
            raise fail(owner, "num_neighbors", rule, list(num_neighbors))
    return list(num_neighbors)


class _Batches(TorchDataset):
    """Batch ``(seed, i)`` of a `NeighborSplit`, for DataLoader workers."""

    def __init__(self, split: NeighborSplit):
        self.split = split

    def __len__(self) -> int:  # indices come from the split's own sampler
        return 0

    def __getitem__(self, key: tuple[int, int, bool, int]) -> dict[str, Any]:
        seed, index, shuffle, batch_size = key
        return self.split.make_batch(seed, index, shuffle, batch_size)


class _Keys:
    """The (seed, batch index, shuffle, batch size) of each batch of the current epoch, set by
    `NeighborSplit.batches` before it iterates the persistent DataLoader."""

    def __init__(self):
        self.keys: list[tuple[int, int, bool, int]] = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class NeighborSplit:
    """One split of a graph dataset as sampled mini-batches of its masked nodes.

    Args:
        split: the full-batch `GraphSplit` (its graph and node mask).
        num_neighbors: fan-out of each hop, e.g. ``[25, 10]``; -1 takes every neighbour.
        num_workers: DataLoader worker processes that sample the batches (0: in this process).
            The workers persist across epochs.
        csr: the graph's `CSRGraph`, when already built (train, val and test share one graph).

    `batches(batch_size, shuffle=, seed=, start=)` yields ``ceil(len / batch_size)`` batches; a
    batch of the same ``(seed, i)`` is the same whatever `start` and `num_workers` are.
    """

    def __init__(self, split: Any, num_neighbors: Sequence[int], *, num_workers: int = 0,
                 csr: CSRGraph | None = None):
        check_int("NeighborSplit", "num_workers", num_workers, minimum=0)
        self.num_neighbors = check_num_neighbors("NeighborSplit", num_neighbors)
        graph = split.graph
        self.graph = graph
        self.mask = split.mask
        self.num_workers = num_workers
        self.seeds = torch.nonzero(split.mask).flatten()
        self.csr = csr if csr is not None else CSRGraph(graph.edge_index, graph.num_nodes)
        if self.csr.num_nodes != graph.num_nodes:
            raise DataError(f"the CSR graph has {self.csr.num_nodes} nodes; this split's graph has "
                            f"{graph.num_nodes}.")
        self.sampler = NeighborSampler(self.csr, self.num_neighbors)
        self.device: torch.device | None = None
        self.dtype: torch.dtype | None = None
        self._loader: DataLoader | None = None
        self._keys = _Keys()

    def __len__(self) -> int:
        return len(self.seeds)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loader": None}

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> NeighborSplit:
        """Batches are sampled where the graph is and moved to `device` as they are yielded (their
        floating-point tensors converted to `dtype` when given)."""
        self.device = torch.device(device)
        self.dtype = dtype
        return self

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self.seeds) // batch_size)

    def make_batch(self, seed: int, index: int, shuffle: bool, batch_size: int) -> dict[str, Any]:
        """Batch `index` of the epoch whose seed order and draws follow `seed`."""
        seeds = self.seeds
        if shuffle:
            order = torch.randperm(len(seeds), generator=torch.Generator().manual_seed(seed))
            seeds = seeds.index_select(0, order.to(seeds.device))
        seeds = seeds[index * batch_size:(index + 1) * batch_size]
        generator = torch.Generator(device=seeds.device).manual_seed((seed * 1_000_003 + index) % (2 ** 63))
        out = self.sampler.sample(seeds, generator)
        graph = self.graph
        n_id = out["n_id"]
        batch: dict[str, Any] = {"x": graph.x.index_select(0, n_id), "edge_index": out["edge_index"]}
        mask = torch.zeros(len(n_id), dtype=torch.bool, device=n_id.device)
        mask[:len(seeds)] = True
        batch["mask"] = mask
        if graph.y is not None:
            batch["y"] = graph.y.index_select(0, n_id)
        if graph.edge_weight is not None:
            batch["edge_weight"] = graph.edge_weight.index_select(0, self.csr.edge_id.index_select(
                0, out["edge_position"]))
        batch.update(n_id=n_id, num_sampled_nodes=out["num_sampled_nodes"],
                     num_sampled_edges=out["num_sampled_edges"])
        return batch

    def _move(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.device is None:
            return batch
        return {k: to_device(v, self.device, self.dtype, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0
                ) -> Iterator[dict[str, Any]]:
        keys = [(seed, i, shuffle, batch_size) for i in range(start, self.num_batches(batch_size))]
        if self.num_workers == 0:
            for key in keys:
                yield self._move(self.make_batch(*key))
            return
        if self._loader is None:
            pin = self.device is not None and self.device.type == "cuda"
            self._loader = DataLoader(_Batches(self), batch_size=None, sampler=self._keys,
                                      num_workers=self.num_workers, persistent_workers=True, pin_memory=pin)
        self._keys.keys = keys
        for batch in self._loader:
            yield self._move(batch)
