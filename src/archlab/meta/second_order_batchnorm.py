"""Batch normalization with a cheap, exact second derivative, for second-order MAML.

Second-order MAML differentiates the inner gradient, so every batch-norm layer's backward
pass is itself differentiated. torch's derivative of its batch-norm backward
(``NativeBatchNormBackwardBackward0``) is a general formula of some fifty full-size tensor
operations; it took 38% of a meta-iteration of the MAML paper's conv net here
(``benchmarks/maml_speed.py``). Written out per channel it needs a dozen.

With per-channel statistics :math:`\\mu, r = (\\sigma^2 + \\epsilon)^{-1/2}` over the
:math:`M` entries of a channel, :math:`\\hat x = (x - \\mu) r` and
:math:`y = \\gamma \\hat x + \\beta`, the backward pass is

.. math::

    g_\\beta = \\textstyle\\sum dy, \\quad g_\\gamma = \\sum dy\\,\\hat x, \\quad
    dx = \\gamma r\\, P(dy), \\quad P(v) = v - \\bar v - \\hat x\\,\\overline{v \\hat x}

(bars are channel means). For upstream gradients :math:`u, a, b` of :math:`dx, g_\\gamma, g_\\beta`,
with :math:`S = \\sum u\\,P(dy)`, :math:`k_1 = a - \\gamma r\\,\\overline{u \\hat x}` and
:math:`k_2 = -\\gamma r\\,\\overline{dy \\hat x}`:

.. math::

    \\partial/\\partial dy &= \\gamma r\\, P(u) + a \\hat x + b \\\\
    \\partial/\\partial \\gamma &= r S \\\\
    \\partial/\\partial x &= r\\, P(k_1 dy + k_2 u) - \\gamma r^2 (S / M)\\, \\hat x

(:math:`P` is symmetric, and :math:`x` enters through :math:`\\hat x` and :math:`r`).
The forward and first backward passes are torch's own fused kernels. The second derivative
is not differentiable again: asking for a third raises (MAML with any number of inner
steps never does). Tests check all of it against torch in float64 (``gradgradcheck`` and MAML's
meta-gradients).
"""

from __future__ import annotations

import torch

from .batchnorm import BatchStatisticsNorm


class _BatchNorm(torch.autograd.Function):
    """``y = batch_norm(x)`` with batch statistics; its backward is `_BatchNormBackward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        y, mean, invstd = torch.ops.aten.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, invstd = ctx.saved_tensors
        dx, dweight, dbias = _BatchNormBackward.apply(dy, x, weight, mean, invstd, ctx.eps)
        return dx, (dweight if weight is not None else None), (dbias if ctx.has_bias else None), None


class _BatchNormBackward(torch.autograd.Function):
    """``(dx, g_gamma, g_beta)`` from ``dy``, with the hand-written derivative of the module docstring."""

    @staticmethod
    def forward(ctx, dy, x, weight, mean, invstd, eps):
        dx, dweight, dbias = torch.ops.aten.native_batch_norm_backward(
            dy, x, weight, None, None, mean, invstd, True, eps, [True, True, True])
        ctx.save_for_backward(dy, x, weight, mean, invstd, dweight, dbias)
        return dx, dweight, dbias

    @staticmethod
    def backward(ctx, u, a, b):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "second_order_batch_norm is differentiable twice, not three times (its second derivative is "
                "hand-written); a third-order derivative was requested (create_graph=True through a batch-norm "
                "double backward). Use torch.nn.functional.batch_norm for higher orders.")
        dy, x, weight, mean, invstd, g_gamma, g_beta = ctx.saved_tensors
        dims = [0, *range(2, x.dim())]
        count = x.numel() // x.shape[1]
        shape = [1, -1] + [1] * (x.dim() - 2)

        def channel(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(shape)

        r = channel(invstd)
        gamma = channel(weight) if weight is not None else torch.ones_like(r)
        xhat = torch.addcmul(channel(-mean * invstd), x, r)
        mean_dy, mean_dy_xhat = channel(g_beta) / count, channel(g_gamma) / count
        a = channel(a) if a is not None else torch.zeros_like(r)
        b = channel(b) if b is not None else torch.zeros_like(r)
        if u is None:
            u = torch.zeros_like(x)
        mean_u = u.mean(dims, keepdim=True)
        mean_u_xhat = (u * xhat).mean(dims, keepdim=True)
        mean_u_dy = (u * dy).mean(dims, keepdim=True)
        gamma_r = gamma * r
        s_over_m = mean_u_dy - mean_dy * mean_u - mean_dy_xhat * mean_u_xhat  # S / M

        k1 = a - gamma_r * mean_u_xhat
        grad_dy = grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_dy = torch.addcmul(b - gamma_r * mean_u, u, gamma_r).addcmul_(xhat, k1)
        if ctx.needs_input_grad[1]:
            k2 = -gamma_r * mean_dy_xhat
            mean_g = k1 * mean_dy + k2 * mean_u
            mean_g_xhat = k1 * mean_dy_xhat + k2 * mean_u_xhat
            grad_x = torch.addcmul(-r * mean_g, dy, r * k1).addcmul_(u, r * k2)
            grad_x.addcmul_(xhat, -r * mean_g_xhat - gamma * r * r * s_over_m)
        if weight is not None and ctx.needs_input_grad[2]:
            grad_weight = (r * s_over_m).reshape(-1) * count
        return grad_dy, grad_x, grad_weight, None, None, None


def second_order_batch_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                            eps: float = 1e-5) -> torch.Tensor:
    """Batch norm of ``x (N, C, *)`` with this batch's statistics (as ``F.batch_norm`` in
    training without running statistics), whose second derivative is the cheap one above."""
    return _BatchNorm.apply(x, weight, bias, eps)


class SecondOrderBatchNorm(BatchStatisticsNorm):
    """Within this context, ``F.batch_norm`` without running statistics runs as
    `second_order_batch_norm`; other calls pass through unchanged."""

    norm = staticmethod(second_order_batch_norm)
