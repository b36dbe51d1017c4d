"""The maths of the autoencoder losses: likelihoods equal to torch.distributions in float64, the importance-weighted bound."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from archlab.models.autoencoder import losses


def _posterior(seed: int, batch: int = 6, dim: int = 5):
    g = torch.Generator().manual_seed(seed)
    mu = 2 * torch.randn(batch, dim, generator=g, dtype=torch.float64)
    logvar = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    return mu, logvar


def test_log_normal_equals_torch_distributions():
    mu, logvar = _posterior(2)
    z = torch.randn_like(mu)
    torch.testing.assert_close(losses.log_normal(z, mu, logvar), Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1))
    torch.testing.assert_close(losses.log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_bernoulli_log_likelihood_equals_torch_and_is_stable_for_confident_logits():
    g = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(2, 3, 1, 4, 4, generator=g, dtype=torch.float64)  # (S, B, C, H, W)
    x = torch.bernoulli(torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64), generator=g)
    expected = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).flatten(2).sum(-1)
    torch.testing.assert_close(losses.bernoulli_log_likelihood(logits, x, feature_dims=3), expected)
    # sigmoid(-200) underflows in float32: log(sigmoid) would be -inf, the logits form is exact.
    confident = torch.tensor([[-200.0, 200.0]])
    value = losses.bernoulli_log_likelihood(confident, torch.tensor([[1.0, 0.0]]), feature_dims=1)
    torch.testing.assert_close(value, torch.tensor([-400.0]))


def test_gaussian_log_likelihood_equals_torch():
    g = torch.Generator().manual_seed(3)
    mean, x = torch.randn(2, 5, 7, generator=g, dtype=torch.float64), torch.randn(5, 7, generator=g, dtype=torch.float64)
    log_scale = 0.3 * torch.randn(7, generator=g, dtype=torch.float64)
    expected = Normal(mean, log_scale.exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(losses.gaussian_log_likelihood(mean, x, log_scale, feature_dims=1), expected)


def test_importance_weighted_bound_is_at_least_the_mean_log_weight():
    log_w = torch.randn(50, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    bound = losses.importance_weighted_bound(log_w)
    assert (bound >= log_w.mean(0)).all()  # Jensen: log mean exp >= mean log
    torch.testing.assert_close(losses.importance_weighted_bound(log_w[:1]), log_w[0])
    torch.testing.assert_close(bound, torch.log(log_w.exp().mean(0)))


def test_squared_error_is_zero_for_a_perfect_reconstruction():
    x = torch.rand(4, 1, 5, 5)
    assert torch.equal(losses.squared_error(x, x, feature_dims=3), torch.zeros(4))


def test_adversarial_losses():
    real, fake = torch.tensor([0.0, 3.0]), torch.tensor([0.0, -3.0])
    expected = torch.tensor([2 * math.log(2.0), 2 * math.log1p(math.exp(-3.0))])
    torch.testing.assert_close(losses.discriminator_loss(real, fake), expected)
    torch.testing.assert_close(losses.generator_loss(torch.tensor([0.0])), torch.tensor([math.log(2.0)]))


def test_bernoulli_range_check_names_the_expected_range():
    with pytest.raises(ValueError, match=r"\[0, 1\]; got inputs in \[-0.5, 2\]"):
        losses.check_unit_interval(torch.tensor([-0.5, 0.3, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        losses.check_unit_interval(torch.tensor([0.5, float("nan")]))
