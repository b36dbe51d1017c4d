"""Graph convolution (Kipf & Welling, 2017): `gcn_norm` and `GCNConv`."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError, DataError
from .init import glorot_
from .message_passing import MessagePassing
from .scatter import scatter
from .sparse import (CSRStructure, adjacency_key, adjacency_to_edge_index, check_adjacency, csr_matmul,
                     edge_index_to_adjacency, is_sparse, linear)


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


def gcn_norm(edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None, num_nodes: int | None = None, *,
             add_self_loops: bool = True, fill_value: float = 1.0, dtype: torch.dtype | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The symmetric normalization of GCN, as per-edge weights.

    .. math::
        \\hat{A} = \\hat{D}^{-1/2} (A + I) \\hat{D}^{-1/2}, \\qquad
        \\hat{w}_{ji} = \\frac{w_{ji}}{\\sqrt{\\hat{d}_j \\hat{d}_i}}, \\quad \\hat{d}_i = \\sum_{j \\to i} w_{ji}

    Degrees are in-degrees (summed at the target); a node of degree 0 gets weight 0.
    Missing weights are ones of `dtype` (the default dtype when None); `num_nodes` defaults
    to the largest node id + 1.

    `edge_index` may instead be a sparse adjacency (COO or CSR) laid out as PyG's ``adj_t``,
    entry ``[i, j]`` the weight of edge ``j -> i``; the weights are its values, the self-loops
    follow `add_remaining_self_loops` as for an edge index, and the result is
    ``(normalized adjacency, None)`` in the input's layout, as PyG returns it.

    Shapes:
        edge_index ``(2, E)``, edge_weight ``(E,)`` or None -> edge_index ``(2, E')``, weights ``(E',)``;
        adjacency ``(N, N)`` -> adjacency ``(N, N)``, None.
    """
    if is_sparse(edge_index):
        adjacency = edge_index
        if edge_weight is not None:
            raise DataError("gcn_norm takes the edge weights of a sparse adjacency from its values; pass "
                            "edge_weight=None with it.")
        num_nodes = adjacency.size(0) if num_nodes is None else num_nodes
        check_adjacency(adjacency, num_nodes)
        edge_index, edge_weight = adjacency_to_edge_index(adjacency)
        edge_index, edge_weight = gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=add_self_loops,
                                           fill_value=fill_value)
        return edge_index_to_adjacency(edge_index, edge_weight, num_nodes, adjacency.layout), None
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
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
        add_self_loops: add the :math:`I` (as in `add_remaining_self_loops`). None (the
            default) means "when normalizing"; the self-loops belong to the normalization,
            so ``add_self_loops=True`` with ``normalize=False`` is refused, as in PyG.
        normalize: apply `gcn_norm`; without it the edge weights are used as given.
        cached: for transductive training on one graph: keep the normalized adjacency of the
            last graph as a CSR matrix (with its transpose, for the backward pass) and
            multiply by it, instead of passing messages edge by edge. A different graph is
            normalized afresh; a trainable `edge_weight` (an explainer's mask) or a sparse
            adjacency's values are re-normalized every call and get their gradient.
        bias: learn :math:`b`.

    The graph is an `edge_index` with optional `edge_weight`, or a sparse adjacency (COO or
    CSR) in its place, laid out as PyG's ``adj_t``: entry ``[i, j]`` is the weight of edge
    ``j -> i``, so ``torch.sparse_coo_tensor(edge_index.flip(0), edge_weight, (N, N))`` is the
    same graph.

    Shapes:
        x ``(N, in_features)`` (dense, or sparse COO/CSR), edge_index ``(2, E)`` or adjacency
        ``(N, N)``, edge_weight ``(E,)`` -> ``(N, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, *, add_self_loops: bool | None = None,
                 normalize: bool = True, cached: bool = False, bias: bool = True):
        super().__init__(aggregation="sum")
        if add_self_loops is None:
            add_self_loops = normalize
        if add_self_loops and not normalize:
            raise ConfigError("The 'add_self_loops' parameter of GCNConv must be False or None when normalize=False "
                              "(the self-loops are part of the normalization). Got True instead.")
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
            return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=self.add_self_loops, dtype=dtype)
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
        return edge_index, edge_weight

    def _adjacency(self, key: tuple[torch.Tensor, ...], edge_index: torch.Tensor, edge_weight: torch.Tensor | None,
                   num_nodes: int, dtype: torch.dtype) -> tuple[CSRStructure, torch.Tensor]:
        """The normalized adjacency (targets as rows) as a CSR structure cached under the index
        tensors `key`, and its values."""
        cache = self._cache
        hit = (cache is not None and cache["num_nodes"] == num_nodes and len(cache["key"]) == len(key)
               and all(a.data_ptr() == b.data_ptr() and a.shape == b.shape and version == b._version
                       for a, version, b in zip(cache["key"], cache["versions"], key)))
        if not hit:
            # The cache holds the key tensors themselves, so their memory cannot pass to another graph meanwhile.
            norm_index, weights = self.normalized(edge_index, None, num_nodes, dtype)
            structure = CSRStructure(norm_index[1], norm_index[0], (num_nodes, num_nodes))
            cache = self._cache = {"key": key, "versions": [t._version for t in key], "num_nodes": num_nodes,
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
        if is_sparse(edge_index):
            if edge_weight is not None:
                raise DataError("GCNConv takes the edge weights of a sparse adjacency from its values; pass "
                                "edge_weight=None with it.")
            check_adjacency(edge_index, num_nodes)
            key = adjacency_key(edge_index)
            edge_index, edge_weight = adjacency_to_edge_index(edge_index)
        else:
            check_edge_index(edge_index, num_nodes)
            key = (edge_index,)
        h = linear(x, self.lin.weight)  # (N, out)
        if self.cached:
            out = csr_matmul(*self._adjacency(key, edge_index, edge_weight, num_nodes, h.dtype), h)
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
