"""Properties of the graph layers: permutation equivariance, edge-index vs dense paths,
scatter and edge-softmax maths, sparse features."""

from __future__ import annotations

import pytest
import torch

from archlab.nn import (GATConv, GCNConv, MessagePassing, edge_softmax, gcn_norm, global_max_pool, global_mean_pool,
                        global_sum_pool, scatter)
from archlab.nn.sparse import CSRStructure, csr_matmul, dropout, linear

TOL = {"rtol": 1e-10, "atol": 1e-10}


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def graph(seed: int = 0, num_nodes: int = 9, num_edges: int = 25, multi: bool = False):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes - 1, (2, num_edges), generator=g)  # last node isolated
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    edge_index = torch.unique(edge_index, dim=1)
    if multi:
        edge_index = torch.cat([edge_index, edge_index[:, :4]], 1)
    return torch.randn(num_nodes, 4, generator=g), edge_index


def layers():
    torch.manual_seed(0)
    return {
        "gcn": GCNConv(4, 3),
        "gcn-cached": GCNConv(4, 3, cached=True),
        "gat-concat": GATConv(4, 3, heads=2).eval(),
        "gat-mean": GATConv(4, 3, heads=2, concat=False).eval(),
        "mp-sum": MessagePassing("sum"),
        "mp-mean": MessagePassing("mean"),
        "mp-max": MessagePassing("max"),
    }


def apply(name, layer, x, edge_index, edge_weight=None):
    if name.startswith("mp"):
        return layer.propagate(edge_index, x, edge_weight)
    return layer(x, edge_index, edge_weight=edge_weight)


@pytest.mark.parametrize("name", list(layers()))
@pytest.mark.parametrize("weighted", [False, True])
def test_permutation_equivariance(name, weighted):
    layer = layers()[name]
    x, edge_index = graph(1, multi=True)
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(2)) if weighted else None
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    inverse = torch.argsort(perm)  # node i is renamed inverse[i]
    out = apply(name, layer, x, edge_index, weight)
    edge_order = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(4))
    permuted = apply(name, layer, x[perm], inverse[edge_index][:, edge_order],
                     None if weight is None else weight[edge_order])
    torch.testing.assert_close(permuted, out[perm], **TOL)


@pytest.mark.parametrize("pool", [global_sum_pool, global_mean_pool, global_max_pool])
def test_pooling_is_permutation_invariant(pool):
    x = torch.randn(10, 3)
    batch = torch.tensor([0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pool(x[perm], batch[perm], 3), pool(x, batch, 3), **TOL)


def dense_adjacency(edge_index, num_nodes, weight=None):
    adjacency = torch.zeros(num_nodes, num_nodes)
    values = torch.ones(edge_index.size(1)) if weight is None else weight
    return adjacency.index_put((edge_index[0], edge_index[1]), values, accumulate=True)


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("multi", [False, True])
def test_gcn_edge_index_and_dense_paths_agree(cached, multi):
    x, edge_index = graph(5, multi=multi)
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    conv = GCNConv(4, 3, cached=cached)
    torch.testing.assert_close(conv(x, edge_index), conv.forward_dense(x, dense_adjacency(edge_index, len(x))), **TOL)
    torch.testing.assert_close(conv(x, edge_index, weight),
                               conv.forward_dense(x, dense_adjacency(edge_index, len(x), weight)), **TOL)


@pytest.mark.parametrize("concat", [True, False])
def test_gat_edge_index_and_dense_paths_agree(concat):
    x, edge_index = graph(6)
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    conv = GATConv(4, 3, heads=2, concat=concat).eval()
    torch.testing.assert_close(conv(x, edge_index), conv.forward_dense(x, dense_adjacency(edge_index, len(x))), **TOL)
    torch.testing.assert_close(conv(x, edge_index, edge_weight=weight),
                               conv.forward_dense(x, dense_adjacency(edge_index, len(x), weight)), **TOL)


def test_gcn_norm_is_symmetric_normalization():
    x, edge_index = graph(7)
    edge_index = torch.unique(torch.cat([edge_index, edge_index.flip(0)], 1), dim=1)  # undirected
    n = len(x)
    index, weight = gcn_norm(edge_index, None, n)
    a_hat = dense_adjacency(index, n, weight)
    a = dense_adjacency(edge_index, n) + torch.eye(n)
    d = a.sum(1).pow(-0.5)
    torch.testing.assert_close(a_hat, d[:, None] * a * d[None, :], **TOL)
    torch.testing.assert_close(a_hat, a_hat.t(), **TOL)
    # the largest eigenvalue of the normalized adjacency with self-loops is 1
    torch.testing.assert_close(torch.linalg.eigvalsh(a_hat).max(), torch.tensor(1.0), **TOL)


def test_scatter_matches_loops():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, generator=g)
    index = torch.randint(0, 5, (20,), generator=g)
    index[index == 4] = 3  # node 4 receives nothing
    for reduce, op in (("sum", torch.sum), ("mean", torch.mean), ("max", torch.amax), ("min", torch.amin)):
        out = scatter(src, index, 6, reduce)
        for i in range(6):
            rows = src[index == i]
            expected = op(rows, 0) if len(rows) else torch.zeros(3)
            torch.testing.assert_close(out[i], expected, **TOL)
    with pytest.raises(ValueError, match="reduce must be one of"):
        scatter(src, index, 6, "median")


def test_edge_softmax_sums_to_one_per_target_and_is_shift_invariant():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(30, 2, generator=g) * 50
    index = torch.randint(0, 6, (30,), generator=g)
    alpha = edge_softmax(scores, index, 7)
    totals = scatter(alpha, index, 7)
    present = torch.bincount(index, minlength=7) > 0
    torch.testing.assert_close(totals[present], torch.ones(int(present.sum()), 2), **TOL)
    torch.testing.assert_close(edge_softmax(scores + 1e3, index, 7), alpha, **TOL)
    assert torch.isfinite(alpha).all()


def test_gat_returns_attention_that_sums_to_one():
    x, edge_index = graph(8)
    conv = GATConv(4, 3, heads=4).eval()
    _, (index, alpha) = conv(x, edge_index, return_attention=True)
    assert alpha.shape == (index.size(1), 4)
    torch.testing.assert_close(scatter(alpha, index[1], len(x)), torch.ones(len(x), 4), **TOL)


def test_gat_attention_dropout_only_in_training():
    x, edge_index = graph(9)
    conv = GATConv(4, 3, heads=2, dropout=0.5)
    conv.eval()
    torch.testing.assert_close(conv(x, edge_index), conv(x, edge_index), rtol=0, atol=0)
    conv.train()
    torch.manual_seed(0)
    a = conv(x, edge_index)
    torch.manual_seed(1)
    assert not torch.allclose(a, conv(x, edge_index))


def test_csr_matmul_gradients():
    g = torch.Generator().manual_seed(0)
    row = torch.randint(0, 5, (12,), generator=g)
    col = torch.randint(0, 4, (12,), generator=g)
    structure = CSRStructure(row, col, (5, 4))  # duplicate pairs are summed
    values = torch.rand(12, generator=g, requires_grad=True)
    dense = torch.randn(4, 3, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, d: csr_matmul(structure, structure.gather(v), d), (values, dense))
    expected = torch.zeros(5, 4).index_put((row, col), values.detach(), accumulate=True) @ dense.detach()
    torch.testing.assert_close(csr_matmul(structure, structure.gather(values), dense).detach(), expected, **TOL)


def test_sparse_linear_and_dropout():
    x = torch.randn(6, 5) * (torch.rand(6, 5, generator=torch.Generator().manual_seed(0)) < 0.4)
    weight = torch.randn(3, 5)
    torch.testing.assert_close(linear(x.to_sparse(), weight), x @ weight.t(), **TOL)
    torch.testing.assert_close(linear(x.to_sparse_csr(), weight), x @ weight.t(), **TOL)
    torch.manual_seed(0)
    dropped = dropout(x.to_sparse(), 0.5, True).to_dense()
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], 2 * x[kept], **TOL)  # survivors are rescaled by 1/(1-p)
    assert not (dropped[x == 0] != 0).any()
    torch.testing.assert_close(dropout(x.to_sparse(), 0.5, False).to_dense(), x, rtol=0, atol=0)


def test_sparse_dropout_keeps_the_expected_fraction():
    values = torch.ones(20000)
    x = torch.sparse_coo_tensor(torch.stack([torch.arange(20000), torch.zeros(20000, dtype=torch.long)]),
                                values, (20000, 1), check_invariants=True)
    torch.manual_seed(0)
    kept = (dropout(x, 0.6, True).coalesce().values() != 0).double().mean()
    assert abs(float(kept) - 0.4) < 0.02


def test_layers_refuse_bad_edge_index():
    conv = GCNConv(4, 3)
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match=r"edge_index must hold node ids in \[0, 5\)"):
        conv(x, torch.tensor([[0, 5], [1, 2]]))
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        conv(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="heads must be"):
        GATConv(4, 3, heads=0)


def test_gcn_cache_follows_the_graph():
    conv = GCNConv(4, 3, cached=True)
    x, first = graph(10)
    _, second = graph(11)
    reference = GCNConv(4, 3)
    reference.load_state_dict(conv.state_dict())
    for edge_index in (first, second, first):
        torch.testing.assert_close(conv(x, edge_index), reference(x, edge_index), **TOL)
