"""Sampled neighbourhoods: the draws are edges of the graph, at most the fan-out per node and
uniform without replacement; batches are seeded, resumable and the same from DataLoader
workers; a model trimmed per hop equals the untrimmed one, and every neighbour equals full batch."""

from __future__ import annotations

import json

import pytest
import torch

import archlab
from archlab.cli import main
from archlab.data.graph import Graph, GraphSplit
from archlab.data.neighbor_loader import CSRGraph, NeighborSplit, sample_hop
from archlab.errors import ConfigError
from archlab.models.graph_tasks import NodeClassificationTask


def random_split(num_nodes: int = 60, num_edges: int = 400, seed: int = 0, weighted: bool = False) -> GraphSplit:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    x = torch.randn(num_nodes, 5, generator=g)
    y = torch.randint(0, 3, (num_nodes,), generator=g)
    weight = torch.rand(num_edges, generator=g) if weighted else None
    mask = torch.rand(num_nodes, generator=g) < 0.5
    return GraphSplit(Graph(x=x, edge_index=edge_index, y=y, edge_weight=weight), mask)


def test_sampled_edges_are_graph_edges_within_the_fanout():
    split = random_split(weighted=True)
    loader = NeighborSplit(split, [3, 2])
    edges = {(int(s), int(t)): i for i, (s, t) in enumerate(split.graph.edge_index.t())}
    in_degree = torch.bincount(split.graph.edge_index[1], minlength=60)
    for batch in loader.batches(7, shuffle=True, seed=1):
        n_id, (source, target) = batch["n_id"], batch["edge_index"]
        assert len(torch.unique(n_id)) == len(n_id) == sum(batch["num_sampled_nodes"])
        assert batch["edge_index"].size(1) == sum(batch["num_sampled_edges"])
        assert batch["mask"].sum() == batch["num_sampled_nodes"][0] and batch["mask"][:batch["mask"].sum()].all()
        torch.testing.assert_close(batch["x"], split.graph.x[n_id])
        for s, t, w in zip(n_id[source].tolist(), n_id[target].tolist(), batch["edge_weight"].tolist()):
            assert (s, t) in edges  # parallel edges: one of them, with its weight
        start = 0
        bounds = torch.cumsum(torch.tensor(batch["num_sampled_nodes"]), 0).tolist()
        for hop, (fanout, count) in enumerate(zip([3, 2], batch["num_sampled_edges"])):
            t = target[start:start + count]
            assert t.min() >= (bounds[hop - 1] if hop else 0) and t.max() < bounds[hop]  # targets: the hop before
            per_node = torch.bincount(t, minlength=len(n_id))
            want = torch.clamp(in_degree[n_id], max=fanout)
            hop_nodes = torch.arange(bounds[hop - 1] if hop else 0, bounds[hop])
            assert torch.equal(per_node[hop_nodes], want[hop_nodes])
            start += count


def test_draws_are_uniform_without_replacement():
    # node 0 has 5 in-neighbours; fan-out 2 picks each with probability 2/5, never one twice
    edge_index = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 0, 0, 0]])
    csr = CSRGraph(edge_index, 6)
    counts = torch.zeros(6)
    g = torch.Generator().manual_seed(0)
    trials = 4000
    for _ in range(trials):
        position, row = sample_hop(csr, torch.tensor([0]), 2, g)
        picked = csr.col[position]
        assert len(picked) == 2 and picked[0] != picked[1] and (row == 0).all()
        counts[picked] += 1
    freq = counts[1:] / trials
    assert torch.allclose(freq, torch.full((5,), 0.4), atol=0.03), freq


def test_batches_are_seeded_resumable_and_the_same_from_workers():
    split = random_split()
    loader = NeighborSplit(split, [4, 3])
    first = list(loader.batches(8, shuffle=True, seed=5))
    again = list(loader.batches(8, shuffle=True, seed=5))
    resumed = list(loader.batches(8, shuffle=True, seed=5, start=2))
    workers = list(NeighborSplit(split, [4, 3], num_workers=2).batches(8, shuffle=True, seed=5))
    other = list(loader.batches(8, shuffle=True, seed=6))
    assert len(first) == loader.num_batches(8) == -(-int(split.mask.sum()) // 8)
    for runs in (again, resumed, workers):
        for a, b in zip(first[len(first) - len(runs):], runs):
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key
    assert not torch.equal(first[0]["n_id"], other[0]["n_id"])


def test_trimmed_layers_equal_the_untrimmed_model_and_every_neighbour_equals_full_batch():
    split = random_split(seed=3)
    torch.manual_seed(0)
    model = archlab.create_model("sage", in_features=5, num_classes=3, hidden_dim=6, num_layers=2).eval()
    full = model(split.graph.x, split.graph.edge_index)
    for fanouts in ([3, 2], [-1, -1]):
        for batch in NeighborSplit(split, fanouts).batches(9):
            seeds = batch["num_sampled_nodes"][0]
            trimmed = model(batch["x"], batch["edge_index"], num_sampled_nodes=batch["num_sampled_nodes"],
                            num_sampled_edges=batch["num_sampled_edges"])
            untrimmed = model(batch["x"], batch["edge_index"])
            assert trimmed.shape == (seeds, 3)
            torch.testing.assert_close(trimmed, untrimmed[:seeds])
            if fanouts == [-1, -1]:
                torch.testing.assert_close(trimmed, full[batch["n_id"][:seeds]])


def test_sampled_evaluation_is_the_full_batch_evaluation():
    split = random_split(seed=4)
    torch.manual_seed(0)
    model = archlab.create_model("sage", in_features=5, num_classes=3)
    full = NodeClassificationTask(3).evaluate(model, split, 512)
    sampled = NodeClassificationTask(3, [2, 2]).evaluate(model, split, 4)
    assert sampled["confusion_matrix"] == full["confusion_matrix"]
    assert sampled["loss"] == pytest.approx(full["loss"], rel=1e-6)


def test_a_fanout_longer_than_the_model_is_refused(capsys):
    model = archlab.create_model("sage", in_features=5, num_classes=3, num_layers=2)
    with pytest.raises(ConfigError, match=r"at most 2 fan-outs.*Got 3 instead: \[25, 10, 5\]"):
        archlab.create_task("node-classification", model, None, num_neighbors=[25, 10, 5])
    code = main(["train", "sage", "--data", "karate", "--epochs", "1", "--task-set", "num_neighbors=[25,10,5]"])
    err = capsys.readouterr().err
    assert code == 2 and "at most 2 fan-outs" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="num_neighbors"):
        archlab.create_task("node-classification", model, None, num_neighbors=[0])


def test_sampled_training_resumes_to_the_same_weights(tmp_path):
    options = dict(task_options={"num_neighbors": [3, 2]}, batch_size=4, quiet=True, seed=2)
    whole = archlab.train("sage", "karate", steps=6, out=tmp_path / "whole", **options)
    part = archlab.train("sage", "karate", steps=3, out=tmp_path / "part", **options)
    assert part.metrics
    resumed = archlab.train("sage", "karate", steps=6, out=tmp_path / "part", resume=True, **options)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_cli_trains_sage_on_sampled_neighbourhoods(tmp_path, capsys):
    code = main(["train", "sage", "--data", "karate", "--epochs", "2", "--batch-size", "4", "--json",
                 "--task-set", "num_neighbors=[5,5]", "--task-set", "num_workers=1", "--out", str(tmp_path / "s")])
    assert code == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["metrics"]["test_accuracy"] <= 1.0
