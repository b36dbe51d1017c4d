"""The graph isomorphism network's convolution (Xu et al., 2019): `GINConv`."""

from __future__ import annotations

import torch
from torch import nn

from .gcn import check_edge_index
from .message_passing import MessagePassing


class GINConv(MessagePassing):
    """Sum the neighbours, add the node itself scaled by :math:`1 + \\epsilon`, apply an MLP.

    .. math::
        \\mathbf{x}'_i = h_{\\Theta}\\Big((1 + \\epsilon)\\, \\mathbf{x}_i
                      + \\sum_{j \\in \\mathcal{N}(i)} \\mathbf{x}_j\\Big)

    The sum (not a mean or a max) keeps the multiset of neighbours distinguishable, which makes
    the layer as powerful as the 1-dimensional Weisfeiler-Lehman test. An `edge_weight` (an
    explainer's edge mask) multiplies each message.

    Args:
        mlp: :math:`h_\\Theta`, any module mapping ``(N, in)`` to ``(N, out)`` (PyG calls it ``nn``).
        eps: the initial :math:`\\epsilon`.
        train_eps: learn :math:`\\epsilon` (GIN-:math:`\\epsilon`); else it stays `eps` (GIN-0 for 0).

    Shapes:
        x ``(N, in)``, edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(N, out)``.
    """

    def __init__(self, mlp: nn.Module, eps: float = 0.0, train_eps: bool = False):
        super().__init__(aggregation="sum")
        self.mlp = mlp
        self.initial_eps = float(eps)
        if train_eps:
            self.eps = nn.Parameter(torch.tensor([float(eps)]))
        else:
            self.register_buffer("eps", torch.tensor([float(eps)]))

    def reset_parameters(self) -> None:
        self.eps.data.fill_(self.initial_eps)
        for module in self.mlp.modules():
            if module is not self.mlp and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        check_edge_index(edge_index, x.size(0))
        if edge_weight is not None and edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"edge_weight must have shape ({edge_index.size(1)},), one weight per edge; "
                             f"got {tuple(edge_weight.shape)}.")
        aggregated = self.propagate(edge_index, x, edge_weight)  # (N, in)
        return self.mlp((1 + self.eps.to(x.dtype)) * x + aggregated)

    def extra_repr(self) -> str:
        return f"train_eps={isinstance(self.eps, nn.Parameter)}"
