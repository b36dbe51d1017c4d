"""GNNExplainer (Ying et al., 2019): a soft mask over the edges and one over the node features
that keeps a node's prediction while being small and nearly binary."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .base import Attribution, check_positive_int

EPS = 1e-15


@dataclass
class NodeExplanation:
    node: int
    target: int  # the explained class
    edge_mask: torch.Tensor  # (E,) in [0, 1]; exactly 0 for edges that cannot reach the node
    feature_mask: torch.Tensor  # (F,) in [0, 1], shared by all nodes
    losses: list[float]  # the objective at each epoch

    def top_edges(self, k: int = 10) -> torch.Tensor:
        """Indices of the `k` edges of highest mask value, highest first."""
        return self.edge_mask.argsort(descending=True, stable=True)[:k]


def _entropy(m: torch.Tensor) -> torch.Tensor:
    return -m * torch.log(m + EPS) - (1 - m) * torch.log(1 - m + EPS)


class GNNExplainer(Attribution):
    r"""Edge and feature masks for one node's prediction by a graph model called as
    ``model(x, edge_index, edge_weight)`` (archlab's GCN and GAT; the edge mask is passed as
    `edge_weight`). The masks :math:`M_E = \sigma(\theta_E)`, :math:`M_F = \sigma(\theta_F)`
    minimise, with Adam, PyTorch Geometric's objective and coefficients:

    .. math:: -\log p_c\big(f(X \odot M_F, A \odot M_E)_v\big)
              + \lambda_{E}\sum M_E + \mu_{E}\,\overline{H(M_E)}
              + \lambda_{F}\,\overline{M_F} + \mu_{F}\,\overline{H(M_F)}

    with :math:`H` the binary entropy, :math:`c` the model's predicted class by default. Edges
    and features whose gradient is zero at the start (outside the node's receptive field) are
    left out of the objective and get mask 0. The initialisation is drawn from a generator
    seeded by `seed`. Put the model in eval mode first (dropout would make the masks noisy).

    Shapes:
        x ``(N, F)``, edge_index ``(2, E)``; masks ``(E,)`` and ``(F,)``.
    """

    def __init__(self, model, *, epochs: int = 100, lr: float = 0.01, edge_size: float = 0.005,
                 edge_ent: float = 1.0, feature_size: float = 1.0, feature_ent: float = 0.1):
        super().__init__(model)
        self.epochs = check_positive_int(epochs, "epochs", type(self).__name__)
        self.lr = lr
        self.coeffs = {"edge_size": edge_size, "edge_ent": edge_ent, "feature_size": feature_size,
                       "feature_ent": feature_ent}

    def explain_node(self, node: int, x: torch.Tensor, edge_index: torch.Tensor, target: int | None = None, *,
                     seed: int = 0) -> NodeExplanation:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
            raise ValueError(f"{name}: x must be dense float node features (num_nodes, features); got "
                             f"{tuple(getattr(x, 'shape', ()))}.")
        if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"{name}: edge_index must be a (2, E) tensor; got "
                             f"{tuple(getattr(edge_index, 'shape', ()))}.")
        num_nodes, features = x.shape
        if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < num_nodes:
            raise ValueError(f"{name}: node {node!r} is out of range for a graph of {num_nodes} nodes.")
        x = x.detach()
        with torch.no_grad():
            logits = self.forward_func(x, edge_index)
        classes = logits.shape[-1]
        if target is None:
            target = int(logits[node].argmax())
        elif isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes:
            raise ValueError(f"{name}: target {target!r} is out of range: the model has {classes} outputs "
                             f"(valid indices 0..{classes - 1}).")
        g = torch.Generator().manual_seed(seed)
        std = torch.nn.init.calculate_gain("relu") * math.sqrt(2.0 / (2 * num_nodes))
        edge_logits = (torch.randn(edge_index.shape[1], generator=g, dtype=x.dtype) * std).to(x.device)
        feature_logits = (torch.randn(features, generator=g, dtype=x.dtype) * 0.1).to(x.device)
        edge_logits.requires_grad_(True)
        feature_logits.requires_grad_(True)
        optimizer = torch.optim.Adam([edge_logits, feature_logits], lr=self.lr)
        hard_edges = hard_features = None
        losses = []
        c = self.coeffs
        for _ in range(self.epochs):
            optimizer.zero_grad()
            edge_mask, feature_mask = edge_logits.sigmoid(), feature_logits.sigmoid()
            out = self.forward_func(x * feature_mask, edge_index, edge_mask)
            loss = F.cross_entropy(out[node][None], torch.tensor([target], device=out.device))
            if hard_edges is None:
                # the receptive field: what the prediction depends on at all
                grads = torch.autograd.grad(loss, [edge_logits, feature_logits], retain_graph=True,
                                            allow_unused=True)
                if grads[0] is None:
                    raise ValueError(f"{name}: the model's output does not depend on the edge weights; it must be "
                                     "called as model(x, edge_index, edge_weight) and use them.")
                hard_edges = grads[0] != 0
                hard_features = (grads[1] != 0 if grads[1] is not None
                                 else torch.ones_like(feature_mask, dtype=torch.bool))
            m_e, m_f = edge_mask[hard_edges], feature_mask[hard_features]
            if m_e.numel():
                loss = loss + c["edge_size"] * m_e.sum() + c["edge_ent"] * _entropy(m_e).mean()
            if m_f.numel():
                loss = loss + c["feature_size"] * m_f.mean() + c["feature_ent"] * _entropy(m_f).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        with torch.no_grad():
            edge_mask = torch.where(hard_edges, edge_logits.sigmoid(), torch.zeros_like(edge_logits))
            feature_mask = torch.where(hard_features, feature_logits.sigmoid(), torch.zeros_like(feature_logits))
        return NodeExplanation(node, target, edge_mask.detach(), feature_mask.detach(), losses)
