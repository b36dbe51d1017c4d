"""Integrated Gradients (Sundararajan et al., 2017)."""

from __future__ import annotations

import torch

from .base import (Attribution, Baselines, Target, as_tuple, check_inputs, check_positive_int, format_baselines,
                   format_target, gradients, repeat_target, run_forward)
from .quadrature import quadrature

# On CPU the forward/backward of a few hundred examples at a time runs fastest: a batch
# of all n_steps * B scaled inputs at once (Captum's default) spends its time on memory.
CPU_CHUNK_ELEMENTS = 2**18


def auto_internal_batch_size(inputs: torch.Tensor) -> int | None:
    """Rows per forward/backward pass when `internal_batch_size` is not given: all at
    once on an accelerator, else about ``CPU_CHUNK_ELEMENTS`` input values (>= 1 batch)."""
    if inputs.device.type != "cpu":
        return None
    per_example = max(1, inputs[0].numel())
    return max(inputs.shape[0], CPU_CHUNK_ELEMENTS // per_example)


def expand_args(args: tuple, batch_size: int, times: int) -> tuple:
    """Tensor arguments with one row per example repeated `times` (step-major); others kept."""
    return tuple(torch.cat([a] * times) if isinstance(a, torch.Tensor) and a.dim() and a.shape[0] == batch_size
                 else a for a in args)


class IntegratedGradients(Attribution):
    r"""Integrated Gradients along the straight path from a baseline :math:`x'` to the input :math:`x`.

    .. math:: a_i = (x_i - x'_i) \int_0^1 \frac{\partial f_c(x' + \alpha (x - x'))}{\partial x_i}\, d\alpha
              \approx (x_i - x'_i) \sum_k w_k \frac{\partial f_c(x' + \alpha_k (x - x'))}{\partial x_i}

    Completeness: :math:`\sum_i a_i = f_c(x) - f_c(x')` up to the quadrature error,
    which ``return_convergence_delta=True`` reports per example.

    The ``n_steps * B`` scaled inputs are evaluated in passes of at most
    ``internal_batch_size`` rows (whole steps of the batch each); by default a size that
    is fast on CPU is chosen, and all rows at once on an accelerator.

    Shapes:
        inputs ``(B, ...)``; baselines broadcastable to inputs; returns a tensor shaped
        like `inputs` (and a delta ``(B,)``).
    """

    def __init__(self, forward_func, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        self.multiply_by_inputs = multiply_by_inputs

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, baselines: Baselines = None,
                  additional_forward_args=None, n_steps: int = 50, method: str = "gausslegendre",
                  internal_batch_size: int | None = None, return_convergence_delta: bool = False):
        name = type(self).__name__
        inputs = check_inputs(inputs, name).detach()
        alphas, weights = quadrature(method, n_steps)
        if internal_batch_size is not None:
            check_positive_int(internal_batch_size, "internal_batch_size", name)
        else:
            internal_batch_size = auto_internal_batch_size(inputs)
        batch = inputs.shape[0]
        target = format_target(target, batch, name)
        baselines = format_baselines(inputs, baselines, name).detach()
        args = as_tuple(additional_forward_args)
        diff = inputs - baselines
        view = (-1,) + (1,) * inputs.dim()
        alphas, weights = alphas.to(inputs.device, inputs.dtype), weights.to(inputs.device, inputs.dtype)
        steps_per_pass = n_steps if internal_batch_size is None else max(1, internal_batch_size // batch)
        total = torch.zeros_like(inputs)
        for start in range(0, n_steps, steps_per_pass):
            a, w = alphas[start:start + steps_per_pass], weights[start:start + steps_per_pass]
            steps = a.shape[0]
            scaled = (baselines + a.view(view) * diff).reshape(steps * batch, *inputs.shape[1:])  # (s*B, ...)
            grad, _ = gradients(self.forward_func, scaled, repeat_target(target, steps),
                                expand_args(args, batch, steps), name)
            total += (grad.view(steps, *inputs.shape) * w.view(view)).sum(0)
        attributions = total * diff if self.multiply_by_inputs else total
        if not return_convergence_delta:
            return attributions
        return attributions, self.convergence_delta(attributions, baselines, inputs, target, args)

    def convergence_delta(self, attributions: torch.Tensor, start_point: torch.Tensor, end_point: torch.Tensor,
                          target: Target = None, additional_forward_args=None) -> torch.Tensor:
        r"""Completeness error per example, :math:`\sum_i a_i - (f_c(x) - f_c(x'))`, shape ``(B,)``."""
        name = type(self).__name__
        args = as_tuple(additional_forward_args)
        target = format_target(target, end_point.shape[0], name)
        start_point = format_baselines(end_point, start_point, name)
        with torch.no_grad():
            start = run_forward(self.forward_func, start_point, target, args, name)
            end = run_forward(self.forward_func, end_point, target, args, name)
        return attributions.reshape(attributions.shape[0], -1).sum(1) - (end - start).to(attributions.dtype)
