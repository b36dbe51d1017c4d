"""A minimal message-passing base: message, aggregate, update, with explicit arguments.

Edges run from ``edge_index[0]`` (source, ``j``) to ``edge_index[1]`` (target, ``i``):

.. math::
    \\mathbf{h}_i = \\gamma\\Big(\\mathbf{x}_i,\\; \\bigoplus_{j \\to i} \\phi(\\mathbf{x}_j, w_{ji})\\Big)

Unlike PyG's `MessagePassing`, nothing is inferred from argument names: `message`
receives the gathered source rows and the per-edge weights, and a subclass that needs
more computes it before calling `propagate` (GAT passes its attention as the weights).
"""

from __future__ import annotations

import torch
from torch import nn

from .scatter import REDUCTIONS, scatter
from ..validation import check_choice


class MessagePassing(nn.Module):
    """Base class of graph layers. Subclasses override `message` and/or `update`.

    Args:
        aggregation: how messages to one node are combined: ``sum``, ``mean``, ``max`` or ``min``.

    Shapes:
        x ``(N, *)``, edge_index ``(2, E)``, edge_weight ``(E,)`` or ``(E, heads)``.
    """

    def __init__(self, aggregation: str = "sum"):
        super().__init__()
        check_choice(type(self).__name__, "aggregation", aggregation, REDUCTIONS)
        self.aggregation = aggregation

    def propagate(self, edge_index: torch.Tensor, x: torch.Tensor, edge_weight: torch.Tensor | None = None,
                  num_nodes: int | None = None) -> torch.Tensor:
        """Gather source rows, form messages, aggregate them at the targets, update."""
        num_nodes = x.size(0) if num_nodes is None else num_nodes
        source, target = edge_index[0], edge_index[1]
        messages = self.message(x.index_select(0, source), edge_weight)
        return self.update(self.aggregate(messages, target, num_nodes), x)

    def message(self, x_source: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        """:math:`\\phi`: the message along each edge; by default the source row times its weight."""
        if edge_weight is None:
            return x_source
        # (E,) or (E, heads) weights broadcast over the trailing feature dimensions
        return x_source * edge_weight.view(*edge_weight.shape, *([1] * (x_source.dim() - edge_weight.dim())))

    def aggregate(self, messages: torch.Tensor, target: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """:math:`\\bigoplus`: combine the messages arriving at each node."""
        return scatter(messages, target, num_nodes, reduce=self.aggregation)

    def update(self, aggregated: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\gamma`: the new node state; by default the aggregate itself."""
        return aggregated
