"""Properties of the graph layers: permutation equivariance, edge-index vs dense paths,
scatter and edge-softmax maths, sparse features."""

from __future__ import annotations

import pytest
import torch

from archlab.errors import ConfigError, DataError
from archlab.nn import (GATConv, GCNConv, MessagePassing, SAGEConv, edge_index_to_adjacency, edge_softmax, gcn_norm,
                        global_max_pool, global_mean_pool, global_sum_pool, scatter)
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
        "sage": SAGEConv(4, 3),
        "sage-wide": SAGEConv(4, 6, normalize=True),
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
    with pytest.raises(ConfigError, match=r"The 'reduce' parameter of scatter must be one of 'sum', 'mean', 'max', "
                                          r"'min'\. Got 'median' instead\."):
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
    with pytest.raises(ConfigError, match=r"The 'heads' parameter of GATConv must be an int >= 1\. Got 0 instead\."):
        GATConv(4, 3, heads=0)


def test_gcn_cache_follows_the_graph():
    conv = GCNConv(4, 3, cached=True)
    x, first = graph(10)
    _, second = graph(11)
    reference = GCNConv(4, 3)
    reference.load_state_dict(conv.state_dict())
    for edge_index in (first, second, first):
        torch.testing.assert_close(conv(x, edge_index), reference(x, edge_index), **TOL)


def test_gcn_refuses_self_loops_without_normalization():
    # Bug: add_self_loops=True was silently ignored when normalize=False. PyG refuses the pair.
    with pytest.raises(ConfigError, match="'add_self_loops' parameter of GCNConv must be False or None"):
        GCNConv(16, 32, normalize=False, add_self_loops=True)
    x, edge_index = graph(12)
    torch.manual_seed(0)
    plain = GCNConv(4, 3, normalize=False)
    assert plain.add_self_loops is False
    h = x @ plain.lin.weight.t()
    expected = torch.zeros_like(h).index_add_(0, edge_index[1], h[edge_index[0]]) + plain.bias
    torch.testing.assert_close(plain(x, edge_index), expected, **TOL)
    assert GCNConv(4, 3).add_self_loops is True


def test_gat_third_argument_is_edge_attr_not_a_weight():
    # Bug: GATConv(x, edge_index, w) multiplied the attention by w, where PyG reads edge features.
    x, edge_index = graph(13)
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(0))
    conv = GATConv(4, 3, heads=2).eval()
    with pytest.raises(DataError, match="built without edge_dim, so it takes no edge_attr"):
        conv(x, edge_index, weight)
    unweighted = conv(x, edge_index)
    assert not torch.allclose(conv(x, edge_index, edge_weight=weight), unweighted)
    torch.testing.assert_close(conv(x, edge_index, edge_weight=torch.ones_like(weight)), unweighted, **TOL)


@pytest.mark.parametrize("pool", [global_sum_pool, global_mean_pool, global_max_pool])
def test_pooling_refuses_a_dense_batch(pool):
    # Bug: a (B, N, F) input was reduced over B, mixing the graphs of the batch.
    with pytest.raises(DataError, match=r"shape \(N, F\).*got shape \(2, 5, 3\).*x.sum\(dim=1\)"):
        pool(torch.randn(2, 5, 3))
    torch.testing.assert_close(pool(torch.arange(4.0)), pool(torch.arange(4.0)[:, None])[0], **TOL)


def loopy_graph(seed: int = 0, num_nodes: int = 9):
    """Edges with two self-loops, a duplicate edge, and an isolated last node."""
    x, edge_index = graph(seed, num_nodes)
    extra = torch.tensor([[2, 5, edge_index[0, 0]], [2, 5, edge_index[1, 0]]])
    return x, torch.cat([edge_index, extra], 1)


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_gcn_norm_of_a_sparse_adjacency_is_the_edge_index_result(layout):
    x, edge_index = loopy_graph(14)
    n = len(x)
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(0)) + 0.1
    adjacency = edge_index_to_adjacency(edge_index, weight, n, layout)
    assert adjacency.layout == layout
    for add_self_loops in (True, False):
        normalized, none = gcn_norm(adjacency, add_self_loops=add_self_loops)
        assert none is None and normalized.layout == layout
        index, values = gcn_norm(edge_index, weight, n, add_self_loops=add_self_loops)
        expected = torch.zeros(n, n).index_put((index[1], index[0]), values, accumulate=True)  # adj_t: row = target
        torch.testing.assert_close(normalized.to_dense(), expected, **TOL)


def test_gcn_norm_defaults_match_pyg_positions():
    _, edge_index = graph(15)
    index, weight = gcn_norm(edge_index)  # num_nodes from the largest id, weights ones
    again, weight_again = gcn_norm(edge_index, None, int(edge_index.max()) + 1, add_self_loops=True)
    torch.testing.assert_close(index, again, rtol=0, atol=0)
    torch.testing.assert_close(weight, weight_again, **TOL)
    with pytest.raises(TypeError):
        gcn_norm(edge_index, None, 9, False)  # PyG's 4th argument is `improved`; ours are keyword-only


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_gcn_conv_takes_a_sparse_adjacency(cached, layout):
    x, edge_index = loopy_graph(16)
    n = len(x)
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(1)) + 0.1
    torch.manual_seed(0)
    conv = GCNConv(4, 3, cached=cached)
    reference = GCNConv(4, 3)
    reference.load_state_dict(conv.state_dict())
    values = weight.clone().requires_grad_()
    adjacency = torch.sparse_coo_tensor(edge_index.flip(0), values, (n, n), check_invariants=True)
    if layout == torch.sparse_csr:
        adjacency = adjacency.to_sparse_csr()
    w = weight.clone().requires_grad_()
    expected = reference(x, edge_index, w)
    for _ in range(2):  # the second call of a cached layer reuses the structure
        out = conv(x, adjacency)
        torch.testing.assert_close(out, expected, **TOL)
    (grad,) = torch.autograd.grad(out.sum(), values)
    (grad_expected,) = torch.autograd.grad(expected.sum(), w)
    torch.testing.assert_close(grad, grad_expected, **TOL)
    torch.testing.assert_close(conv(x, edge_index_to_adjacency(edge_index, torch.ones_like(weight), n, layout)),
                               reference(x, edge_index), **TOL)


def test_gcn_cache_keys_on_the_sparse_pattern():
    x, edge_index = graph(17)
    n = len(x)
    conv = GCNConv(4, 3, cached=True)
    adjacency = edge_index_to_adjacency(edge_index, torch.ones(edge_index.size(1)), n)
    conv(x, adjacency)
    structure = conv._cache["structure"]
    conv(x, adjacency)
    assert conv._cache["structure"] is structure
    _, other = graph(18)
    reference = GCNConv(4, 3)
    reference.load_state_dict(conv.state_dict())
    torch.testing.assert_close(conv(x, edge_index_to_adjacency(other, torch.ones(other.size(1)), n)),
                               reference(x, other), **TOL)


def test_sparse_adjacency_is_checked():
    x, edge_index = graph(19)
    n = len(x)
    adjacency = edge_index_to_adjacency(edge_index, torch.ones(edge_index.size(1)), n)
    conv = GCNConv(4, 3)
    with pytest.raises(DataError, match="edge weights of a sparse adjacency from its values"):
        conv(x, adjacency, torch.ones(edge_index.size(1)))
    with pytest.raises(DataError, match=r"must have shape \(9, 9\)"):
        conv(x, edge_index_to_adjacency(edge_index, torch.ones(edge_index.size(1)), n + 1))
    with pytest.raises(DataError, match="torch.sparse_coo or torch.sparse_csr"):
        conv(x, adjacency.to_sparse_csc())
    with pytest.raises(DataError, match="edge_attr and edge_weight only with an edge_index"):
        GATConv(4, 3, edge_dim=2)(x, adjacency, torch.randn(edge_index.size(1), 2))


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_gat_conv_takes_the_pattern_of_a_sparse_adjacency(layout):
    x, edge_index = graph(20)
    n = len(x)
    conv = GATConv(4, 3, heads=2).eval()
    weights = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(0)) + 0.5
    torch.testing.assert_close(conv(x, edge_index_to_adjacency(edge_index, weights, n, layout)),
                               conv(x, edge_index), **TOL)


def gat_with_edges(edge_dim: int = 3, fill_value="mean", heads: int = 2):
    torch.manual_seed(0)
    return GATConv(4, 3, heads=heads, edge_dim=edge_dim, fill_value=fill_value).eval()


@pytest.mark.parametrize("fill_value", ["mean", "sum", "max", "min", 0.5])
def test_gat_edge_attr_is_permutation_equivariant(fill_value):
    x, edge_index = loopy_graph(21)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=torch.Generator().manual_seed(1))
    conv = gat_with_edges(fill_value=fill_value)
    out = conv(x, edge_index, edge_attr)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    inverse = torch.argsort(perm)
    order = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(conv(x[perm], inverse[edge_index][:, order], edge_attr[order]), out[perm], **TOL)


def test_gat_self_loop_features_are_the_mean_of_in_edges():
    x, edge_index = loopy_graph(22)
    n = len(x)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=torch.Generator().manual_seed(1))
    conv = gat_with_edges()
    out = conv(x, edge_index, edge_attr)
    # The same graph without self-loops, its loops given explicitly as a fill of their own:
    # with add_self_loops=False the layer attends over exactly the edges it is given.
    keep = edge_index[0] != edge_index[1]
    kept, kept_attr = edge_index[:, keep], edge_attr[keep]
    loop_attr = torch.zeros(n, 3)
    for i in range(n):
        incoming = kept_attr[kept[1] == i]
        if len(incoming):
            loop_attr[i] = incoming.mean(0)
    loops = torch.arange(n).repeat(2, 1)
    explicit = GATConv(4, 3, heads=2, edge_dim=3, add_self_loops=False).eval()
    explicit.load_state_dict(conv.state_dict())
    torch.testing.assert_close(explicit(x, torch.cat([kept, loops], 1), torch.cat([kept_attr, loop_attr])), out,
                               **TOL)


def test_gat_edge_attr_changes_the_attention_and_gets_a_gradient():
    x, edge_index = graph(23)
    conv = gat_with_edges(edge_dim=1)
    edge_attr = torch.randn(edge_index.size(1), generator=torch.Generator().manual_seed(0), requires_grad=True)
    out, (_, alpha) = conv(x, edge_index, edge_attr, return_attention=True)  # (E,) reads as (E, 1)
    _, (_, alpha_plain) = conv(x, edge_index, return_attention=True)
    assert not torch.allclose(alpha, alpha_plain)
    torch.testing.assert_close(scatter(alpha, torch.cat([edge_index[1], torch.arange(len(x))]), len(x)),
                               torch.ones(len(x), 2), **TOL)
    (grad,) = torch.autograd.grad(out.sum(), edge_attr)
    assert grad.abs().sum() > 0


def test_gat_refuses_bad_edge_arguments():
    x, edge_index = graph(24)
    with pytest.raises(DataError, match=r"edge_attr must have shape \(\d+, 3\)"):
        gat_with_edges()(x, edge_index, torch.randn(edge_index.size(1), 2))
    with pytest.raises(ConfigError, match="'edge_dim' parameter of GATConv must be an int >= 1 or None. Got 0 instead."):
        GATConv(4, 3, edge_dim=0)
    with pytest.raises(ConfigError, match="'fill_value' parameter of GATConv must be a number or one of"):
        GATConv(4, 3, edge_dim=2, fill_value="add")
