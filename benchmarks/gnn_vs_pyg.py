"""One full-batch training epoch (forward, backward, Adam step) on Cora: archlab vs PyG.

Both sides train the paper models (GCN: 16 hidden, dropout 0.5; GAT: 8 heads x 8 hidden,
dropout 0.6) on the same graph in one process. PyG gets the dense row-normalized features
its `Planetoid` + `NormalizeFeatures` give, and its `GCNConv(cached=True)`, as in its
``examples/gcn.py`` and ``examples/gat.py``; archlab gets its own Cora (sparse features).

    python benchmarks/gnn_vs_pyg.py [--data-dir ../shared/data] [--repeats 50]

Prints milliseconds per epoch (median of `repeats`) and the ratio archlab / PyG.
Targets: <= 0.2 for GCN, <= 0.4 for GAT.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv as PyGGATConv
from torch_geometric.nn import GCNConv as PyGGCNConv

import archlab
from archlab.models.graph_tasks import NodeClassificationTask

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class PyGGCN(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.conv1 = PyGGCNConv(in_features, 16, cached=True)
        self.conv2 = PyGGCNConv(16, num_classes, cached=True)

    def forward(self, x, edge_index):
        x = F.dropout(x, 0.5, self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, 0.5, self.training)
        return self.conv2(x, edge_index)


class PyGGAT(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.conv1 = PyGGATConv(in_features, 8, heads=8, dropout=0.6)
        self.conv2 = PyGGATConv(64, num_classes, heads=1, concat=False, dropout=0.6)

    def forward(self, x, edge_index):
        x = F.dropout(x, 0.6, self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, 0.6, self.training)
        return self.conv2(x, edge_index)


def time_epochs(step, repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def archlab_step(name: str, data, lr: float, weight_decay: float):
    model = archlab.create_model(name, **data.spec.model_kwargs())
    task = NodeClassificationTask(data.spec.num_classes)
    (optimizer,) = task.configure_optimizers(
        model, lambda params: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
    batch = data["train"].batch()

    def step():
        model.train()
        task.optimization_step(model, batch, [optimizer], None)

    return step


def pyg_step(model: nn.Module, x, edge_index, y, mask, lr: float, weight_decay: float):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def step():
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index)[mask], y[mask])
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = archlab.load_dataset("cora", args.data_dir)
    graph = data["train"].graph
    x, edge_index, y, mask = graph.dense_x(), graph.edge_index, graph.y, graph.train_mask
    print(f"Cora: {graph.num_nodes} nodes, {graph.num_edges} directed edges; torch threads {torch.get_num_threads()}")
    rows = []
    for name, pyg_model, lr, target in (("gcn", PyGGCN, 0.01, 0.2), ("gat", PyGGAT, 0.005, 0.4)):
        ours = time_epochs(archlab_step(name, data, lr, 5e-4), args.repeats)
        theirs = time_epochs(pyg_step(pyg_model(graph.num_features, 7), x, edge_index, y, mask, lr, 5e-4),
                             args.repeats)
        rows.append((name, ours, theirs, ours / theirs, target))
    print(f"{'model':6s} {'archlab ms':>11s} {'PyG ms':>9s} {'ratio':>7s} {'target':>7s}")
    for name, ours, theirs, ratio, target in rows:
        print(f"{name:6s} {ours:11.2f} {theirs:9.2f} {ratio:7.3f} {'<= ' + str(target):>7s}"
              f"  {'ok' if ratio <= target else 'MISSED'}")


if __name__ == "__main__":
    main()
