"""SmoothGrad, SmoothGrad-squared and VarGrad: an attribution averaged over noisy copies of the input
(Smilkov et al., 2017; Adebayo et al., 2018)."""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import (Attribution, Inputs, Target, check_positive_int, format_inputs, format_output, format_target,
                   per_input)
from .saliency import Saliency
from ..validation import check_choice, fail

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _expand(value, batch: int, times: int):
    """Per-example tensors repeated `times` (sample-major); everything else kept."""
    if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch:
        return torch.cat([value] * times)
    if isinstance(value, tuple):
        return tuple(_expand(v, batch, times) for v in value)
    return value


class SmoothGrad(Attribution):
    r"""Average an attribution method over ``nt_samples`` copies of the input with Gaussian noise
    (Captum's ``NoiseTunnel``).

    .. math:: \text{smoothgrad}: \frac1n \sum_{k} A(x + \epsilon_k), \quad
              \text{smoothgrad\_sq}: \frac1n \sum_{k} A(x + \epsilon_k)^2, \quad
              \text{vargrad}: \frac1n \sum_{k} A(x + \epsilon_k)^2 - \Big(\frac1n \sum_{k} A(x + \epsilon_k)\Big)^2

    with :math:`\epsilon_k \sim \mathcal N(0, \sigma^2)` drawn from a CPU generator seeded by
    `seed`, so the same call gives the same map: sample after sample, and within a sample
    input after input, ``torch.randn(input.shape, generator=...) * stdev``.
    `SmoothGrad(model)` smooths the gradient (`Saliency`); `SmoothGrad(IntegratedGradients(model))`
    smooths another method. `stdevs` is in the units of the input (0.15 suits inputs scaled
    to [0, 1]); with several inputs it is one number for all or a tuple with one per input.

    With ``return_convergence_delta=True`` (for a method that reports one, such as
    `IntegratedGradients`) the deltas of every noisy copy are returned too, example-major
    as Captum orders them: ``delta[b * nt_samples + k]`` is example ``b``'s, sample ``k``.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; returns attributions shaped like the inputs
        (and a delta ``(B * nt_samples,)``).
    """

    def __init__(self, forward_func_or_method):
        if isinstance(forward_func_or_method, Attribution):
            self.method = forward_func_or_method
        else:
            self.method = Saliency(forward_func_or_method)
        super().__init__(self.method.forward_func)

    def attribute(self, inputs: Inputs, target: Target = None, *, nt_type: str = "smoothgrad",
                  nt_samples: int = 5, nt_samples_batch_size: int | None = None, stdevs: float | tuple = 0.15,
                  seed: int = 0, **kwargs):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name)
        tensors = tuple(x.detach() for x in tensors)
        check_choice(name, "nt_type", nt_type, NT_TYPES)
        check_positive_int(nt_samples, "nt_samples", name)
        per_pass = nt_samples if nt_samples_batch_size is None else check_positive_int(
            nt_samples_batch_size, "nt_samples_batch_size", name)
        sigmas = per_input(stdevs, tensors, "stdevs", name)
        if any(isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 for s in sigmas):
            raise fail(name, "stdevs", "a float >= 0 or a tuple of them, one per input", stdevs)
        with_delta = bool(kwargs.get("return_convergence_delta", False))
        if with_delta and not hasattr(self.method, "convergence_delta"):
            raise ConfigError(f"{name}: return_convergence_delta=True needs a method that reports a convergence "
                              f"delta, such as IntegratedGradients; {type(self.method).__name__} has none.")
        batch = tensors[0].shape[0]
        target = format_target(target, batch, name)
        generator = torch.Generator().manual_seed(seed)  # on CPU: the same noise on every device
        totals = [0.0] * len(tensors)
        totals_sq = [0.0] * len(tensors)
        deltas = []
        for start in range(0, nt_samples, per_pass):
            k = min(per_pass, nt_samples - start)
            # one draw per sample and input, so the noise does not depend on nt_samples_batch_size
            draws = [[torch.randn(x.shape, generator=generator, dtype=x.dtype) for x in tensors] for _ in range(k)]
            noisy = tuple((x[None] + torch.stack([d[i] for d in draws]).to(x.device) * sigma)
                          .reshape(k * batch, *x.shape[1:]) for i, (x, sigma) in enumerate(zip(tensors, sigmas)))
            extra = {key: _expand(value, batch, k) for key, value in kwargs.items()}
            result = self.method.attribute(format_output(noisy, is_tuple), _expand(target, batch, k), **extra)
            if with_delta:
                result, delta = result
                deltas.append(delta.view(k, batch))
            parts = result if is_tuple else (result,)
            for i, (attr, x) in enumerate(zip(parts, tensors)):
                attr = attr.view(k, *x.shape)
                totals[i] = totals[i] + attr.sum(0)
                totals_sq[i] = totals_sq[i] + (attr * attr).sum(0)
        means = tuple(t / nt_samples for t in totals)
        means_sq = tuple(t / nt_samples for t in totals_sq)
        if nt_type == "smoothgrad":
            smoothed = means
        elif nt_type == "smoothgrad_sq":
            smoothed = means_sq
        else:
            smoothed = tuple(sq - m * m for m, sq in zip(means, means_sq))
        attributions = format_output(smoothed, is_tuple)
        if not with_delta:
            return attributions
        return attributions, torch.cat(deltas).T.reshape(-1)  # (nt_samples, B) -> example-major
