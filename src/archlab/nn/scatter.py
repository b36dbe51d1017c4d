"""Scatter reductions and the edge softmax: the two primitives of message passing.

Both work on the first dimension: row ``e`` of `src` goes to row ``index[e]`` of the
output, which has `num_nodes` rows. Rows that receive nothing are zero.
"""

from __future__ import annotations

import torch
from ..validation import check_choice

REDUCTIONS = ("sum", "mean", "max", "min")


def scatter(src: torch.Tensor, index: torch.Tensor, num_nodes: int, reduce: str = "sum") -> torch.Tensor:
    """Reduce the rows of `src` that share an `index`.

    .. math::
        \\mathrm{out}_i = \\bigoplus_{e \\,:\\, \\mathrm{index}_e = i} \\mathrm{src}_e

    with :math:`\\bigoplus` one of sum, mean, max, min; empty groups give 0.

    Shapes:
        src ``(E, *)``, index ``(E,)`` -> ``(num_nodes, *)``.
    """
    check_choice("scatter", "reduce", reduce, REDUCTIONS)
    out = src.new_zeros((num_nodes, *src.shape[1:]))
    if reduce == "sum":
        return out.index_add_(0, index, src)
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    torch_reduce = {"mean": "mean", "max": "amax", "min": "amin"}[reduce]
    return out.scatter_reduce_(0, expanded, src, reduce=torch_reduce, include_self=False)


def edge_softmax(scores: torch.Tensor, index: torch.Tensor, num_nodes: int | None = None) -> torch.Tensor:
    """Softmax of edge scores over the edges that share a target node.

    .. math::
        \\alpha_{e} = \\frac{\\exp(s_e - m_i)}{\\sum_{e' : \\mathrm{index}_{e'} = i} \\exp(s_{e'} - m_i)},
        \\qquad i = \\mathrm{index}_e,\\; m_i = \\max_{e' : \\mathrm{index}_{e'} = i} s_{e'}

    The per-node maximum is subtracted for stability (and treated as a constant, which
    leaves the softmax unchanged). `num_nodes` defaults to the largest index + 1, as PyG's
    ``softmax(src, index)``.

    Shapes:
        scores ``(E, *)`` (e.g. ``(E, heads)``), index ``(E,)`` -> ``(E, *)``.
    """
    if num_nodes is None:
        num_nodes = int(index.max()) + 1 if index.numel() else 0
    peak = scatter(scores.detach(), index, num_nodes, reduce="max")
    weights = (scores - peak.index_select(0, index)).exp()
    total = scatter(weights, index, num_nodes, reduce="sum")
    return weights / total.index_select(0, index)
