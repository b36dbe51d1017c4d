"""GraphSAGE (Hamilton et al., 2017) with the mean aggregator, for node classification,
full batch or on sampled neighbourhoods (``--task-set num_neighbors=[25,10]``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import SAGEConv
from ..nn import sparse
from .gnn import check_node_features
from .graph_tasks import node_classification_task
from .registry import register_model
from ..validation import check_float, check_int


class GraphSAGE(nn.Module):
    """Dropout -> `SAGEConv` -> ReLU, repeated, with a `SAGEConv` last layer giving the class logits.

    On a sampled mini-batch (`archlab.data.neighbor_loader`), whose nodes are ordered by hop
    (the seeds first) and whose edges by the hop that sampled them, `num_sampled_nodes` (one
    count per hop, seeds first) and `num_sampled_edges` (one per hop) let each layer compute only
    the nodes the next layer reads: layer ``l`` of ``L`` maps the nodes within ``L - l`` hops to
    those within ``L - l - 1``, over the edges of the first ``L - l`` hops. The output then has
    one row per seed. This is PyG's ``trim_to_layer``; the result equals the untrimmed one on
    the seeds.

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(N, num_classes)``,
        or ``(num_sampled_nodes[0], num_classes)`` with the counts.
    """

    #: the node-classification task passes a sampled batch's per-hop counts
    trims_to_layer = True

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, normalize: bool = False):
        super().__init__()
        check_int("GraphSAGE", "num_layers", num_layers, minimum=1)
        check_float("GraphSAGE", "dropout", dropout, low=0, high=1, high_open=True)
        sizes = [in_features] + [hidden_dim] * (num_layers - 1) + [num_classes]
        self.in_features = in_features
        self.num_layers = num_layers
        self.dropout = dropout
        # the paper normalizes the hidden embeddings, not the logits
        self.convs = nn.ModuleList(SAGEConv(a, b, normalize=normalize and i < num_layers - 1)
                                   for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None, *,
                num_sampled_nodes: list[int] | None = None, num_sampled_edges: list[int] | None = None
                ) -> torch.Tensor:
        check_node_features(x, self.in_features, type(self).__name__)
        trim = num_sampled_nodes is not None
        if trim and (num_sampled_edges is None or len(num_sampled_nodes) != self.num_layers + 1
                     or len(num_sampled_edges) != self.num_layers):
            raise ValueError(f"trimming {self.num_layers} layers needs {self.num_layers + 1} node counts and "
                             f"{self.num_layers} edge counts (one per hop); got {num_sampled_nodes} and "
                             f"{num_sampled_edges}.")
        for i, conv in enumerate(self.convs):
            x = sparse.dropout(x, self.dropout, self.training)
            if trim:
                hops = self.num_layers - i  # hops of neighbourhood still to aggregate
                num_targets = sum(num_sampled_nodes[:hops])
                num_edges = sum(num_sampled_edges[:hops])
                edge_index = edge_index[:, :num_edges]
                edge_weight = edge_weight[:num_edges] if edge_weight is not None else None
                x_target = (x.index_select(0, torch.arange(num_targets, device=x.device)) if sparse.is_sparse(x)
                            else x[:num_targets])
                x = conv((x, x_target), edge_index, edge_weight)
            else:
                x = conv(x, edge_index, edge_weight)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x


@register_model("sage", family="gnn", data_kinds=("graph",), task=node_classification_task,
                explanation="gnn-explainer",
                train_defaults={"epochs": 200, "optimizer": "adam", "lr": 0.01, "weight_decay": 5e-4,
                                "batch_size": 512})
def sage(in_features: int = 1433, num_classes: int = 7, hidden_dim: int = 64, num_layers: int = 2,
         dropout: float = 0.5, normalize: bool = False) -> GraphSAGE:
    """GraphSAGE with the mean aggregator (Hamilton et al., 2017) for node classification."""
    return GraphSAGE(in_features, num_classes, hidden_dim, num_layers, dropout, normalize)
