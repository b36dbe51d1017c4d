"""Quadrature rules on [0, 1] for path integrals (Integrated Gradients)."""

from __future__ import annotations

import numpy as np
import torch
from ..validation import check_choice, fail

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def quadrature(method: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Nodes :math:`\alpha_k` and weights :math:`w_k` (float64) with

    .. math:: \int_0^1 g(\alpha)\,d\alpha \approx \sum_{k=1}^{n} w_k\, g(\alpha_k)

    Riemann sums use the left, right or middle point of ``n`` equal cells (weights
    ``1/n``); the trapezoid rule uses ``n`` equally spaced nodes from 0 to 1 (weights
    ``1/(n-1)``, halved at both ends); Gauss-Legendre uses the ``n`` Legendre nodes,
    exact for polynomials of degree ``2n - 1``.

    Shapes:
        returns two tensors of shape ``(n_steps,)``.
    """
    check_choice("IntegratedGradients", "method", method, METHODS)
    minimum = 2 if method == "riemann_trapezoid" else 1
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < minimum:
        raise fail("IntegratedGradients", "n_steps", f"an int >= {minimum} for {method}", n_steps)
    n = n_steps
    k = torch.arange(n, dtype=torch.float64)
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)  # on [-1, 1]
        return torch.from_numpy(0.5 * (1.0 + x)), torch.from_numpy(0.5 * w)
    if method == "riemann_trapezoid":
        weights = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        weights[0] /= 2
        weights[-1] /= 2
        return k / (n - 1), weights
    offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[method]
    return (k + offset) / n, torch.full((n,), 1.0 / n, dtype=torch.float64)
