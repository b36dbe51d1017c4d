"""Global pooling: one vector per graph from the node features of a batch of graphs."""

from __future__ import annotations

import torch

from ..errors import DataError
from .scatter import scatter


def _pool(x: torch.Tensor, batch: torch.Tensor | None, num_graphs: int | None, reduce: str) -> torch.Tensor:
    if x.dim() not in (1, 2):
        # A dense (B, N, F) batch would be reduced over its first axis, the graphs, without this check.
        raise DataError(f"global pooling takes node features x of shape (N, F), the nodes of all graphs stacked, "
                        f"with batch giving each node's graph; got shape {tuple(x.shape)}. For a dense batch of "
                        f"graphs (B, N, F) reduce over the node axis directly, e.g. x.sum(dim=1).")
    if batch is None:
        return getattr(x, {"sum": "sum", "mean": "mean", "max": "amax"}[reduce])(dim=0, keepdim=True)
    if batch.dim() != 1 or batch.size(0) != x.size(0):
        raise ValueError(f"batch must have shape ({x.size(0)},), the graph id of each node; got {tuple(batch.shape)}.")
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    return scatter(x, batch, num_graphs, reduce=reduce)


def global_sum_pool(x: torch.Tensor, batch: torch.Tensor | None = None, num_graphs: int | None = None
                    ) -> torch.Tensor:
    """:math:`\\mathbf{r}_g = \\sum_{i \\in g} \\mathbf{x}_i`.

    Shapes:
        x ``(N, F)``, batch ``(N,)`` graph ids (None: one graph) -> ``(num_graphs, F)``.
    """
    return _pool(x, batch, num_graphs, "sum")


def global_mean_pool(x: torch.Tensor, batch: torch.Tensor | None = None, num_graphs: int | None = None
                     ) -> torch.Tensor:
    """:math:`\\mathbf{r}_g = \\frac{1}{|g|} \\sum_{i \\in g} \\mathbf{x}_i` (an empty graph gives 0).

    Shapes:
        x ``(N, F)``, batch ``(N,)`` graph ids (None: one graph) -> ``(num_graphs, F)``.
    """
    return _pool(x, batch, num_graphs, "mean")


def global_max_pool(x: torch.Tensor, batch: torch.Tensor | None = None, num_graphs: int | None = None
                    ) -> torch.Tensor:
    """:math:`\\mathbf{r}_g = \\max_{i \\in g} \\mathbf{x}_i`, per feature (an empty graph gives 0).

    Shapes:
        x ``(N, F)``, batch ``(N,)`` graph ids (None: one graph) -> ``(num_graphs, F)``.
    """
    return _pool(x, batch, num_graphs, "max")
