"""Kernel SHAP (Lundberg and Lee, 2017): Shapley values as a weighted linear regression on coalitions."""

from __future__ import annotations

import warnings

import torch

from .lime import Lime, weighted_linear_fit

# the weight of the empty and the full coalition, which the Shapley kernel weighs infinitely (Captum's 1e6)
FULL_WEIGHT = 1e6


class KernelShap(Lime):
    r"""Kernel SHAP on interpretable binary features (Captum's `KernelShap`): the Shapley values of
    the features are the coefficients of a linear regression on coalitions :math:`z \in \{0, 1\}^M`
    weighted by the Shapley kernel :math:`\pi(z) = (M - 1) / \big(\binom{M}{|z|} |z| (M - |z|)\big)`.

    - **Baselines**: the value a feature outside the coalition takes (``None``: zeros, a number, or
      a tensor broadcastable to each input), as in `Lime` and `FeatureAblation`.
    - **Features**: `feature_mask` as in `Lime`; by default every input element is a feature.
    - **Sampling**: per example, the full and the empty coalition first (weight 1e6, standing in
      for the kernel's infinite weight, so the attributions sum to ``f(x) - f(baseline)``), then
      coalitions drawn from the kernel itself: a size :math:`k \in 1..M-1` with probability
      :math:`\propto (M - 1) / (k (M - k))`, then ``k`` features uniformly (the ``k`` largest of
      ``torch.rand(M)``), all from a CPU generator (`generator`, or one seeded by `seed`); every
      drawn coalition then has weight 1.
    - **Fit**: least squares with an intercept (scikit-learn's ``LinearRegression``, the
      minimum-norm solution when underdetermined).

    With fewer than ``M + 1`` samples the regression is underdetermined and a warning names both
    numbers: group features with `feature_mask` or raise `n_samples`.

    Shapes:
        as `Lime`.
    """

    default_samples = 25

    def __init__(self, forward_func):
        super().__init__(forward_func, interpretable_model="linear")

    def check_sizes(self, num_features: int, n_samples: int) -> None:
        if n_samples <= num_features:
            warnings.warn(f"KernelShap: {num_features} features but only {n_samples} samples; the regression needs "
                          f"n_samples > {num_features} (the number of features) to be determined, so its "
                          "minimum-norm solution is returned. Raise n_samples or group features with feature_mask.",
                          UserWarning, stacklevel=3)

    def draw_samples(self, batch: int, n_samples: int, num_features: int, generator: torch.Generator) -> torch.Tensor:
        """Coalitions ``(B, n_samples, M)`` bool: the full one, the empty one, then draws from the Shapley kernel."""
        m = num_features
        samples = torch.zeros((batch, n_samples, m), dtype=torch.bool)
        samples[:, 0] = True
        drawn = max(0, n_samples - 2)
        if drawn and m > 1:
            sizes = torch.arange(1, m, dtype=torch.float64)
            probabilities = (m - 1) / (sizes * (m - sizes))
            size = torch.multinomial(probabilities, batch * drawn, replacement=True, generator=generator) + 1
            keys = torch.rand((batch * drawn, m), generator=generator)
            rank = keys.argsort(1).argsort(1)  # 0 for the smallest key
            samples[:, 2:] = (rank >= m - size[:, None]).view(batch, drawn, m)
        elif drawn:  # one feature: every coalition is full or empty
            samples[:, 2:] = torch.rand((batch, drawn, 1), generator=generator) < 0.5
        return samples[:, :n_samples]

    def sample_weights(self, inputs, perturbed, samples: torch.Tensor) -> torch.Tensor:
        size = samples.sum(2)
        edge = (size == 0) | (size == samples.shape[2])
        return torch.where(edge, FULL_WEIGHT, 1.0).to(torch.float64)

    def fit(self, samples: torch.Tensor, outputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return weighted_linear_fit(samples, outputs, weights)
