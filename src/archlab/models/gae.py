"""Graph autoencoders for link prediction (Kipf & Welling, 2016): GAE and VGAE.

A two-layer GCN encodes nodes; the decoder scores a node pair by the inner product of
their embeddings, :math:`\\sigma(\\mathbf{z}_i^\\top \\mathbf{z}_j)` (kept as logits).
Losses and the decoder live in `archlab.models.graph_tasks`; the KL term is
`archlab.nn.gaussian_kl`, a plain function of the encoder's outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import GCNConv
from ..nn import sparse
from .graph_tasks import link_prediction_task
from .registry import register_model


class GAE(nn.Module):
    """Graph autoencoder: a two-layer GCN encoder (ReLU between) and an inner-product decoder.

    ``forward`` returns the embeddings ``z``; `archlab.models.graph_tasks.inner_product_logits` decodes pairs.

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(N, latent_dim)``.
    """

    variational = False

    def __init__(self, in_features: int, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        self.in_features = in_features
        self.dropout = dropout
        self.conv1 = GCNConv(in_features, hidden_dim, cached=True)
        self.conv_mu = GCNConv(hidden_dim, latent_dim, cached=True)

    def hidden(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        if x.dim() != 2 or x.size(1) != self.in_features:
            raise ValueError(f"{type(self).__name__} expects node features x of shape (num_nodes, "
                             f"{self.in_features}); got {tuple(x.shape)}.")
        x = sparse.dropout(x, self.dropout, self.training)
        h = F.relu(self.conv1(x, edge_index, edge_weight))
        return F.dropout(h, self.dropout, self.training)

    def encode(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
               ) -> torch.Tensor:
        return self.conv_mu(self.hidden(x, edge_index, edge_weight), edge_index, edge_weight)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.encode(x, edge_index, edge_weight)


class VGAE(GAE):
    """Variational graph autoencoder: the GCN encoder gives a mean and a log standard
    deviation per node; training decodes a sample, ``forward`` returns the mean.

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)`` -> encode: mu, log_std ``(N, latent_dim)``;
        forward: mu ``(N, latent_dim)``.
    """

    variational = True

    def __init__(self, in_features: int, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0):
        super().__init__(in_features, hidden_dim, latent_dim, dropout)
        self.conv_log_std = GCNConv(hidden_dim, latent_dim, cached=True)

    def encode(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x, edge_index, edge_weight)
        return self.conv_mu(h, edge_index, edge_weight), self.conv_log_std(h, edge_index, edge_weight)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.encode(x, edge_index, edge_weight)[0]


GAE_DEFAULTS = {"epochs": 200, "optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}


@register_model("gae", family="gnn", data_kinds=("graph",), task=link_prediction_task, explanation=None,
                train_defaults=GAE_DEFAULTS)
def gae(in_features: int = 1433, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0) -> GAE:
    """Graph autoencoder (Kipf & Welling, 2016) for link prediction."""
    return GAE(in_features, hidden_dim, latent_dim, dropout)


@register_model("vgae", family="gnn", data_kinds=("graph",), task=link_prediction_task, explanation=None,
                train_defaults=GAE_DEFAULTS)
def vgae(in_features: int = 1433, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0) -> VGAE:
    """Variational graph autoencoder (Kipf & Welling, 2016) for link prediction."""
    return VGAE(in_features, hidden_dim, latent_dim, dropout)
