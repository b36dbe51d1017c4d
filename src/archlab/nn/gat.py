"""Graph attention (Veličković et al., 2018): `GATConv`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gcn import check_edge_index
from .init import glorot_
from .message_passing import MessagePassing
from .scatter import edge_softmax
from .sparse import linear


def replace_self_loops(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Drop every self-loop and append one per node (weight 1 when weights are given).

    Shapes:
        edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(2, E' + N)``, ``(E' + N,)``.
    """
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(num_nodes, device=edge_index.device)
    edge_index = torch.cat([edge_index[:, keep], torch.stack([loops, loops])], dim=1)
    if edge_weight is not None:
        edge_weight = torch.cat([edge_weight[keep], edge_weight.new_ones(num_nodes)])
    return edge_index, edge_weight


class GATConv(MessagePassing):
    """Multi-head graph attention.

    .. math::
        e_{ji}^{h} = \\mathrm{LeakyReLU}_{0.2}\\big(\\mathbf{a}_{src}^{h\\top} W^h \\mathbf{x}_j
                     + \\mathbf{a}_{dst}^{h\\top} W^h \\mathbf{x}_i\\big), \\qquad
        \\alpha_{ji}^{h} = \\operatorname{softmax}_{j \\in \\mathcal{N}(i) \\cup \\{i\\}} e_{ji}^{h}

    .. math::
        \\mathbf{x}'_i = \\big\\Vert_{h=1}^{H} \\sum_{j} \\alpha_{ji}^{h} W^h \\mathbf{x}_j + b
        \\quad\\text{(concat)}, \\qquad
        \\mathbf{x}'_i = \\frac{1}{H} \\sum_{h=1}^{H} \\sum_{j} \\alpha_{ji}^{h} W^h \\mathbf{x}_j + b
        \\quad\\text{(mean)}

    Attention dropout drops coefficients :math:`\\alpha` during training. An `edge_weight`
    (e.g. an explainer's edge mask) multiplies the coefficients of its edges after the
    softmax; the self-loops weigh 1.

    Args:
        in_features: size of the input node features.
        out_features: size of each head's output.
        heads: number of attention heads :math:`H`.
        concat: concatenate the heads (output ``H * out_features``) or average them (``out_features``).
        negative_slope: slope of the LeakyReLU.
        dropout: dropout probability of the attention coefficients.
        add_self_loops: replace existing self-loops by one per node.
        bias: learn :math:`b`.

    Shapes:
        x ``(N, in_features)`` (dense or sparse), edge_index ``(2, E)``, edge_weight ``(E,)``
        -> ``(N, heads * out_features)`` or ``(N, out_features)``; with
        ``return_attention=True`` also ``(edge_index (2, E'), alpha (E', heads))``.
    """

    def __init__(self, in_features: int, out_features: int, heads: int = 1, *, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True, bias: bool = True):
        super().__init__(aggregation="sum")
        if heads < 1:
            raise ValueError(f"heads must be an int >= 1; got {heads}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        self.in_features = in_features
        self.out_features = out_features
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.lin = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_features))
        self.bias = nn.Parameter(torch.empty(heads * out_features if concat else out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_(self.lin.weight)
        glorot_(self.att_src)
        glorot_(self.att_dst)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = linear(x, self.lin.weight).view(-1, self.heads, self.out_features)  # (N, H, C)
        return h, (h * self.att_src).sum(-1), (h * self.att_dst).sum(-1)  # (N, H, C), (N, H), (N, H)

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        out = out.reshape(-1, self.heads * self.out_features) if self.concat else out.mean(dim=1)
        return out + self.bias if self.bias is not None else out

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None, *,
                return_attention: bool = False):
        num_nodes = x.size(0)
        check_edge_index(edge_index, num_nodes)
        if edge_weight is not None and edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"edge_weight must have shape ({edge_index.size(1)},), one weight per edge; "
                             f"got {tuple(edge_weight.shape)}.")
        h, score_src, score_dst = self._project(x)
        if self.add_self_loops:
            edge_index, edge_weight = replace_self_loops(edge_index, edge_weight, num_nodes)
        source, target = edge_index
        scores = F.leaky_relu(score_src.index_select(0, source) + score_dst.index_select(0, target),
                              self.negative_slope)  # (E, H)
        alpha = edge_softmax(scores, target, num_nodes)
        alpha = F.dropout(alpha, self.dropout, self.training)
        weights = alpha if edge_weight is None else alpha * edge_weight.unsqueeze(-1)
        out = self._finish(self.propagate(edge_index, h, weights, num_nodes))  # messages (E, H, C)
        return (out, (edge_index, alpha)) if return_attention else out

    def forward_dense(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """The same layer on a dense adjacency ``A[j, i]`` (weight of edge ``j -> i``), ``(N, N)``:
        the softmax runs over the non-zero entries of each column and the weights multiply it."""
        h, score_src, score_dst = self._project(x)
        weight = adjacency.t().to(h.dtype)  # (N_target, N_source)
        if self.add_self_loops:
            weight = weight - torch.diag(weight.diagonal()) + torch.eye(len(weight), dtype=h.dtype, device=h.device)
        scores = F.leaky_relu(score_dst.t()[:, :, None] + score_src.t()[:, None, :], self.negative_slope)  # (H, N, N)
        scores = scores.masked_fill(weight == 0, float("-inf"))
        alpha = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a node without in-edges gets zeros
        alpha = F.dropout(alpha, self.dropout, self.training) * weight
        out = torch.einsum("hij,jhc->ihc", alpha, h)  # (N, H, C)
        return self._finish(out)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, heads={self.heads}, concat={self.concat}"
