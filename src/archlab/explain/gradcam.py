"""Grad-CAM: class activation maps from a layer's activations weighted by their pooled gradients
(Selvaraju et al., 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attribution, Target, as_tuple, check_inputs, find_layer, format_target, run_forward

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area")


class GradCAM(Attribution):
    r"""Grad-CAM on a chosen layer (a module of the model, or its dotted name).

    .. math:: \alpha_k = \frac{1}{Z}\sum_{u} \frac{\partial f_c}{\partial A_k^{u}}, \qquad
              L = \mathrm{ReLU}\Big(\sum_k \alpha_k A_k\Big)

    where :math:`A_k` is channel ``k`` of the layer's output and ``u`` runs over its
    spatial positions. ``relu_attributions=False`` keeps the signed map (Captum's
    `LayerGradCam` default); ``attr_dim_summation=False`` keeps one map per channel.
    ``upsample=True`` (the default) resizes the map to the input's spatial size.

    Shapes:
        layer output ``(B, C, *S)``; returns ``(B, 1, *input_spatial)`` (broadcastable to
        image inputs ``(B, C_in, H, W)``), or ``(B, 1, *S)`` with ``upsample=False``.
    """

    def __init__(self, forward_func, layer: nn.Module | str):
        super().__init__(forward_func)
        self.layer = find_layer(forward_func, layer, type(self).__name__)

    def layer_activations(self, inputs: torch.Tensor, target: Target, additional_forward_args=None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's output ``(B, C, *S)`` and the gradient of the explained output with respect to it."""
        name = type(self).__name__
        captured: list[torch.Tensor] = []

        def hook(module, args, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"{name}: the layer returns a {type(output).__name__}, not a tensor; "
                                 "choose a layer whose output is one tensor.")
            captured.append(output)

        handle = self.layer.register_forward_hook(hook)
        try:
            with torch.enable_grad():
                x = inputs.detach().requires_grad_(inputs.is_floating_point())
                outputs = run_forward(self.forward_func, x, target, as_tuple(additional_forward_args), name)
                if not captured:
                    raise ValueError(f"{name}: the layer {type(self.layer).__name__} is not called by the model's "
                                     "forward; choose a layer the forward passes through.")
                if len(captured) > 1:
                    raise ValueError(f"{name}: the layer is called {len(captured)} times in one forward; "
                                     "choose a layer that is called once.")
                activations = captured[0]
                if not outputs.requires_grad or not activations.requires_grad:
                    raise ValueError(f"{name} is a gradient method, but the model's output does not depend "
                                     "differentiably on the layer's output.")
                (grad,) = torch.autograd.grad(outputs.sum(), activations, allow_unused=True)
        finally:
            handle.remove()
        if grad is None:
            raise ValueError(f"{name}: the model's output does not depend on the chosen layer.")
        return activations.detach(), grad

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, additional_forward_args=None,
                  relu_attributions: bool = True, attr_dim_summation: bool = True, upsample: bool = True,
                  interpolate_mode: str = "bilinear") -> torch.Tensor:
        name = type(self).__name__
        inputs = check_inputs(inputs, name, floating=False)
        target = format_target(target, inputs.shape[0], name)
        activations, grad = self.layer_activations(inputs, target, additional_forward_args)
        if activations.dim() < 3:
            raise ValueError(f"{name}: the layer's output has shape {tuple(activations.shape)}; Grad-CAM needs "
                             "channels and spatial positions (batch, channels, ...), e.g. a convolution's output.")
        weights = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True)  # alpha_k: (B, C, 1, ...)
        cam = weights * activations
        if attr_dim_summation:
            cam = cam.sum(1, keepdim=True)  # (B, 1, *S)
        if relu_attributions:
            cam = F.relu(cam)
        if not upsample:
            return cam
        if interpolate_mode not in MODES:
            raise ValueError(f"The 'interpolate_mode' parameter of {name} must be one of {', '.join(MODES)}. "
                             f"Got {interpolate_mode!r} instead.")
        size = tuple(inputs.shape[2:])
        if len(size) != cam.dim() - 2:
            raise ValueError(f"{name}: cannot upsample a map of shape {tuple(cam.shape)} to inputs of shape "
                             f"{tuple(inputs.shape)}; pass upsample=False.")
        align = False if interpolate_mode in ("linear", "bilinear", "bicubic", "trilinear") else None
        return F.interpolate(cam, size=size, mode=interpolate_mode, align_corners=align)
