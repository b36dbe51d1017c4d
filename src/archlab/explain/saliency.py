"""Saliency: the gradient of the explained output with respect to the input (Simonyan et al., 2014)."""

from __future__ import annotations

from .base import Attribution, Inputs, Target, as_tuple, format_inputs, format_output, format_target, gradients


class Saliency(Attribution):
    r"""Gradient saliency.

    .. math:: a_i = \left|\frac{\partial f_c(x)}{\partial x_i}\right| \quad(\text{or signed, with } abs=False)

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; returns attributions shaped like the inputs.
    """

    def attribute(self, inputs: Inputs, target: Target = None, *, abs: bool = True, additional_forward_args=None):
        method = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, method)
        target = format_target(target, tensors[0].shape[0], method)
        grads, _ = gradients(self.forward_func, tensors, target, as_tuple(additional_forward_args), method)
        return format_output(tuple(g.abs() if abs else g for g in grads), is_tuple)
