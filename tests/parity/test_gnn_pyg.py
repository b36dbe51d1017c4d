"""GCNConv, GATConv and pooling equal PyTorch Geometric's, outputs and gradients, in float64."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg

from archlab.nn import GATConv, GCNConv, global_max_pool, global_mean_pool, global_sum_pool

from ..conftest import require_dataset

TOL = {"rtol": 0.0, "atol": 1e-8}


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def random_graph(seed: int, *, self_loops: bool, multi_edges: bool, num_nodes: int = 14, num_edges: int = 40):
    """Random directed edges among the first num_nodes - 3 nodes (the last 3 are isolated)."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes - 3, (2, num_edges), generator=g)
    if not self_loops:
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    else:
        loops = torch.tensor([[0, 1, 1, 4], [0, 1, 1, 4]])  # node 1 has two self-loops
        edge_index = torch.cat([edge_index, loops], 1)
    if multi_edges:
        edge_index = torch.cat([edge_index, edge_index[:, :7]], 1)
    else:
        edge_index = torch.unique(edge_index, dim=1)
    x = torch.randn(num_nodes, 6, generator=g)
    edge_weight = torch.rand(edge_index.size(1), generator=g) + 0.1
    return x, edge_index, edge_weight


GRAPHS = [dict(self_loops=s, multi_edges=m) for s in (False, True) for m in (False, True)]


def grads(out: torch.Tensor, tensors: list[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return list(torch.autograd.grad((out * weight).sum(), tensors))


def copy_gcn(ours: GCNConv, theirs) -> None:
    with torch.no_grad():
        theirs.lin.weight.copy_(ours.lin.weight)
        theirs.bias.copy_(ours.bias)


def compare_gcn(ours, theirs, x, edge_index, edge_weight):
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    w1 = w2 = None
    if edge_weight is not None:
        w1, w2 = edge_weight.clone().requires_grad_(), edge_weight.clone().requires_grad_()
    out1, out2 = ours(x1, edge_index, w1), theirs(x2, edge_index, w2)
    torch.testing.assert_close(out1, out2, **TOL)
    extra1 = [w1] if w1 is not None else []
    extra2 = [w2] if w2 is not None else []
    g1 = grads(out1, [x1, ours.lin.weight, ours.bias, *extra1])
    g2 = grads(out2, [x2, theirs.lin.weight, theirs.bias, *extra2])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda g: f"loops={g['self_loops']}-multi={g['multi_edges']}")
@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_gcn_conv_matches_pyg(graph, cached, weighted):
    x, edge_index, edge_weight = random_graph(1, **graph)
    torch.manual_seed(0)
    ours = GCNConv(6, 5, cached=cached)
    theirs = pyg.GCNConv(6, 5)
    copy_gcn(ours, theirs)
    for _ in range(2):  # the second call of a cached layer reuses its adjacency
        compare_gcn(ours, theirs, x, edge_index, edge_weight if weighted else None)


def copy_gat(ours: GATConv, theirs) -> None:
    with torch.no_grad():
        theirs.lin.weight.copy_(ours.lin.weight)
        theirs.att_src.copy_(ours.att_src)
        theirs.att_dst.copy_(ours.att_dst)
        theirs.bias.copy_(ours.bias)


def params_gat(conv) -> list[torch.Tensor]:
    return [conv.lin.weight, conv.att_src, conv.att_dst, conv.bias]


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda g: f"loops={g['self_loops']}-multi={g['multi_edges']}")
@pytest.mark.parametrize("concat", [True, False])
def test_gat_conv_matches_pyg(graph, concat):
    x, edge_index, _ = random_graph(2, **graph)
    torch.manual_seed(0)
    ours = GATConv(6, 4, heads=3, concat=concat, dropout=0.5).eval()
    theirs = pyg.GATConv(6, 4, heads=3, concat=concat, dropout=0.5).eval()
    copy_gat(ours, theirs)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, (ei1, alpha1) = ours(x1, edge_index, return_attention=True)
    out2, (ei2, alpha2) = theirs(x2, edge_index, return_attention_weights=True)
    torch.testing.assert_close(out1, out2, **TOL)
    torch.testing.assert_close(ei1, ei2, rtol=0, atol=0)
    torch.testing.assert_close(alpha1, alpha2, **TOL)
    for a, b in zip(grads(out1, [x1, *params_gat(ours)]), grads(out2, [x2, *params_gat(theirs)])):
        torch.testing.assert_close(a, b, **TOL)


def test_sparse_features_match_pyg_dense():
    x, edge_index, _ = random_graph(3, self_loops=False, multi_edges=False)
    x = x * (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) < 0.3)
    torch.manual_seed(0)
    gcn, pyg_gcn = GCNConv(6, 5, cached=True), pyg.GCNConv(6, 5)
    copy_gcn(gcn, pyg_gcn)
    gat, pyg_gat = GATConv(6, 4, heads=2), pyg.GATConv(6, 4, heads=2)
    copy_gat(gat, pyg_gat)
    for ours, theirs, params in ((gcn, pyg_gcn, [gcn.lin.weight]), (gat, pyg_gat, [gat.lin.weight])):
        out1, out2 = ours(x.to_sparse(), edge_index), theirs(x, edge_index)
        torch.testing.assert_close(out1, out2, **TOL)
        (g1,) = grads(out1, params)
        (g2,) = grads(out2, [theirs.lin.weight])
        torch.testing.assert_close(g1, g2, **TOL)


@pytest.mark.parametrize("pool, reference", [(global_sum_pool, pyg.global_add_pool),
                                             (global_mean_pool, pyg.global_mean_pool),
                                             (global_max_pool, pyg.global_max_pool)])
def test_pooling_matches_pyg(pool, reference):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(11, 3, generator=g, requires_grad=True)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3])
    torch.testing.assert_close(pool(x, batch), reference(x, batch), **TOL)
    torch.testing.assert_close(pool(x), reference(x, None), **TOL)
    torch.testing.assert_close(grads(pool(x, batch), [x])[0], grads(reference(x, batch), [x])[0], **TOL)


def test_layers_match_pyg_on_cora():
    from archlab.data.planetoid import planetoid_graph

    graph = planetoid_graph(require_dataset("planetoid"), "cora")
    x, edge_index = graph.dense_x().double(), graph.edge_index
    torch.manual_seed(0)
    gcn, pyg_gcn = GCNConv(graph.num_features, 16, cached=True), pyg.GCNConv(graph.num_features, 16)
    copy_gcn(gcn, pyg_gcn)
    compare_gcn(gcn, pyg_gcn, x, edge_index, None)
    gat = GATConv(graph.num_features, 8, heads=8).eval()
    pyg_gat = pyg.GATConv(graph.num_features, 8, heads=8).eval()
    copy_gat(gat, pyg_gat)
    out1, out2 = gat(x, edge_index), pyg_gat(x, edge_index)
    torch.testing.assert_close(out1, out2, **TOL)
    for a, b in zip(grads(out1, params_gat(gat)), grads(out2, params_gat(pyg_gat))):
        torch.testing.assert_close(a, b, **TOL)
