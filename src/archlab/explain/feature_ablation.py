"""Feature ablation: replace one feature (or group of features) at a time by the baseline."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .base import Attribution, Baselines, Target, as_tuple, check_inputs, format_baselines, format_target
from .perturbation import ablate, auto_perturbations_per_eval


class FeatureAblation(Attribution):
    r"""Attribution by ablating features one group at a time.

    .. math:: a_i = f_c(x) - f_c(x_{G(i) \leftarrow b})

    where :math:`G(i)` is the group of features sharing feature ``i``'s id in
    `feature_mask` (every feature on its own by default).

    Shapes:
        inputs ``(B, ...)``; `feature_mask` integer ids broadcastable to the inputs
        (``inputs.shape[1:]``, ``(1, ...)`` or ``(B, ...)``); returns a tensor shaped like `inputs`.
    """

    def attribute(self, inputs: torch.Tensor, target: Target = None, *, baselines: Baselines = None,
                  feature_mask: torch.Tensor | None = None, additional_forward_args=None,
                  perturbations_per_eval: int | None = None) -> torch.Tensor:
        name = type(self).__name__
        inputs = check_inputs(inputs, name, floating=False)
        target = format_target(target, inputs.shape[0], name)
        baselines = format_baselines(inputs, baselines, name)
        per_eval = perturbations_per_eval or auto_perturbations_per_eval(inputs)
        if feature_mask is None:
            masks = self.single_feature_masks(tuple(inputs.shape[1:]), inputs.device)
        else:
            masks = self.group_masks(feature_mask, inputs, name)
        total, _ = ablate(self.forward_func, inputs, baselines, target, as_tuple(additional_forward_args),
                          masks, per_eval, name)
        return total

    @staticmethod
    def single_feature_masks(dims: tuple[int, ...], device) -> Iterator[torch.Tensor]:
        numel = 1
        for d in dims:
            numel *= d
        for i in range(numel):
            mask = torch.zeros(numel, dtype=torch.bool, device=device)
            mask[i] = True
            yield mask.view(dims)

    @staticmethod
    def group_masks(feature_mask: torch.Tensor, inputs: torch.Tensor, method: str) -> Iterator[torch.Tensor]:
        if not isinstance(feature_mask, torch.Tensor) or feature_mask.is_floating_point():
            raise ValueError(f"{method}: feature_mask must be an integer tensor of feature ids; got "
                             f"{getattr(feature_mask, 'dtype', type(feature_mask).__name__)}.")
        try:
            shape = torch.broadcast_shapes(feature_mask.shape, inputs.shape)
        except RuntimeError:
            shape = None
        if shape != inputs.shape:
            raise ValueError(f"{method}: feature_mask of shape {tuple(feature_mask.shape)} does not broadcast to "
                             f"the inputs of shape {tuple(inputs.shape)}.")
        feature_mask = feature_mask.to(inputs.device)
        for feature in torch.unique(feature_mask).tolist():
            yield feature_mask == feature
