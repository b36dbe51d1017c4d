"""The edge split of the reference GAE code (Kipf & Welling, 2016): 85/5/10 of the
undirected edges for training, validation and test, with as many sampled non-edges as
positive edges for validation and test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ..validation import check_float, fail


@dataclass
class LinkSplit:
    """Edges for link prediction.

    Shapes:
        train_edge_index ``(2, 2 * T)`` (both directions of the T training edges, what an
        encoder may see), train_pos ``(2, T)``, val_pos/val_neg ``(2, V)``, test_pos/test_neg ``(2, S)``.
    """

    train_edge_index: torch.Tensor
    train_pos: torch.Tensor
    val_pos: torch.Tensor
    val_neg: torch.Tensor
    test_pos: torch.Tensor
    test_neg: torch.Tensor


def undirected_edges(edge_index: torch.Tensor | np.ndarray) -> np.ndarray:
    """The distinct undirected edges ``(2, M)`` with ``row < col``; self-loops dropped."""
    ei = np.asarray(edge_index)
    low, high = np.minimum(ei[0], ei[1]), np.maximum(ei[0], ei[1])
    keep = low != high
    pairs = np.unique(np.stack([low[keep], high[keep]], 1), axis=0)
    return pairs.T.reshape(2, -1)


def _sample_non_edges(count: int, num_nodes: int, taken: set[int], rng: np.random.Generator) -> np.ndarray:
    """`count` distinct unordered pairs ``i != j`` whose key ``min * N + max`` is not in `taken`
    (which is extended with them)."""
    found: list[tuple[int, int]] = []
    while len(found) < count:
        candidates = rng.integers(0, num_nodes, size=(2 * (count - len(found)) + 16, 2))
        for i, j in candidates.tolist():
            key = min(i, j) * num_nodes + max(i, j)
            if i == j or key in taken:
                continue
            taken.add(key)
            found.append((i, j))
            if len(found) == count:
                break
    return np.asarray(found, dtype=np.int64).reshape(-1, 2).T


def split_edges(edge_index: torch.Tensor, num_nodes: int, *, val_fraction: float = 0.05,
                test_fraction: float = 0.10, seed: int = 0) -> LinkSplit:
    """Split the undirected edges of a graph for link prediction, as the reference GAE code does.

    Of the M distinct undirected edges (self-loops dropped), ``floor(M * test_fraction)`` go
    to test and ``floor(M * val_fraction)`` to validation, chosen by a shuffle fixed by
    `seed`; the rest train. Validation and test each get as many non-edges, sampled uniformly
    among pairs ``i != j`` that are not edges of the full graph; unlike the reference code, the
    validation and test non-edges never coincide.
    """
    check_float("split_edges", "val_fraction", val_fraction, low=0)
    check_float("split_edges", "test_fraction", test_fraction, low=0)
    if not val_fraction + test_fraction < 1:
        raise fail("split_edges", "test_fraction", f"a float < 1 - val_fraction = {1 - val_fraction:g}", test_fraction)
    rng = np.random.default_rng(seed)
    edges = undirected_edges(edge_index)  # (2, M)
    m = edges.shape[1]
    num_test, num_val = int(np.floor(m * test_fraction)), int(np.floor(m * val_fraction))
    order = rng.permutation(m)
    val_idx, test_idx, train_idx = order[:num_val], order[num_val:num_val + num_test], order[num_val + num_test:]
    taken = set((edges[0] * num_nodes + edges[1]).tolist())
    max_pairs = num_nodes * (num_nodes - 1) // 2
    if m + num_test + num_val > max_pairs:
        raise ValueError(f"the graph is too dense to sample {num_test + num_val} non-edges: it has {m} of "
                         f"{max_pairs} possible edges.")
    test_neg = _sample_non_edges(num_test, num_nodes, taken, rng)
    val_neg = _sample_non_edges(num_val, num_nodes, taken, rng)
    train = edges[:, np.sort(train_idx)]
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
    return LinkSplit(
        train_edge_index=as_tensor(np.concatenate([train, train[::-1]], axis=1)),
        train_pos=as_tensor(train),
        val_pos=as_tensor(edges[:, val_idx]), val_neg=as_tensor(val_neg),
        test_pos=as_tensor(edges[:, test_idx]), test_neg=as_tensor(test_neg),
    )


def link_batches(links: LinkSplit) -> dict[str, dict[str, torch.Tensor]]:
    """The link-prediction entries of each split's batch (see `GraphSplit`)."""
    common = {"link_edge_index": links.train_edge_index}
    return {
        "train": {**common, "pos_edge_index": links.train_pos},
        "val": {**common, "pos_edge_index": links.val_pos, "neg_edge_index": links.val_neg},
        "test": {**common, "pos_edge_index": links.test_pos, "neg_edge_index": links.test_neg},
    }
