"""Integrated Gradients on layers (Captum's `LayerIntegratedGradients`), token attributions
through the embedding layer of a text model, and the layer plumbing Grad-CAM shares.

A layer's value is its output, or with ``attribute_to_layer_input=True`` its positional
inputs (one argument stands for itself). It may be one tensor or nested tuples of them, as
an LSTM's ``(out, (h_n, c_n))``; attributions come back nested the same way, with ``None``
where the value holds something that is not a floating-point tensor (a block's absent
attention weights, a mask).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .base import (Attribution, Target, as_tuple, broadcasts_to, check_inputs, check_positive_int, find_layer,
                   format_target, repeat_target, select_target)
from .integrated_gradients import CPU_CHUNK_ELEMENTS, expand_args
from .quadrature import quadrature

Inputs = Union[torch.Tensor, tuple]


def format_inputs(inputs: Inputs, method: str) -> tuple[tuple[torch.Tensor, ...], bool]:
    """`inputs` as a tuple of tensors, each forwarded as its own argument (Captum's convention),
    and whether a tuple was given."""
    if not isinstance(inputs, tuple):
        return (check_inputs(inputs, method, floating=False).detach(),), False
    if not inputs:
        raise ValueError(f"{method}: inputs is an empty tuple; give a tensor or a tuple of tensors.")
    tensors = tuple(check_inputs(x, method, floating=False).detach() for x in inputs)
    if len({x.shape[0] for x in tensors}) > 1:
        raise ValueError(f"{method}: every input must have the same batch size first; got shapes "
                         f"{[tuple(x.shape) for x in tensors]}.")
    return tensors, True


def flatten(value: Any) -> list:
    """The leaves of nested tuples and lists (tensors, None, ...), depth first."""
    if isinstance(value, (tuple, list)) and not isinstance(value, PackedSequence):
        return [leaf for item in value for leaf in flatten(item)]
    return [value]


def rebuild(template: Any, leaves: Iterator, *, same_type: bool = False) -> Any:
    """`template`'s nesting filled with `leaves` in order: as plain tuples and lists, or with
    ``same_type`` as the template's own types (named tuples too), to hand a value back to a model."""
    if isinstance(template, (tuple, list)) and not isinstance(template, PackedSequence):
        items = [rebuild(item, leaves, same_type=same_type) for item in template]
        if not same_type:
            return items if isinstance(template, list) else tuple(items)
        return type(template)(*items) if hasattr(template, "_fields") else type(template)(items)
    return next(leaves)


def batch_dims(layer: nn.Module, count: int) -> list[int]:
    """The batch dimension of each of the `count` leaves of a layer's value. torch's recurrent
    layers keep their states ``(num_layers * directions, B, H)`` batch-second, and their
    sequence too unless ``batch_first``; every other tensor is batch-first, as Captum assumes."""
    if isinstance(layer, nn.RNNBase):
        return [0 if layer.batch_first else 1] + [1] * (count - 1)
    return [0] * count


def is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def copy_float_leaves(index: int, leaves: list) -> list:
    """The model goes on with copies, so that an in-place op after the layer (``ReLU(inplace=True)``)
    cannot overwrite the value kept."""
    return [leaf.clone() if is_float_tensor(leaf) else leaf for leaf in leaves]


def tap_layers(forward: Callable[[], Any], layers: list[nn.Module], *, to_input: bool, method: str,
               replace: Callable[[int, list], list] | None = None) -> tuple[Any, list[tuple[Any, list]]]:
    """Run ``forward()`` once with a hook on each layer. Returns the model's output and, per layer,
    its value (output, or positional inputs with `to_input`) with the value's leaves.
    ``replace(index, leaves)`` gives the leaves the model goes on with instead."""
    captured: list[list[tuple[Any, list]]] = [[] for _ in layers]
    what = "input" if to_input else "output"

    def on_value(index: int, value: Any) -> Any:
        leaves = flatten(value)
        if any(isinstance(leaf, PackedSequence) for leaf in leaves):
            raise ValueError(f"{method}: the layer's {what} is a PackedSequence, whose rows are not one per "
                             "example; run the model without packing (e.g. without `lengths`) or choose a layer "
                             "after pad_packed_sequence.")
        captured[index].append((value, leaves))
        if replace is None:
            return None
        return rebuild(value, iter(replace(index, leaves)), same_type=True)

    def output_hook(index: int):
        return lambda module, args, output: on_value(index, output)

    def input_hook(index: int):
        def hook(module, args):
            new = on_value(index, args[0] if len(args) == 1 else args)
            return None if new is None else ((new,) if len(args) == 1 else new)
        return hook

    handles = [layer.register_forward_pre_hook(input_hook(i)) if to_input
               else layer.register_forward_hook(output_hook(i)) for i, layer in enumerate(layers)]
    try:
        output = forward()
    finally:
        for handle in handles:
            handle.remove()
    for layer, calls in zip(layers, captured):
        if not calls:
            raise ValueError(f"{method}: the layer {type(layer).__name__} is not called by the model's forward; "
                             "choose a layer the forward passes through.")
        if len(calls) > 1:
            raise ValueError(f"{method}: the layer {type(layer).__name__} is called {len(calls)} times in one "
                             "forward; choose a layer that is called once.")
    return output, [calls[0] for calls in captured]


def check_batch_dim(leaf: torch.Tensor, dim: int, batch: int, method: str, what: str) -> None:
    if leaf.dim() <= dim or leaf.shape[dim] != batch:
        raise ValueError(f"{method}: the layer's {what} has a tensor of shape {tuple(leaf.shape)}, not one row "
                         f"per example along dimension {dim} (batch of {batch}); choose a layer whose {what} "
                         "is batch-first.")


def format_layer_baselines(inputs: tuple[torch.Tensor, ...], baselines: Any, is_tuple: bool,
                           method: str) -> tuple[torch.Tensor, ...]:
    """One baseline input per input: zeros for ``None``, a constant for a number, a tensor
    broadcast to the input (one ``(1, T)`` row of token ids serves the whole batch)."""
    if baselines is None:
        per_input: tuple = (None,) * len(inputs)
    elif is_tuple:
        if not isinstance(baselines, tuple) or len(baselines) != len(inputs):
            got = f"a tuple of {len(baselines)}" if isinstance(baselines, tuple) else type(baselines).__name__
            raise ValueError(f"{method}: with {len(inputs)} inputs, baselines must be a tuple of {len(inputs)} "
                             f"baselines (None, a number or a tensor each), one per input; got {got}.")
        per_input = baselines
    else:
        per_input = (baselines,)
    formatted = []
    for x, b in zip(inputs, per_input):
        if b is None:
            formatted.append(torch.zeros_like(x))
        elif isinstance(b, (int, float)) and not isinstance(b, bool):
            formatted.append(torch.full_like(x, b))
        elif isinstance(b, torch.Tensor):
            if not broadcasts_to(b.shape, x.shape):
                raise ValueError(f"{method}: baselines of shape {tuple(b.shape)} do not broadcast to the inputs of "
                                 f"shape {tuple(x.shape)}; give one baseline per example, one for all "
                                 f"(e.g. {(1, *x.shape[1:])}), or a number.")
            formatted.append(b.detach().to(device=x.device, dtype=x.dtype).expand_as(x).contiguous())
        else:
            raise ValueError(f"{method}: a baseline must be None, a number or a tensor; got {type(b).__name__}.")
    return tuple(formatted)


class LayerIntegratedGradients(Attribution):
    r"""Integrated Gradients of a layer's value, from its value on the baseline inputs to its
    value on the inputs (e.g. from the embedding of padding tokens to the embedding of the text).

    .. math:: a_j = (h_j - h'_j) \sum_k w_k \frac{\partial f_c}{\partial h_j}\Big(h' + \alpha_k (h - h')\Big),
              \qquad h = \text{layer}(x),\; h' = \text{layer}(x')

    The inputs may be anything the model takes (token ids included; a tuple of tensors is
    forwarded as separate arguments): the path runs in the layer's space. `layer` may be a
    list of layers (BERT's word, position and token-type embeddings), whose values move along
    their paths together; the layers must not feed one another. ``return_convergence_delta``
    reports :math:`\sum_j a_j - (f_c(x) - f_c(x'))` summed over every layer.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; baselines broadcastable to each input (default:
        zeros, i.e. token id 0); returns attributions shaped like the layer's value (``(B, T, E)``
        for an embedding; nested tuples for tuple values; a list, one per layer, for a list of
        layers), and a delta ``(B,)``.
    """

    def __init__(self, forward_func, layer: nn.Module | str | list, multiply_by_inputs: bool = True):
        super().__init__(forward_func)
        name = type(self).__name__
        if isinstance(layer, list):
            if not layer:
                raise ValueError(f"{name}: the list of layers is empty; give a layer or a list of layers.")
            self.layer: nn.Module | list[nn.Module] = [find_layer(forward_func, item, name) for item in layer]
        else:
            self.layer = find_layer(forward_func, layer, name)
        self.multiply_by_inputs = multiply_by_inputs

    @property
    def layers(self) -> list[nn.Module]:
        return self.layer if isinstance(self.layer, list) else [self.layer]

    def layer_output(self, inputs: Inputs, additional_forward_args=None, *, attribute_to_layer_input: bool = False):
        """The layer's value for `inputs` (no gradient); a list of them for a list of layers."""
        name = type(self).__name__
        inputs, _ = format_inputs(inputs, name)
        args = as_tuple(additional_forward_args)
        with torch.no_grad():
            _, values = tap_layers(lambda: self.forward_func(*inputs, *args), self.layers,
                                   to_input=attribute_to_layer_input, method=name, replace=copy_float_leaves)
        results = [rebuild(value, iter(leaf.detach() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves))
                   for value, leaves in values]
        return results if isinstance(self.layer, list) else results[0]

    def attribute(self, inputs: Inputs, target: Target = None, *, baselines=None, additional_forward_args=None,
                  n_steps: int = 50, method: str = "gausslegendre", internal_batch_size: int | None = None,
                  return_convergence_delta: bool = False, attribute_to_layer_input: bool = False):
        name = type(self).__name__
        what = "input" if attribute_to_layer_input else "output"
        inputs, is_tuple = format_inputs(inputs, name)
        alphas, weights = quadrature(method, n_steps)
        batch = inputs[0].shape[0]
        target = format_target(target, batch, name)
        baselines = format_layer_baselines(inputs, baselines, is_tuple, name)
        args = as_tuple(additional_forward_args)
        layers = self.layers

        def values_at(points: tuple[torch.Tensor, ...]) -> list[tuple[Any, list]]:
            with torch.no_grad():
                return tap_layers(lambda: self.forward_func(*points, *args), layers, to_input=attribute_to_layer_input,
                                  method=name, replace=copy_float_leaves)[1]

        end_values, start_values = values_at(inputs), values_at(baselines)
        # The path runs through every floating-point leaf of every layer: (layer, leaf, batch dim).
        paths, ends, starts = [], [], []
        for i, ((_, end_leaves), (_, start_leaves)) in enumerate(zip(end_values, start_values)):
            for k, (leaf, dim) in enumerate(zip(end_leaves, batch_dims(layers[i], len(end_leaves)))):
                if not is_float_tensor(leaf):
                    continue
                check_batch_dim(leaf, dim, batch, name, what)
                start = start_leaves[k]
                if not is_float_tensor(start) or start.shape != leaf.shape:
                    raise ValueError(f"{name}: the layer's {what} has shape {tuple(leaf.shape)} on the inputs but "
                                     f"{tuple(getattr(start, 'shape', ()))} on the baselines.")
                paths.append((i, k, dim))
                ends.append(leaf.detach())
                starts.append(start.detach())
        if not paths:
            kinds = sorted({str(leaf.dtype) if isinstance(leaf, torch.Tensor) else type(leaf).__name__
                            for _, leaves in end_values for leaf in leaves})
            found = ", ".join(kinds) or "nothing: keyword arguments are not seen"
            raise ValueError(f"{name}: the layer's {what} holds no floating-point tensor ({found}); choose a layer "
                             "with a floating-point value (e.g. the embedding, not the input ids).")
        diffs = [end - start for end, start in zip(ends, starts)]
        if internal_batch_size is not None:
            check_positive_int(internal_batch_size, "internal_batch_size", name)
        elif ends[0].device.type == "cpu":
            per_example = sum(end.numel() for end in ends) // batch
            internal_batch_size = max(batch, CPU_CHUNK_ELEMENTS // max(1, per_example))
        steps_per_pass = n_steps if internal_batch_size is None else max(1, internal_batch_size // batch)
        alphas, weights = alphas.to(ends[0].device, ends[0].dtype), weights.to(ends[0].device, ends[0].dtype)
        totals = [torch.zeros_like(end) for end in ends]
        for first in range(0, n_steps, steps_per_pass):
            a, w = alphas[first:first + steps_per_pass], weights[first:first + steps_per_pass]
            steps = a.shape[0]
            # (steps, *leaf shape): the layer's value at each node alpha_k of the path
            scaled = [(start + a.view(-1, *(1,) * start.dim()) * diff).requires_grad_(True)
                      for start, diff in zip(starts, diffs)]

            def replace(index: int, leaves: list) -> list:
                leaves = list(leaves)
                for (i, k, dim), path in zip(paths, scaled):
                    if i != index:
                        continue
                    # the model ran on the inputs repeated `steps` times, step-major along the batch
                    along = torch.cat(path.unbind(0), dim=dim)
                    if leaves[k].shape != along.shape:
                        raise ValueError(f"{name}: the layer's {what} changed shape from {tuple(along.shape)} to "
                                         f"{tuple(leaves[k].shape)} between calls; its rows must follow the batch.")
                    leaves[k] = along
                return leaves

            repeated = tuple(torch.cat([x] * steps) for x in inputs)
            with torch.enable_grad():
                output, _ = tap_layers(lambda: self.forward_func(*repeated, *expand_args(args, batch, steps)), layers,
                                       to_input=attribute_to_layer_input, method=name, replace=replace)
                selected = select_target(output, repeat_target(target, steps), name)
                if not selected.requires_grad:
                    raise ValueError(f"{name} is a gradient method, but the model's output does not depend "
                                     f"differentiably on the layer's {what}.")
                grads = torch.autograd.grad(selected.sum(), scaled, allow_unused=True)
            if all(grad is None for grad in grads):
                raise ValueError(f"{name}: the model's output does not depend on the chosen layer's {what}.")
            for total, grad in zip(totals, grads):
                if grad is not None:  # a leaf the output does not use keeps a zero gradient
                    total += (grad * w.view(-1, *(1,) * total.dim())).sum(0)
        attributions = [total * diff if self.multiply_by_inputs else total for total, diff in zip(totals, diffs)]
        results = []
        for i, (value, leaves) in enumerate(end_values):
            by_leaf: list = [None] * len(leaves)
            for (layer_index, k, _), attribution in zip(paths, attributions):
                if layer_index == i:
                    by_leaf[k] = attribution
            results.append(rebuild(value, iter(by_leaf)))
        result = results if isinstance(self.layer, list) else results[0]
        if not return_convergence_delta:
            return result
        with torch.no_grad():
            gap = (select_target(self.forward_func(*inputs, *args), target, name)
                   - select_target(self.forward_func(*baselines, *args), target, name))
        summed = sum(attribution.movedim(dim, 0).reshape(batch, -1).sum(1)
                     for (_, _, dim), attribution in zip(paths, attributions))
        return result, summed - gap.to(summed.dtype)


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
