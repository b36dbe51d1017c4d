"""GIN: invariant to node order, sum pooling counts what a mean forgets, trains from the CLI on
a folder in the graph-collection format."""

from __future__ import annotations

import json

import pytest
import torch

import archlab
from archlab.cli import main
from archlab.data import write_graph_collection
from archlab.errors import ConfigError
from archlab.nn import GCNConv, global_mean_pool

from ..examples import example_for


def test_gin_is_invariant_to_the_order_of_nodes():
    spec, batch = example_for("gin")
    torch.manual_seed(0)
    model = archlab.create_model("gin", in_features=5, num_classes=3).eval()
    out = model(batch["x"], batch["edge_index"], batch["batch"])
    perm = torch.randperm(len(batch["x"]), generator=torch.Generator().manual_seed(1))
    inverse = torch.argsort(perm)
    moved = model(batch["x"][perm], inverse[batch["edge_index"]], batch["batch"][perm])
    assert out.shape == (3, 3)
    torch.testing.assert_close(moved, out)


def test_sum_pooling_tells_one_triangle_from_two_where_a_mean_cannot():
    triangle = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
    two = torch.cat([triangle, triangle + 3], 1)
    edge_index = torch.cat([triangle, two + 3], 1)
    batch = torch.tensor([0] * 3 + [1] * 6)
    x = torch.ones(9, 1)
    torch.manual_seed(0)
    gin = archlab.create_model("gin", in_features=1, num_classes=2).eval()
    out = gin(x, edge_index, batch)
    assert not torch.allclose(out[0], out[1])
    gcn = GCNConv(1, 4)
    mean = global_mean_pool(torch.relu(gcn(x, edge_index)), batch)
    torch.testing.assert_close(mean[0], mean[1])


def test_gin_refuses_node_data():
    with pytest.raises(ConfigError, match="model 'gin' takes graphs data, but dataset 'karate' is graph data"):
        archlab.train("gin", "karate", epochs=1, quiet=True)


def test_cli_trains_gin_on_a_graph_collection_folder(tmp_path, capsys):
    folder = write_graph_collection(archlab.load_dataset("graph-families", num_graphs=30), tmp_path / "families")
    code = main(["train", "gin", "--data", str(folder), "--data-set", "split_column=split", "--epochs", "2",
                 "--json", "--out", str(tmp_path / "run")])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    again = archlab.evaluate_checkpoint(tmp_path / "run")
    assert again.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
