"""SmoothGrad, SmoothGrad-squared and VarGrad: an attribution averaged over noisy copies of the input
(Smilkov et al., 2017; Adebayo et al., 2018)."""

from __future__ import annotations

import torch

from .base import Attribution, Target, check_inputs, check_positive_int, format_target
from .saliency import Saliency

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _expand(value, batch: int, times: int):
    """Per-example tensors repeated `times` (sample-major); everything else kept."""
    if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch:
        return torch.cat([value] * times)
    if isinstance(value, tuple):
        return tuple(_expand(v, batch, times) for v in value)
    return value


class SmoothGrad(Attribution):
    r"""Average an attribution method over ``nt_samples`` copies of the input with Gaussian noise.

    .. math:: \text{smoothgrad}: \frac1n \sum_{k} A(x + \epsilon_k), \quad
              \text{smoothgrad\_sq}: \frac1n \sum_{k} A(x + \epsilon_k)^2, \quad
              \text{vargrad}: \frac1n \sum_{k} A(x + \epsilon_k)^2 - \Big(\frac1n \sum_{k} A(x + \epsilon_k)\Big)^2

    with :math:`\epsilon_k \sim \mathcal N(0, \sigma^2)` drawn from a generator seeded by
    `seed`, so the same call gives the same map. `SmoothGrad(model)` smooths the
    gradient (`Saliency`); `SmoothGrad(IntegratedGradients(model))` smooths another method.
    `stdevs` is in the units of the input (0.15 suits inputs scaled to [0, 1]).

    Shapes:
        inputs ``(B, ...)``; returns a tensor shaped like `inputs`.
    """

    def __init__(self, forward_func_or_method):
        if isinstance(forward_func_or_method, Attribution):
            self.method = forward_func_or_method
        else:
            self.method = Saliency(forward_func_or_method)
        super().__init__(self.method.forward_func)

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, nt_type: str = "smoothgrad",
                  nt_samples: int = 5, nt_samples_batch_size: int | None = None, stdevs: float = 0.15,
                  seed: int = 0, **kwargs) -> torch.Tensor:
        name = type(self).__name__
        inputs = check_inputs(inputs, name).detach()
        if nt_type not in NT_TYPES:
            raise ValueError(f"The 'nt_type' parameter of {name} must be one of {', '.join(NT_TYPES)}. "
                             f"Got {nt_type!r} instead.")
        check_positive_int(nt_samples, "nt_samples", name)
        per_pass = nt_samples if nt_samples_batch_size is None else check_positive_int(
            nt_samples_batch_size, "nt_samples_batch_size", name)
        if isinstance(stdevs, bool) or not isinstance(stdevs, (int, float)) or not stdevs >= 0:
            raise ValueError(f"The 'stdevs' parameter of {name} must be a number >= 0. Got {stdevs!r} instead.")
        batch = inputs.shape[0]
        target = format_target(target, batch, name)
        generator = torch.Generator().manual_seed(seed)  # on CPU: the same noise on every device
        total = torch.zeros_like(inputs)
        total_sq = torch.zeros_like(inputs)
        for start in range(0, nt_samples, per_pass):
            k = min(per_pass, nt_samples - start)
            # one draw per sample, so the noise does not depend on nt_samples_batch_size
            noise = torch.stack([torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype)
                                 for _ in range(k)]) * stdevs
            noisy = (inputs[None] + noise.to(inputs.device)).reshape(k * batch, *inputs.shape[1:])
            extra = {key: _expand(value, batch, k) for key, value in kwargs.items()}
            attr = self.method.attribute(noisy, _expand(target, batch, k), **extra).view(k, *inputs.shape)
            total += attr.sum(0)
            total_sq += (attr * attr).sum(0)
        mean, mean_sq = total / nt_samples, total_sq / nt_samples
        if nt_type == "smoothgrad":
            return mean
        if nt_type == "smoothgrad_sq":
            return mean_sq
        return mean_sq - mean * mean
