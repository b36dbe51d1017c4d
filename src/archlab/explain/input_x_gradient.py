"""Input x Gradient (Shrikumar et al., 2016)."""

from __future__ import annotations

from .base import Attribution, Inputs, Target, as_tuple, format_inputs, format_output, format_target, gradients


class InputXGradient(Attribution):
    r"""The input times the gradient of the explained output.

    .. math:: a_i = x_i \, \frac{\partial f_c(x)}{\partial x_i}

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; returns attributions shaped like the inputs.
    """

    def attribute(self, inputs: Inputs, target: Target = None, *, additional_forward_args=None):
        method = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, method)
        target = format_target(target, tensors[0].shape[0], method)
        grads, _ = gradients(self.forward_func, tensors, target, as_tuple(additional_forward_args), method)
        return format_output(tuple(x.detach() * g for x, g in zip(tensors, grads)), is_tuple)
