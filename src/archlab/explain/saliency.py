"""Saliency: the gradient of the explained output with respect to the input (Simonyan et al., 2014)."""

from __future__ import annotations

import torch

from .base import Attribution, Target, as_tuple, check_inputs, format_target, gradients


class Saliency(Attribution):
    r"""Gradient saliency.

    .. math:: a_i = \left|\frac{\partial f_c(x)}{\partial x_i}\right| \quad(\text{or signed, with } abs=False)

    Shapes:
        inputs ``(B, ...)``; returns a tensor shaped like `inputs`.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, abs: bool = True,
                  additional_forward_args=None) -> torch.Tensor:
        method = type(self).__name__
        inputs = check_inputs(inputs, method)
        target = format_target(target, inputs.shape[0], method)
        grad, _ = gradients(self.forward_func, inputs, target, as_tuple(additional_forward_args), method)
        return grad.abs() if abs else grad
