"""GCNConv (also on a sparse adjacency), GATConv (also with edge features), pooling and the
graph autoencoders equal PyTorch Geometric's, outputs and gradients, in float64, with our
weights copied into theirs."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg
from torch_geometric.nn.conv.gcn_conv import gcn_norm as pyg_gcn_norm

from archlab.models.gae import GAE, VGAE
from archlab.nn import GATConv, GCNConv, gcn_norm, global_max_pool, global_mean_pool, global_sum_pool

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


def adjacency_t(edge_index, values, num_nodes, layout):
    """PyG's ``adj_t`` of a graph: row = target, column = source."""
    adjacency = torch.sparse_coo_tensor(edge_index.flip(0), values, (num_nodes, num_nodes), check_invariants=True)
    return adjacency.to_sparse_csr() if layout == torch.sparse_csr else adjacency


# PyG's sparse path adds the self-loops to the diagonal (A + I) where its edge-index path keeps
# an existing loop's weight; archlab follows the edge-index rule for both, so the graphs here have no loops.
@pytest.mark.parametrize("multi_edges", [False, True])
@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_gcn_norm_of_a_sparse_adjacency_matches_pyg(layout, multi_edges):
    _, edge_index, edge_weight = random_graph(4, self_loops=False, multi_edges=multi_edges)
    n = 14
    ours, none = gcn_norm(adjacency_t(edge_index, edge_weight, n, layout))
    theirs, _ = pyg_gcn_norm(adjacency_t(edge_index, edge_weight, n, layout), None, n)
    assert none is None and ours.layout == theirs.layout == layout
    torch.testing.assert_close(ours.to_dense(), theirs.to_dense(), **TOL)


@pytest.mark.parametrize("multi_edges", [False, True])
@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
@pytest.mark.parametrize("cached", [False, True])
def test_gcn_conv_on_a_sparse_adjacency_matches_pyg(layout, cached, multi_edges):
    x, edge_index, edge_weight = random_graph(5, self_loops=False, multi_edges=multi_edges)
    n = len(x)
    torch.manual_seed(0)
    ours, theirs = GCNConv(6, 5, cached=cached), pyg.GCNConv(6, 5)
    copy_gcn(ours, theirs)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w1 = edge_weight.clone().requires_grad_()
    for _ in range(2):
        out1 = ours(x1, adjacency_t(edge_index, w1, n, layout))
        out2 = theirs(x2, adjacency_t(edge_index, edge_weight, n, torch.sparse_coo))
        torch.testing.assert_close(out1, out2, **TOL)
    grads1 = grads(out1, [x1, ours.lin.weight, ours.bias, w1])
    grads2 = grads(out2, [x2, theirs.lin.weight, theirs.bias])
    # PyG cannot differentiate its sparse path in the values; its edge-index path gives that gradient.
    w2 = edge_weight.clone().requires_grad_()
    grads2 += grads(theirs(x, edge_index, w2), [w2])
    for a, b in zip(grads1, grads2):
        torch.testing.assert_close(a, b, **TOL)


def copy_gat_edges(ours: GATConv, theirs) -> None:
    copy_gat(ours, theirs)
    with torch.no_grad():
        theirs.lin_edge.weight.copy_(ours.lin_edge.weight)
        theirs.att_edge.copy_(ours.att_edge)


FILLS = [("mean", "mean"), ("sum", "add"), ("max", "max"), ("min", "min"), (0.5, 0.5)]


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda g: f"loops={g['self_loops']}-multi={g['multi_edges']}")
@pytest.mark.parametrize("fill", FILLS, ids=lambda f: str(f[0]))
@pytest.mark.parametrize("concat", [True, False])
def test_gat_conv_with_edge_features_matches_pyg(graph, fill, concat):
    x, edge_index, _ = random_graph(6, **graph)
    edge_attr = torch.randn(edge_index.size(1), 3, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    ours = GATConv(6, 4, heads=3, concat=concat, edge_dim=3, fill_value=fill[0], dropout=0.5).eval()
    theirs = pyg.GATConv(6, 4, heads=3, concat=concat, edge_dim=3, fill_value=fill[1], dropout=0.5).eval()
    copy_gat_edges(ours, theirs)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    a1, a2 = edge_attr.clone().requires_grad_(), edge_attr.clone().requires_grad_()
    out1, (ei1, alpha1) = ours(x1, edge_index, a1, return_attention=True)
    out2, (ei2, alpha2) = theirs(x2, edge_index, a2, return_attention_weights=True)
    torch.testing.assert_close(out1, out2, **TOL)
    torch.testing.assert_close(ei1, ei2, rtol=0, atol=0)
    torch.testing.assert_close(alpha1, alpha2, **TOL)
    params1 = [x1, a1, *params_gat(ours), ours.lin_edge.weight, ours.att_edge]
    params2 = [x2, a2, *params_gat(theirs), theirs.lin_edge.weight, theirs.att_edge]
    for a, b in zip(grads(out1, params1), grads(out2, params2)):
        torch.testing.assert_close(a, b, **TOL)


def test_gat_conv_with_one_edge_feature_as_a_vector_matches_pyg():
    x, edge_index, edge_weight = random_graph(7, self_loops=True, multi_edges=False)
    torch.manual_seed(0)
    ours, theirs = GATConv(6, 4, heads=2, edge_dim=1), pyg.GATConv(6, 4, heads=2, edge_dim=1)
    copy_gat_edges(ours, theirs)
    torch.testing.assert_close(ours(x, edge_index, edge_weight), theirs(x, edge_index, edge_weight), **TOL)


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_gat_conv_on_a_sparse_adjacency_matches_pyg(layout):
    x, edge_index, _ = random_graph(8, self_loops=True, multi_edges=False)
    n = len(x)
    torch.manual_seed(0)
    ours, theirs = GATConv(6, 4, heads=2).eval(), pyg.GATConv(6, 4, heads=2).eval()
    copy_gat(ours, theirs)
    ones = torch.ones(edge_index.size(1))
    torch.testing.assert_close(ours(x, adjacency_t(edge_index, ones, n, layout)),
                               theirs(x, adjacency_t(edge_index, ones, n, layout)), **TOL)


class TwoLayerEncoder(torch.nn.Module):
    """One encoder for both libraries' autoencoders: GCN -> ReLU -> GCN (and a log_std head)."""

    def __init__(self, variational: bool):
        super().__init__()
        self.conv1 = GCNConv(6, 8)
        self.conv_mu = GCNConv(8, 4)
        self.conv_log_std = GCNConv(8, 4) if variational else None

    def forward(self, x, edge_index):
        h = torch.relu(self.conv1(x, edge_index))
        mu = self.conv_mu(h, edge_index)
        return mu if self.conv_log_std is None else (mu, self.conv_log_std(h, edge_index))


def link_graph():
    x, edge_index, _ = random_graph(9, self_loops=False, multi_edges=False)
    g = torch.Generator().manual_seed(2)
    pos = edge_index[:, torch.randperm(edge_index.size(1), generator=g)[:12]]
    neg = torch.stack([torch.randint(0, 14, (15,), generator=g), torch.randint(0, 14, (15,), generator=g)])
    return x, edge_index, pos, neg


def test_gae_losses_match_pyg_around_the_same_encoder():
    x, edge_index, pos, neg = link_graph()
    torch.manual_seed(0)
    encoder = TwoLayerEncoder(variational=False)
    theirs = pyg.GAE(encoder)  # PyG re-initializes the encoder it is given; ours shares what it left
    ours = GAE(encoder)
    z = ours.encode(x, edge_index)
    torch.testing.assert_close(z, theirs.encode(x, edge_index), rtol=0, atol=0)
    loss1, loss2 = ours.recon_loss(z, pos, neg), theirs.recon_loss(z, pos, neg)
    torch.testing.assert_close(loss1, loss2, **TOL)
    params = list(encoder.parameters())
    for a, b in zip(torch.autograd.grad(loss1, params, retain_graph=True), torch.autograd.grad(loss2, params)):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(ours.decode(z, pos), theirs.decode(z, pos), **TOL)
    torch.testing.assert_close(ours.decoder.forward_all(z), theirs.decoder.forward_all(z), **TOL)
    auc, ap = ours.test(z, pos, neg)
    auc_pyg, ap_pyg = theirs.test(z, pos, neg)
    assert auc == pytest.approx(auc_pyg, abs=1e-12) and ap == pytest.approx(ap_pyg, abs=1e-12)


def test_vgae_losses_match_pyg_around_the_same_encoder():
    x, edge_index, pos, neg = link_graph()
    torch.manual_seed(0)
    encoder = TwoLayerEncoder(variational=True)
    theirs = pyg.VGAE(encoder)
    ours = VGAE(encoder)
    ours.eval(), theirs.eval()  # the sample is the mean: both decode the same z
    mu, log_std = ours.encode(x, edge_index)
    z_pyg = theirs.encode(x, edge_index)
    torch.testing.assert_close(ours.reparameterize(mu, log_std), z_pyg, rtol=0, atol=0)
    torch.testing.assert_close(log_std, theirs.__logstd__, rtol=0, atol=0)
    loss1 = ours.recon_loss(mu, pos, neg) + ours.kl_loss(mu, log_std) / len(x)
    loss2 = theirs.recon_loss(z_pyg, pos, neg) + theirs.kl_loss() / len(x)
    torch.testing.assert_close(loss1, loss2, **TOL)
    params = list(encoder.parameters())
    for a, b in zip(torch.autograd.grad(loss1, params), torch.autograd.grad(loss2, params)):
        torch.testing.assert_close(a, b, **TOL)
    # Both clamp log_std at 10 in the KL term.
    big = torch.full((3, 4), 12.0)
    torch.testing.assert_close(ours.kl_loss(mu[:3], big), theirs.kl_loss(mu[:3], big), **TOL)
