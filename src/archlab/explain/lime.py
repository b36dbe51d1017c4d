"""LIME (Ribeiro et al., 2016): a weighted linear surrogate fitted to the model on random
perturbations of interpretable features, on Captum's binary representation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..validation import check_choice, check_float, check_int
from .base import (Attribution, Baselines, Inputs, Target, as_tuple, broadcasts_to, check_positive_int, expand_args,
                   format_inputs, format_output, format_target, per_input, repeat_target, select_target)
from .perturbation import auto_perturbations_per_eval, perturbation_baselines

SURROGATES = ("lasso", "linear")
DISTANCES = ("cosine", "euclidean")


def feature_ids(inputs: tuple[torch.Tensor, ...], feature_mask, method: str) -> tuple[tuple[torch.Tensor, ...], int]:
    """Each input's feature ids as ``(1 or B, numel)`` long tensors numbered ``0..M-1`` across all inputs, and M.

    Without a mask every element of every input is its own feature, input after input (Captum's
    default). A mask is an integer tensor per input broadcastable to it; ids shared between inputs
    are one feature, and the ids used are renumbered in increasing order."""
    if feature_mask is None:
        ids, offset = [], 0
        for x in inputs:
            count = x[0].numel()
            ids.append(torch.arange(offset, offset + count, device=x.device)[None])
            offset += count
        return tuple(ids), offset
    flat = []
    for mask, x in zip(per_input(feature_mask, inputs, "feature_mask", method), inputs):
        if not isinstance(mask, torch.Tensor) or mask.is_floating_point() or mask.dtype == torch.bool:
            raise ConfigError(f"{method}: feature_mask must be an integer tensor of feature ids (one per input); "
                              f"got {getattr(mask, 'dtype', type(mask).__name__)}.")
        if not broadcasts_to(mask.shape, x.shape):
            raise ConfigError(f"{method}: feature_mask of shape {tuple(mask.shape)} does not broadcast to the inputs "
                              f"of shape {tuple(x.shape)}.")
        mask = mask.to(x.device).reshape((1,) * (x.dim() - mask.dim()) + tuple(mask.shape))
        lead = mask.shape[0]
        flat.append(mask.expand(lead, *x.shape[1:]).reshape(lead, -1))
    used, inverse = torch.unique(torch.cat([m.reshape(-1) for m in flat]), return_inverse=True)
    parts = inverse.split([m.numel() for m in flat])
    return tuple(p.view(m.shape) for p, m in zip(parts, flat)), used.numel()


def weighted_linear_fit(samples: torch.Tensor, outputs: torch.Tensor, weights: torch.Tensor, alpha: float = 0.0,
                        tol: float = 1e-12, max_iter: int = 100_000) -> torch.Tensor:
    r"""Coefficients of the weighted linear model with an intercept, fitted per example (batched):

    .. math:: \min_{\beta, c}\ \frac{1}{2} \sum_k \hat w_k (y_k - z_k \beta - c)^2 + \alpha \lVert\beta\rVert_1,
              \qquad \hat w = w / \textstyle\sum_k w_k

    scikit-learn's ``LinearRegression`` (the minimum-norm least-squares solution) for ``alpha=0``,
    its ``Lasso(alpha)`` (normalized sample weights) otherwise, solved here by accelerated proximal
    gradient to `tol` on the coefficients.

    Shapes:
        samples ``(B, n, M)``, outputs and weights ``(B, n)``; returns ``(B, M)``.
    """
    w = weights / weights.sum(1, keepdim=True)
    mean_z = (w[..., None] * samples).sum(1, keepdim=True)
    mean_y = (w * outputs).sum(1, keepdim=True)
    root = w.sqrt()
    z = (samples - mean_z) * root[..., None]  # (B, n, M)
    y = (outputs - mean_y) * root  # (B, n)
    if alpha == 0:
        driver = "gelsd" if z.device.type == "cpu" else None
        return torch.linalg.lstsq(z, y[..., None], driver=driver).solution[..., 0]
    gram = z.transpose(1, 2) @ z  # (B, M, M)
    linear = (z.transpose(1, 2) @ y[..., None])[..., 0]  # (B, M)
    lipschitz = torch.linalg.eigvalsh(gram)[:, -1:].clamp_min(1e-12)  # (B, 1)
    beta = torch.zeros_like(linear)
    momentum, previous, t = beta, beta, 1.0
    for _ in range(max_iter):
        step = momentum - ((gram @ momentum[..., None])[..., 0] - linear) / lipschitz
        beta = torch.sign(step) * (step.abs() - alpha / lipschitz).clamp_min(0)
        change = (beta - previous).abs().max()
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        momentum = beta + ((t - 1) / t_next) * (beta - previous)
        previous, t = beta, t_next
        if change <= tol * max(1.0, float(beta.abs().max())):
            break
    return beta


class Lime(Attribution):
    r"""LIME on interpretable binary features (Captum's `Lime`): a feature is *on* (its input values
    kept) or *off* (replaced by the baseline). For each example, ``n_samples`` binary vectors
    :math:`z_k \in \{0, 1\}^M` are drawn, the model is evaluated on the perturbed inputs, and a
    linear surrogate is fitted with sample weights :math:`\pi(x, x_k)`; its coefficients are the
    attributions of the features, spread over each feature's input elements.

    - **Baselines**: the value an *off* feature takes: ``None`` (zeros), a number, or a tensor
      broadcastable to each input (one per example or one for all), as in `FeatureAblation`.
    - **Features**: `feature_mask`, integer ids per input (broadcastable to it; ids shared across
      inputs are one feature); by default every input element is a feature.
    - **Sampling**: every feature on with probability 1/2, independently, drawn per example from
      a CPU generator (`generator`, or one seeded by `seed`) as ``torch.rand((B, n_samples, M)) < 0.5``.
    - **Weights**: an exponential kernel of the distance between the flattened input and the
      perturbed input, :math:`\pi = \exp(-d^2 / (2 w^2))`, with `similarity` ``"cosine"``
      (:math:`d = 1 - \cos`, Captum's default) or ``"euclidean"`` and `kernel_width` :math:`w`.
    - **Surrogate**: ``"lasso"`` with `alpha` (Captum's default, ``Lasso(alpha=0.01)``) or
      ``"linear"`` (least squares), both with an intercept, see `weighted_linear_fit`.

    The perturbed inputs of all examples are evaluated together, `perturbations_per_eval` samples
    of the whole batch per forward pass (by default as many as fit about 2^18 input values).

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; returns attributions shaped like the inputs, or the
        coefficients ``(B, M)`` with ``return_input_shape=False``.
    """

    default_samples = 25

    def __init__(self, forward_func, interpretable_model: str = "lasso", alpha: float = 0.01,
                 similarity: str = "cosine", kernel_width: float = 1.0):
        super().__init__(forward_func)
        name = type(self).__name__
        check_choice(name, "interpretable_model", interpretable_model, SURROGATES)
        check_float(name, "alpha", alpha, low=0.0)
        check_choice(name, "similarity", similarity, DISTANCES)
        check_float(name, "kernel_width", kernel_width, low=0.0, low_open=True)
        self.interpretable_model, self.alpha = interpretable_model, float(alpha)
        self.similarity, self.kernel_width = similarity, float(kernel_width)

    def attribute(self, inputs: Inputs, target: Target = None, *, baselines: Baselines = None,
                  feature_mask: torch.Tensor | tuple[torch.Tensor, ...] | None = None, n_samples: int | None = None,
                  additional_forward_args=None, perturbations_per_eval: int | None = None, seed: int = 0,
                  generator: torch.Generator | None = None, return_input_shape: bool = True):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name, floating=False)
        tensors = tuple(x.detach() for x in tensors)
        n_samples = self.default_samples if n_samples is None else n_samples
        check_positive_int(n_samples, "n_samples", name)
        check_int(name, "seed", seed)
        batch = tensors[0].shape[0]
        target = format_target(target, batch, name)
        filled = perturbation_baselines(tensors, baselines, name)
        ids, num_features = feature_ids(tensors, feature_mask, name)
        self.check_sizes(num_features, n_samples)
        if generator is None:
            generator = torch.Generator().manual_seed(seed)
        samples = self.draw_samples(batch, n_samples, num_features, generator).to(tensors[0].device)  # (B, n, M) bool
        per_eval = perturbations_per_eval or auto_perturbations_per_eval(tensors)
        check_positive_int(per_eval, "perturbations_per_eval", name)
        outputs, weights = self.evaluate(tensors, filled, ids, samples, target, as_tuple(additional_forward_args),
                                         per_eval, name)
        # fitted in float64 whatever the model's dtype: the kernel's weights span six orders of magnitude
        coefficients = self.fit(samples.double(), outputs.double(), weights.double()).to(outputs.dtype)  # (B, M)
        if not return_input_shape:
            return coefficients
        spread = tuple(coefficients.gather(1, i.expand(batch, -1)).view(x.shape) for i, x in zip(ids, tensors))
        return format_output(spread, is_tuple)

    def check_sizes(self, num_features: int, n_samples: int) -> None:
        """Hook for a method whose fit needs more samples than features (KernelShap)."""

    def draw_samples(self, batch: int, n_samples: int, num_features: int, generator: torch.Generator) -> torch.Tensor:
        """Which features are on in each sample, ``(B, n_samples, M)`` bool: each with probability 1/2."""
        return torch.rand((batch, n_samples, num_features), generator=generator) < 0.5

    def sample_weights(self, inputs: tuple[torch.Tensor, ...], perturbed: tuple[torch.Tensor, ...],
                       samples: torch.Tensor) -> torch.Tensor:
        r"""The kernel :math:`\exp(-d^2 / (2 w^2))` of each perturbed input's distance to its example, ``(B, k)``
        for `samples` ``(B, k, M)``."""
        k = samples.shape[1]
        original = torch.cat([x.reshape(x.shape[0], -1) for x in inputs], 1).double()  # (B, P)
        changed = torch.cat([p.reshape(k, x.shape[0], -1) for p, x in zip(perturbed, inputs)], 2).double()  # (k, B, P)
        if self.similarity == "cosine":
            distance = 1 - F.cosine_similarity(original[None].expand_as(changed), changed, dim=2)
        else:
            distance = (original[None] - changed).norm(dim=2)
        return torch.exp(-distance**2 / (2 * self.kernel_width**2)).T

    def fit(self, samples: torch.Tensor, outputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha if self.interpretable_model == "lasso" else 0.0
        return weighted_linear_fit(samples, outputs, weights, alpha)

    def evaluate(self, inputs, baselines, ids, samples, target, args, per_eval, name):
        """The explained output ``(B, n)`` on every perturbed input and each sample's weight ``(B, n)``."""
        batch, n_samples = samples.shape[:2]
        outputs, weights = [], []
        with torch.no_grad():
            for first in range(0, n_samples, per_eval):
                part = samples[:, first:first + per_eval]  # (B, k, M)
                k = part.shape[1]
                perturbed = []
                for x, b, i in zip(inputs, baselines, ids):
                    keep = part.gather(2, i[:, None].expand(batch, k, -1))  # (B, k, numel)
                    keep = keep.transpose(0, 1).reshape(k, batch, *x.shape[1:])
                    perturbed.append(torch.where(keep, x[None], b[None].to(torch.result_type(x, b)))
                                     .reshape(k * batch, *x.shape[1:]))
                out = select_target(self.forward_func(*perturbed, *expand_args(args, batch, k)),
                                    repeat_target(target, k), name)
                if out.numel() != k * batch:
                    raise ConfigError(f"{name}: the model returned {out.numel()} explained values for {k * batch} "
                                      "perturbed inputs; it must return one per example.")
                outputs.append(out.view(k, batch).T)
                weights.append(self.sample_weights(inputs, tuple(perturbed), part))
        outputs = torch.cat(outputs, 1)
        if not outputs.is_floating_point():
            outputs = outputs.to(torch.get_default_dtype())
        return outputs, torch.cat(weights, 1)
