"""Feature ablation: replace one feature (or group of features) at a time by the baseline."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..errors import ConfigError
from .base import (Attribution, Baselines, Inputs, Target, as_tuple, broadcasts_to, format_inputs, format_output,
                   format_target, per_input)
from .perturbation import Perturbation, ablate, perturbation_baselines


class FeatureAblation(Attribution):
    r"""Attribution by ablating features one group at a time.

    .. math:: a_i = f_c(x) - f_c(x_{G(i) \leftarrow b})

    where :math:`G(i)` is the group of features sharing feature ``i``'s id in
    `feature_mask` (every feature on its own by default). With several inputs, each
    input has its own mask, and features of different inputs that share an id are
    ablated together (Captum's cross-input groups).

    Attributions have the dtype of the explained output (Captum's rule): integer or
    boolean inputs are not truncated, and a baseline is written into the input in
    ``torch.result_type(input, baseline)``.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; `feature_mask` integer ids broadcastable to
        each input (``inputs.shape[1:]``, ``(1, ...)`` or ``(B, ...)``); returns attributions
        shaped like the inputs, or ``(n_outputs, ...)`` for a model returning ``n_outputs``
        values for the whole batch.
    """

    def attribute(self, inputs: Inputs, target: Target = None, *, baselines: Baselines = None,
                  feature_mask: torch.Tensor | tuple[torch.Tensor, ...] | None = None, additional_forward_args=None,
                  perturbations_per_eval: int | None = None):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name, floating=False)
        target = format_target(target, tensors[0].shape[0], name)
        filled = perturbation_baselines(tensors, baselines, name)
        if feature_mask is None:
            perturbations = self.single_feature_perturbations(tensors)
        else:
            perturbations = self.group_perturbations(per_input(feature_mask, tensors, "feature_mask", name), tensors,
                                                     name)
        totals = ablate(self.forward_func, tensors, filled, target, as_tuple(additional_forward_args), perturbations,
                        perturbations_per_eval, name)
        return format_output(totals, is_tuple)

    @staticmethod
    def single_feature_perturbations(inputs: tuple[torch.Tensor, ...]) -> Iterator[Perturbation]:
        """Every feature of every input on its own, input after input."""
        for i, x in enumerate(inputs):
            dims = (1, *x.shape[1:])
            for j in range(x[0].numel()):
                mask = torch.zeros(x[0].numel(), dtype=torch.bool, device=x.device)
                mask[j] = True
                yield tuple(mask.view(dims) if k == i else None for k in range(len(inputs)))

    @staticmethod
    def group_perturbations(feature_masks: tuple, inputs: tuple[torch.Tensor, ...],
                            method: str) -> Iterator[Perturbation]:
        """One perturbation per feature id, covering that id in every input's mask."""
        masks = []
        for mask, x in zip(feature_masks, inputs):
            if not isinstance(mask, torch.Tensor) or mask.is_floating_point() or mask.dtype == torch.bool:
                raise ConfigError(f"{method}: feature_mask must be an integer tensor of feature ids (one per input); "
                                  f"got {getattr(mask, 'dtype', type(mask).__name__)}.")
            if not broadcasts_to(mask.shape, x.shape):
                raise ConfigError(f"{method}: feature_mask of shape {tuple(mask.shape)} does not broadcast to "
                                  f"the inputs of shape {tuple(x.shape)}.")
            masks.append(mask.to(x.device).reshape((1,) * (x.dim() - mask.dim()) + tuple(mask.shape)))
        ids = [set(torch.unique(m).tolist()) for m in masks]
        for feature in sorted(set().union(*ids)):
            yield tuple(m == feature if feature in present else None for m, present in zip(masks, ids))
