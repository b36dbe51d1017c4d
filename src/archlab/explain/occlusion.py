"""Occlusion: slide a window over the input, replace it by the baseline, and credit the
output's drop to the occluded features (Zeiler & Fergus, 2014)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch

from .base import Attribution, Baselines, Target, as_tuple, check_inputs, format_baselines, format_target
from .perturbation import ablate, auto_perturbations_per_eval


def _shape_arg(value, rank: int, name: str, method: str, *, default: int | None = None) -> tuple[int, ...]:
    if value is None and default is not None:
        return (default,) * rank
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * rank
    if (not isinstance(value, Sequence) or len(value) != rank
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise ValueError(f"The '{name}' parameter of {method} must be an int >= 1 or a tuple of {rank} of them "
                         f"(one per input dimension after the batch). Got {value!r} instead.")
    return tuple(value)


class Occlusion(Attribution):
    r"""Attribution by occluding hyper-rectangular windows.

    Windows of shape `sliding_window_shapes` start at every multiple of `strides` in each
    dimension (the last one clipped at the border), so every feature is covered. For a
    feature :math:`i` covered by the windows :math:`W(i)`:

    .. math:: a_i = \frac{1}{|W(i)|} \sum_{w \in W(i)} \big(f_c(x) - f_c(x_{w \leftarrow b})\big)

    Shapes:
        inputs ``(B, ...)``; window and strides have one entry per non-batch dimension;
        returns a tensor shaped like `inputs`.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None, *,
                  sliding_window_shapes: int | Sequence[int], strides: int | Sequence[int] | None = None,
                  baselines: Baselines = None, additional_forward_args=None,
                  perturbations_per_eval: int | None = None) -> torch.Tensor:
        name = type(self).__name__
        inputs = check_inputs(inputs, name, floating=False)
        dims = tuple(inputs.shape[1:])
        window = _shape_arg(sliding_window_shapes, len(dims), "sliding_window_shapes", name)
        strides = _shape_arg(strides, len(dims), "strides", name, default=1)
        for w, s, d in zip(window, strides, dims):
            if w > d:
                raise ValueError(f"{name}: sliding window {window} is larger than the inputs {dims}.")
            if s > w and d > w:
                raise ValueError(f"{name}: strides {strides} must not exceed the window {window}, or some "
                                 "features would never be occluded.")
        target = format_target(target, inputs.shape[0], name)
        baselines = format_baselines(inputs, baselines, name)
        per_eval = perturbations_per_eval or auto_perturbations_per_eval(inputs)
        total, counts = ablate(self.forward_func, inputs, baselines, target, as_tuple(additional_forward_args),
                               self.masks(dims, window, strides, inputs.device), per_eval, name)
        return total / counts

    @staticmethod
    def masks(dims: tuple[int, ...], window: tuple[int, ...], strides: tuple[int, ...],
              device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
        """One boolean mask ``dims`` per window position."""
        starts = [range(0, max(d - w, 0) + s, s) if d > w else range(1) for d, w, s in zip(dims, window, strides)]
        for corner in itertools.product(*starts):
            mask = torch.zeros(dims, dtype=torch.bool, device=device)
            mask[tuple(slice(c, c + w) for c, w in zip(corner, window))] = True
            yield mask
