"""What every attribution method shares: the forward function, target selection,
baselines, gradients and layer look-up, each validated at the public boundary.

Inputs follow Captum: one tensor ``(B, ...)``, or a tuple of tensors that share the
batch dimension and are passed to the model as separate arguments
(``model(*inputs, *additional_forward_args)``); a tuple in gives a tuple of
attributions out, one shaped like each input.

Targets follow Captum: ``None`` when the model returns one value per example
(``(B,)`` or ``(B, 1)``), an ``int`` class index applied to every example, a list
or 1-D tensor of ``B`` indices (one per example), a tuple indexing an output of
more than two dimensions, or a list of ``B`` such tuples (one per example).
`target` is the only argument after `inputs` that may be given by position; a
float there is refused, since Captum's second positional argument is `baselines`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..validation import check_int

Target = Union[None, int, Sequence[int], torch.Tensor, tuple, Sequence[tuple]]
Baselines = Union[None, int, float, torch.Tensor, tuple]
Inputs = Union[torch.Tensor, tuple[torch.Tensor, ...]]


class Attribution:
    """Base of the attribution methods: holds the model (any module or forward function)."""

    def __init__(self, forward_func: nn.Module | Callable[..., torch.Tensor]):
        if not callable(forward_func):
            raise ValueError(f"{type(self).__name__} needs a torch.nn.Module or a forward function; "
                             f"got {type(forward_func).__name__}.")
        self.forward_func = forward_func

    def __repr__(self) -> str:
        name = getattr(self.forward_func, "__name__", type(self.forward_func).__name__)
        return f"{type(self).__name__}({name})"


def as_tuple(args: Any) -> tuple:
    """`additional_forward_args` as a tuple (Captum: one argument, or a tuple of them)."""
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)


def check_inputs(inputs: Any, method: str, *, floating: bool = True) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"{method}: inputs must be a torch.Tensor of shape (batch, ...); "
                         f"got {type(inputs).__name__}.")
    if inputs.dim() < 1 or inputs.shape[0] == 0:
        raise ValueError(f"{method}: inputs must have a non-empty batch dimension first; got shape "
                         f"{tuple(inputs.shape)}.")
    if floating and not inputs.is_floating_point():
        raise ValueError(f"{method}: inputs must be floating point to be differentiated; got {inputs.dtype}. "
                         "For token ids attribute through the embedding layer (archlab.explain.TokenAttribution).")
    return inputs


def format_inputs(inputs: Any, method: str, *, floating: bool = True) -> tuple[tuple[torch.Tensor, ...], bool]:
    """The inputs as a tuple of tensors sharing the batch size, and whether a tuple was given."""
    is_tuple = isinstance(inputs, tuple)
    if is_tuple and not inputs:
        raise DataError(f"{method}: inputs is an empty tuple; give a tensor or a tuple of tensors.")
    tensors = tuple(check_inputs(t, method, floating=floating) for t in (inputs if is_tuple else (inputs,)))
    sizes = [t.shape[0] for t in tensors]
    if len(set(sizes)) > 1:
        raise DataError(f"{method}: every input must have the same batch size (first dimension); got {sizes}.")
    return tensors, is_tuple


def format_output(values: tuple, is_tuple: bool) -> Any:
    """A tuple of attributions for tuple inputs, the one tensor for a tensor input."""
    return values if is_tuple else values[0]


def per_input(value: Any, inputs: tuple[torch.Tensor, ...], name: str, method: str) -> tuple:
    """An argument given once for every input (not a tuple), or as a tuple with one entry per input."""
    if not isinstance(value, tuple):
        if isinstance(value, torch.Tensor) and len(inputs) > 1:
            raise ConfigError(f"{method}: {name} for {len(inputs)} inputs must be a number or a tuple of "
                              f"{len(inputs)} (one per input); got one tensor.")
        return (value,) * len(inputs)
    if len(value) != len(inputs):
        raise ConfigError(f"{method}: {name} must have one entry per input ({len(inputs)}); got {len(value)}.")
    return value


def broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    """Whether a tensor of `shape` broadcasts to exactly `target` (neither larger nor incompatible)."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def check_baseline(baseline: Any, inputs: torch.Tensor, method: str) -> None:
    """Refuse a baseline that is not a tensor broadcastable to `inputs` (a number is made one first)."""
    if not isinstance(baseline, torch.Tensor):
        raise ConfigError(f"{method}: baselines must be None, a number or a tensor broadcastable to the inputs "
                          f"{tuple(inputs.shape)}; got {type(baseline).__name__}.")
    if not broadcasts_to(baseline.shape, inputs.shape):
        raise ConfigError(f"{method}: baselines of shape {tuple(baseline.shape)} do not broadcast to the inputs "
                          f"of shape {tuple(inputs.shape)}; give one baseline per example, one for all "
                          f"{tuple(inputs.shape[1:])}, or a number.")


def format_baselines_per_input(inputs: tuple[torch.Tensor, ...], baselines: Baselines,
                               method: str) -> tuple[torch.Tensor, ...]:
    """`format_baselines` for each input: one number (or ``None``) for all, or a tuple of them."""
    return tuple(format_baselines(x, b, method) for x, b in zip(inputs, per_input(baselines, inputs, "baselines",
                                                                                 method)))


def format_baselines(inputs: torch.Tensor, baselines: Baselines, method: str) -> torch.Tensor:
    """Baselines broadcast to the shape of `inputs`: ``None`` is zeros, a number is a
    constant input, a tensor must broadcast (e.g. one example ``inputs.shape[1:]``)."""
    if baselines is None:
        return torch.zeros_like(inputs)
    if isinstance(baselines, (int, float)) and not isinstance(baselines, bool):
        return torch.full_like(inputs, float(baselines))
    check_baseline(baselines, inputs, method)
    return baselines.to(device=inputs.device, dtype=inputs.dtype).expand_as(inputs)


def format_target(target: Target, batch_size: int, method: str) -> Target:
    """Validate the kind of `target` and turn a per-example list into a long tensor:
    ``(B,)`` for class indices, ``(B, k)`` for index tuples."""
    if target is None:
        return target
    if isinstance(target, tuple):
        indices = tuple(_as_index(t) for t in target)
        if not indices or None in indices:
            raise ConfigError(f"{method}: a tuple target indexes one output per example and must hold ints; got "
                              f"{target!r}.")
        return indices
    if isinstance(target, bool):
        raise ConfigError(f"{method}: target must be an int, a list of {batch_size} ints or a tensor; got a bool.")
    if isinstance(target, int):
        return target
    if isinstance(target, float) or (isinstance(target, torch.Tensor) and target.is_floating_point()):
        what = f"the float {target!r}" if isinstance(target, float) else f"a {target.dtype} tensor"
        raise ConfigError(f"{method}: target must be an int class index, a list of {batch_size} of them or an integer "
                          f"tensor; got {what}. archlab's positional order is (inputs, target), where Captum's is "
                          "(inputs, baselines, target): pass baselines by keyword (baselines=...).")
    if isinstance(target, list) and target and all(isinstance(t, tuple) for t in target):
        if len(target) != batch_size or len({len(t) for t in target}) != 1:
            raise ConfigError(f"{method}: a list of tuple targets needs one tuple of the same length per example "
                              f"({batch_size}); got {target!r}.")
        return torch.tensor([format_target(t, batch_size, method) for t in target], dtype=torch.long)
    if isinstance(target, torch.Tensor) and target.numel() == 1 and target.dim() <= 1 and batch_size != 1:
        return int(target.item())
    tensor = torch.as_tensor(target)
    if tensor.dim() == 0:
        return int(tensor.item())
    # (B,) class indices, or (B, k) index tuples (the form a list of tuples takes here)
    valid_shape = tensor.dim() == 1 or (tensor.dim() == 2 and tensor.shape[1] > 0)
    if not valid_shape or tensor.shape[0] != batch_size or tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise ConfigError(f"{method}: target must be an int or {batch_size} integer class indices, one per example; "
                          f"got {tuple(tensor.shape)} {tensor.dtype}.")
    return tensor.long()


def expand_args(args: tuple, batch_size: int, times: int) -> tuple:
    """Tensor arguments with one row per example repeated `times` (step-major); others kept."""
    return tuple(torch.cat([a] * times) if isinstance(a, torch.Tensor) and a.dim() and a.shape[0] == batch_size
                 else a for a in args)


def _as_index(value: Any) -> int | None:
    """`value` as an int index (an int, a NumPy integer or a one-element integer tensor), else None."""
    if isinstance(value, (bool, float)) or (isinstance(value, torch.Tensor)
                                            and (value.numel() != 1 or value.is_floating_point())):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def repeat_target(target: Target, times: int) -> Target:
    """The target of a batch repeated `times` (step-major, as the inputs are)."""
    if isinstance(target, torch.Tensor):
        return target.repeat(times, *(1,) * (target.dim() - 1))
    return target


def select_target(output: torch.Tensor, target: Target, method: str = "attribute") -> torch.Tensor:
    """The scalar output per example that is explained, shape ``(B,)``."""
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"{method}: the model must return a tensor; got {type(output).__name__}.")
    if output.dim() == 0:
        raise ValueError(f"{method}: the model returns a single value for the whole batch; this method needs one "
                         "output per example (FeatureAblation and Occlusion attribute a batch-level output).")
    batch = output.shape[0]
    if target is None:
        if output[0].numel() != 1:
            raise ValueError(f"{method}: target is required: the model returns outputs of shape "
                             f"{tuple(output.shape)}, more than one value per example (pass the class index).")
        return output.reshape(batch)
    if output.dim() < 2:
        raise ValueError(f"{method}: target {target!r} selects an output column, but the model returns one value per "
                         f"example ({tuple(output.shape)}); pass target=None.")
    if isinstance(target, tuple):
        if len(target) != output.dim() - 1:
            raise ValueError(f"{method}: a tuple target needs {output.dim() - 1} indices for outputs of shape "
                             f"{tuple(output.shape)}; got {target}.")
        for index, size in zip(target, output.shape[1:]):
            if not 0 <= int(index) < size:
                raise ValueError(f"{method}: target {target} is out of range for outputs of shape "
                                 f"{tuple(output.shape)}.")
        return output[(slice(None), *target)]
    if isinstance(target, torch.Tensor) and target.dim() == 2:
        return _select_per_example_tuples(output, target, method)
    if output.dim() != 2:
        raise ValueError(f"{method}: an int target needs outputs of shape (batch, classes); got "
                         f"{tuple(output.shape)} (use a tuple target).")
    classes = output.shape[1]
    if isinstance(target, int):
        if not 0 <= target < classes:
            raise ValueError(f"{method}: target {target} is out of range: the model has {classes} outputs "
                             f"(valid indices 0..{classes - 1}).")
        return output[:, target]
    if target.shape[0] != batch:
        raise ValueError(f"{method}: {target.shape[0]} targets were given for a batch of {batch}.")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
        bad = int(target.max()) if int(target.max()) >= classes else int(target.min())
        raise ValueError(f"{method}: target {bad} is out of range: the model has {classes} outputs "
                         f"(valid indices 0..{classes - 1}).")
    return output.gather(1, target.to(output.device)[:, None]).squeeze(1)


def _select_per_example_tuples(output: torch.Tensor, target: torch.Tensor, method: str) -> torch.Tensor:
    """``output[b, *target[b]]`` for every example ``b`` (a list of tuple targets)."""
    if target.shape[1] != output.dim() - 1:
        raise ValueError(f"{method}: tuple targets need {output.dim() - 1} indices for outputs of shape "
                         f"{tuple(output.shape)}; got {target.shape[1]}.")
    if target.shape[0] != output.shape[0]:
        raise ValueError(f"{method}: {target.shape[0]} targets were given for a batch of {output.shape[0]}.")
    sizes = torch.tensor(output.shape[1:])
    if (target < 0).any() or (target >= sizes).any():
        bad = target[((target < 0) | (target >= sizes)).any(1)][0].tolist()
        raise ValueError(f"{method}: target {tuple(bad)} is out of range for outputs of shape {tuple(output.shape)}.")
    index = target.to(output.device)
    return output[(torch.arange(output.shape[0], device=output.device), *index.unbind(1))]


def run_forward(forward_func: Callable, inputs: Inputs, target: Target, additional_forward_args: tuple,
                method: str = "attribute") -> torch.Tensor:
    """``forward_func(*inputs, *additional_forward_args)`` reduced to the explained value ``(B,)``
    (a single tensor is the one input)."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return select_target(forward_func(*inputs, *additional_forward_args), target, method)


def gradients(forward_func: Callable, inputs: Inputs, target: Target, additional_forward_args: tuple = (),
              method: str = "attribute") -> tuple[Any, torch.Tensor]:
    """Gradient of each example's explained output with respect to its input(s), and those outputs.

    The outputs are summed before differentiating: example ``i``'s output depends only on
    input ``i``, so the gradient of the sum is every example's own gradient (Captum's
    ``autograd.grad(unbind(outputs))`` computes the same sum). A tuple of inputs gives a
    tuple of gradients; an input the output does not use gets a zero gradient.
    """
    is_tuple = isinstance(inputs, tuple)
    tensors = tuple(t.detach().requires_grad_(True) for t in (inputs if is_tuple else (inputs,)))
    with torch.enable_grad():
        outputs = run_forward(forward_func, tensors, target, additional_forward_args, method)
        if not outputs.requires_grad:
            raise ValueError(f"{method} is a gradient method, but the model's output does not depend differentiably "
                             "on the inputs (it has no grad_fn: a torch.no_grad block, argmax, .detach() or NumPy "
                             "inside the forward). Use a perturbation method (Occlusion, FeatureAblation) instead.")
        grads = torch.autograd.grad(outputs.sum(), tensors, allow_unused=True)
    if all(g is None for g in grads):
        raise ValueError(f"{method}: the model's output does not depend on the inputs; there is no gradient "
                         "to attribute.")
    grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors))
    return (grads if is_tuple else grads[0]), outputs.detach()


def find_layer(model: Any, layer: nn.Module | str, method: str) -> nn.Module:
    """A submodule of `model`, given as the module itself or by its dotted name. With a plain
    forward function for `model`, the layer module itself is taken as given."""
    if not isinstance(model, nn.Module):
        if isinstance(layer, nn.Module):
            return layer
        raise ValueError(f"{method}: a layer named {layer!r} needs the model to be a torch.nn.Module; "
                         "pass the layer module itself with a forward function.")
    named = dict(model.named_modules())
    if isinstance(layer, str):
        if layer not in named:
            candidates = ", ".join(n for n in named if n) or "none"
            raise ValueError(f"{method}: layer '{layer}' is not in the model; its layers are: {candidates}.")
        return named[layer]
    if not isinstance(layer, nn.Module) or not any(m is layer for m in named.values()):
        what = type(layer).__name__
        raise ValueError(f"{method}: the layer given ({what}) is not a submodule of the model; pass one of "
                         f"model.named_modules() (by module or by name).")
    return layer


def check_positive_int(value: Any, name: str, method: str, minimum: int = 1) -> int:
    check_int(method, name, value, minimum=minimum)
    return value
