"""Node classifiers on graphs: GCN (Kipf & Welling, 2017) and GAT (Veličković et al., 2018).

Both take ``model(x, edge_index, edge_weight=None)`` and return class logits ``(N, C)``,
so an explainer can pass an edge mask as `edge_weight`. `x` may be a sparse COO tensor:
dropout then drops only its stored values (see `archlab.nn.sparse`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import GATConv, GCNConv
from ..nn import sparse
from .graph_tasks import node_classification_task
from .registry import register_model
from ..validation import check_float, check_int


def check_node_features(x: torch.Tensor, in_features: int, model: str) -> None:
    if x.dim() != 2 or x.size(1) != in_features:
        raise ValueError(f"{model} expects node features x of shape (num_nodes, {in_features}); got {tuple(x.shape)}.")


class GCN(nn.Module):
    """A graph convolutional network: dropout -> `GCNConv` -> ReLU, repeated, with a linear last layer.

    .. math::
        Z = \\hat{A}\\, \\mathrm{ReLU}(\\hat{A} X W^{(0)})\\, W^{(1)}, \\qquad
        \\hat{A} = \\hat{D}^{-1/2}(A + I)\\hat{D}^{-1/2}

    The normalized adjacency is cached between calls on the same graph. As in the paper,
    weight decay applies to the first layer only (`no_weight_decay` names the rest).

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(N, num_classes)``.
    """

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int = 16, num_layers: int = 2,
                 dropout: float = 0.5, cached: bool = True):
        super().__init__()
        check_int("GCN", "num_layers", num_layers, minimum=1)
        check_float("GCN", "dropout", dropout, low=0, high=1, high_open=True)
        sizes = [in_features] + [hidden_dim] * (num_layers - 1) + [num_classes]
        self.in_features = in_features
        self.num_layers = num_layers
        self.dropout = dropout
        self.convs = nn.ModuleList(GCNConv(a, b, cached=cached) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        check_node_features(x, self.in_features, type(self).__name__)
        for i, conv in enumerate(self.convs):
            x = sparse.dropout(x, self.dropout, self.training)
            x = conv(x, edge_index, edge_weight)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x

    def no_weight_decay(self) -> set[str]:
        """Parameters outside the first layer (Kipf & Welling decay only the first layer)."""
        return {name for name, _ in self.named_parameters() if not name.startswith("convs.0.")}


class GAT(nn.Module):
    """A graph attention network: dropout -> multi-head `GATConv` -> ELU -> dropout -> `GATConv`.

    The hidden layer concatenates `num_heads` heads of `hidden_dim` features; the output layer
    averages `output_heads` heads (`GATConv` keeps PyG's name for its argument,
    `heads`). Dropout (on inputs and attention) is `dropout` throughout.
    As the paper's code, weight decay spares the biases (`no_weight_decay`).

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(N, num_classes)``.
    """

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int = 8, num_heads: int = 8,
                 output_heads: int = 1, dropout: float = 0.6):
        super().__init__()
        check_float("GAT", "dropout", dropout, low=0, high=1, high_open=True)
        self.in_features = in_features
        self.num_layers = 2
        self.dropout = dropout
        self.conv1 = GATConv(in_features, hidden_dim, num_heads, dropout=dropout)
        self.conv2 = GATConv(hidden_dim * num_heads, num_classes, output_heads, concat=False, dropout=dropout)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        check_node_features(x, self.in_features, type(self).__name__)
        x = sparse.dropout(x, self.dropout, self.training)
        x = F.elu(self.conv1(x, edge_index, edge_weight=edge_weight))  # (N, num_heads * hidden_dim)
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index, edge_weight=edge_weight)

    def no_weight_decay(self) -> set[str]:
        return {name for name, _ in self.named_parameters() if name.endswith("bias")}


@register_model("gcn", family="gnn", data_kinds=("graph",), task=node_classification_task,
                explanation="gnn-explainer",
                train_defaults={"epochs": 200, "optimizer": "adam", "lr": 0.01, "weight_decay": 5e-4})
def gcn(in_features: int = 1433, num_classes: int = 7, hidden_dim: int = 16, num_layers: int = 2,
        dropout: float = 0.5, cached: bool = True) -> GCN:
    """Graph convolutional network (Kipf & Welling, 2017) for node classification."""
    return GCN(in_features, num_classes, hidden_dim, num_layers, dropout, cached)


@register_model("gat", family="gnn", data_kinds=("graph",), task=node_classification_task,
                explanation="gnn-explainer",
                train_defaults={"epochs": 1000, "optimizer": "adam", "lr": 0.005, "weight_decay": 5e-4,
                                "patience": 100})
def gat(in_features: int = 1433, num_classes: int = 7, hidden_dim: int = 8, num_heads: int = 8, output_heads: int = 1,
        dropout: float = 0.6) -> GAT:
    """Graph attention network (Veličković et al., 2018) for node classification."""
    return GAT(in_features, num_classes, hidden_dim, num_heads, output_heads, dropout)
