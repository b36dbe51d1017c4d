"""Graphs from a user's files: node and edge tables, edge lists, GraphML and GML.

A **nodes table** (CSV, or TSV by its ``.tsv`` suffix) has one row per node: its id (`node_id`),
its features (every other numeric column) and its class (`label`); an **edges table** has one
row per edge: the ids of its two ends (`source_column`, `target_column`) and optionally a `weight`.
Give them as a folder holding ``nodes.csv`` and ``edges.csv`` (or ``edges.csv`` alone; format ``graph-tables``), as
``load_data("nodes.csv", format="graph-tables", edges="edges.csv")``, or in Python as
``from_graph(nodes, edges)`` with paths or pandas DataFrames. A nodes table without feature
columns, an edges table alone, an edge list (``.edgelist``), GraphML (``.graphml``) and GML
(``.gml``; these three read by networkx's readers, node attributes giving `label` and
`split_column`, an edge attribute `weight`) have no node features: each node gets the
`features` named, ``"identity"`` (default: a one-hot row per node, stored sparse, as
Kipf & Welling's featureless GCN) or ``"degree"`` (one feature, the node's number of
neighbours). Nodes are numbered in the order of the nodes table (of a networkx file), else in
the order they first appear in the edges.

Edges are undirected (each lists both directions, as Planetoid's), sorted by target then
source. **Self-loops and duplicate edges** (the same pair of nodes again, in either
direction) are dropped, counted in ``spec.preprocess["dropped_edges"]`` and reported with a
`UserWarning` naming the first of each; a duplicate's weight is the first one's.

Splits: a `split_column` whose values are ``train``, ``val`` or ``test`` (an empty cell: the
node is in no split), else a stratified 70/15/15 split of the labelled nodes, fixed by `seed`.
A node with an empty label is unlabelled and in no split. Node classification (gcn, gat)
needs the `label` column; with ``link_prediction=True`` the graph may have none, for link
prediction (gae, vgae) only. Either way each split carries the link-prediction edges of
`split_edges` (85/5/10 of the edges, with as many sampled non-edges, fixed by `seed`), as the
built-in Cora has. Feature matrices at most 10% non-zero (bag-of-words) are kept sparse.

A new graph in the training graph's format and feature columns is read for `predict` (`graph_inputs`)
and, with its labelled nodes scored, for `evaluate` (`labeled_graph`; a folder, or one networkx file).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch


if TYPE_CHECKING:  # pandas is imported when a table is read, not with the package
    import pandas as pd

from ..errors import ConfigError, DataError
from ..validation import check_choice
from .base import Dataset, DataSpec, unknown_class
from .graph import Graph, GraphSplit, graph_dataset, index_mask
from .sources import load_data, register_format
from .splits import stratified_split

FEATURES = ("identity", "degree")
SPLITS = ("train", "val", "test")
VAL_FRACTION = TEST_FRACTION = 0.15
SPARSE_DENSITY = 0.1  # keep x sparse at or below this share of non-zeros
NODES_FILE, EDGES_FILE = "nodes.csv", "edges.csv"
NETWORKX_FORMATS = {".edgelist": "edgelist", ".graphml": "graphml", ".gml": "gml"}

Locate = Callable[[int], str]  # row position -> where it is in the source ("nodes.csv, line 5")


def read_table(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV (or ``.tsv``) table, the `text_columns` read as text (ids, labels, split names)
    and the other columns parsed exactly (``round_trip``: float32 features survive a write)."""
    import pandas as pd
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        return pd.read_csv(path, sep=sep, dtype={c: str for c in text_columns}, float_precision="round_trip",
                           encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"table not found: {path}.") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; expected a CSV or TSV table.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: expected a header line and one row a line.") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: {str(err).strip()} (expected the header's number of fields on every line).") \
            from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}: {err.object[err.start:err.start + 4]!r}); "
                        "save it as UTF-8.") from None


def _lines(where: str) -> Locate:
    return lambda i: f"{where}, line {i + 2}"  # line 1 is the header


def _need_column(frame: pd.DataFrame, column: str, what: str, where: str, hint: str = "") -> None:
    if column not in frame.columns:
        raise DataError(f"{where} has no {what} column '{column}'; its columns are "
                        f"{', '.join(map(str, frame.columns))}.{hint}")


def _text(frame: pd.DataFrame, column: str) -> list[str | None]:
    """A column as stripped strings, None where empty."""
    values = frame[column].astype(object).where(frame[column].notna(), None).tolist()
    out = [None if v is None else str(v).strip() for v in values]
    return [v if v else None for v in out]


def class_order(values: set[str]) -> list[str]:
    """Class names sorted as numbers when they all are, else as text."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _features(nodes: pd.DataFrame, columns: list[str], where: Locate, file: str) -> torch.Tensor:
    import pandas as pd
    for column in columns:
        series = nodes[column]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            text = series.notna() & pd.to_numeric(series, errors="coerce").isna()
            bad = int(np.flatnonzero(text.to_numpy())[0]) if text.any() else 0
            raise DataError(f"{where(bad)}: feature column '{column}' must hold numbers; got "
                            f"{series.iloc[bad]!r}. Leave non-feature columns out of the nodes table.")
    values = nodes[columns].to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        got = "an empty cell" if np.isnan(values[row, col]) else str(values[row, col])
        raise DataError(f"{where(int(row))}: feature column '{columns[col]}' must hold a finite number; got {got} "
                        f"(fill in missing features in {file}).")
    x = torch.from_numpy(values.astype(np.float32))
    if np.count_nonzero(values) <= SPARSE_DENSITY * values.size:
        return x.to_sparse_coo().coalesce()
    return x


def _featureless(features: str, num_nodes: int, edge_index: torch.Tensor) -> torch.Tensor:
    if features == "identity":
        index = torch.arange(num_nodes).repeat(2, 1)
        return torch.sparse_coo_tensor(index, torch.ones(num_nodes), (num_nodes, num_nodes), is_coalesced=True,
                                       check_invariants=False)
    degree = torch.bincount(edge_index[1], minlength=num_nodes).float()  # each neighbour once per direction
    return degree[:, None]


def _edges(edges: pd.DataFrame, index: dict[str, int], *, source: str, target: str, weight: str | None,
           where: Locate, file: str, nodes_file: str | None
           ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, int]]:
    """Both directions of each distinct undirected edge, sorted by target then source, their
    weights, and the counts of dropped self-loops and duplicates."""
    import pandas as pd
    ends = []
    for column, role in ((source, "source"), (target, "target")):
        values = _text(edges, column)
        ids = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            if v is None:
                raise DataError(f"{where(i)}: the edge's {role} ('{column}') is empty.")
            if v not in index:
                known = f"no row of {nodes_file} has id '{v}'" if nodes_file else f"'{v}' is no node"
                raise DataError(f"{where(i)}: the edge's {role} '{v}' names a node that does not exist ({known}).")
            ids[i] = index[v]
        ends.append(ids)
    src, dst = ends
    w = None
    if weight is not None:
        numbers = pd.to_numeric(edges[weight], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise DataError(f"{where(int(bad[0]))}: the edge weight ('{weight}') must be a finite number; got "
                            f"{edges[weight].iloc[bad[0]]!r}.")
        w = numbers.astype(np.float32)
    n = len(index)
    loops = src == dst
    key = np.minimum(src, dst) * n + np.maximum(src, dst)
    first = np.zeros(len(key), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True
    duplicates = ~first & ~loops
    dropped = {"self_loops": int(loops.sum()), "duplicates": int(duplicates.sum())}
    if dropped["self_loops"] or dropped["duplicates"]:
        parts = [f"{count} {what} (the first at {where(int(np.flatnonzero(mask)[0])).split(', ', 1)[-1]})"
                 for count, what, mask in ((dropped["self_loops"], "self-loop(s)", loops),
                                           (dropped["duplicates"], "duplicate edge(s)", duplicates)) if count]
        warnings.warn(f"{file}: dropped {' and '.join(parts)}; edges are undirected and simple.", UserWarning,
                      stacklevel=5)
    keep = first & ~loops
    if not keep.any():
        raise DataError(f"{file} has no edge between two distinct nodes.")
    src, dst = src[keep], dst[keep]
    both_src, both_dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    order = np.argsort(both_dst * n + both_src, kind="stable")  # by target, then source (PyG's order)
    edge_index = torch.from_numpy(np.stack([both_src[order], both_dst[order]]))
    edge_weight = None if w is None else torch.from_numpy(np.concatenate([w[keep], w[keep]])[order])
    return edge_index, edge_weight, dropped


def _masks(y: list[str | None], split: list[str | None] | None, where: Locate, split_column: str | None,
           seed: int, file: str) -> dict[str, np.ndarray]:
    n = len(y)
    if split is not None:
        masks = {name: np.zeros(n, dtype=bool) for name in SPLITS}
        for i, value in enumerate(split):
            if value is None:
                continue
            if value not in masks:
                raise DataError(f"{where(i)}: the split column '{split_column}' must be train, val, test or empty; "
                                f"got {value!r}.")
            if y[i] is None:
                raise DataError(f"{where(i)}: the node is in the {value} split but has no label.")
            masks[value][i] = True
        if not masks["train"].any():
            raise DataError(f"{file}: no node is in the train split of column '{split_column}'.")
        return masks
    labelled = np.array([i for i, v in enumerate(y) if v is not None])
    try:
        parts = stratified_split(np.array([y[i] for i in labelled]), VAL_FRACTION, TEST_FRACTION, seed)
    except ValueError as err:
        raise DataError(f"{file}: the {len(labelled)} labelled nodes cannot be split 70/15/15 stratified by class "
                        f"({err}); give more nodes of each class or a split column.") from None
    return {name: index_mask(labelled[part], n).numpy() for name, part in zip(SPLITS, parts)}


def _structure(nodes: pd.DataFrame | None, edges: pd.DataFrame, *, node_id: str, source_column: str,
               target_column: str, weight: str | None, nodes_file: str, edges_file: str, node_where: Locate,
               edge_where: Locate, check_nodes: Callable[[pd.DataFrame], None] | None = None
               ) -> tuple[pd.DataFrame, list[str], torch.Tensor, torch.Tensor | None, dict[str, int]]:
    """The nodes (a table of ids alone when `nodes` is None: the ends of the edges, in order), their
    ids, and the edges of the checked tables: what training and prediction read alike. `check_nodes`
    checks the nodes table's other columns once its ids are known good, before the edges are read."""
    import pandas as pd
    if len(edges) == 0:
        raise DataError(f"{edges_file} has no edges: expected a header and one edge a row.")
    for column, what in ((source_column, "source"), (target_column, "target")):
        _need_column(edges, column, f"edge {what}", edges_file,
                     " Name it with the 'source_column' / 'target_column' option." if nodes is None else "")
    if weight is not None:
        _need_column(edges, weight, "edge weight", edges_file)
    if nodes is None:
        order = np.stack([_text(edges, source_column), _text(edges, target_column)], 1).ravel()
        ids = list(dict.fromkeys(v for v in order if v is not None))
        nodes = pd.DataFrame({node_id: ids})
        known_nodes = None
    else:
        if len(nodes) == 0:
            raise DataError(f"{nodes_file} has no nodes: expected a header and one node a row.")
        _need_column(nodes, node_id, "node id", nodes_file)
        ids = _text(nodes, node_id)
        for i, v in enumerate(ids):
            if v is None:
                raise DataError(f"{node_where(i)}: the node id ('{node_id}') is empty.")
        seen: dict[str, int] = {}
        for i, v in enumerate(ids):
            if v in seen:
                raise DataError(f"{node_where(i)}: duplicate node id '{v}' (first at "
                                f"{node_where(seen[v]).split(', ', 1)[-1]}); node ids must be unique.")
            seen[v] = i
        known_nodes = nodes_file
    if check_nodes is not None:
        check_nodes(nodes)
    index = {v: i for i, v in enumerate(ids)}
    edge_index, edge_weight, dropped = _edges(edges, index, source=source_column, target=target_column, weight=weight,
                                              where=edge_where, file=edges_file, nodes_file=known_nodes)
    return nodes, ids, edge_index, edge_weight, dropped


def graph_from_frames(nodes: pd.DataFrame | None, edges: pd.DataFrame, *, node_id: str = "id", label: str = "label",
                      source_column: str = "source", target_column: str = "target", weight: str | None = None,
                      split_column: str | None = None, link_prediction: bool = False, features: str = "identity",
                      seed: int = 0, name: str = "graph", nodes_file: str = "the nodes table",
                      edges_file: str = "the edges table", node_where: Locate | None = None,
                      edge_where: Locate | None = None) -> Dataset:
    """The graph dataset of a nodes table (or None) and an edges table (see the module docstring);
    `nodes_file`/`edges_file` and the locators name the sources in error messages."""
    import pandas as pd
    check_choice("from_graph", "features", features, FEATURES)
    node_where = node_where or _lines(nodes_file)
    edge_where = edge_where or _lines(edges_file)
    if nodes is None and not link_prediction:
        _structure(None, edges, node_id=node_id, source_column=source_column, target_column=target_column,
                   weight=weight, nodes_file=nodes_file, edges_file=edges_file, node_where=node_where,
                   edge_where=edge_where)  # the edges' own errors first
        raise DataError(f"{edges_file} alone gives nodes without labels: give a nodes table with a '{label}' "
                        "column for node classification (gcn, gat), or link_prediction=True for link prediction "
                        "(gae, vgae).")
    where = nodes_file if nodes is not None else edges_file

    def check_columns(frame: pd.DataFrame) -> None:
        if label not in frame.columns and not link_prediction:
            _need_column(frame, label, "label", where,
                         " Name it with the 'label' option, or set link_prediction=True for link prediction only.")
        if split_column is not None:
            _need_column(frame, split_column, "split", where)

    if nodes is None:
        nodes_file = None
    nodes, ids, edge_index, edge_weight, dropped = _structure(
        nodes, edges, node_id=node_id, source_column=source_column, target_column=target_column, weight=weight,
        nodes_file=nodes_file, edges_file=edges_file, node_where=node_where, edge_where=edge_where,
        check_nodes=check_columns)
    n = len(ids)
    feature_columns = [c for c in nodes.columns if c not in (node_id, label, split_column)]
    if feature_columns:
        x = _features(nodes, feature_columns, node_where, nodes_file)
    else:
        x = _featureless(features, n, edge_index)
    y = masks = class_names = None
    if label in nodes.columns:
        raw = _text(nodes, label)
        class_names = class_order({v for v in raw if v is not None})
        if len(class_names) < 2:
            raise DataError(f"{nodes_file or edges_file}: the label column '{label}' has "
                            f"{'only the class ' + repr(class_names[0]) if class_names else 'no values'}; node "
                            "classification needs at least two classes.")
        number = {c: k for k, c in enumerate(class_names)}
        y = torch.tensor([number.get(v, 0) for v in raw], dtype=torch.long)  # unlabelled: 0, outside every mask
        split = _text(nodes, split_column) if split_column is not None else None
        masks = _masks(raw, split, node_where, split_column, seed, nodes_file or edges_file)
    empty = torch.zeros(n, dtype=torch.bool)
    graph = Graph(x=x, edge_index=edge_index, y=y, edge_weight=edge_weight,
                  **{f"{s}_mask": torch.from_numpy(masks[s]) if masks else empty for s in SPLITS})
    dataset = graph_dataset(graph, name, len(class_names) if class_names else 0, class_names, seed)
    dataset.spec.preprocess = {
        "features": feature_columns if feature_columns else features, "num_nodes": n,
        "num_edges": int(edge_index.size(1)) // 2, "dropped_edges": dropped,
    }
    return dataset


def _detect_tables(path: Path) -> bool:
    # with NODES_FILE, or the edges alone (link prediction); a graphs table beside them makes the folder
    # a collection of graphs (data/graph_collection.py)
    return (path / EDGES_FILE).is_file() and not (path / "graphs.csv").is_file()


def graph_inputs(path: str | os.PathLike, spec: DataSpec) -> dict[str, Any]:
    """A new graph of the training graph's schema, for `predict`: ``{"x", "edge_index",
    "edge_weight", "ids"}``, read with the options the training graph was read with. A nodes table
    must hold the training graph's feature columns, no more and no fewer (its label and split
    columns, if any, are ignored). A graph trained without feature columns gave each node its
    one-hot row (``features="identity"``), which names only the training graph's nodes: such a model
    cannot predict on another graph (``features="degree"`` can)."""
    return _new_graph(path, spec)[0]


def labeled_graph(path: str | os.PathLike, spec: DataSpec) -> GraphSplit:
    """A new graph of the training graph's schema, read as `graph_inputs` reads it, with every node that
    has a label (one of the training classes) in the split, for evaluating a node classifier on it."""
    if spec.options.get("link_prediction"):
        raise ConfigError(f"{path}: a link-prediction model is scored on the held-out edges of the graph it was "
                          "trained on; evaluate it without --data.")
    graph, nodes, where, file = _new_graph(path, spec)
    label = spec.options.get("label", "label")
    if label not in nodes.columns:
        raise DataError(f"{file} has no label column '{label}' to score the nodes by; its columns: "
                        f"{', '.join(map(str, nodes.columns))}.")
    number = {c: k for k, c in enumerate(spec.class_names or [])}
    raw = _text(nodes, label)
    for i, value in enumerate(raw):
        if value is not None and value not in number:
            raise unknown_class(where(i), value, label, spec.class_names)
    mask = torch.tensor([v is not None for v in raw])
    if not mask.any():
        raise DataError(f"{file}: no node has a label to score.")
    y = torch.tensor([number.get(v, 0) for v in raw], dtype=torch.long)  # unlabelled: 0, outside the mask
    empty = torch.zeros(len(raw), dtype=torch.bool)
    return GraphSplit(Graph(x=graph["x"], edge_index=graph["edge_index"], y=y, edge_weight=graph["edge_weight"],
                            train_mask=empty, val_mask=empty, test_mask=mask), mask)


def _new_graph(path: str | os.PathLike, spec: DataSpec) -> tuple[dict[str, Any], pd.DataFrame, Locate, str]:
    """(`graph_inputs`' graph, its nodes table, the locator of a node's row, the file of the nodes)."""
    path = Path(path)
    options, features = spec.options, spec.preprocess.get("features")
    fmt = options["format"]
    if features == "identity":
        raise DataError(f"{path}: the checkpoint's graph had no feature columns, so each node's input was its own "
                        "one-hot row (features='identity'), which exists only for the training graph's nodes. To "
                        "predict on or score a new graph, train on node feature columns or with features='degree'.")
    label, split_column, weight = options.get("label", "label"), options.get("split_column"), options.get("weight")
    if fmt == "graph-tables":
        node_id, source, target = options["node_id"], options["source_column"], options["target_column"]
        if path.is_dir():
            if not (path / EDGES_FILE).is_file():
                raise DataError(f"{path} has no {EDGES_FILE}: a graph folder holds {NODES_FILE} and {EDGES_FILE}.")
            nodes_path = path / NODES_FILE if (path / NODES_FILE).is_file() else None
            edges_path = path / EDGES_FILE
        else:
            nodes_path, edges_path = None, path
        if isinstance(features, list) and nodes_path is None:
            raise DataError(f"{path}: the model takes the node feature columns {features}; expected a folder holding "
                            f"{NODES_FILE} (with them) and {EDGES_FILE}.")
        text = (node_id, label, source, target) + ((split_column,) if split_column else ())
        nodes = read_table(nodes_path, text) if nodes_path is not None else None
        edges = read_table(edges_path, text)
        nodes_file, edges_file = str(nodes_path) if nodes_path else None, str(edges_path)
        node_where, edge_where = _lines(str(nodes_file)), _lines(edges_file)
        weight_column = weight
    else:
        nodes, edges, node_where, edge_where = _networkx_frames(path, fmt, label, split_column, weight)
        node_id, source, target, weight_column = "id", "source", "target", "weight" if weight is not None else None
        nodes_file = edges_file = str(path)

    def check_columns(frame: pd.DataFrame) -> None:
        if not isinstance(features, list):
            return
        present = [c for c in frame.columns if c not in (node_id, label, split_column)]
        missing, extra = [c for c in features if c not in present], [c for c in present if c not in features]
        if missing or extra:
            raise DataError(f"{nodes_file}: its feature columns differ from the training graph's {features}: "
                            f"missing {missing or 'none'}, extra {extra or 'none'}.")

    nodes, ids, edge_index, edge_weight, _ = _structure(
        nodes, edges, node_id=node_id, source_column=source, target_column=target, weight=weight_column,
        nodes_file=nodes_file, edges_file=edges_file, node_where=node_where, edge_where=edge_where,
        check_nodes=check_columns)
    if isinstance(features, list):
        x = _features(nodes, features, node_where, nodes_file)
    else:
        x = _featureless("degree", len(ids), edge_index)
    return {"x": x, "edge_index": edge_index, "edge_weight": edge_weight, "ids": ids}, nodes, node_where, \
        nodes_file or edges_file


@register_format("graph-tables", detect=_detect_tables, inputs=graph_inputs, labeled=labeled_graph,
                 description="a graph as a nodes table (id, features, label) and an edges table (source, target)")
def read_graph_tables(path: Path, *, seed: int = 0, edges: str | None = None, node_id: str = "id",
                      label: str = "label", source_column: str = "source", target_column: str = "target",
                      weight: str | None = None, split_column: str | None = None, link_prediction: bool = False,
                      features: str = "identity") -> Dataset:
    """`path` is a folder holding ``nodes.csv`` and ``edges.csv``, a nodes table with `edges` naming
    the edges table, or an edges table alone (no `edges`)."""
    path = Path(path)
    if path.is_dir():
        if edges is not None:
            raise ConfigError(f"the 'edges' option names the edges table of a nodes table; {path} is a folder, "
                              f"whose {EDGES_FILE} is the edges table.")
        if not (path / EDGES_FILE).is_file():
            raise DataError(f"{path} has no {EDGES_FILE}: a graph folder holds {NODES_FILE} and {EDGES_FILE}.")
        nodes_path = path / NODES_FILE if (path / NODES_FILE).is_file() else None
        edges_path = path / EDGES_FILE
    elif edges is not None:
        nodes_path, edges_path = path, Path(edges)
    else:
        nodes_path, edges_path = None, path
    text = (node_id, label, source_column, target_column) + ((split_column,) if split_column else ())
    nodes_frame = read_table(nodes_path, text) if nodes_path is not None else None
    edges_frame = read_table(edges_path, text)
    name = path.name if path.is_dir() else path.stem
    dataset = graph_from_frames(
        nodes_frame, edges_frame, node_id=node_id, label=label, source_column=source_column,
        target_column=target_column,
        weight=weight, split_column=split_column, link_prediction=link_prediction, features=features, seed=seed,
        name=name, nodes_file=str(nodes_path) if nodes_path else "the nodes table", edges_file=str(edges_path))
    dataset.spec.options = {
        "source": str(path.resolve()), "format": "graph-tables", "seed": seed,
        "edges": str(edges_path.resolve()) if edges is not None else None, "node_id": node_id, "label": label,
        "source_column": source_column, "target_column": target_column, "weight": weight,
        "split_column": split_column, "link_prediction": link_prediction, "features": features}
    return dataset


def _read_networkx(path: Path, fmt: str, weight: str | None):
    """The (multi)graph of a networkx-readable file, parallel edges kept so they can be counted."""
    import networkx as nx

    if not path.is_file():
        raise DataError(f"graph file not found: {path}.")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty: expected a graph in {fmt} format.")
    try:
        if fmt == "edgelist":
            data = ((weight, float),) if weight is not None else False
            return nx.read_edgelist(path, nodetype=str, data=data, create_using=nx.MultiGraph, encoding="utf-8")
        if fmt == "graphml":
            return nx.read_graphml(path, force_multigraph=True)
        return nx.read_gml(path)  # nodes named by their GML label, as networkx writes them
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8.") from None
    except (nx.NetworkXError, TypeError, ValueError, IndexError, SyntaxError) as err:
        raise DataError(f"{path}: cannot read it as {fmt} ({str(err).strip() or type(err).__name__}).") from None
    except Exception as err:  # the XML parser's errors (ParseError) and the like
        if type(err).__module__.startswith(("xml", "networkx")):
            raise DataError(f"{path}: cannot read it as {fmt} ({err}).") from None
        raise


def _networkx_frames(path: Path, fmt: str, label: str, split_column: str | None, weight: str | None
                     ) -> tuple[pd.DataFrame, pd.DataFrame, Locate, Locate]:
    """The nodes and edges tables of a networkx-readable file (ids, `label` and `split_column` from
    node attributes, `weight` from an edge attribute) and the locators of its nodes and edges."""
    import pandas as pd
    g = _read_networkx(path, fmt, weight)
    node_list = list(g.nodes)
    ids = [str(v) for v in node_list]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: two nodes have the same name once written as text; node names must be "
                        "unique.")
    if not ids:
        raise DataError(f"{path} has no nodes.")
    columns: dict[str, list] = {"id": ids}
    for attribute in (label, split_column):
        if attribute is None:
            continue
        values = [g.nodes[v].get(attribute) for v in node_list]
        if any(v is not None for v in values):
            columns[attribute] = [None if v is None else str(v) for v in values]
    edge_rows = [(str(s), str(t), attrs.get(weight) if weight is not None else None)
                 for s, t, attrs in g.edges(data=True)]
    if weight is not None and edge_rows and all(w is None for *_, w in edge_rows):
        raise DataError(f"{path}: no edge has the weight attribute '{weight}'.")
    edges = pd.DataFrame(edge_rows, columns=["source", "target", "weight"])
    if weight is not None and edges["weight"].isna().any():
        raise DataError(f"{path}, edge {int(np.flatnonzero(edges['weight'].isna())[0]) + 1} (in file order): "
                        f"no weight attribute '{weight}'.")
    return (pd.DataFrame(columns), edges, lambda i: f"{path}, node '{ids[i]}'",
            lambda i: f"{path}, edge {i + 1} (in file order)")


def _networkx_reader(fmt: str):
    def read(path: Path, *, seed: int = 0, label: str = "label", weight: str | None = None,
             split_column: str | None = None, link_prediction: bool = False, features: str = "identity") -> Dataset:
        path = Path(path)
        nodes, edges, node_where, edge_where = _networkx_frames(path, fmt, label, split_column, weight)
        dataset = graph_from_frames(
            nodes, edges, node_id="id", label=label, source_column="source", target_column="target",
            weight="weight" if weight is not None else None, split_column=split_column,
            link_prediction=link_prediction, features=features, seed=seed, name=path.stem, nodes_file=str(path),
            edges_file=str(path), node_where=node_where, edge_where=edge_where)
        dataset.spec.options = {"source": str(path.resolve()), "format": fmt, "seed": seed, "label": label,
                                "weight": weight, "split_column": split_column, "link_prediction": link_prediction,
                                "features": features}
        return dataset

    read.__doc__ = (f"A graph in {fmt} format, read by networkx: node attributes give `label` and `split_column`, "
                    f"an edge attribute `weight`; the nodes get `features` ({' or '.join(FEATURES)}).")
    return read


for _suffix, _fmt in NETWORKX_FORMATS.items():
    register_format(_fmt, suffixes=(_suffix,), inputs=graph_inputs, labeled=labeled_graph)(_networkx_reader(_fmt))


def from_graph(nodes: str | os.PathLike | pd.DataFrame | None, edges: str | os.PathLike | pd.DataFrame | None = None,
               *, node_id: str = "id", label: str = "label", source_column: str = "source",
               target_column: str = "target", weight: str | None = None, split_column: str | None = None,
               link_prediction: bool = False, features: str = "identity", seed: int = 0) -> Dataset:
    """A graph dataset from a nodes table and an edges table (paths or DataFrames), a folder holding
    ``nodes.csv`` and ``edges.csv``, an edges table alone (``from_graph(None, edges)``, or a table
    path with no `edges`), or an edge list / GraphML / GML file (see the module docstring)."""
    import pandas as pd
    common = {"label": label, "weight": weight, "split_column": split_column, "link_prediction": link_prediction,
              "features": features}
    tables = {"node_id": node_id, "source_column": source_column, "target_column": target_column}
    if nodes is None and edges is None:
        raise ConfigError("from_graph needs a nodes table, an edges table or a graph file; got neither.")
    if not isinstance(nodes, pd.DataFrame) and not isinstance(edges, pd.DataFrame):
        if nodes is None:
            return load_data(edges, format="graph-tables", seed=seed, **tables, **common)
        path = Path(nodes)
        fmt = NETWORKX_FORMATS.get(path.suffix.lower())
        if fmt is not None and path.is_file():
            given = {k: v for k, v in tables.items() if v != {"node_id": "id", "source_column": "source",
                                                              "target_column": "target"}[k]}
            if edges is not None or given:
                raise ConfigError(f"{path} is a {fmt} file, which holds its own edges; 'edges', 'node_id', "
                                  f"'source_column' and 'target_column' apply to tables only.")
            return load_data(path, format=fmt, seed=seed, **common)
        extra = {"edges": os.fspath(edges)} if edges is not None else {}
        return load_data(path, format="graph-tables", seed=seed, **extra, **tables, **common)
    text = (node_id, label, source_column, target_column) + ((split_column,) if split_column else ())

    def frame(table, what: str) -> tuple[pd.DataFrame | None, str, Locate]:
        if table is None or isinstance(table, pd.DataFrame):
            name = f"the {what} DataFrame"
            frame = None if table is None else table.rename(columns=str)
            return frame, name, lambda i: f"{name}, row {i}"
        return read_table(Path(table), text), str(table), _lines(str(table))

    nodes_frame, nodes_file, node_where = frame(nodes, "nodes")
    edges_frame, edges_file, edge_where = frame(edges, "edges")
    if edges_frame is None:  # a table alone is the edges
        nodes_frame, edges_frame, edges_file, edge_where = None, nodes_frame, nodes_file, node_where
    return graph_from_frames(nodes_frame, edges_frame, **tables, **common, seed=seed, nodes_file=nodes_file,
                             edges_file=edges_file, node_where=node_where, edge_where=edge_where)
