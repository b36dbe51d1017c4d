"""Cora, CiteSeer and PubMed from the original Planetoid files in ``<data-dir>/planetoid/``.

The files ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}`` are read as the reference
GCN code (Kipf & Welling) and PyG read them: the public split (20 labelled nodes per class
for training, the next 500 nodes for validation, the 1000 nodes of ``test.index`` for
test), row-normalized features, and an undirected graph without self-loops or duplicate
edges. Link prediction (GAE/VGAE) gets the raw binary features instead (``link_x``), as the
reference GAE code feeds them unnormalized. CiteSeer's test index skips 15 ids (nodes with no features in the release): they are
kept as isolated-feature nodes with zero features and label 0, outside every mask, exactly
as the reference code pads ``tx``/``ty``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import Dataset
from .graph import Graph, graph_dataset, index_mask
from .registry import register_dataset
from .safe_pickle import MAX_ARRAY_BYTES, CSRState, safe_load

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph")
SOURCE = ("the original Planetoid release (github.com/kimiyoung/planetoid, folder data/; the same files are in "
          "github.com/tkipf/gcn, gcn/data/)")
CLASS_NAMES = {
    "cora": ["Case_Based", "Genetic_Algorithms", "Neural_Networks", "Probabilistic_Methods",
             "Reinforcement_Learning", "Rule_Learning", "Theory"],
    "citeseer": ["Agents", "AI", "DB", "IR", "ML", "HCI"],
    "pubmed": ["Diabetes_Mellitus_Experimental", "Diabetes_Mellitus_Type_1", "Diabetes_Mellitus_Type_2"],
}
VAL_SIZE = 500


def _file(root: Path, name: str, part: str) -> Path:
    path = root / f"ind.{name}.{part}"
    if not path.is_file():
        files = ", ".join(f"ind.{name}.{p}" for p in (*PARTS, "test.index"))
        raise FileNotFoundError(
            f"Planetoid file not found: {path}. Expected the eight files {files} in {root}; they are {SOURCE}. "
            f"Point --data-dir (or ARCHLAB_DATA) at the folder that holds planetoid/."
        )
    return path


def _dense(obj, path: Path) -> np.ndarray:
    if isinstance(obj, CSRState):
        try:
            return obj.to_dense()
        except DataError as err:
            raise DataError(f"{path}: {err}") from err
    if isinstance(obj, np.ndarray) and obj.ndim == 2 and obj.dtype.kind in "fiub":
        return obj.astype(np.float32)
    raise DataError(f"{path}: expected a 2-D numeric array or CSR matrix; got {type(obj).__name__}.")


def read_planetoid(root: Path, name: str) -> dict[str, np.ndarray | dict]:
    """The raw parts of one Planetoid dataset: dense float32 arrays for x/y/tx/ty/allx/ally,
    the adjacency dict for graph, and the int64 test index."""
    parts: dict[str, np.ndarray | dict] = {}
    for part in PARTS:
        path = _file(root, name, part)
        obj = safe_load(path)
        if part == "graph":
            if not isinstance(obj, dict) or not all(isinstance(v, list) for v in obj.values()):
                raise DataError(f"{path}: expected a dict mapping each node to a list of neighbours.")
            parts[part] = obj
        else:
            parts[part] = _dense(obj, path)
    path = _file(root, name, "test.index")
    try:
        parts["test.index"] = np.array([int(line) for line in path.read_text().split()], dtype=np.int64)
    except ValueError as err:
        raise DataError(f"{path}: expected one integer node id a line ({err}).") from err
    return parts


def _edges(adjacency: dict, num_nodes: int, path: str) -> torch.Tensor:
    """Both directions of each distinct undirected edge, self-loops removed, sorted by target."""
    src = [int(s) for s, neighbours in adjacency.items() for _ in neighbours]
    dst = [int(t) for neighbours in adjacency.values() for t in neighbours]
    ei = np.array([src + dst, dst + src], dtype=np.int64)
    if ei.size and (ei.min() < 0 or ei.max() >= num_nodes):
        raise DataError(f"{path}: node ids must lie in [0, {num_nodes}); got [{ei.min()}, {ei.max()}].")
    ei = ei[:, ei[0] != ei[1]]
    key = np.unique(ei[1] * num_nodes + ei[0])  # sorted by target, then source (PyG's order)
    return torch.from_numpy(np.stack([key % num_nodes, key // num_nodes]))


def planetoid_graph(root: Path, name: str, normalize: bool = True) -> Graph:
    """The graph with its public split masks, as the reference GCN code builds it; with
    `normalize=False` the features are the raw bag-of-words, as the reference GAE code uses them."""
    raw = read_planetoid(root, name)
    x, y, tx, ty, allx, ally = (raw[p] for p in ("x", "y", "tx", "ty", "allx", "ally"))
    test_index = raw["test.index"]
    test_sorted = np.sort(test_index)
    if len(tx) != len(test_index) or len(ty) != len(test_index):
        raise DataError(f"{root}: ind.{name}.tx/ty have {len(tx)}/{len(ty)} rows for {len(test_index)} test ids.")
    index_file = root / f"ind.{name}.test.index"
    if len(test_index) and test_sorted[0] < 0:
        raise DataError(f"{index_file}: node ids must be >= 0; got {test_sorted[0]}.")
    if name == "citeseer" and len(test_index):
        # the padding below spans every id between the smallest and the largest test id
        span = int(test_sorted[-1]) - int(test_sorted[0]) + 1
        if span * tx.shape[1] * 4 > MAX_ARRAY_BYTES:
            raise DataError(f"{index_file}: its test ids span {span} nodes ({test_sorted[0]} to {test_sorted[-1]}), "
                            f"whose padded features would need more than {MAX_ARRAY_BYTES / 2**30:g} GiB.")
    if name == "citeseer":
        # Some test ids have no row in tx: pad tx/ty to the full id range with zero rows.
        full = np.arange(test_sorted.min(), test_sorted.max() + 1)
        tx_ext = np.zeros((len(full), tx.shape[1]), np.float32)
        tx_ext[test_sorted - test_sorted.min()] = tx
        ty_ext = np.zeros((len(full), ty.shape[1]), np.float32)
        ty_ext[test_sorted - test_sorted.min()] = ty
        tx, ty = tx_ext, ty_ext
    features = np.concatenate([allx, tx])
    labels = np.concatenate([ally, ty])
    if len(test_index) and test_sorted[-1] >= len(features):
        raise DataError(f"{index_file}: node ids must lie in [0, {len(features)}) (the rows of allx and tx); "
                        f"got {test_sorted[-1]}.")
    # tx/ty rows are stored in sorted test-id order; put each back at its node id.
    features[test_index] = features[test_sorted]
    labels[test_index] = labels[test_sorted]
    num_nodes = len(features)
    if normalize:
        rowsum = features.sum(1, keepdims=True)
        features = features / np.where(rowsum == 0, 1.0, rowsum)  # all-zero rows stay zero
    train = np.arange(len(y))
    val = np.arange(len(y), min(len(y) + VAL_SIZE, num_nodes))  # fewer only in toy files
    x_sparse = torch.from_numpy(features.astype(np.float32)).to_sparse_coo().coalesce()
    return Graph(
        x=x_sparse, edge_index=_edges(raw["graph"], num_nodes, str(_file(root, name, "graph"))),
        y=torch.from_numpy(labels.argmax(1).astype(np.int64)),
        train_mask=index_mask(train, num_nodes), val_mask=index_mask(val, num_nodes),
        test_mask=index_mask(test_index, num_nodes),
    )


def _load(root: Path, name: str, seed: int) -> Dataset:
    raw = planetoid_graph(root, name, normalize=False)
    values = raw.x.values()
    rowsum = torch.zeros(raw.num_nodes).index_add_(0, raw.x.indices()[0], values)
    normalized = torch.sparse_coo_tensor(raw.x.indices(), values / rowsum[raw.x.indices()[0]], raw.x.shape,
                                         is_coalesced=True, check_invariants=False)
    graph = replace(raw, x=normalized)
    return graph_dataset(graph, name, len(CLASS_NAMES[name]), CLASS_NAMES[name], seed, link_features=raw.x)


@register_dataset("cora", kind="graph", folder="planetoid",
                  description="Cora citation graph (2708 papers, 7 classes), Planetoid public split 140/500/1000")
def load_cora(root: Path, seed: int = 0) -> Dataset:
    return _load(root, "cora", seed)


@register_dataset("citeseer", kind="graph", folder="planetoid",
                  description="CiteSeer citation graph (3327 papers, 6 classes), Planetoid public split 120/500/1000")
def load_citeseer(root: Path, seed: int = 0) -> Dataset:
    return _load(root, "citeseer", seed)


@register_dataset("pubmed", kind="graph", folder="planetoid",
                  description="PubMed citation graph (19717 papers, 3 classes), Planetoid public split 60/500/1000")
def load_pubmed(root: Path, seed: int = 0) -> Dataset:
    return _load(root, "pubmed", seed)
