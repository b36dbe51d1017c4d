"""The maths of diagonal Gaussians: KL >= 0, zero only at the prior, equal to torch.distributions
and to its Monte-Carlo estimate; the reparameterized sample."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from archlab.nn import gaussian_kl, reparameterize


def _posterior(seed: int, batch: int = 6, dim: int = 5):
    g = torch.Generator().manual_seed(seed)
    mu = 2 * torch.randn(batch, dim, generator=g, dtype=torch.float64)
    logvar = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    return mu, logvar


@pytest.mark.parametrize("seed", range(5))
def test_kl_is_non_negative_and_zero_only_at_the_prior(seed):
    mu, logvar = _posterior(seed)
    assert (gaussian_kl(mu, logvar) > 0).all()
    zero = torch.zeros(3, 4, dtype=torch.float64)
    torch.testing.assert_close(gaussian_kl(zero, zero), torch.zeros(3, dtype=torch.float64))


def test_kl_equals_torch_distributions():
    mu, logvar = _posterior(0)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p).sum(-1))


def test_kl_equals_a_monte_carlo_estimate():
    mu, logvar = _posterior(1, batch=4, dim=3)
    g = torch.Generator().manual_seed(7)
    n = 200_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, *mu.shape, generator=g, dtype=torch.float64)
    log_ratio = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1) - Normal(0.0, 1.0).log_prob(z).sum(-1)  # (n, B)
    estimate = log_ratio.mean(0)
    stderr = log_ratio.std(0) / math.sqrt(n)
    gap = (estimate - gaussian_kl(mu, logvar)).abs()
    assert (gap < 5 * stderr).all(), (gap, stderr)



def test_node_averaged_kl_of_a_log_std_encoder_matches_torch_distributions():
    # the VGAE's encoder gives log standard deviations: logvar = 2 log_std
    mu, log_std = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64) * 0.3
    q = Normal(mu, log_std.exp())
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(gaussian_kl(mu, 2 * log_std).mean(), kl_divergence(q, p).sum(-1).mean())
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).mean() == 0


def test_reparameterized_sample_has_the_moments_and_the_gradient():
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    logvar = torch.log(torch.tensor([0.25, 4.0], dtype=torch.float64)).requires_grad_()
    z = reparameterize(mu.expand(200_000, 2), logvar.expand(200_000, 2), torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), mu.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0], dtype=torch.float64), atol=0.02, rtol=0)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.full((2,), 200_000.0, dtype=torch.float64))
