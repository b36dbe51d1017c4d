"""The Graph type, its converters, the full-batch split, karate and the GAE edge split."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

import archlab
from archlab.data import Graph, GraphSplit
from archlab.data.link_split import split_edges, undirected_edges
from archlab.errors import DataError


def small_graph() -> Graph:
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 0], [1, 0, 2, 1, 0, 3]])
    mask = torch.tensor([True, False, True, False, False])
    return Graph(x=torch.randn(5, 3), edge_index=edge_index, y=torch.tensor([0, 1, 0, 1, 1]),
                 edge_weight=torch.rand(6), train_mask=mask, val_mask=~mask, test_mask=~mask)


def test_graph_validates_its_tensors():
    g = small_graph()
    with pytest.raises(DataError, match=r"edge_index must hold node ids in \[0, 5\)"):
        Graph(x=g.x, edge_index=torch.tensor([[0], [5]]))
    with pytest.raises(DataError, match=r"edge_index must be a long tensor of shape \(2, E\)"):
        Graph(x=g.x, edge_index=torch.tensor([[0.0], [1.0]]))
    with pytest.raises(DataError, match=r"y must have shape \(5,\)"):
        Graph(x=g.x, edge_index=g.edge_index, y=torch.zeros(4, dtype=torch.long))
    with pytest.raises(DataError, match="train_mask must be a bool tensor"):
        Graph(x=g.x, edge_index=g.edge_index, train_mask=torch.ones(5))
    with pytest.raises(DataError, match=r"edge_weight must have shape \(6,\)"):
        Graph(x=g.x, edge_index=g.edge_index, edge_weight=torch.ones(5))


def test_pyg_round_trip():
    g = small_graph()
    data = g.to_pyg()
    back = Graph.from_pyg(data)
    for name in ("x", "edge_index", "y", "edge_weight", "train_mask", "val_mask", "test_mask"):
        torch.testing.assert_close(getattr(back, name), getattr(g, name), rtol=0, atol=0)
    sparse = Graph(x=g.x.to_sparse(), edge_index=g.edge_index)
    torch.testing.assert_close(sparse.to_pyg().x, g.x, rtol=0, atol=0)


def test_networkx_round_trip():
    g = small_graph()
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.DiGraph) and nxg.number_of_edges() == 6
    back = Graph.from_networkx(nxg, x=g.x, label="y", weight="weight")
    key = lambda gr: sorted(zip(gr.edge_index[0].tolist(), gr.edge_index[1].tolist(), gr.edge_weight.tolist()))
    assert key(back) == key(g)
    torch.testing.assert_close(back.y, g.y, rtol=0, atol=0)


def test_from_undirected_networkx_lists_both_directions():
    g = Graph.from_networkx(nx.path_graph(4))
    assert g.num_edges == 6 and g.x.shape == (4, 4)
    assert set(zip(*g.edge_index.tolist())) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}


def test_graph_split_yields_one_full_batch():
    g = small_graph()
    split = GraphSplit(g, g.train_mask, {"link_edge_index": g.edge_index})
    assert len(split) == 2 and split.num_batches(64) == 1
    (batch,) = list(split.batches(64, shuffle=True, seed=3))
    assert set(batch) == {"x", "edge_index", "y", "mask", "edge_weight", "link_edge_index"}
    assert list(split.batches(64, start=1)) == []
    assert split.to("cpu") is split


def test_a_graph_split_in_float64_converts_its_floating_point_tensors_only():
    g = small_graph()
    split = GraphSplit(g, g.train_mask).to("cpu", torch.float64)
    (batch,) = list(split.batches(64))
    assert (batch["x"].dtype, batch["edge_weight"].dtype) == (torch.float64, torch.float64)
    assert (batch["edge_index"].dtype, batch["y"].dtype, batch["mask"].dtype) == (torch.long, torch.long, torch.bool)
    torch.testing.assert_close(batch["x"], g.x.double())


def test_karate_is_the_two_factions():
    data = archlab.load_dataset("karate")
    graph = data["train"].graph
    assert graph.num_nodes == 34 and graph.num_edges == 2 * 78
    assert data.spec.class_names == ["Mr. Hi", "Officer"]
    assert graph.y[0] == 0 and graph.y[33] == 1 and graph.y.bincount().tolist() == [17, 17]
    assert len(data["train"]) == 2 and len(data["val"]) == 16 and len(data["test"]) == 16
    masks = torch.stack([data[s].mask for s in ("train", "val", "test")])
    assert (masks.sum(0) == 1).all()  # disjoint and covering
    assert data.spec.model_kwargs() == {"in_features": 34, "num_classes": 2}


def test_edge_split_matches_the_reference_sizes():
    graph = archlab.load_dataset("karate")["train"].graph
    split = split_edges(graph.edge_index, graph.num_nodes, seed=1)
    m = 78
    assert split.test_pos.shape == (2, m // 10) and split.val_pos.shape == (2, m // 20)
    assert split.test_neg.shape == split.test_pos.shape and split.val_neg.shape == split.val_pos.shape
    assert split.train_pos.size(1) == m - m // 10 - m // 20
    assert split.train_edge_index.size(1) == 2 * split.train_pos.size(1)
    key = lambda e: set(map(tuple, np.sort(e.numpy().T, axis=1).tolist()))
    edges = key(torch.from_numpy(undirected_edges(graph.edge_index)))
    assert key(split.train_pos) | key(split.val_pos) | key(split.test_pos) == edges
    assert not (key(split.train_pos) & key(split.test_pos)) and not (key(split.val_pos) & key(split.test_pos))
    negatives = key(split.val_neg) | key(split.test_neg)
    assert not (negatives & edges) and len(negatives) == split.val_neg.size(1) + split.test_neg.size(1)
    assert all(i != j for i, j in negatives)
    again = split_edges(graph.edge_index, graph.num_nodes, seed=1)
    assert torch.equal(again.test_neg, split.test_neg)
    assert not torch.equal(split_edges(graph.edge_index, graph.num_nodes, seed=2).test_pos, split.test_pos)
