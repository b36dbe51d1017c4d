"""Integrated Gradients on a layer's output (Captum's `LayerIntegratedGradients`), and token
attributions through the embedding layer of a text model."""

from __future__ import annotations

import torch
from torch import nn

from .base import (Attribution, Baselines, Target, as_tuple, check_inputs, check_positive_int, find_layer,
                   format_target, repeat_target, run_forward, select_target)
from .integrated_gradients import CPU_CHUNK_ELEMENTS, expand_args
from .quadrature import quadrature


class LayerIntegratedGradients(Attribution):
    r"""Integrated Gradients of a layer's output, from its value on the baseline inputs to its
    value on the inputs (e.g. from the embedding of padding tokens to the embedding of the text).

    .. math:: a_j = (h_j - h'_j) \sum_k w_k \frac{\partial f_c}{\partial h_j}\Big(h' + \alpha_k (h - h')\Big),
              \qquad h = \text{layer}(x),\; h' = \text{layer}(x')

    The inputs may be anything the model takes (token ids included): the path runs in the
    layer's output space. ``return_convergence_delta`` reports
    :math:`\sum_j a_j - (f_c(x) - f_c(x'))`.

    Shapes:
        inputs ``(B, ...)``; baselines like inputs (default: zeros, i.e. token id 0); returns a
        tensor shaped like the layer's output (``(B, T, E)`` for an embedding), and a delta ``(B,)``.
    """

    def __init__(self, forward_func, layer: nn.Module | str, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        self.layer = find_layer(forward_func, layer, type(self).__name__)
        self.multiply_by_inputs = multiply_by_inputs

    def _run(self, inputs: torch.Tensor, args: tuple, replacement: torch.Tensor | None = None):
        """Forward `inputs`, capturing the layer's output (or replacing it by `replacement`)."""
        name = type(self).__name__
        captured: list[torch.Tensor] = []

        def hook(module, hook_args, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"{name}: the layer returns a {type(output).__name__}, not a tensor; choose a "
                                 "layer whose output is one tensor.")
            if replacement is None:
                captured.append(output)
                return None
            if replacement.shape != output.shape:
                raise ValueError(f"{name}: the layer's output changed shape from {tuple(replacement.shape)} to "
                                 f"{tuple(output.shape)} between calls.")
            captured.append(replacement)
            return replacement

        handle = self.layer.register_forward_hook(hook)
        try:
            output = self.forward_func(inputs, *args)
        finally:
            handle.remove()
        if not captured:
            raise ValueError(f"{name}: the layer {type(self.layer).__name__} is not called by the model's forward; "
                             "choose a layer the forward passes through.")
        if len(captured) > 1:
            raise ValueError(f"{name}: the layer is called {len(captured)} times in one forward; choose a layer "
                             "that is called once.")
        return output, captured[0]

    def layer_output(self, inputs: torch.Tensor, additional_forward_args=None) -> torch.Tensor:
        """The layer's output for `inputs` (no gradient)."""
        with torch.no_grad():
            return self._run(inputs, as_tuple(additional_forward_args))[1].detach()

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, baselines: Baselines = None,
                  additional_forward_args=None, n_steps: int = 50, method: str = "gausslegendre",
                  internal_batch_size: int | None = None, return_convergence_delta: bool = False):
        name = type(self).__name__
        inputs = check_inputs(inputs, name, floating=False).detach()
        alphas, weights = quadrature(method, n_steps)
        batch = inputs.shape[0]
        target = format_target(target, batch, name)
        if baselines is None:
            baselines = torch.zeros_like(inputs)
        elif isinstance(baselines, (int, float)) and not isinstance(baselines, bool):
            baselines = torch.full_like(inputs, baselines)
        elif not isinstance(baselines, torch.Tensor) or baselines.shape != inputs.shape:
            raise ValueError(f"{name}: baselines must be None, a number or inputs of the same shape as `inputs` "
                             f"{tuple(inputs.shape)}; got {tuple(getattr(baselines, 'shape', ())) or baselines!r}.")
        args = as_tuple(additional_forward_args)
        end = self.layer_output(inputs, args)
        start = self.layer_output(baselines.to(inputs.device), args)
        if not end.is_floating_point():
            raise ValueError(f"{name}: the layer's output is {end.dtype}; choose a layer with a floating-point output "
                             "(e.g. the embedding, not the input ids).")
        diff = end - start
        if internal_batch_size is not None:
            check_positive_int(internal_batch_size, "internal_batch_size", name)
        elif end.device.type == "cpu":
            internal_batch_size = max(batch, CPU_CHUNK_ELEMENTS // max(1, end[0].numel()))
        steps_per_pass = n_steps if internal_batch_size is None else max(1, internal_batch_size // batch)
        view = (-1,) + (1,) * end.dim()
        alphas, weights = alphas.to(end.device, end.dtype), weights.to(end.device, end.dtype)
        total = torch.zeros_like(end)
        for first in range(0, n_steps, steps_per_pass):
            a, w = alphas[first:first + steps_per_pass], weights[first:first + steps_per_pass]
            steps = a.shape[0]
            scaled = (start + a.view(view) * diff).reshape(steps * batch, *end.shape[1:]).requires_grad_(True)
            with torch.enable_grad():
                output, _ = self._run(torch.cat([inputs] * steps), expand_args(args, batch, steps), scaled)
                selected = select_target(output, repeat_target(target, steps), name)
                if not selected.requires_grad:
                    raise ValueError(f"{name} is a gradient method, but the model's output does not depend "
                                     "differentiably on the layer's output.")
                (grad,) = torch.autograd.grad(selected.sum(), scaled)
            total += (grad.view(steps, *end.shape) * w.view(view)).sum(0)
        attributions = total * diff if self.multiply_by_inputs else total
        if not return_convergence_delta:
            return attributions
        with torch.no_grad():
            gap = (run_forward(self.forward_func, inputs, target, args, name)
                   - run_forward(self.forward_func, baselines, target, args, name))
        return attributions, attributions.reshape(batch, -1).sum(1) - gap.to(attributions.dtype)


class TokenAttribution(LayerIntegratedGradients):
    r"""Integrated Gradients of a text model's prediction for each token: layer IG on the
    embedding (``model.embedding`` unless another `layer` is given), summed over the
    embedding dimension, from the embedding of the baseline tokens (default: token 0, the
    padding id of archlab's text models).

    .. math:: a_t = \sum_e \mathrm{IG}_{t,e}(\text{embedding})

    Shapes:
        inputs token ids ``(B, T)``; returns ``(B, T)`` (and a delta ``(B,)``).
    """

    def __init__(self, forward_func, layer: nn.Module | str | None = None):
        if layer is None:
            layer = getattr(forward_func, "embedding", None)
            if not isinstance(layer, nn.Module):
                raise ValueError(f"{type(self).__name__}: the model has no `embedding` layer (a model built for "
                                 "token ids has one); pass the embedding layer as `layer`.")
        super().__init__(forward_func, layer)

    def attribute(self, inputs: torch.Tensor, target: Target = None, **kwargs):
        result = super().attribute(inputs, target, **kwargs)
        if isinstance(result, tuple):
            return result[0].sum(-1), result[1]
        return result.sum(-1)
