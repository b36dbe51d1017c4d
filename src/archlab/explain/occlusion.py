"""Occlusion: slide a window over the input, replace it by the baseline, and credit the
output's drop to the occluded features (Zeiler & Fergus, 2014)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch

from ..errors import ConfigError
from .base import Attribution, Baselines, Inputs, Target, as_tuple, format_inputs, format_output, format_target
from .perturbation import Perturbation, ablate, perturbation_baselines


def _shape_arg(value, rank: int, name: str, method: str, *, default: int | None = None) -> tuple[int, ...]:
    if value is None and default is not None:
        return (default,) * rank
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * rank
    if (not isinstance(value, Sequence) or len(value) != rank
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise ConfigError(f"The '{name}' parameter of {method} must be an int >= 1 or a tuple of {rank} of them "
                          f"(one per input dimension after the batch). Got {value!r} instead.")
    return tuple(value)


def _per_input_shapes(value, inputs: tuple[torch.Tensor, ...], is_tuple: bool, name: str, method: str, *,
                      default: int | None = None) -> tuple[tuple[int, ...], ...]:
    """Window shapes or strides, one tuple per input, from Captum's forms: for one tensor an int,
    a tuple with one entry per dimension after the batch, or that tuple inside a 1-tuple; for a
    tuple of inputs, one such entry per input (an int, or None for strides, applies to all)."""
    if is_tuple:
        if value is None or isinstance(value, int):
            entries = (value,) * len(inputs)
        elif isinstance(value, Sequence) and len(value) == len(inputs):
            entries = tuple(value)
        else:
            raise ConfigError(f"The '{name}' parameter of {method} must have one entry per input ({len(inputs)}) for "
                              f"a tuple of inputs. Got {value!r} instead.")
    elif isinstance(value, Sequence) and len(value) == 1 and isinstance(value[0], Sequence):
        entries = (value[0],)
    else:
        entries = (value,)
    return tuple(_shape_arg(e, x.dim() - 1, name, method, default=default) for e, x in zip(entries, inputs))


def _starts(d: int, w: int, s: int) -> range:
    """Window starts along one dimension: every multiple of the stride, the last window clipped."""
    return range(0, max(d - w, 0) + s, s) if d > w else range(1)


class Occlusion(Attribution):
    r"""Attribution by occluding hyper-rectangular windows.

    Windows of shape `sliding_window_shapes` start at every multiple of `strides` in each
    dimension (the last one clipped at the border), so every feature is covered. For a
    feature :math:`i` covered by the windows :math:`W(i)`:

    .. math:: a_i = \frac{1}{|W(i)|} \sum_{w \in W(i)} \big(f_c(x) - f_c(x_{w \leftarrow b})\big)

    With several inputs each has its own window and strides, and the windows of one input
    are occluded while the other inputs are left as they are. Attributions have the dtype
    of the explained output, or the default float dtype when that output is an integer.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; a window and strides have one entry per
        non-batch dimension (a tuple of them per input); returns attributions shaped like
        the inputs, or ``(n_outputs, ...)`` for a model returning ``n_outputs`` values for
        the whole batch.
    """

    def attribute(self, inputs: Inputs, target: Target = None, *, sliding_window_shapes,
                  strides=None, baselines: Baselines = None, additional_forward_args=None,
                  perturbations_per_eval: int | None = None):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name, floating=False)
        windows = _per_input_shapes(sliding_window_shapes, tensors, is_tuple, "sliding_window_shapes", name)
        strides = _per_input_shapes(strides, tensors, is_tuple, "strides", name, default=1)
        for x, window, stride in zip(tensors, windows, strides):
            dims = tuple(x.shape[1:])
            for w, s, d in zip(window, stride, dims):
                if w > d:
                    raise ConfigError(f"{name}: sliding window {window} is larger than the inputs {dims}.")
                if s > w and d > w:
                    raise ConfigError(f"{name}: strides {stride} must not exceed the window {window}, or some "
                                      "features would never be occluded.")
        target = format_target(target, tensors[0].shape[0], name)
        filled = perturbation_baselines(tensors, baselines, name)
        totals = ablate(self.forward_func, tensors, filled, target, as_tuple(additional_forward_args),
                        self.perturbations(tensors, windows, strides), perturbations_per_eval, name)
        dtype = totals[0].dtype if totals[0].is_floating_point() else torch.get_default_dtype()
        return format_output(tuple(total.to(dtype) / self.coverage(tuple(x.shape[1:]), w, s).to(x.device, dtype)
                                   for total, x, w, s in zip(totals, tensors, windows, strides)), is_tuple)

    @staticmethod
    def masks(dims: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...],
              device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """One boolean mask ``dims`` per window position."""
        for corner in itertools.product(*(_starts(d, w, s) for d, w, s in zip(dims, window, strides))):
            mask = torch.zeros(dims, dtype=torch.bool, device=device)
            mask[tuple(slice(c, c + w) for c, w in zip(corner, window))] = True
            yield mask

    @classmethod
    def perturbations(cls, inputs: tuple[torch.Tensor, ...], windows, strides) -> Iterator[Perturbation]:
        """The windows of each input in turn, the other inputs untouched."""
        for i, (x, window, stride) in enumerate(zip(inputs, windows, strides)):
            for mask in cls.masks(tuple(x.shape[1:]), window, stride, x.device):
                yield tuple(mask[None] if k == i else None for k in range(len(inputs)))

    @staticmethod
    def coverage(dims: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...]) -> torch.Tensor:
        """How many windows cover each feature, shape ``dims``: the windows are a product of
        positions along each dimension, so the count is the outer product of the counts
        along each dimension."""
        counts = torch.ones((), dtype=torch.float64)
        for d, w, s in zip(dims, window, strides):
            along = torch.zeros(d, dtype=torch.float64)
            for start in _starts(d, w, s):
                along[start:start + w] += 1
            counts = counts[..., None] * along
        return counts
