"""GCN, GAT, GAE and VGAE: shapes, sparse inputs, edge masks, losses, training and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import archlab
from archlab.cli import main
from archlab.errors import DataError
from archlab.models.graph_tasks import LinkPredictionTask, NodeClassificationTask, reconstruction_loss

from ..examples import example_for


@pytest.mark.parametrize("name", ["gcn", "gat"])
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


@pytest.mark.parametrize("name", ["gcn", "gat"])
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
                                            ("vgae", {"test_auc", "test_ap", "val_auc"}),
                                            ("gae", {"test_auc", "test_ap"})])
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
