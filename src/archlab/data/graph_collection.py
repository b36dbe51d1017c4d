"""Datasets of many small graphs, for graph classification: the `GraphCollection` split, its
file format (a graphs table beside the node and edge tables) and the embedded, generated
``graph-families`` benchmark.

A batch is the disjoint union of its graphs, PyG's layout: ``x (n, F)``, ``edge_index (2, e)``
over the batch's node ids, ``batch (n,)`` the graph of each node, ``y (B,)`` one label a graph.

**The ``graph-collection`` format** is a folder holding

- ``graphs.csv``: one row a graph: its id (`graph_id`), its class (`label`) and, optionally, its
  split (`split_column`: ``train``, ``val`` or ``test``; else a stratified 70/15/15 split by
  `seed`);
- ``edges.csv``: one row an undirected edge: its graph (`graph_id`) and its two ends
  (`source_column`, `target_column`), node ids unique within their graph;
- ``nodes.csv`` (optional): one row a node: its graph, its id (`node_id`) and its features
  (every other numeric column). Without it, or without feature columns, each node gets the
  `features` named: ``constant`` (one feature, 1: structure alone, as in Xu et al.'s social
  graphs) or ``degree`` (one feature, the node's number of neighbours). Without a nodes table a
  graph's nodes are the ends of its edges.

Self-loops and duplicate edges are dropped (counted in ``spec.preprocess["dropped_edges"]``).
`write_graph_collection` writes a dataset in this format.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import DataError
from ..validation import check_choice, check_int
from .base import Dataset, DataSpec, to_device
from .graph_files import class_order, read_table
from .registry import register_dataset
from .sources import register_format
from .splits import stratified_split

if TYPE_CHECKING:
    import pandas as pd

GRAPHS_FILE, NODES_FILE, EDGES_FILE = "graphs.csv", "nodes.csv", "edges.csv"
FEATURES = ("constant", "degree")
SPLITS = ("train", "val", "test")


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``cat([arange(s, s + c) for s, c in zip(starts, counts)])``."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    return (torch.repeat_interleave(starts - offsets, counts, output_size=total)
            + torch.arange(total, dtype=starts.dtype))


class GraphCollection:
    """Many graphs held as one: their nodes stacked, their edges over the stacked node ids.

    Graph ``g`` owns nodes ``node_ptr[g]:node_ptr[g + 1]`` and edges ``edge_ptr[g]:edge_ptr[g + 1]``
    (each undirected edge listed in both directions).

    Shapes:
        x ``(N, F)``, edge_index ``(2, E)``, node_ptr and edge_ptr ``(G + 1,)``, y ``(G,)``.
    """

    def __init__(self, x: torch.Tensor, edge_index: torch.Tensor, node_ptr: torch.Tensor, edge_ptr: torch.Tensor,
                 y: torch.Tensor):
        if x.dim() != 2 or node_ptr.dim() != 1 or edge_ptr.shape != node_ptr.shape or len(y) != len(node_ptr) - 1:
            raise DataError(f"a graph collection needs x (N, F), node_ptr and edge_ptr (G + 1,) and y (G,); got x "
                            f"{tuple(x.shape)}, node_ptr {tuple(node_ptr.shape)}, edge_ptr {tuple(edge_ptr.shape)}, "
                            f"y {tuple(y.shape)}.")
        if int(node_ptr[-1]) != x.size(0) or int(edge_ptr[-1]) != edge_index.size(1):
            raise DataError(f"node_ptr must end at the {x.size(0)} nodes and edge_ptr at the {edge_index.size(1)} "
                            f"edges; they end at {int(node_ptr[-1])} and {int(edge_ptr[-1])}.")
        self.x, self.edge_index, self.node_ptr, self.edge_ptr, self.y = x, edge_index, node_ptr, edge_ptr, y

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_features(self) -> int:
        return self.x.size(1)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> GraphCollection:
        return GraphCollection(*(to_device(t, device, dtype) for t in (self.x, self.edge_index, self.node_ptr,
                                                                        self.edge_ptr, self.y)))

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def graph(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Graph `index` alone: its ``x`` and ``edge_index`` over its own node ids."""
        lo, hi = int(self.node_ptr[index]), int(self.node_ptr[index + 1])
        edges = self.edge_index[:, int(self.edge_ptr[index]):int(self.edge_ptr[index + 1])]
        return self.x[lo:hi], edges - lo

    def collate(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The disjoint union of graphs `index`, in that order (the module docstring's batch)."""
        index = index.to(self.node_ptr.device)
        num_nodes = self.node_ptr[index + 1] - self.node_ptr[index]
        num_edges = self.edge_ptr[index + 1] - self.edge_ptr[index]
        nodes = _ranges(self.node_ptr[index], num_nodes)
        edges = _ranges(self.edge_ptr[index], num_edges)
        new_start = torch.cumsum(num_nodes, 0) - num_nodes  # where each graph's nodes start in the batch
        shift = torch.repeat_interleave(new_start - self.node_ptr[index], num_edges, output_size=len(edges))
        graph_of_node = torch.repeat_interleave(torch.arange(len(index), device=index.device), num_nodes,
                                                output_size=len(nodes))
        return {"x": self.x.index_select(0, nodes), "edge_index": self.edge_index.index_select(1, edges) + shift,
                "batch": graph_of_node, "y": self.y.index_select(0, index)}

    def subset(self, index: torch.Tensor | np.ndarray) -> GraphCollection:
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        batch = self.collate(index)
        counts = lambda ptr: ptr[index + 1] - ptr[index]  # noqa: E731
        zero = torch.zeros(1, dtype=torch.long)
        node_ptr = torch.cat([zero, torch.cumsum(counts(self.node_ptr), 0)])
        edge_ptr = torch.cat([zero, torch.cumsum(counts(self.edge_ptr), 0)])
        return GraphCollection(batch["x"], batch["edge_index"], node_ptr, edge_ptr, batch["y"])

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0
                ) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of `batch_size` graphs, skipping the first `start`; a shuffled order depends
        only on `seed`, so a resumed epoch sees the same batches."""
        order = (torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)) if shuffle
                 else torch.arange(len(self)))
        for i in range(start, self.num_batches(batch_size)):
            yield self.collate(order[i * batch_size:(i + 1) * batch_size])


def from_graphs(graphs: list[tuple[torch.Tensor, torch.Tensor]], y: torch.Tensor) -> GraphCollection:
    """A collection from ``(x, edge_index)`` pairs, each over its own node ids."""
    node_counts = torch.tensor([x.size(0) for x, _ in graphs], dtype=torch.long)
    edge_counts = torch.tensor([e.size(1) for _, e in graphs], dtype=torch.long)
    zero = torch.zeros(1, dtype=torch.long)
    node_ptr = torch.cat([zero, torch.cumsum(node_counts, 0)])
    edge_ptr = torch.cat([zero, torch.cumsum(edge_counts, 0)])
    edge_index = torch.cat([e + node_ptr[i] for i, (_, e) in enumerate(graphs)], 1) if graphs else \
        torch.zeros(2, 0, dtype=torch.long)
    x = torch.cat([x for x, _ in graphs]) if graphs else torch.zeros(0, 1)
    return GraphCollection(x, edge_index, node_ptr, edge_ptr, y)


def collection_dataset(collection: GraphCollection, masks: dict[str, np.ndarray], name: str,
                       class_names: list[str], options: dict[str, Any] | None = None,
                       preprocess: dict[str, Any] | None = None) -> Dataset:
    spec = DataSpec(name=name, kind="graphs", input_shape=(collection.num_features,), num_classes=len(class_names),
                    class_names=class_names, preprocess=dict(preprocess or {}), options=dict(options or {}))
    return Dataset(spec, {s: collection.subset(np.flatnonzero(masks[s])) for s in SPLITS})


def _split_masks(y: np.ndarray, seed: int, where: str) -> dict[str, np.ndarray]:
    try:
        parts = stratified_split(y, 0.15, 0.15, seed)
    except ValueError as err:
        raise DataError(f"{where}: the {len(y)} graphs cannot be split 70/15/15 stratified by class ({err}); give "
                        "more graphs of each class or a split column.") from None
    masks = {s: np.zeros(len(y), dtype=bool) for s in SPLITS}
    for s, part in zip(SPLITS, parts):
        masks[s][part] = True
    return masks


# -- the graph-collection format ------------------------------------------------------------------------------


def _need(frame: pd.DataFrame, column: str, what: str, file: Path, option: str) -> None:
    if column not in frame.columns:
        raise DataError(f"{file} has no {what} column '{column}' (its columns: {', '.join(map(str, frame.columns))}). "
                        f"Name it with the '{option}' option.")


def _text_column(frame: pd.DataFrame, column: str, file: Path, what: str) -> np.ndarray:
    values = frame[column]
    empty = values.isna().to_numpy()
    if empty.any():
        raise DataError(f"{file}, line {int(np.flatnonzero(empty)[0]) + 2}: the {what} ('{column}') is empty.")
    return values.astype(str).str.strip().to_numpy()


def _detect(path: Path) -> bool:
    return (path / GRAPHS_FILE).is_file() and (path / EDGES_FILE).is_file()


@register_format("graph-collection", detect=_detect,
                 description="many graphs: a graphs table (id, label) beside node and edge tables keyed by graph")
def read_graph_collection(path: Path, *, seed: int = 0, graph_id: str = "graph_id", node_id: str = "id",
                          label: str = "label", source_column: str = "source", target_column: str = "target",
                          split_column: str | None = None, features: str = "constant") -> Dataset:
    """A folder holding ``graphs.csv``, ``edges.csv`` and optionally ``nodes.csv`` (see the module
    docstring), for graph classification."""
    check_choice("graph-collection", "features", features, FEATURES)
    path = Path(path)
    if not path.is_dir() or not (path / GRAPHS_FILE).is_file() or not (path / EDGES_FILE).is_file():
        raise DataError(f"{path} must be a folder holding {GRAPHS_FILE} and {EDGES_FILE} (and optionally "
                        f"{NODES_FILE}).")
    text = (graph_id, node_id, label, source_column, target_column) + ((split_column,) if split_column else ())
    graphs_file, edges_file, nodes_file = path / GRAPHS_FILE, path / EDGES_FILE, path / NODES_FILE
    graphs = read_table(graphs_file, text)
    edges = read_table(edges_file, text)
    nodes = read_table(nodes_file, text) if nodes_file.is_file() else None
    _need(graphs, graph_id, "graph id", graphs_file, "graph_id")
    _need(graphs, label, "label", graphs_file, "label")
    if split_column is not None:
        _need(graphs, split_column, "split", graphs_file, "split_column")
    _need(edges, graph_id, "graph id", edges_file, "graph_id")
    _need(edges, source_column, "edge source", edges_file, "source_column")
    _need(edges, target_column, "edge target", edges_file, "target_column")
    if len(graphs) == 0:
        raise DataError(f"{graphs_file} has no graphs: expected a header and one graph a row.")
    ids = _text_column(graphs, graph_id, graphs_file, "graph id")
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for i, v in enumerate(ids):
            if v in seen:
                raise DataError(f"{graphs_file}, line {i + 2}: duplicate graph id '{v}' (first at line "
                                f"{seen[v] + 2}); graph ids must be unique.")
            seen[v] = i
    raw_labels = _text_column(graphs, label, graphs_file, "label")
    class_names = class_order(set(raw_labels))
    if len(class_names) < 2:
        raise DataError(f"{graphs_file}: the label column '{label}' has only the class {class_names[0]!r}; graph "
                        "classification needs at least two classes.")
    number = {c: k for k, c in enumerate(class_names)}
    y = np.array([number[v] for v in raw_labels], dtype=np.int64)
    graph_index = {v: i for i, v in enumerate(ids)}

    def graph_of(frame: pd.DataFrame, file: Path) -> np.ndarray:
        values = _text_column(frame, graph_id, file, "graph id")
        out = np.fromiter((graph_index.get(v, -1) for v in values), dtype=np.int64, count=len(values))
        bad = np.flatnonzero(out < 0)
        if len(bad):
            raise DataError(f"{file}, line {int(bad[0]) + 2}: graph '{values[bad[0]]}' is not in {graphs_file}.")
        return out

    edge_graph = graph_of(edges, edges_file)
    sources = _text_column(edges, source_column, edges_file, "edge source")
    targets = _text_column(edges, target_column, edges_file, "edge target")
    # node keys: (graph, id); numbered graph by graph, in the nodes table's order, else in order of appearance
    if nodes is not None:
        _need(nodes, graph_id, "graph id", nodes_file, "graph_id")
        _need(nodes, node_id, "node id", nodes_file, "node_id")
        node_graph = graph_of(nodes, nodes_file)
        node_names = _text_column(nodes, node_id, nodes_file, "node id")
        feature_columns = [c for c in nodes.columns if c not in (graph_id, node_id)]
    else:
        both = np.stack([sources, targets], 1).ravel()
        node_graph_all = np.repeat(edge_graph, 2)
        keys = list(dict.fromkeys(zip(node_graph_all.tolist(), both.tolist())))
        node_graph = np.array([g for g, _ in keys], dtype=np.int64)
        node_names = np.array([n for _, n in keys], dtype=object)
        feature_columns = []
    order = np.argsort(node_graph, kind="stable")
    node_graph, node_names = node_graph[order], node_names[order]
    key_of = {}
    for i, key in enumerate(zip(node_graph.tolist(), node_names.tolist())):
        if key in key_of:
            raise DataError(f"{nodes_file}, line {int(order[i]) + 2}: duplicate node id '{key[1]}' in graph "
                            f"'{ids[key[0]]}'; node ids must be unique within a graph.")
        key_of[key] = i
    ends = []
    for role, column, values in (("source", source_column, sources), ("target", target_column, targets)):
        out = np.empty(len(values), dtype=np.int64)
        for i, (g, v) in enumerate(zip(edge_graph.tolist(), values.tolist())):
            k = key_of.get((g, v))
            if k is None:
                raise DataError(f"{edges_file}, line {i + 2}: the edge's {role} ('{column}') '{v}' is no node of graph "
                                f"'{ids[g]}' in {nodes_file}.")
            out[i] = k
        ends.append(out)
    src, dst = ends
    num_nodes = len(node_graph)
    loops = src == dst
    key = np.minimum(src, dst) * num_nodes + np.maximum(src, dst)
    first = np.zeros(len(key), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True
    dropped = {"self_loops": int(loops.sum()), "duplicates": int((~first & ~loops).sum())}
    keep = first & ~loops
    src, dst = src[keep], dst[keep]
    both_src, both_dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    edge_order = np.lexsort((both_src, both_dst, node_graph[both_dst]))  # by graph, then target, then source
    edge_index = torch.from_numpy(np.stack([both_src[edge_order], both_dst[edge_order]]))
    node_counts = np.bincount(node_graph, minlength=len(ids))
    edge_counts = np.bincount(node_graph[both_dst], minlength=len(ids))
    empty = np.flatnonzero(node_counts == 0)
    if len(empty):
        where = nodes_file if nodes is not None else edges_file
        raise DataError(f"{graphs_file}: graph '{ids[empty[0]]}' has no nodes (none in {where}).")
    if feature_columns:
        import pandas as pd
        frame = nodes[feature_columns]
        for column in feature_columns:
            if not pd.api.types.is_numeric_dtype(frame[column]):
                raise DataError(f"{nodes_file}: feature column '{column}' must hold numbers; leave non-feature "
                                f"columns out of the nodes table.")
        values = frame.to_numpy(np.float64)[order]
        if not np.isfinite(values).all():
            row, col = np.argwhere(~np.isfinite(values))[0]
            raise DataError(f"{nodes_file}, line {int(order[row]) + 2}: feature column '{feature_columns[col]}' must "
                            "hold a finite number.")
        x = torch.from_numpy(values.astype(np.float32))
    elif features == "constant":
        x = torch.ones(num_nodes, 1)
    else:
        x = torch.bincount(edge_index[1], minlength=num_nodes).float()[:, None]
    zero = np.zeros(1, dtype=np.int64)
    collection = GraphCollection(x, edge_index, torch.from_numpy(np.concatenate([zero, np.cumsum(node_counts)])),
                                 torch.from_numpy(np.concatenate([zero, np.cumsum(edge_counts)])), torch.from_numpy(y))
    if split_column is not None:
        split = graphs[split_column].fillna("").astype(str).str.strip().to_numpy()
        bad = np.flatnonzero(~np.isin(split, SPLITS))
        if len(bad):
            raise DataError(f"{graphs_file}, line {int(bad[0]) + 2}: the split column '{split_column}' must be train, "
                            f"val or test; got {split[bad[0]]!r}.")
        masks = {s: split == s for s in SPLITS}
        if not masks["train"].any():
            raise DataError(f"{graphs_file}: no graph is in the train split of column '{split_column}'.")
    else:
        masks = _split_masks(y, seed, str(graphs_file))
    options = {"source": str(path.resolve()), "format": "graph-collection", "seed": seed, "graph_id": graph_id,
               "node_id": node_id, "label": label, "source_column": source_column, "target_column": target_column,
               "split_column": split_column, "features": features}
    preprocess = {"features": feature_columns or features, "num_graphs": len(ids), "dropped_edges": dropped}
    return collection_dataset(collection, masks, path.name, class_names, options, preprocess)


def write_graph_collection(dataset: Dataset, folder: str | Path) -> Path:
    """Write a graph-classification dataset in the ``graph-collection`` format: ``graphs.csv``
    (``graph_id``, ``label``, ``split``), ``nodes.csv`` (``graph_id``, ``id``, ``x0``...) and
    ``edges.csv`` (``graph_id``, ``source``, ``target``; each undirected edge once)."""
    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = dataset.spec.class_names or [str(k) for k in range(dataset.spec.num_classes)]
    graph_rows, node_frames, edge_frames = [], [], []
    count = 0
    for split in SPLITS:
        collection = dataset[split]
        for g in range(len(collection)):
            x, edge_index = collection.graph(g)
            gid = f"g{count}"
            count += 1
            graph_rows.append((gid, names[int(collection.y[g])], split))
            frame = pd.DataFrame(x.numpy(), columns=[f"x{k}" for k in range(x.size(1))])
            frame.insert(0, "id", np.arange(len(x)))
            frame.insert(0, "graph_id", gid)
            node_frames.append(frame)
            once = edge_index[:, edge_index[0] < edge_index[1]].numpy()
            edge_frames.append(pd.DataFrame({"graph_id": gid, "source": once[0], "target": once[1]}))
    pd.DataFrame(graph_rows, columns=["graph_id", "label", "split"]).to_csv(folder / GRAPHS_FILE, index=False)
    pd.concat(node_frames).to_csv(folder / NODES_FILE, index=False)
    pd.concat(edge_frames).to_csv(folder / EDGES_FILE, index=False)
    return folder


# -- the embedded benchmark ------------------------------------------------------------------------------------

FAMILIES = ("preferential-attachment", "havel-hakimi", "configuration")


def double_edge_swap(edges: list[tuple[int, int]], nswap: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`nswap` degree-preserving swaps of a simple graph's edges: two uniform edges ``(u, v)``,
    ``(x, y)`` become ``(u, x)``, ``(v, y)`` (or ``(u, y)``, ``(v, x)``) when that makes no
    self-loop and no duplicate; a refused swap counts as a step, so the walk stays seeded and
    its length bounded."""
    edges = list(edges)
    present = {frozenset(e) for e in edges}
    picks = rng.integers(len(edges), size=(nswap, 2))
    flips = rng.random(nswap) < 0.5
    for (i, j), flip in zip(picks.tolist(), flips.tolist()):
        (u, v), (x, y) = edges[i], edges[j]
        if flip:
            x, y = y, x
        a, b = frozenset((u, x)), frozenset((v, y))
        if i == j or u == x or v == y or a in present or b in present:
            continue
        present -= {frozenset(edges[i]), frozenset(edges[j])}
        present |= {a, b}
        edges[i], edges[j] = (u, x), (v, y)
    return edges


def family_graph(family: str, num_nodes: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """The edges of one graph of `family` on `num_nodes` nodes. All three share one degree
    sequence, a Barabási-Albert graph's (m = 2), so degrees alone cannot tell them apart:

    - ``preferential-attachment``: that Barabási-Albert graph (old hubs linked to each other);
    - ``havel-hakimi``: the Havel-Hakimi realization of its degree sequence (each node joined to
      the nodes of largest remaining degree: a dense core of hubs), lightly shuffled by
      `double_edge_swap`, one swap for every tenth edge;
    - ``configuration``: close to a uniformly random graph with that degree sequence (ten swaps
      per edge of the Barabási-Albert graph).
    """
    import networkx as nx

    g = nx.barabasi_albert_graph(num_nodes, 2, seed=int(rng.integers(2 ** 31)))
    edges = list(g.edges())
    if family == "havel-hakimi":
        hh = nx.havel_hakimi_graph([d for _, d in sorted(g.degree())])
        return double_edge_swap(list(hh.edges()), max(1, len(edges) // 10), rng)
    if family == "configuration":
        return double_edge_swap(edges, 10 * len(edges), rng)
    return edges


def graph_families(num_graphs: int = 900, min_nodes: int = 20, max_nodes: int = 40, seed: int = 0
                   ) -> tuple[GraphCollection, list[str]]:
    """`num_graphs` graphs, a third of each family of `family_graph`, of `min_nodes` to `max_nodes`
    nodes, with one constant feature a node; fixed by `seed`."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_graphs) % len(FAMILIES)
    rng.shuffle(labels)
    graphs = []
    for label in labels:
        num_nodes = int(rng.integers(min_nodes, max_nodes + 1))
        pairs = torch.tensor(family_graph(FAMILIES[label], num_nodes, rng), dtype=torch.long).t().reshape(2, -1)
        both = torch.cat([pairs, pairs.flip(0)], 1)
        both = both[:, torch.argsort(both[1] * num_nodes + both[0])]
        graphs.append((torch.ones(num_nodes, 1), both))
    return from_graphs(graphs, torch.from_numpy(labels.astype(np.int64))), list(FAMILIES)


@register_dataset("graph-families", kind="graphs",
                  description="900 generated graphs of 3 families sharing one degree sequence (graph classification)")
def load_graph_families(root, seed: int = 0, num_graphs: int = 900) -> Dataset:
    """The graphs of `graph_families` (generated from `seed`, the same graphs for every split
    seed of one `seed`), split 70/15/15 stratified by family."""
    check_int("graph-families", "num_graphs", num_graphs, minimum=30)
    collection, names = graph_families(num_graphs, seed=0)
    masks = _split_masks(collection.y.numpy(), seed, "graph-families")
    return collection_dataset(collection, masks, "graph-families", names, {"seed": seed, "num_graphs": num_graphs},
                              {"features": "constant", "num_graphs": num_graphs})
