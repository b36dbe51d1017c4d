"""GraphSAGE's convolution with the mean aggregator (Hamilton et al., 2017): `SAGEConv`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gcn import check_edge_index
from .message_passing import MessagePassing
from .sparse import is_sparse, linear


class SAGEConv(MessagePassing):
    """The mean aggregator of GraphSAGE.

    .. math::
        \\mathbf{x}'_i = W_{\\mathrm{root}}\\, \\mathbf{x}_i
        + W_{\\mathrm{neigh}} \\cdot \\operatorname{mean}_{j \\in \\mathcal{N}(i)} \\mathbf{x}_j + \\mathbf{b}

    which is the paper's :math:`W \\cdot [\\mathbf{x}_i \\Vert \\operatorname{mean}_j \\mathbf{x}_j]` with
    :math:`W` split in two. A node without in-edges aggregates zeros. `normalize` divides each
    output row by its L2 norm, as the paper does between layers.

    The input may be one node set ``x`` (the edges run within it) or a pair ``(x_source,
    x_target)``: a bipartite layer whose edges run from the source rows to the target rows and
    whose output has one row per target. A sampled mini-batch uses the pair to compute a layer
    only for the nodes the next layer needs, ``x_target = x[:num_targets]``.

    Args:
        in_features, out_features: sizes of the node features before and after.
        root_weight: add the :math:`W_{\\mathrm{root}}\\, \\mathbf{x}_i` term.
        normalize: L2-normalize the output rows.
        bias: learn :math:`\\mathbf{b}`.

    The weights are ``lin_neighbors`` (:math:`W_{\\mathrm{neigh}}`, with the bias) and ``lin_root``,
    PyG's ``lin_l`` and ``lin_r``.

    Shapes:
        x ``(N, in_features)`` (dense or sparse) or ``((N_s, in_features), (N_t, in_features))``,
        edge_index ``(2, E)`` -> ``(N, out_features)`` or ``(N_t, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, *, root_weight: bool = True, normalize: bool = False,
                 bias: bool = True):
        super().__init__(aggregation="mean")
        self.in_features = in_features
        self.out_features = out_features
        self.root_weight = root_weight
        self.normalize = normalize
        self.lin_neighbors = nn.Linear(in_features, out_features, bias=bias)
        self.lin_root = nn.Linear(in_features, out_features, bias=False) if root_weight else None

    def reset_parameters(self) -> None:
        self.lin_neighbors.reset_parameters()
        if self.lin_root is not None:
            self.lin_root.reset_parameters()

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, torch.Tensor], edge_index: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        x_source, x_target = x if isinstance(x, (tuple, list)) else (x, x)
        check_edge_index(edge_index, x_source.size(0))
        num_targets = x_target.size(0)
        if edge_index.numel() and int(edge_index[1].max()) >= num_targets:
            raise ValueError(f"edge_index targets must be below the {num_targets} target rows; got "
                             f"{int(edge_index[1].max())}.")
        if edge_weight is not None and edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"edge_weight must have shape ({edge_index.size(1)},), one weight per edge; "
                             f"got {tuple(edge_weight.shape)}.")
        # mean_j(W x_j) = W mean_j(x_j): project first when that makes the messages narrower
        # (and always for sparse features, which cannot be gathered row by row cheaply).
        if is_sparse(x_source) or self.out_features < self.in_features:
            aggregated = self.propagate(edge_index, linear(x_source, self.lin_neighbors.weight), edge_weight,
                                        num_targets)
        else:
            aggregated = linear(self.propagate(edge_index, x_source, edge_weight, num_targets),
                                self.lin_neighbors.weight)
        out = aggregated  # (N_t, out)
        if self.lin_neighbors.bias is not None:
            out = out + self.lin_neighbors.bias
        if self.lin_root is not None:
            out = out + linear(x_target, self.lin_root.weight)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, root_weight={self.root_weight}, normalize={self.normalize}"
