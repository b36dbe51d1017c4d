"""Losses and bounds of the autoencoder family, as plain functions of explicit tensors.

Every function returns one value per example, shape ``(B,)`` (or ``(S, B)`` when the
inputs carry a leading sample dimension), so callers choose how to reduce.
Reconstruction terms work on logits (`binary_cross_entropy_with_logits`), never on
``log(sigmoid(.))``, which loses precision where the decoder is confident.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...errors import DataError

LOG_2PI = math.log(2.0 * math.pi)


def _sum_features(t: torch.Tensor, feature_dims: int) -> torch.Tensor:
    return t.flatten(t.dim() - feature_dims).sum(-1) if feature_dims > 0 else t


def check_unit_interval(x: torch.Tensor, where: str = "the Bernoulli decoder") -> None:
    """Refuse inputs outside [0, 1]: a Bernoulli likelihood is only defined there."""
    if x.numel() == 0:
        return
    low, high = float(x.detach().min()), float(x.detach().max())
    if not (low >= 0.0 and high <= 1.0):  # also catches NaN
        raise DataError(
            f"{where} models pixel intensities in [0, 1]; got inputs in [{low:.4g}, {high:.4g}]. "
            "Scale the data to [0, 1], or use decoder='gaussian' (--set decoder=gaussian) for real-valued data."
        )


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor, feature_dims: int) -> torch.Tensor:
    """:math:`\\log p(x \\mid z) = \\sum_i x_i \\log \\sigma(l_i) + (1 - x_i) \\log(1 - \\sigma(l_i))`.

    Shapes:
        `logits` ``(..., *F)``, `x` broadcastable to it; output ``(...)`` (the last
        `feature_dims` dimensions summed).
    """
    x = x.expand_as(logits)
    return -_sum_features(F.binary_cross_entropy_with_logits(logits, x, reduction="none"), feature_dims)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, log_scale: torch.Tensor, feature_dims: int
                            ) -> torch.Tensor:
    """:math:`\\log \\mathcal N(x; \\mu, \\sigma^2) = \\sum_i -\\tfrac12 ((x_i - \\mu_i)/\\sigma_i)^2
    - \\log \\sigma_i - \\tfrac12 \\log 2\\pi`, with :math:`\\sigma = e^{\\text{log\\_scale}}`."""
    z = (x - mean) * torch.exp(-log_scale)
    return _sum_features(-0.5 * z.pow(2) - log_scale - 0.5 * LOG_2PI, feature_dims)


def squared_error(x_hat: torch.Tensor, x: torch.Tensor, feature_dims: int) -> torch.Tensor:
    """Reconstruction error :math:`\\lVert \\hat x - x \\rVert_2^2` per example (zero for a perfect
    reconstruction)."""
    return _sum_features((x_hat - x).pow(2), feature_dims)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\mathcal N(z; \\mu, \\mathrm{diag}\\, e^{\\text{logvar}})`, summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\mathcal N(z; 0, I)`, summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def elbo(log_likelihood: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """The (beta-weighted) evidence lower bound :math:`\\mathbb E_q[\\log p(x|z)] - \\beta\\,\\mathrm{KL}(q \\| p)`
    from a Monte-Carlo reconstruction term and the analytic KL."""
    return log_likelihood - beta * kl


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound of Burda et al. (2016) from ``k`` log-weights.

    .. math:: \\mathcal L_k = \\log \\frac1k \\sum_{i=1}^k \\frac{p(x, z_i)}{q(z_i \\mid x)},
              \\quad z_i \\sim q(z \\mid x)

    Shapes:
        `log_weights` ``(k, B)`` with :math:`\\log w_i = \\log p(x, z_i) - \\log q(z_i|x)`; output ``(B,)``.
    """
    k = log_weights.shape[0]
    return torch.logsumexp(log_weights, dim=0) - math.log(k)


def code_sparsity(code: torch.Tensor) -> torch.Tensor:
    """L1 activity penalty :math:`\\sum_j |h_j|` per example (sparse autoencoder)."""
    return code.abs().sum(-1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """GAN discriminator loss: prior samples are real (1), encoder codes are fake (0).

    .. math:: -\\log D(z_{\\text{prior}}) - \\log(1 - D(q(z|x)))

    Shapes:
        `real_logits`, `fake_logits` ``(B,)``; output ``(B,)``.
    """
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits), reduction="none")
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="none"))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator (encoder) loss :math:`-\\log D(q(z|x))`, per example."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction="none")

