"""GCN, GAT, GAE and VGAE: shapes, sparse inputs, edge masks, losses, training and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import archlab
from archlab.cli import main
from archlab.engine.ranking import auroc, average_precision
from archlab.errors import DataError
from archlab.models.gae import GAE, VGAE, GCNEncoder, InnerProductDecoder, negative_sampling
from archlab.nn import gaussian_kl
from archlab.models.graph_tasks import LinkPredictionTask, NodeClassificationTask, reconstruction_loss

from ..examples import example_for


@pytest.mark.parametrize("name", ["gcn", "gat", "sage"])
def test_node_classifiers_take_dense_or_sparse_features(name):
    spec, batch = example_for(name)
    torch.manual_seed(0)
    model = archlab.create_model(name, in_features=5, num_classes=3).eval()
    x, edge_index = batch["x"], batch["edge_index"]
    out = model(x, edge_index)
    assert out.shape == (10, 3)
    torch.testing.assert_close(model(x.to_sparse(), edge_index), out)
    with pytest.raises(ValueError, match=r"expects node features x of shape \(num_nodes, 5\)"):
        model(torch.rand(10, 4), edge_index)


@pytest.mark.parametrize("name", ["gcn", "gat", "sage"])
def test_an_edge_mask_passed_as_edge_weight_gets_a_gradient(name):
    _, batch = example_for(name)
    model = archlab.create_model(name, in_features=5, num_classes=3).eval()
    mask = torch.full((batch["edge_index"].size(1),), 0.5, requires_grad=True)
    for _ in range(2):  # the second call goes through GCN's cache
        out = model(batch["x"], batch["edge_index"], mask)
        (grad,) = torch.autograd.grad(out[:, 0].sum(), mask)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    ones = model(batch["x"], batch["edge_index"], torch.ones_like(mask))
    torch.testing.assert_close(ones, model(batch["x"], batch["edge_index"]))


def test_gcn_decays_only_its_first_layer():
    model = archlab.create_model("gcn", in_features=5, num_classes=3)
    task = NodeClassificationTask(3)
    (optimizer,) = task.configure_optimizers(model, lambda groups: torch.optim.Adam(groups, weight_decay=5e-4))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 5e-4 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(p) for p in model.convs[0].parameters()}


def test_reconstruction_loss_is_the_reference_weighted_cross_entropy():
    _, batch = example_for("gae")
    edges = batch["link_edge_index"]
    z = torch.randn(10, 4, dtype=torch.float64)
    n = 10
    target = torch.eye(n, dtype=torch.float64)
    target[edges[0], edges[1]] = 1.0
    count = float(edges.size(1))
    pos_weight = (n * n - count) / count
    norm = n * n / (2 * (n * n - count))
    expected = norm * F.binary_cross_entropy_with_logits(z @ z.t(), target, pos_weight=torch.tensor(pos_weight))
    torch.testing.assert_close(reconstruction_loss(z, edges), expected)


def test_vgae_forward_is_the_mean_embedding():
    _, batch = example_for("vgae")
    model = archlab.create_model("vgae", in_features=5).eval()
    mu, log_std = model.encode(batch["x"], batch["link_edge_index"])
    torch.testing.assert_close(model(batch["x"], batch["link_edge_index"]), mu)
    assert log_std.shape == mu.shape == (10, 16)


def test_registered_autoencoders_wrap_the_gcn_encoder():
    _, batch = example_for("gae")
    x, edges = batch["x"], batch["link_edge_index"]
    plain, variational = archlab.create_model("gae", in_features=5), archlab.create_model("vgae", in_features=5)
    assert isinstance(plain, GAE) and isinstance(plain.encoder, GCNEncoder) and not plain.variational
    assert isinstance(variational, VGAE) and variational.encoder.variational and variational.variational
    torch.testing.assert_close(plain(x, edges), plain.encoder(x, edges))
    with pytest.raises(ValueError, match=r"GCNEncoder expects node features x of shape \(num_nodes, 5\)"):
        plain(torch.rand(10, 4), edges)


class Embed(torch.nn.Module):
    """A user's encoder that is no GCN: a table of node embeddings (and log_std)."""

    def __init__(self, num_nodes: int, dim: int, variational: bool = False):
        super().__init__()
        self.mu = torch.nn.Parameter(torch.randn(num_nodes, dim, dtype=torch.float64))
        self.log_std = torch.nn.Parameter(torch.randn(num_nodes, dim, dtype=torch.float64) * 0.1)
        self.variational = variational

    def forward(self, nodes: torch.Tensor):
        return (self.mu[nodes], self.log_std[nodes]) if self.variational else self.mu[nodes]


def test_gae_around_any_encoder_decodes_and_scores_pairs():
    torch.manual_seed(0)
    model = GAE(Embed(6, 3))
    nodes = torch.arange(6)
    z = model.encode(nodes)
    pairs = torch.tensor([[0, 1, 2, 4], [1, 3, 5, 5]])
    logits = (z[pairs[0]] * z[pairs[1]]).sum(-1)
    torch.testing.assert_close(model.decode(z, pairs), logits.sigmoid())
    torch.testing.assert_close(model.decode(z, pairs, sigmoid=False), logits)
    torch.testing.assert_close(model.decoder.forward_all(z, sigmoid=False), z @ z.t())
    negatives = torch.tensor([[0, 3, 5], [2, 4, 1]])
    negative_logits = (z[negatives[0]] * z[negatives[1]]).sum(-1)
    expected = (F.binary_cross_entropy_with_logits(logits, torch.ones(4, dtype=torch.float64))
                + F.binary_cross_entropy_with_logits(negative_logits, torch.zeros(3, dtype=torch.float64)))
    torch.testing.assert_close(model.recon_loss(z, pairs, negatives), expected)
    scores = torch.cat([logits, negative_logits])
    labels = torch.cat([torch.ones(4), torch.zeros(3)])
    assert model.test(z, pairs, negatives) == (auroc(scores, labels), average_precision(scores, labels))


def test_recon_loss_is_exact_where_probabilities_saturate():
    # The positive pair's logit is -900 and the negative's +900: each costs 900, where sigmoid-then-log caps at 34.5.
    z = torch.tensor([[30.0, 0.0], [-30.0, 0.0]], dtype=torch.float64)
    loss = GAE(torch.nn.Identity()).recon_loss(z, torch.tensor([[0], [1]]), torch.tensor([[0], [0]]))
    torch.testing.assert_close(loss, torch.tensor(1800.0, dtype=torch.float64))


def test_recon_loss_samples_negatives_when_none_are_given():
    torch.manual_seed(0)
    model = GAE(Embed(8, 3))
    z = model.encode(torch.arange(8))
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    loss = model.recon_loss(z, edges)
    (grad,) = torch.autograd.grad(loss, model.encoder.mu)
    assert torch.isfinite(loss) and grad.abs().sum() > 0


def test_negative_sampling_avoids_edges_and_self_loops():
    edges = torch.tensor([[0, 0, 1, 2], [1, 2, 2, 3]])
    g = torch.Generator().manual_seed(0)
    sampled = negative_sampling(edges, 4, 8, generator=g)
    keys = set((sampled[0] * 4 + sampled[1]).tolist())
    assert sampled.shape == (2, 8) and len(keys) == 8  # distinct pairs
    assert not keys & set((edges[0] * 4 + edges[1]).tolist())
    assert not (sampled[0] == sampled[1]).any()
    everything = negative_sampling(edges, 4, 16 - 4 - 4, generator=g)  # every free pair
    assert len(set((everything[0] * 4 + everything[1]).tolist())) == 8
    with pytest.raises(DataError, match="cannot draw 9 non-edges"):
        negative_sampling(edges, 4, 9)


def test_vgae_losses_take_explicit_arguments():
    torch.manual_seed(0)
    model = VGAE(Embed(6, 3, variational=True))
    mu, log_std = model.encode(torch.arange(6))
    torch.testing.assert_close(model.kl_loss(mu, log_std), gaussian_kl(mu, 2 * log_std).mean())
    assert model.kl_loss(mu, log_std) >= 0 and model.kl_loss(torch.zeros(2, 3), torch.zeros(2, 3)) == 0
    torch.testing.assert_close(model(torch.arange(6)), mu)
    model.eval()
    torch.testing.assert_close(model.reparameterize(mu, log_std), mu)
    model.train()
    torch.manual_seed(1)
    sample = model.reparameterize(mu, log_std)
    torch.manual_seed(1)
    torch.testing.assert_close(sample, mu + torch.randn_like(mu) * log_std.exp())
    huge = torch.full((2, 3), 50.0)
    torch.testing.assert_close(model.kl_loss(torch.zeros(2, 3), huge), gaussian_kl(torch.zeros(2, 3), 2 * huge.clamp(max=10)).mean())
    with pytest.raises(DataError, match=r"must return a pair \(mu, log_std\); got Tensor"):
        VGAE(torch.nn.Identity()).encode(torch.zeros(2, 3))


def test_autoencoders_keep_the_encoder_until_reset():
    torch.manual_seed(0)
    encoder = GCNEncoder(5, 8, 4)
    before = encoder.conv1.lin.weight.detach().clone()
    model = GAE(encoder)
    torch.testing.assert_close(model.encoder.conv1.lin.weight, before, rtol=0, atol=0)
    model.reset_parameters()
    assert not torch.equal(model.encoder.conv1.lin.weight, before)
    assert isinstance(model.decoder, InnerProductDecoder)
    GAE(lambda x: x).reset_parameters()  # a plain function has nothing to reset


def test_link_prediction_refuses_a_split_without_non_edges():
    data = archlab.load_dataset("karate")
    model = archlab.create_model("gae", in_features=34)
    with pytest.raises(DataError, match="no sampled non-edges"):
        LinkPredictionTask().evaluate(model, data["train"], 1)


def test_gcn_learns_the_karate_factions(tmp_path):
    result = archlab.train("gcn", "karate", epochs=100, quiet=True, out=tmp_path / "run")
    assert result.metrics["test_accuracy"] >= 0.8
    again = archlab.evaluate_checkpoint(tmp_path / "run")
    assert again.metrics["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])


@pytest.mark.parametrize("model, metrics", [("gcn", {"test_accuracy", "val_accuracy"}),
                                            ("gat", {"test_accuracy"}),
                                            ("vgae", {"test_auroc", "test_ap", "val_auroc"}),
                                            ("gae", {"test_auroc", "test_ap"})])
def test_cli_trains_graph_models(tmp_path, capsys, model, metrics):
    code = main(["train", model, "--data", "karate", "--epochs", "3", "--json", "--out", str(tmp_path / model)])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert metrics <= set(payload["metrics"])
    assert all(0.0 <= payload["metrics"][k] <= 1.0 for k in metrics)


def test_cli_seeds_report_mean_and_std(tmp_path, capsys):
    code = main(["train", "gcn", "--data", "karate", "--epochs", "3", "--seeds", "2", "--json",
                 "--out", str(tmp_path / "seeds")])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert {"test_accuracy_mean", "test_accuracy_std"} <= set(metrics)


def test_graph_model_refuses_image_data(capsys):
    assert main(["train", "gcn", "--data", "digits", "--epochs", "1"]) == 2
    assert "takes graph data" in capsys.readouterr().err
