"""GradientSHAP (Lundberg and Lee, 2017): expected gradients from a distribution of baselines."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..validation import fail
from .base import (Attribution, Baselines, Inputs, Target, as_tuple, check_positive_int, format_inputs, format_output,
                   format_target, gradients, per_input, run_forward)
from .integrated_gradients import cpu_rows_per_pass


@dataclass
class GradientShapDraws:
    """The random draws of one call, row ``r = b * n_samples + k`` for example ``b``, sample ``k``
    (example-major, Captum's order): a baseline index and Gaussian noise per input, and the
    point along the path."""

    indices: tuple[torch.Tensor, ...]  # (B * n_samples,) long, one per input
    noise: tuple[torch.Tensor, ...]  # (B * n_samples, ...) each, already scaled by stdevs
    alphas: torch.Tensor  # (B * n_samples,) in [0, 1)


class GradientShap(Attribution):
    r"""GradientSHAP: the expectation, over baselines :math:`x'` drawn from a distribution, Gaussian
    noise :math:`\epsilon` and a point :math:`\alpha \sim U(0, 1)` on the path, of the gradient
    times the difference from the baseline (Captum's semantics):

    .. math:: a_i = \mathbb E_{x', \epsilon, \alpha}\Big[(\tilde x_i - x'_i)\,
              \frac{\partial f_c(x' + \alpha (\tilde x - x'))}{\partial x_i}\Big], \qquad \tilde x = x + \epsilon

    estimated with ``n_samples`` draws per example. With one baseline and no noise the
    expectation over :math:`\alpha` is Integrated Gradients, so it meets completeness,
    :math:`\sum_i a_i \to f_c(x) - f_c(x')`, as ``n_samples`` grows.

    `baselines` is the distribution: a tensor ``(N, *inputs.shape[1:])`` of ``N`` reference
    examples (each draw picks one uniformly), one example ``inputs.shape[1:]``, a number, or
    ``None`` (zeros); a tuple gives one per input. The draws come from a CPU generator seeded
    by `seed` (or the `generator` given), in this order: one baseline index per row shared by
    every input, then the noise of each input (``torch.randn(...) * stdev``), then the
    ``alphas``; so a call is reproducible and does not depend on `internal_batch_size`.
    `stdevs` is one number for every input or a tuple of one per input.

    The ``B * n_samples`` rows are evaluated in equal passes of at most ``internal_batch_size``
    rows; by default a size that is fast on CPU is chosen from one example's size, and all rows
    at once on an accelerator.

    With ``return_convergence_delta=True`` the completeness error of every draw is returned
    too, ``sum(a_row) - (f_c(x~) - f_c(x'))``, shape ``(B * n_samples,)``, example-major.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; returns attributions shaped like the inputs.
    """

    def __init__(self, forward_func, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        self.multiply_by_inputs = multiply_by_inputs

    def attribute(self, inputs: Inputs, target: Target = None, *, baselines: Baselines = None, n_samples: int = 5,
                  stdevs: float | tuple = 0.0, additional_forward_args=None, seed: int = 0,
                  generator: torch.Generator | None = None, internal_batch_size: int | None = None,
                  return_convergence_delta: bool = False):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name)
        tensors = tuple(x.detach() for x in tensors)
        check_positive_int(n_samples, "n_samples", name)
        sigmas = per_input(stdevs, tensors, "stdevs", name)
        if any(isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 for s in sigmas):
            raise fail(name, "stdevs", "a float >= 0 or a tuple of them, one per input", stdevs)
        if internal_batch_size is not None:
            check_positive_int(internal_batch_size, "internal_batch_size", name)
        batch = tensors[0].shape[0]
        target = format_target(target, batch, name)
        references = self.reference_distribution(tensors, baselines)
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        draws = self.draw(tensors, references, n_samples, sigmas, generator)
        rows = batch * n_samples
        noisy = tuple(x.repeat_interleave(n_samples, 0) + e.to(x.device, x.dtype) for x, e in zip(tensors, draws.noise))
        starts = tuple(r[i.to(r.device)] for r, i in zip(references, draws.indices))  # (rows, ...) each
        alphas = draws.alphas.to(tensors[0].device, tensors[0].dtype)
        args = as_tuple(additional_forward_args)
        row_target = target.repeat_interleave(n_samples, 0) if isinstance(target, torch.Tensor) else target
        row_args = tuple(a.repeat_interleave(n_samples, 0) if isinstance(a, torch.Tensor) and a.dim()
                         and a.shape[0] == batch else a for a in args)
        # sized by one example, not by the B * n_samples rows, which would all go in one pass (slow on CPU)
        limit = min(rows, internal_batch_size or cpu_rows_per_pass(tensors) or rows)
        passes = -(-rows // limit)
        per_pass = -(-rows // passes)  # equal passes, no short last one
        diffs = tuple(x - s for x, s in zip(noisy, starts))  # x~ - x', (rows, ...) each
        per_row = tuple(torch.empty_like(x) for x in noisy)
        for first in range(0, rows, per_pass):
            part = slice(first, first + per_pass)
            a = alphas[part]
            scaled = tuple(s[part] + a.view(-1, *(1,) * (d.dim() - 1)) * d[part] for d, s in zip(diffs, starts))
            part_args = tuple(v[part] if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == rows else v
                              for v in row_args)
            part_target = row_target[part] if isinstance(row_target, torch.Tensor) else row_target
            got, _ = gradients(self.forward_func, scaled, part_target, part_args, name)
            for out, g, d in zip(per_row, got, diffs):
                out[part] = g * d[part] if self.multiply_by_inputs else g
        attributions = tuple(r.view(batch, n_samples, *r.shape[1:]).mean(1) for r in per_row)
        result = format_output(attributions, is_tuple)
        if not return_convergence_delta:
            return result
        with torch.no_grad():
            end = run_forward(self.forward_func, noisy, row_target, row_args, name)
            start = run_forward(self.forward_func, starts, row_target, row_args, name)
        total = sum(r.reshape(rows, -1).sum(1) for r in per_row)
        return result, total - (end - start).to(total.dtype)

    @staticmethod
    def reference_distribution(inputs: tuple[torch.Tensor, ...], baselines: Baselines) -> tuple[torch.Tensor, ...]:
        """The baselines as ``(N, ...)`` reference examples per input, every input with the same ``N``."""
        name = "GradientShap"
        references = []
        for x, b in zip(inputs, per_input(baselines, inputs, "baselines", name)):
            if b is None:
                b = torch.zeros_like(x[:1])
            elif isinstance(b, (int, float)) and not isinstance(b, bool):
                b = torch.full_like(x[:1], float(b))
            elif not isinstance(b, torch.Tensor):
                raise ConfigError(f"{name}: baselines must be None, a number or a tensor of reference examples "
                                  f"(N, {', '.join(map(str, x.shape[1:]))}); got {type(b).__name__}.")
            elif b.shape == x.shape[1:]:
                b = b[None]
            if b.dim() != x.dim() or b.shape[1:] != x.shape[1:] or b.shape[0] == 0:
                raise ConfigError(f"{name}: baselines are a distribution of reference examples of shape "
                                  f"(N, {', '.join(map(str, x.shape[1:]))}) for inputs of shape {tuple(x.shape)}; "
                                  f"got {tuple(b.shape)}.")
            references.append(b.detach().to(x.device, x.dtype))
        counts = {r.shape[0] for r in references}
        if len(counts) > 1:
            raise ConfigError(f"{name}: every input needs the same number of reference examples; got "
                              f"{[r.shape[0] for r in references]}.")
        return tuple(references)

    @staticmethod
    def draw(inputs: tuple[torch.Tensor, ...], references: tuple[torch.Tensor, ...], n_samples: int,
             stdevs: tuple, generator: torch.Generator) -> GradientShapDraws:
        """The draws of one call from `generator` (on CPU), in the documented order."""
        rows = inputs[0].shape[0] * n_samples
        index = torch.randint(references[0].shape[0], (rows,), generator=generator)
        noise = tuple(torch.randn((rows, *x.shape[1:]), generator=generator, dtype=x.dtype) * float(s)
                      for x, s in zip(inputs, stdevs))
        alphas = torch.rand(rows, generator=generator, dtype=inputs[0].dtype)
        return GradientShapDraws((index,) * len(inputs), noise, alphas)
