"""Priors over codes for the adversarial autoencoder: samples only, since the AAE never
evaluates a prior density (its discriminator compares samples)."""

from __future__ import annotations

import math

import torch

from ...validation import check_choice, check_int

PRIORS = ("gaussian", "mixture")
MIXTURE_RADIUS = 4.0  # distance of the component means from the origin
MIXTURE_STD = 0.5  # standard deviation of each component along every dimension


def mixture_means(num_components: int, dim: int) -> torch.Tensor:
    """Component means evenly spaced on a circle of radius `MIXTURE_RADIUS` in the first two
    code dimensions (zero elsewhere), as in Makhzani et al.'s 2-D mixture of ten Gaussians.

    Shapes:
        output ``(num_components, dim)``.
    """
    angles = torch.arange(num_components, dtype=torch.float32) * (2 * math.pi / num_components)
    means = torch.zeros(num_components, dim)
    means[:, 0] = MIXTURE_RADIUS * torch.cos(angles)
    if dim > 1:
        means[:, 1] = MIXTURE_RADIUS * torch.sin(angles)
    return means


def check_prior(owner: str, prior: str, num_components: int) -> None:
    check_choice(owner, "prior", prior, PRIORS)
    check_int(owner, "num_components", num_components, minimum=1)


def sample_prior(prior: str, n: int, dim: int, num_components: int = 10, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """`n` codes from the standard Gaussian :math:`\\mathcal N(0, I)` or from the equal-weight mixture
    :math:`\\frac1K \\sum_k \\mathcal N(m_k, s^2 I)` with means from `mixture_means`.

    Shapes:
        output ``(n, dim)``.
    """
    check_prior("sample_prior", prior, num_components)
    noise = torch.randn(n, dim, generator=generator, device=device)
    if prior == "gaussian":
        return noise
    component = torch.randint(num_components, (n,), generator=generator, device=device)
    return mixture_means(num_components, dim).to(noise.device)[component] + MIXTURE_STD * noise
