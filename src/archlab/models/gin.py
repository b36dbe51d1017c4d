"""The graph isomorphism network (Xu et al., 2019) for graph classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import GINConv, global_sum_pool
from .gnn import check_node_features
from .graph_tasks import graph_classification_task
from .registry import register_model
from ..validation import check_float, check_int


def gin_mlp(in_features: int, hidden_dim: int) -> nn.Sequential:
    """The paper's 2-layer MLP: Linear -> BatchNorm -> ReLU -> Linear."""
    return nn.Sequential(nn.Linear(in_features, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, hidden_dim))


class GIN(nn.Module):
    """`num_layers` `GINConv` layers (each followed by BatchNorm and ReLU) and the paper's readout:
    every layer's node states, the input's included, summed over each graph and scored by a
    linear layer of its own, the scores added.

    .. math::
        \\mathbf{z}_G = \\sum_{k=0}^{K} W^{(k)} \\operatorname{dropout}\\Big(\\sum_{v \\in G} \\mathbf{h}_v^{(k)}\\Big)

    Sum pooling keeps the graph's multiset of node states (a mean or max loses its size and
    counts), so the readout is as injective as the layers.

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)``, batch ``(N,)`` graph ids (None: one graph),
        edge_weight ``(E,)`` -> ``(num_graphs, num_classes)``.
    """

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int = 64, num_layers: int = 4,
                 dropout: float = 0.5, train_eps: bool = False):
        super().__init__()
        check_int("GIN", "num_layers", num_layers, minimum=1)
        check_float("GIN", "dropout", dropout, low=0, high=1, high_open=True)
        self.in_features = in_features
        self.num_layers = num_layers
        self.dropout = dropout
        sizes = [in_features] + [hidden_dim] * num_layers
        self.convs = nn.ModuleList(GINConv(gin_mlp(a, hidden_dim), train_eps=train_eps) for a in sizes[:-1])
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden_dim) for _ in range(num_layers))
        self.heads = nn.ModuleList(nn.Linear(size, num_classes) for size in sizes)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None = None,
                edge_weight: torch.Tensor | None = None, num_graphs: int | None = None) -> torch.Tensor:
        check_node_features(x, self.in_features, type(self).__name__)
        if batch is not None and num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        states = [x]
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x, edge_index, edge_weight)))  # (N, hidden_dim)
            states.append(x)
        out = 0
        for h, head in zip(states, self.heads):
            pooled = global_sum_pool(h, batch, num_graphs)  # (num_graphs, size)
            out = out + head(F.dropout(pooled, self.dropout, self.training))
        return out


@register_model("gin", family="gnn", data_kinds=("graphs",), task=graph_classification_task, explanation=None,
                train_defaults={"epochs": 100, "optimizer": "adam", "lr": 0.01, "batch_size": 32,
                                "schedule": "cosine"})
def gin(in_features: int = 1, num_classes: int = 2, hidden_dim: int = 64, num_layers: int = 4, dropout: float = 0.5,
        train_eps: bool = False) -> GIN:
    """Graph isomorphism network (Xu et al., 2019) with sum pooling, for graph classification."""
    return GIN(in_features, num_classes, hidden_dim, num_layers, dropout, train_eps)
