"""Graph convolution (Kipf & Welling, 2017): `gcn_norm` and `GCNConv`."""

from __future__ import annotations

import torch
from torch import nn

from .message_passing import MessagePassing
from .init import glorot_
from .scatter import scatter
from .sparse import CSRStructure, csr_matmul, linear


def check_edge_index(edge_index: torch.Tensor, num_nodes: int, name: str = "edge_index") -> None:
    """Refuse an edge index that is not a ``(2, E)`` integer tensor of node ids below `num_nodes`."""
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype not in (torch.long, torch.int):
        raise ValueError(f"{name} must be an integer tensor of shape (2, E); got {edge_index.dtype} "
                         f"{tuple(edge_index.shape)}.")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"{name} must hold node ids in [0, {num_nodes}); got ids in "
                         f"[{int(edge_index.min())}, {int(edge_index.max())}].")


def add_remaining_self_loops(edge_index: torch.Tensor, edge_weight: torch.Tensor, num_nodes: int,
                             fill_value: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Give every node exactly one self-loop.

    Existing self-loops are removed and replaced by one per node, whose weight is the
    existing loop's weight when the node had one (the last one, if several) and
    `fill_value` otherwise. This is PyG's ``add_remaining_self_loops``.

    Shapes:
        edge_index ``(2, E)``, edge_weight ``(E,)`` -> ``(2, E' + N)``, ``(E' + N,)``.
    """
    source, target = edge_index
    keep = source != target
    is_loop = ~keep
    loops = torch.arange(num_nodes, device=edge_index.device)
    loop_weight = edge_weight.new_full((num_nodes,), fill_value)
    if bool(is_loop.any()):
        loop_weight = loop_weight.index_put((source[is_loop],), edge_weight[is_loop])
    edge_index = torch.cat([edge_index[:, keep], torch.stack([loops, loops])], dim=1)
    return edge_index, torch.cat([edge_weight[keep], loop_weight])


def gcn_norm(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int,
             add_self_loops: bool = True, fill_value: float = 1.0, dtype: torch.dtype | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The symmetric normalization of GCN, as per-edge weights.

    .. math::
        \\hat{A} = \\hat{D}^{-1/2} (A + I) \\hat{D}^{-1/2}, \\qquad
        \\hat{w}_{ji} = \\frac{w_{ji}}{\\sqrt{\\hat{d}_j \\hat{d}_i}}, \\quad \\hat{d}_i = \\sum_{j \\to i} w_{ji}

    Degrees are in-degrees (summed at the target); a node of degree 0 gets weight 0.
    Missing weights are ones of `dtype` (the default dtype when None).

    Shapes:
        edge_index ``(2, E)``, edge_weight ``(E,)`` or None -> edge_index ``(2, E')``, weights ``(E',)``.
    """
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    if add_self_loops:
        edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, num_nodes, fill_value)
    source, target = edge_index
    degree = scatter(edge_weight, target, num_nodes, reduce="sum")
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt = inv_sqrt.masked_fill(torch.isinf(inv_sqrt), 0.0)
    return edge_index, inv_sqrt[source] * edge_weight * inv_sqrt[target]


def dense_gcn_norm(adjacency: torch.Tensor, add_self_loops: bool = True, fill_value: float = 1.0) -> torch.Tensor:
    """`gcn_norm` of a dense adjacency matrix ``A[j, i]`` = weight of edge ``j -> i``.

    Returns :math:`\\hat{A}^\\top` laid out for ``out = Â^T @ X`` (row ``i`` aggregates its in-edges).
    A self-loop already on the diagonal keeps its weight, as in `add_remaining_self_loops`.

    Shapes:
        adjacency ``(N, N)`` -> ``(N, N)``.
    """
    adjacency = adjacency.t().to(torch.get_default_dtype() if not adjacency.is_floating_point() else adjacency.dtype)
    if add_self_loops:
        diagonal = adjacency.diagonal()
        loops = torch.where(diagonal != 0, diagonal, torch.full_like(diagonal, fill_value))
        adjacency = adjacency - torch.diag(diagonal) + torch.diag(loops)
    degree = adjacency.sum(1)
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt = inv_sqrt.masked_fill(torch.isinf(inv_sqrt), 0.0)
    return inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


class GCNConv(MessagePassing):
    """Graph convolution: :math:`X' = \\hat{D}^{-1/2} (A + I) \\hat{D}^{-1/2} X W + b`.

    Args:
        in_features, out_features: sizes of the node features before and after.
        add_self_loops: add the :math:`I` (as in `add_remaining_self_loops`).
        normalize: apply `gcn_norm`; without it the edge weights are used as given.
        cached: for transductive training on one graph: keep the normalized adjacency of the
            last `edge_index` as a CSR matrix (with its transpose, for the backward pass) and
            multiply by it, instead of passing messages edge by edge. A different
            `edge_index` is normalized afresh; a trainable `edge_weight` (an explainer's
            mask) is re-normalized every call and gets its gradient.
        bias: learn :math:`b`.

    Shapes:
        x ``(N, in_features)`` (dense, or sparse COO/CSR), edge_index ``(2, E)``,
        edge_weight ``(E,)`` -> ``(N, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, *, add_self_loops: bool = True, normalize: bool = True,
                 cached: bool = False, bias: bool = True):
        super().__init__(aggregation="sum")
        self.in_features = in_features
        self.out_features = out_features
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self.cached = cached
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self._cache: dict | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._cache = None

    def normalized(self, edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int,
                   dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The edges and weights the convolution aggregates over."""
        if self.normalize:
            return gcn_norm(edge_index, edge_weight, num_nodes, self.add_self_loops, dtype=dtype)
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
        return edge_index, edge_weight

    def _adjacency(self, edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int,
                   dtype: torch.dtype) -> tuple[CSRStructure, torch.Tensor]:
        """The normalized adjacency (targets as rows) as a cached CSR structure and its values."""
        cache = self._cache
        hit = (cache is not None and cache["edge_index"].data_ptr() == edge_index.data_ptr()
               and cache["edge_index"].shape == edge_index.shape and cache["version"] == edge_index._version
               and cache["num_nodes"] == num_nodes)
        if not hit:
            # The cache holds `edge_index` itself, so its memory cannot pass to another graph meanwhile.
            norm_index, weights = self.normalized(edge_index, None, num_nodes, dtype)
            structure = CSRStructure(norm_index[1], norm_index[0], (num_nodes, num_nodes))
            cache = self._cache = {"edge_index": edge_index, "version": edge_index._version, "num_nodes": num_nodes,
                                   "structure": structure, "values": structure.gather(weights).detach()}
        structure = cache["structure"]
        if edge_weight is not None:
            return structure, structure.gather(self.normalized(edge_index, edge_weight, num_nodes, dtype)[1])
        if cache["values"].dtype != dtype:
            cache["values"] = cache["values"].to(dtype)
        return structure, cache["values"]

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None
                ) -> torch.Tensor:
        num_nodes = x.size(0)
        check_edge_index(edge_index, num_nodes)
        h = linear(x, self.lin.weight)  # (N, out)
        if self.cached:
            out = csr_matmul(*self._adjacency(edge_index, edge_weight, num_nodes, h.dtype), h)
        else:
            edge_index, edge_weight = self.normalized(edge_index, edge_weight, num_nodes, h.dtype)
            out = self.propagate(edge_index, h, edge_weight, num_nodes)
        return out + self.bias if self.bias is not None else out

    def forward_dense(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """The same layer on a dense adjacency ``A[j, i]`` (weight of edge ``j -> i``), ``(N, N)``."""
        a_hat = dense_gcn_norm(adjacency, self.add_self_loops) if self.normalize else adjacency.t()
        out = a_hat.to(x.dtype) @ linear(x, self.lin.weight)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, cached={self.cached}"
