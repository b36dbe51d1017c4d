"""GPT-2's tanh approximation of GELU, computed through a sigmoid.

.. math::

    \\mathrm{GELU}_{\\tanh}(x) = \\tfrac12 x \\bigl(1 + \\tanh u\\bigr) = x\\, \\sigma(2u), \\qquad
    u = \\sqrt{2/\\pi}\\,(x + 0.044715\\, x^3)

(since :math:`\\tfrac12(1 + \\tanh u) = \\sigma(2u)`), with derivative

.. math:: \\frac{d}{dx} = s + x\\, s (1 - s)\\, v', \\qquad s = \\sigma(v),\\; v = 2u,\\;
    v' = 2\\sqrt{2/\\pi}\\,(1 + 3 \\cdot 0.044715\\, x^2).

It is the same function as ``F.gelu(x, approximate="tanh")`` (equal to rounding: a few
float32 ulps), but torch's CPU kernel spends most of its time in a vectorised ``tanh``,
which costs several times a ``sigmoid``; this form is a few multiplies around one sigmoid
(timings: benchmarks/NOTES.md). The forward pass computes
the derivative while its terms are at hand and keeps it, so the backward pass is one
multiply. Higher derivatives (a backward pass with ``create_graph=True``, e.g.
second-order MAML) are built from differentiable operations on ``x`` and are exact.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_V1 = 2 * math.sqrt(2 / math.pi)  # v = x (V1 + V3 x^2)
_V3 = _V1 * 0.044715


def _derivative(x: torch.Tensor) -> torch.Tensor:
    """d/dx of x * sigmoid(v(x)) in differentiable operations (for higher-order gradients)."""
    s = torch.sigmoid(x * (_V1 + _V3 * x * x))
    return s + x * s * (1 - s) * (_V1 + 3 * _V3 * x * x)


class _TanhGELU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        cube = x * x
        cube.mul_(x)
        s = torch.add(x, cube, alpha=_V3 / _V1).mul_(_V1).sigmoid_()  # sigmoid(v)
        y = x * s
        slope = cube.mul_(3 * _V3).add_(x, alpha=_V1)  # x v' = V1 x + 3 V3 x^3
        derivative = slope.mul_(torch.addcmul(s, s, s, value=-1)).add_(s)  # s + x v' s (1 - s)
        ctx.save_for_backward(x, derivative)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, derivative = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a graph that can be differentiated again
            return grad * _derivative(x)
        return grad * derivative


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """``F.gelu(x, approximate="tanh")``, computed as ``x * sigmoid(2u)`` (see the module docstring)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _TanhGELU.apply(x)
    return x * (x * x).mul_(_V3).add_(_V1).mul_(x).sigmoid_()  # no graph: no derivative to keep


class TanhGELU(nn.Module):
    """GPT-2's GELU ("gelu_new"): ``nn.GELU(approximate="tanh")``, faster on CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu_tanh(x)
