"""Weight initialization shared by the graph layers."""

from __future__ import annotations

import math

import torch


def glorot_(tensor: torch.Tensor) -> torch.Tensor:
    """Glorot-uniform in place, with fans read from the last two dimensions (PyG's `glorot`):
    :math:`\\mathcal{U}(-a, a)`, :math:`a = \\sqrt{6 / (\\text{fan}_{-2} + \\text{fan}_{-1})}`."""
    bound = math.sqrt(6.0 / (tensor.size(-2) + tensor.size(-1)))
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)
