"""Integrated Gradients (Sundararajan et al., 2017)."""

from __future__ import annotations

import torch

from .base import (Attribution, Baselines, Inputs, Target, as_tuple, check_positive_int, expand_args,
                   format_baselines_per_input, format_inputs, format_output, format_target, gradients, repeat_target,
                   run_forward)
from .quadrature import quadrature

# On CPU the forward/backward of a couple of hundred examples at a time runs fastest: a batch
# of all n_steps * B scaled inputs at once (Captum's default) spends its time on memory, and
# on a CNN over MNIST passes of 192-256 images beat 320 (benchmarks/NOTES.md).
CPU_CHUNK_ELEMENTS = 2**16


def cpu_rows_per_pass(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> int | None:
    """Rows like those of `inputs` per forward/backward pass: all at once on an accelerator
    (``None``), else about ``CPU_CHUNK_ELEMENTS`` input values (>= 1 row)."""
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    if tensors[0].device.type != "cpu":
        return None
    per_example = max(1, sum(x[0].numel() for x in tensors))
    return max(1, CPU_CHUNK_ELEMENTS // per_example)


def auto_internal_batch_size(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> int | None:
    """Rows per forward/backward pass when `internal_batch_size` is not given: `cpu_rows_per_pass`,
    but at least one batch (IG's passes hold whole steps)."""
    rows = cpu_rows_per_pass(inputs)
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    return None if rows is None else max(tensors[0].shape[0], rows)


class IntegratedGradients(Attribution):
    r"""Integrated Gradients along the straight path from a baseline :math:`x'` to the input :math:`x`.

    .. math:: a_i = (x_i - x'_i) \int_0^1 \frac{\partial f_c(x' + \alpha (x - x'))}{\partial x_i}\, d\alpha
              \approx (x_i - x'_i) \sum_k w_k \frac{\partial f_c(x' + \alpha_k (x - x'))}{\partial x_i}

    Completeness: :math:`\sum_i a_i = f_c(x) - f_c(x')` up to the quadrature error,
    which ``return_convergence_delta=True`` reports per example.

    The ``n_steps * B`` scaled inputs are evaluated in passes of at most
    ``internal_batch_size`` rows (whole steps of the batch each); by default a size that
    is fast on CPU is chosen, and all rows at once on an accelerator.

    Several inputs (a tuple) move along the path together, each from its own baseline.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; baselines broadcastable to each input;
        returns attributions shaped like the inputs (and a delta ``(B,)``).
    """

    def __init__(self, forward_func, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        self.multiply_by_inputs = multiply_by_inputs

    def attribute(self, inputs: Inputs, target: Target = None, *, baselines: Baselines = None,
                  additional_forward_args=None, n_steps: int = 50, method: str = "gausslegendre",
                  internal_batch_size: int | None = None, return_convergence_delta: bool = False):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name)
        tensors = tuple(x.detach() for x in tensors)
        alphas, weights = quadrature(method, n_steps)
        if internal_batch_size is not None:
            check_positive_int(internal_batch_size, "internal_batch_size", name)
        else:
            internal_batch_size = auto_internal_batch_size(tensors)
        batch = tensors[0].shape[0]
        target = format_target(target, batch, name)
        starts = tuple(b.detach() for b in format_baselines_per_input(tensors, baselines, name))
        args = as_tuple(additional_forward_args)
        diffs = tuple(x - b for x, b in zip(tensors, starts))
        steps_per_pass = n_steps if internal_batch_size is None else max(1, internal_batch_size // batch)
        totals = [torch.zeros_like(x) for x in tensors]
        for first in range(0, n_steps, steps_per_pass):
            a, w = alphas[first:first + steps_per_pass], weights[first:first + steps_per_pass]
            steps = a.shape[0]
            scaled = tuple((b + a.to(x.device, x.dtype).view(-1, *(1,) * x.dim()) * d)  # (s*B, ...) each
                           .reshape(steps * batch, *x.shape[1:]) for x, b, d in zip(tensors, starts, diffs))
            grads, _ = gradients(self.forward_func, scaled, repeat_target(target, steps),
                                 expand_args(args, batch, steps), name)
            for total, grad, x in zip(totals, grads, tensors):
                # sum_k w_k * grad_k as one matrix-vector product over the steps
                total += (w.to(x.device, x.dtype) @ grad.reshape(steps, -1)).view(x.shape)
        attributions = tuple(t * d if self.multiply_by_inputs else t for t, d in zip(totals, diffs))
        result = format_output(attributions, is_tuple)
        if not return_convergence_delta:
            return result
        return result, self.convergence_delta(result, format_output(starts, is_tuple), inputs, target, args)

    def convergence_delta(self, attributions: Inputs, start_point: Baselines, end_point: Inputs,
                          target: Target = None, additional_forward_args=None) -> torch.Tensor:
        r"""Completeness error per example, :math:`\sum_i a_i - (f_c(x) - f_c(x'))`, summed over
        every input for a tuple of inputs, shape ``(B,)`` (Captum's ``compute_convergence_delta``)."""
        name = type(self).__name__
        args = as_tuple(additional_forward_args)
        ends, _ = format_inputs(end_point, name)
        target = format_target(target, ends[0].shape[0], name)
        starts = format_baselines_per_input(ends, start_point, name)
        parts = attributions if isinstance(attributions, tuple) else (attributions,)
        with torch.no_grad():
            start = run_forward(self.forward_func, starts, target, args, name)
            end = run_forward(self.forward_func, ends, target, args, name)
        total = sum(a.reshape(a.shape[0], -1).sum(1) for a in parts)
        return total - (end - start).to(total.dtype)
