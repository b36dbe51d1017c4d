"""Grad-CAM: class activation maps from a layer's activations weighted by their pooled gradients
(Selvaraju et al., 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import Attribution, Target, as_tuple, find_layer, format_target, select_target
from .layer_integrated_gradients import (Inputs, batch_dims, check_batch_dim, format_inputs, is_float_tensor, rebuild,
                                         tap_layers)
from ..validation import check_choice

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area")


class GradCAM(Attribution):
    r"""Grad-CAM on a chosen layer (a module of the model, or its dotted name).

    .. math:: \alpha_k = \frac{1}{Z}\sum_{u} \frac{\partial f_c}{\partial A_k^{u}}, \qquad
              L = \mathrm{ReLU}\Big(\sum_k \alpha_k A_k\Big)

    where :math:`A_k` is channel ``k`` (dimension 1) of the layer's output and ``u`` runs over
    its positions (dimensions 2 on); a ``(B, C)`` output has no positions, so
    :math:`\alpha_k` is the gradient itself, as in Captum. ``relu_attributions=False`` keeps
    the signed map (Captum's `LayerGradCam` default); ``attr_dim_summation=False`` keeps one
    map per channel. ``upsample=True`` (the default; Captum never upsamples) resizes the map to
    the spatial size of the (first) input. ``attribute_to_layer_input=True`` maps the layer's
    input instead of its output.

    ``reshape_transform`` (pytorch-grad-cam's name) lays a layer's value out as channels and
    positions before the map is made; it is applied to the activations and to their gradients
    alike. A vision transformer's tokens ``(B, T, E)`` become ``(B, E, grid_h, grid_w)`` with
    ``reshape_transform=vit.tokens_to_grid``.

    A layer whose value is a tuple (an LSTM's ``(out, (h_n, c_n))``, attention's
    ``(output, weights)``) gets one map per tensor, nested the same way (``None`` for
    what is not a floating-point tensor); a tensor the output does not use gets a zero map.
    The states ``(num_layers * directions, B, H)`` of torch's recurrent layers are read
    batch-second and mapped batch-first, ``(B, 1, H)``.

    Shapes:
        inputs ``(B, C_in, *spatial)`` or a tuple of tensors forwarded as separate arguments;
        layer output ``(B, C, *S)``; returns ``(B, 1, *spatial)`` (broadcastable to image inputs),
        or ``(B, 1, *S)`` with ``upsample=False``.
    """

    def __init__(self, forward_func, layer: nn.Module | str, *,
                 reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__(forward_func)
        self.layer = find_layer(forward_func, layer, type(self).__name__)
        self.reshape_transform = reshape_transform

    def _leaves(self, inputs: tuple[torch.Tensor, ...], target: Target, args: tuple, to_input: bool
                ) -> tuple[Any, list, list]:
        """The layer's value, and per leaf its activation and the gradient of the explained
        output with respect to it (``None`` for leaves that are not floating-point tensors)."""
        name = type(self).__name__
        what = "input" if to_input else "output"
        originals: dict[int, torch.Tensor] = {}

        def keep(index: int, leaves: list) -> list:
            new = []
            for k, leaf in enumerate(leaves):
                if is_float_tensor(leaf):
                    # a frozen model's activations need a gradient of their own
                    originals[k] = leaf if leaf.requires_grad else leaf.detach().requires_grad_(True)
                    # the model goes on with a copy, so that an in-place op after the layer
                    # cannot overwrite the activations kept here
                    leaf = originals[k].clone()
                new.append(leaf)
            return new

        with torch.enable_grad():
            output, [(value, leaves)] = tap_layers(lambda: self.forward_func(*inputs, *args), [self.layer],
                                                   to_input=to_input, method=name, replace=keep)
            if not originals:
                kinds = sorted({str(leaf.dtype) if isinstance(leaf, torch.Tensor) else type(leaf).__name__
                                for leaf in leaves})
                found = ", ".join(kinds) or "nothing: keyword arguments are not seen"
                raise ValueError(f"{name}: the layer's {what} holds no floating-point tensor ({found}); choose a "
                                 "layer with floating-point activations.")
            selected = select_target(output, target, name)
            if not selected.requires_grad or not any(t.requires_grad for t in originals.values()):
                raise ValueError(f"{name} is a gradient method, but the model's output does not depend "
                                 f"differentiably on the layer's {what}.")
            keys = list(originals)
            grads = torch.autograd.grad(selected.sum(), [originals[k] for k in keys], allow_unused=True)
        if all(grad is None for grad in grads):
            raise ValueError(f"{name}: the model's output does not depend on the chosen layer.")
        activations: list = [None] * len(leaves)
        gradients: list = [None] * len(leaves)
        for k, grad in zip(keys, grads):
            activations[k] = originals[k].detach()
            gradients[k] = torch.zeros_like(activations[k]) if grad is None else grad
        return value, activations, gradients

    def layer_activations(self, inputs: Inputs, target: Target, additional_forward_args=None, *,
                          attribute_to_layer_input: bool = False) -> tuple[Any, Any]:
        """The layer's value (output, or input) and the gradient of the explained output with
        respect to it: tensors, or nested tuples like the layer's value."""
        name = type(self).__name__
        inputs, _ = format_inputs(inputs, name)
        target = format_target(target, inputs[0].shape[0], name)
        value, activations, gradients = self._leaves(inputs, target, as_tuple(additional_forward_args),
                                                     attribute_to_layer_input)
        return rebuild(value, iter(activations)), rebuild(value, iter(gradients))

    def attribute(self, inputs: Inputs, target: Target = None, *, additional_forward_args=None,
                  attribute_to_layer_input: bool = False, relu_attributions: bool = True,
                  attr_dim_summation: bool = True, upsample: bool = True, interpolate_mode: str = "bilinear"):
        name = type(self).__name__
        what = "input" if attribute_to_layer_input else "output"
        inputs, _ = format_inputs(inputs, name)
        batch = inputs[0].shape[0]
        target = format_target(target, batch, name)
        if upsample:
            check_choice(name, "interpolate_mode", interpolate_mode, MODES)
        value, activations, gradients = self._leaves(inputs, target, as_tuple(additional_forward_args),
                                                     attribute_to_layer_input)
        maps: list = []
        for a, grad, dim in zip(activations, gradients, batch_dims(self.layer, len(activations))):
            if a is None:
                maps.append(None)
                continue
            check_batch_dim(a, dim, batch, name, what)
            a, grad = a.movedim(dim, 0), grad.movedim(dim, 0)  # batch-first: (B, C, *S)
            if self.reshape_transform is not None:
                a, grad = self.reshape_transform(a), self.reshape_transform(grad)
            if a.dim() < 2:
                raise ValueError(f"{name}: the layer's {what} has shape {tuple(a.shape)}; Grad-CAM needs channels "
                                 "(batch, channels, ...), e.g. a convolution's output.")
            weights = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True) if grad.dim() > 2 else grad  # alpha_k
            cam = weights * a
            if attr_dim_summation:
                cam = cam.sum(1, keepdim=True)  # (B, 1, *S)
            maps.append(F.relu(cam) if relu_attributions else cam)
        if upsample:
            if len(maps) != 1:
                raise ValueError(f"{name}: the layer's {what} is a tuple of {len(maps)} values; upsampling resizes "
                                 "one map to the image, so pass upsample=False (Captum's LayerGradCam never "
                                 "upsamples).")
            maps[0] = self._upsample(maps[0], inputs[0], interpolate_mode)
        return rebuild(value, iter(maps))

    def _upsample(self, cam: torch.Tensor, inputs: torch.Tensor, mode: str) -> torch.Tensor:
        """`cam` ``(B, 1, *S)`` resized to the spatial size of `inputs` ``(B, C, *spatial)``."""
        size = tuple(inputs.shape[2:])
        if cam.dim() < 3 or len(size) != cam.dim() - 2:
            raise ValueError(f"{type(self).__name__}: cannot upsample a map of shape {tuple(cam.shape)} to inputs "
                             f"of shape {tuple(inputs.shape)}; pass upsample=False.")
        align = False if mode in ("linear", "bilinear", "bicubic", "trilinear") else None
        return F.interpolate(cam, size=size, mode=mode, align_corners=align)
