"""Input x Gradient (Shrikumar et al., 2016)."""

from __future__ import annotations

import torch

from .base import Attribution, Target, as_tuple, check_inputs, format_target, gradients


class InputXGradient(Attribution):
    r"""The input times the gradient of the explained output.

    .. math:: a_i = x_i \, \frac{\partial f_c(x)}{\partial x_i}

    Shapes:
        inputs ``(B, ...)``; returns a tensor shaped like `inputs`.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, additional_forward_args=None) -> torch.Tensor:
        method = type(self).__name__
        inputs = check_inputs(inputs, method)
        target = format_target(target, inputs.shape[0], method)
        grad, _ = gradients(self.forward_func, inputs, target, as_tuple(additional_forward_args), method)
        return inputs.detach() * grad
