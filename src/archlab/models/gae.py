"""Graph autoencoders for link prediction (Kipf & Welling, 2016): GAE and VGAE around any encoder.

`GAE(encoder)` and `VGAE(encoder)` take their encoder by composition, as PyG's do: the
encoder maps a graph to node embeddings ``z`` (GAE) or to ``(mu, log_std)`` (VGAE), and an
inner-product decoder scores a node pair by :math:`\\sigma(\\mathbf{z}_i^\\top \\mathbf{z}_j)`.
The losses are methods with explicit arguments computed on logits, and nothing is stashed
between calls. The registered ``gae`` and ``vgae`` models wrap `GCNEncoder`, the paper's
two-layer GCN; `archlab.models.graph_tasks` trains them with the reference code's loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.ranking import auroc, average_precision
from ..errors import DataError
from ..nn import GCNConv
from ..nn import sparse
from ..nn.gcn import check_edge_index
from ..nn.gaussian import gaussian_kl
from ..nn.gaussian import reparameterize as gaussian_sample
from .graph_tasks import inner_product_logits, link_prediction_task
from .registry import register_model
from ..validation import check_float

# PyG's bound on log sigma: exp(2 * 10) is about 5e8, far from overflow.
MAX_LOG_STD = 10.0


def negative_sampling(edge_index: torch.Tensor, num_nodes: int, num_samples: int | None = None, *,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Distinct node pairs ``(i, j)``, ``i != j``, that are not edges of `edge_index`, drawn
    uniformly without replacement (as many as there are edges unless `num_samples` says).

    Shapes:
        edge_index ``(2, E)`` -> ``(2, num_samples)``.
    """
    check_edge_index(edge_index, num_nodes)
    num_samples = edge_index.size(1) if num_samples is None else num_samples
    loops = torch.arange(num_nodes) * (num_nodes + 1)
    taken = torch.unique(torch.cat([edge_index[0].cpu() * num_nodes + edge_index[1].cpu(), loops]))
    free = num_nodes * num_nodes - len(taken)
    if num_samples > free:
        raise DataError(f"cannot draw {num_samples} non-edges from a graph of {num_nodes} nodes that has only "
                        f"{free}.")
    chosen, remaining = [], num_samples
    while remaining > 0:
        # Draw pairs with replacement, keep the new ones in random order: a uniform sample of the free pairs.
        draw = torch.unique(torch.randint(num_nodes * num_nodes, (2 * remaining + 8,), generator=generator))
        draw = draw[~torch.isin(draw, taken)]
        draw = draw[torch.randperm(len(draw), generator=generator)][:remaining]
        chosen.append(draw)
        taken = torch.cat([taken, draw])
        remaining -= len(draw)
    keys = torch.cat(chosen) if chosen else torch.empty(0, dtype=torch.long)
    return torch.stack([keys // num_nodes, keys % num_nodes]).to(edge_index.device)


def _reset(module: Callable) -> None:
    """Re-initialize `module` (a module or any callable) the way PyG's autoencoders do: call
    its ``reset_parameters``, or else its children's, recursively."""
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
    elif isinstance(module, nn.Module):
        for child in module.children():
            _reset(child)


class InnerProductDecoder(nn.Module):
    """:math:`\\sigma(\\mathbf{z}_i^\\top \\mathbf{z}_j)` for node pairs, or :math:`\\sigma(ZZ^\\top)` for all.

    `sigmoid=False` returns the logits. The default is True, as in PyG, so ported calls get
    probabilities; the losses ask for logits.

    Shapes:
        z ``(N, D)``, edge_index ``(2, P)`` -> ``(P,)``; `forward_all`: ``(N, N)``.
    """

    def forward(self, z: torch.Tensor, edge_index: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        logits = inner_product_logits(z, edge_index)
        return logits.sigmoid() if sigmoid else logits

    def forward_all(self, z: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        logits = z @ z.t()
        return logits.sigmoid() if sigmoid else logits


class GAE(nn.Module):
    """Graph autoencoder around any encoder.

    ``encode(*args)`` (and ``forward``) is ``encoder(*args)``, the embeddings ``z``;
    ``decode(z, edge_index)`` is the decoder's probabilities. The decoder (default:
    `InnerProductDecoder`) is called as ``decoder(z, edge_index, sigmoid=...)``.

    Unlike PyG's, the constructor leaves the encoder's weights as given; `reset_parameters`
    re-initializes them as PyG's constructor does.

    Args:
        encoder: a module (or any callable) returning ``z`` ``(N, D)``.
        decoder: scores node pairs; None: `InnerProductDecoder`.
    """

    variational = False

    def __init__(self, encoder: Callable, decoder: Callable | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = InnerProductDecoder() if decoder is None else decoder

    def reset_parameters(self) -> None:
        _reset(self.encoder)
        _reset(self.decoder)

    def encode(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self.encode(*args, **kwargs)

    def decode(self, z: torch.Tensor, edge_index: torch.Tensor, sigmoid: bool = True) -> torch.Tensor:
        return self.decoder(z, edge_index, sigmoid=sigmoid)

    def _logits(self, z: torch.Tensor, edge_index: torch.Tensor, name: str) -> torch.Tensor:
        check_edge_index(edge_index, z.size(0), name)
        return self.decoder(z, edge_index, sigmoid=False)

    def recon_loss(self, z: torch.Tensor, pos_edge_index: torch.Tensor,
                   neg_edge_index: torch.Tensor | None = None) -> torch.Tensor:
        """Binary cross-entropy of the positive pairs against 1 and the negative pairs
        against 0, each averaged over its pairs, on the decoder's logits :math:`l`:

        .. math::
            \\mathcal{L} = \\frac{1}{|P|} \\sum_{P} \\mathrm{softplus}(-l)
                         + \\frac{1}{|N|} \\sum_{N} \\mathrm{softplus}(l)

        (:math:`-\\log\\sigma(l) = \\mathrm{softplus}(-l)`, exact where PyG's
        :math:`-\\log(\\sigma(l) + 10^{-15})` saturates). Without `neg_edge_index`, as many
        negatives as positives are drawn by `negative_sampling`.

        Shapes:
            z ``(N, D)``, pos_edge_index ``(2, P)``, neg_edge_index ``(2, M)`` -> scalar.
        """
        pos_loss = F.softplus(-self._logits(z, pos_edge_index, "pos_edge_index")).mean()
        if neg_edge_index is None:
            neg_edge_index = negative_sampling(pos_edge_index, z.size(0))
        neg_loss = F.softplus(self._logits(z, neg_edge_index, "neg_edge_index")).mean()
        return pos_loss + neg_loss

    @torch.no_grad()
    def test(self, z: torch.Tensor, pos_edge_index: torch.Tensor, neg_edge_index: torch.Tensor
             ) -> tuple[float, float]:
        """ROC AUC and average precision of the decoder separating `pos_edge_index` (label 1)
        from `neg_edge_index` (label 0). Both rank the logits, which the sigmoid would not
        reorder but could tie where it rounds to 1.

        Shapes:
            z ``(N, D)``, pos_edge_index ``(2, P)``, neg_edge_index ``(2, M)`` -> (auc, ap).
        """
        pos = self._logits(z, pos_edge_index, "pos_edge_index")
        neg = self._logits(z, neg_edge_index, "neg_edge_index")
        scores = torch.cat([pos, neg])
        labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        return auroc(scores, labels), average_precision(scores, labels)


class VGAE(GAE):
    """Variational graph autoencoder around any encoder returning ``(mu, log_std)``.

    ``encode(*args)`` returns ``(mu, log_std)``, log_std clamped at `MAX_LOG_STD` as PyG
    does; ``forward`` returns ``mu``. Where PyG's ``encode`` returns a sample and keeps
    ``mu``, ``log_std`` for a later ``kl_loss()``, here the caller holds them::

        mu, log_std = model.encode(x, edge_index)
        z = model.reparameterize(mu, log_std)
        loss = model.recon_loss(z, pos_edge_index) + model.kl_loss(mu, log_std) / num_nodes
    """

    variational = True

    def encode(self, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(*args, **kwargs)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise DataError(f"VGAE's encoder must return a pair (mu, log_std); got {type(out).__name__}.")
        mu, log_std = out
        return mu, log_std.clamp(max=MAX_LOG_STD)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.encode(*args, **kwargs)[0]

    def reparameterize(self, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """A sample :math:`\\mu + \\sigma \\odot \\epsilon` in training, :math:`\\mu` in evaluation (as PyG)."""
        return gaussian_sample(mu, 2 * log_std) if self.training else mu

    def kl_loss(self, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """The node-averaged `archlab.nn.gaussian_kl` of the encoder's outputs (logvar = 2 log_std),
        log_std clamped at `MAX_LOG_STD` (as PyG).

        Shapes:
            mu ``(N, D)``, log_std ``(N, D)`` -> scalar.
        """
        log_std = log_std.clamp(max=MAX_LOG_STD)
        return gaussian_kl(mu, 2 * log_std).mean()


class GCNEncoder(nn.Module):
    """The paper's encoder: a two-layer GCN, ReLU between, dropout on the input and the hidden
    layer; variational, a second output layer gives log_std beside mu.

    Shapes:
        x ``(N, in_features)``, edge_index ``(2, E)``, edge_weight ``(E,)`` -> z ``(N, latent_dim)``,
        or (mu, log_std) ``(N, latent_dim)`` each.
    """

    def __init__(self, in_features: int, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0, *,
                 variational: bool = False):
        super().__init__()
        check_float("GCNEncoder", "dropout", dropout, low=0, high=1, high_open=True)
        self.in_features = in_features
        self.dropout = dropout
        self.variational = variational
        self.conv1 = GCNConv(in_features, hidden_dim, cached=True)
        self.conv_mu = GCNConv(hidden_dim, latent_dim, cached=True)
        self.conv_log_std = GCNConv(hidden_dim, latent_dim, cached=True) if variational else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None):
        if x.dim() != 2 or x.size(1) != self.in_features:
            raise ValueError(f"{type(self).__name__} expects node features x of shape (num_nodes, "
                             f"{self.in_features}); got {tuple(x.shape)}.")
        x = sparse.dropout(x, self.dropout, self.training)
        h = F.dropout(F.relu(self.conv1(x, edge_index, edge_weight)), self.dropout, self.training)
        mu = self.conv_mu(h, edge_index, edge_weight)
        return (mu, self.conv_log_std(h, edge_index, edge_weight)) if self.variational else mu


GAE_DEFAULTS = {"epochs": 200, "optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}


@register_model("gae", family="gnn", data_kinds=("graph",), task=link_prediction_task, explanation=None,
                train_defaults=GAE_DEFAULTS)
def gae(in_features: int = 1433, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0) -> GAE:
    """Graph autoencoder (Kipf & Welling, 2016) for link prediction."""
    return GAE(GCNEncoder(in_features, hidden_dim, latent_dim, dropout))


@register_model("vgae", family="gnn", data_kinds=("graph",), task=link_prediction_task, explanation=None,
                train_defaults=GAE_DEFAULTS)
def vgae(in_features: int = 1433, hidden_dim: int = 32, latent_dim: int = 16, dropout: float = 0.0) -> VGAE:
    """Variational graph autoencoder (Kipf & Welling, 2016) for link prediction."""
    return VGAE(GCNEncoder(in_features, hidden_dim, latent_dim, dropout, variational=True))
