"""Graph attention (Veličković et al., 2018): `GATConv`."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from .gcn import check_edge_index
from .init import glorot_
from .message_passing import MessagePassing
from .scatter import REDUCTIONS, edge_softmax, scatter
from .sparse import adjacency_to_edge_index, check_adjacency, is_sparse, linear
from ..validation import check_float, check_int, fail


def replace_self_loops(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int,
                       edge_attr: torch.Tensor | None = None, fill_value: float | str = "mean"
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Drop every self-loop and append one per node.

    A loop's weight is 1. A loop's edge features are `fill_value` when it is a number, or
    else the `fill_value` reduction (``sum``, ``mean``, ``max``, ``min``) of the features of
    the node's remaining in-edges, 0 for a node without any (PyG's ``add_self_loops``).

    Shapes:
        edge_index ``(2, E)``, edge_weight ``(E,)``, edge_attr ``(E, D)``
        -> ``(2, E' + N)``, ``(E' + N,)``, ``(E' + N, D)``.
    """
    keep = edge_index[0] != edge_index[1]
    kept = edge_index[:, keep]
    loops = torch.arange(num_nodes, device=edge_index.device)
    if edge_weight is not None:
        edge_weight = torch.cat([edge_weight[keep], edge_weight.new_ones(num_nodes)])
    if edge_attr is not None:
        edge_attr = edge_attr[keep]
        if isinstance(fill_value, str):
            loop_attr = scatter(edge_attr, kept[1], num_nodes, reduce=fill_value)
        else:
            loop_attr = edge_attr.new_full((num_nodes, *edge_attr.shape[1:]), float(fill_value))
        edge_attr = torch.cat([edge_attr, loop_attr])
    edge_index = torch.cat([kept, torch.stack([loops, loops])], dim=1)
    return edge_index, edge_weight, edge_attr


class GATConv(MessagePassing):
    """Multi-head graph attention.

    .. math::
        e_{ji}^{h} = \\mathrm{LeakyReLU}_{0.2}\\big(\\mathbf{a}_{src}^{h\\top} W^h \\mathbf{x}_j
                     + \\mathbf{a}_{dst}^{h\\top} W^h \\mathbf{x}_i
                     + \\mathbf{a}_{edge}^{h\\top} W_e^h \\mathbf{e}_{ji}\\big), \\qquad
        \\alpha_{ji}^{h} = \\operatorname{softmax}_{j \\in \\mathcal{N}(i) \\cup \\{i\\}} e_{ji}^{h}

    .. math::
        \\mathbf{x}'_i = \\big\\Vert_{h=1}^{H} \\sum_{j} \\alpha_{ji}^{h} W^h \\mathbf{x}_j + b
        \\quad\\text{(concat)}, \\qquad
        \\mathbf{x}'_i = \\frac{1}{H} \\sum_{h=1}^{H} \\sum_{j} \\alpha_{ji}^{h} W^h \\mathbf{x}_j + b
        \\quad\\text{(mean)}

    The edge term is there when the layer has an `edge_dim` and is given `edge_attr`
    (PyG's semantics). Attention dropout drops coefficients :math:`\\alpha` during training.
    An `edge_weight` (e.g. an explainer's edge mask), passed by name, multiplies the
    coefficients of its edges after the softmax; the self-loops weigh 1. PyG has no such
    argument: its third positional argument is `edge_attr`, and so is archlab's.

    Args:
        in_features: size of the input node features.
        out_features: size of each head's output.
        heads: number of attention heads :math:`H`.
        concat: concatenate the heads (output ``H * out_features``) or average them (``out_features``).
        negative_slope: slope of the LeakyReLU.
        dropout: dropout probability of the attention coefficients.
        add_self_loops: replace existing self-loops by one per node.
        edge_dim: size :math:`D` of the edge features; None: the layer takes none.
        fill_value: the edge features of the added self-loops: a number, or the reduction
            (``mean``, ``sum``, ``max``, ``min``) of the node's in-edge features (see
            `replace_self_loops`).
        bias: learn :math:`b`.

    The graph is an `edge_index`, or a sparse adjacency (COO or CSR, laid out as PyG's
    ``adj_t``: entry ``[i, j]`` for edge ``j -> i``) of which only the pattern counts, as in PyG.

    Shapes:
        x ``(N, in_features)`` (dense or sparse), edge_index ``(2, E)`` or adjacency ``(N, N)``,
        edge_attr ``(E, edge_dim)`` (or ``(E,)`` when ``edge_dim=1``), edge_weight ``(E,)``
        -> ``(N, heads * out_features)`` or ``(N, out_features)``; with
        ``return_attention=True`` also ``(edge_index (2, E'), alpha (E', heads))``.
    """

    def __init__(self, in_features: int, out_features: int, heads: int = 1, *, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: int | None = None, fill_value: float | str = "mean", bias: bool = True):
        super().__init__(aggregation="sum")
        check_int("GATConv", "heads", heads, minimum=1)
        check_float("GATConv", "dropout", dropout, low=0, high=1, high_open=True)
        check_int("GATConv", "edge_dim", edge_dim, minimum=1, optional=True)
        valid_fill = fill_value in REDUCTIONS if isinstance(fill_value, str) else isinstance(fill_value, numbers.Real)
        if not valid_fill:
            raise fail("GATConv", "fill_value", f"a number or one of {', '.join(map(repr, REDUCTIONS))}", fill_value)
        self.in_features = in_features
        self.out_features = out_features
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.edge_dim = edge_dim
        self.fill_value = fill_value
        self.lin = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_features))
        if edge_dim is not None:
            self.lin_edge = nn.Linear(edge_dim, heads * out_features, bias=False)
            self.att_edge = nn.Parameter(torch.empty(1, heads, out_features))
        else:
            self.lin_edge = self.att_edge = None
        self.bias = nn.Parameter(torch.empty(heads * out_features if concat else out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_(self.lin.weight)
        glorot_(self.att_src)
        glorot_(self.att_dst)
        if self.lin_edge is not None:
            glorot_(self.lin_edge.weight)
            glorot_(self.att_edge)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = linear(x, self.lin.weight).view(-1, self.heads, self.out_features)  # (N, H, C)
        return h, (h * self.att_src).sum(-1), (h * self.att_dst).sum(-1)  # (N, H, C), (N, H), (N, H)

    def _finish(self, out: torch.Tensor) -> torch.Tensor:
        out = out.reshape(-1, self.heads * self.out_features) if self.concat else out.mean(dim=1)
        return out + self.bias if self.bias is not None else out

    def _check_edge_attr(self, edge_attr: torch.Tensor, num_edges: int) -> torch.Tensor:
        if self.edge_dim is None:
            raise DataError("this GATConv was built without edge_dim, so it takes no edge_attr (its third argument, "
                            "as in PyG). Build it with edge_dim=<feature size> to attend over edge features, or "
                            "pass a per-edge weight that multiplies the attention by name, as edge_weight=.")
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.unsqueeze(-1)
        if edge_attr.shape != (num_edges, self.edge_dim):
            raise DataError(f"edge_attr must have shape ({num_edges}, {self.edge_dim}), edge_dim features per edge; "
                            f"got {tuple(edge_attr.shape)}.")
        return edge_attr

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None = None, *,
                edge_weight: torch.Tensor | None = None, return_attention: bool = False):
        num_nodes = x.size(0)
        if is_sparse(edge_index):
            if edge_attr is not None or edge_weight is not None:
                raise DataError("GATConv takes edge_attr and edge_weight only with an edge_index, whose order they "
                                "follow; pass the graph as edge_index = adjacency.to_sparse_coo().indices().flip(0) "
                                "with them.")
            check_adjacency(edge_index, num_nodes)
            edge_index = adjacency_to_edge_index(edge_index)[0]
        check_edge_index(edge_index, num_nodes)
        if edge_attr is not None:
            edge_attr = self._check_edge_attr(edge_attr, edge_index.size(1))
        if edge_weight is not None and edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"edge_weight must have shape ({edge_index.size(1)},), one weight per edge; "
                             f"got {tuple(edge_weight.shape)}.")
        h, score_src, score_dst = self._project(x)
        if self.add_self_loops:
            edge_index, edge_weight, edge_attr = replace_self_loops(edge_index, edge_weight, num_nodes, edge_attr,
                                                                    self.fill_value)
        source, target = edge_index
        scores = score_src.index_select(0, source) + score_dst.index_select(0, target)  # (E, H)
        if edge_attr is not None:
            projected = linear(edge_attr, self.lin_edge.weight).view(-1, self.heads, self.out_features)  # (E, H, C)
            scores = scores + (projected * self.att_edge).sum(-1)
        alpha = edge_softmax(F.leaky_relu(scores, self.negative_slope), target, num_nodes)
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
        edge = f", edge_dim={self.edge_dim}" if self.edge_dim is not None else ""
        return f"{self.in_features}, {self.out_features}, heads={self.heads}, concat={self.concat}{edge}"
