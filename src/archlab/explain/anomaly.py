"""Which input features make an autoencoder call an input anomalous."""

from __future__ import annotations

import torch

from .base import Attribution, check_inputs
from .input_x_gradient import InputXGradient
from .integrated_gradients import IntegratedGradients
from .saliency import Saliency
from ..validation import check_choice

METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "reconstruction_error")


class AnomalyAttribution(Attribution):
    r"""Attribute an autoencoder's anomaly score ``model.anomaly_score(x)`` (differentiable,
    one value per example) to the input features.

    ``integrated_gradients`` (the default) integrates from the model's own reconstruction
    :math:`\hat x` (a "normal" version of the input) to the input, so by completeness

    .. math:: \sum_i a_i = s(x) - s(\hat x)

    ``reconstruction_error`` is the per-feature term :math:`(x_i - \hat x_i)^2` of a
    squared-error score; ``saliency`` and ``input_x_gradient`` are the gradient methods
    applied to the score.

    Shapes:
        inputs ``(B, ...)``; returns a tensor shaped like `inputs`.
    """

    def __init__(self, model):
        score = getattr(model, "anomaly_score", None)
        if not callable(score):
            raise ValueError(f"{type(self).__name__} needs an autoencoder with a differentiable "
                             f"anomaly_score(x) -> (B,); {type(model).__name__} has none.")
        super().__init__(score)
        self.model = model

    def attribute(self, inputs: torch.Tensor, target: None = None, *, method: str = "integrated_gradients",
                  baselines: torch.Tensor | float | str | None = "reconstruction", **kwargs) -> torch.Tensor:
        name = type(self).__name__
        if target is not None:
            raise ValueError(f"{name}: the anomaly score is one value per example; target must be None, "
                             f"got {target!r}.")
        check_choice(name, "method", method, METHODS)
        inputs = check_inputs(inputs, name).detach()
        if isinstance(baselines, str) and baselines != "reconstruction":
            raise ValueError(f"{name}: baselines must be 'reconstruction', None, a number or a tensor; "
                             f"got {baselines!r}.")
        if method == "reconstruction_error":
            with torch.no_grad():
                return (inputs - self.model.reconstruct(inputs)) ** 2
        if method == "saliency":
            return Saliency(self.forward_func).attribute(inputs, **kwargs)
        if method == "input_x_gradient":
            return InputXGradient(self.forward_func).attribute(inputs, **kwargs)
        if baselines == "reconstruction":
            with torch.no_grad():
                baselines = self.model.reconstruct(inputs)
        return IntegratedGradients(self.forward_func).attribute(inputs, baselines=baselines, **kwargs)
