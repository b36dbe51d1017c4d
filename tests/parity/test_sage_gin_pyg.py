"""SAGEConv and GINConv equal PyTorch Geometric's, outputs and gradients, in float64, with our
weights copied into theirs; on one node set, on a bipartite pair, with sparse features and
with isolated nodes."""

from __future__ import annotations

import copy

import pytest
import torch
import torch_geometric.nn as pyg

from archlab.nn import GINConv, SAGEConv

TOL = {"rtol": 0.0, "atol": 1e-10}


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def random_graph(seed: int, num_nodes: int = 15, num_edges: int = 50, features: int = 6):
    """Random directed edges, with parallel edges and self-loops, among all but the last 3 nodes."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes - 3, (2, num_edges), generator=g)
    edge_index = torch.cat([edge_index, edge_index[:, :5]], 1)
    return torch.randn(num_nodes, features, generator=g), edge_index


def grads(out, tensors, seed=0):
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return list(torch.autograd.grad((out * weight).sum(), tensors, allow_unused=True))


def copy_sage(ours: SAGEConv, theirs) -> None:
    with torch.no_grad():
        theirs.lin_l.weight.copy_(ours.lin_neighbors.weight)
        if ours.lin_neighbors.bias is not None:
            theirs.lin_l.bias.copy_(ours.lin_neighbors.bias)
        if ours.lin_root is not None:
            theirs.lin_r.weight.copy_(ours.lin_root.weight)


@pytest.mark.parametrize("out_features", [3, 9])  # project before / after aggregating
@pytest.mark.parametrize("options", [{}, {"root_weight": False}, {"normalize": True}, {"bias": False}],
                         ids=["default", "no-root", "normalize", "no-bias"])
def test_sage_conv_matches_pyg(out_features, options):
    x, edge_index = random_graph(0)
    torch.manual_seed(1)
    ours = SAGEConv(6, out_features, **options)
    theirs = pyg.SAGEConv(6, out_features, aggr="mean", **options)
    copy_sage(ours, theirs)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = ours(x1, edge_index), theirs(x2, edge_index)
    torch.testing.assert_close(out1, out2, **TOL)
    params1 = [x1, ours.lin_neighbors.weight] + ([ours.lin_root.weight] if ours.lin_root is not None else [])
    params2 = [x2, theirs.lin_l.weight] + ([theirs.lin_r.weight] if options.get("root_weight", True) else [])
    for a, b in zip(grads(out1, params1), grads(out2, params2)):
        torch.testing.assert_close(a, b, **TOL)


def test_sage_conv_on_a_bipartite_pair_matches_pyg():
    x, edge_index = random_graph(2)
    edge_index = edge_index[:, edge_index[1] < 5]  # 5 targets, the first rows of the sources
    torch.manual_seed(3)
    ours, theirs = SAGEConv(6, 4), pyg.SAGEConv(6, 4)
    copy_sage(ours, theirs)
    out1 = ours((x, x[:5]), edge_index)
    out2 = theirs((x, x[:5]), edge_index)
    assert out1.shape == (5, 4)
    torch.testing.assert_close(out1, out2, **TOL)


def test_sage_conv_takes_sparse_features_as_pyg_takes_dense_ones():
    x, edge_index = random_graph(4)
    x = x * (torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) < 0.2)
    torch.manual_seed(6)
    ours, theirs = SAGEConv(6, 8), pyg.SAGEConv(6, 8)
    copy_sage(ours, theirs)
    torch.testing.assert_close(ours(x.to_sparse_coo(), edge_index), theirs(x, edge_index), **TOL)


@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_conv_matches_pyg(train_eps):
    x, edge_index = random_graph(7)
    torch.manual_seed(8)
    mlp = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4))
    ours = GINConv(mlp, eps=0.3, train_eps=train_eps)
    theirs = pyg.GINConv(copy.deepcopy(mlp), eps=0.3, train_eps=train_eps)
    theirs.nn.load_state_dict(ours.mlp.state_dict())  # PyG re-initializes the module it is given
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = ours(x1, edge_index), theirs(x2, edge_index)
    torch.testing.assert_close(out1, out2, **TOL)
    params1 = [x1, *ours.mlp.parameters()] + ([ours.eps] if train_eps else [])
    params2 = [x2, *theirs.nn.parameters()] + ([theirs.eps] if train_eps else [])
    for a, b in zip(grads(out1, params1), grads(out2, params2)):
        torch.testing.assert_close(a, b, **TOL)
