"""Diagonal Gaussians, the one place for the KL term and the reparameterized sample that the
VAE, the AAE's prior matching and the VGAE share. Variances are carried as log-variances."""

from __future__ import annotations

import torch


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic :math:`\\mathrm{KL}(\\mathcal N(\\mu, \\mathrm{diag}\\,\\sigma^2) \\,\\|\\, \\mathcal N(0, I))`.

    .. math:: \\mathrm{KL} = \\tfrac12 \\sum_j \\left(\\mu_j^2 + \\sigma_j^2 - 1 - \\log \\sigma_j^2\\right)

    Shapes:
        `mu`, `logvar` ``(..., D)``; output ``(...)``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """A sample :math:`\\mathbf{z} = \\mu + \\sigma \\odot \\epsilon`, :math:`\\epsilon \\sim \\mathcal{N}(0, I)`,
    differentiable in `mu` and `logvar`.

    Shapes:
        `mu`, `logvar` ``(..., D)``; output ``(..., D)``.
    """
    noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + noise * (0.5 * logvar).exp()
