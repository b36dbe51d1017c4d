"""Layers whose fused kernels break meta-gradients, re-expressed for MAML.

Batch normalization with batch statistics, written out in elementary ops for `vmap`:

Under `torch.vmap`, second-order gradients through torch's fused batch-norm kernel
come out wrong (6% off in float64 on a 2-block conv net here; pytorch/functorch#534),
while the same maths in elementary ops is exact. The vmap strategy therefore runs
the model under `BatchStatisticsNorm`, a `TorchFunctionMode` that answers every
``F.batch_norm`` call without running statistics with:

.. math:: y = \\frac{x - \\mathrm{E}[x]}{\\sqrt{\\mathrm{Var}[x] + \\epsilon}} \\cdot \\gamma + \\beta

over the batch and spatial dimensions (biased variance, as torch's kernel in training).
The modules are not touched; calls with running statistics pass through unchanged.

Attention: `twice_differentiable_attention` selects the math backend of
``F.scaled_dot_product_attention`` while a meta-loss is built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode


def twice_differentiable_attention():
    """Run ``F.scaled_dot_product_attention`` on its math backend, whose ops are twice
    differentiable and batch under `vmap` (the fused CPU flash kernel is neither), so
    second-order MAML works through attention layers."""
    return sdpa_kernel([SDPBackend.MATH])


def batch_statistics_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                          eps: float) -> torch.Tensor:
    """Batch norm of ``x (N, C, *)`` with the statistics of this batch."""
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    y = (x - mean) * torch.rsqrt(var + eps)
    shape = [1, -1] + [1] * (x.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


class BatchStatisticsNorm(TorchFunctionMode):
    """Within this context, ``F.batch_norm`` without running statistics is computed by
    `norm` (here `batch_statistics_norm`; a subclass may set another); calls with running
    statistics and every other function pass through unchanged."""

    norm = staticmethod(batch_statistics_norm)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            bound = _bind(*args, **kwargs)
            if bound["running_mean"] is None and bound["running_var"] is None:
                return self.norm(bound["input"], bound["weight"], bound["bias"], bound["eps"])
        return func(*args, **kwargs)


def _bind(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    return {"input": input, "running_mean": running_mean, "running_var": running_var, "weight": weight,
            "bias": bias, "eps": eps}
