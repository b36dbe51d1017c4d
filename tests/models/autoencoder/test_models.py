"""The autoencoders' user API: shapes of both variants, encode/transform, reconstruct,
interpolate, sample, anomaly scores, the VAE's bounds, and refusals of bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import archlab
from archlab.errors import ConfigError, DataError
from archlab.models.autoencoder import AE, VAE, vae as vae_module


def _images(n=6, size=(11, 13), seed=0):
    return torch.rand(n, 1, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["ae", "vae", "aae"])
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_both_variants_reconstruct_any_image_size(name, architecture):
    torch.manual_seed(0)
    model = archlab.create_model(name, input_size=[11, 13], architecture=architecture, latent_dim=4,
                                 hidden_dims=[16], channels=[4, 8]).eval()
    x = _images()
    assert model.reconstruct(x).shape == x.shape
    assert model.encode(x).shape == (6, 4)
    codes = model.transform(x.flatten(1).numpy())  # flat rows, scikit-learn style
    assert isinstance(codes, np.ndarray) and codes.shape == (6, 4)
    np.testing.assert_allclose(codes, model.encode(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 1, 11, 13)
    torch.testing.assert_close(path[0], model.reconstruct(x[:1])[0].detach())
    torch.testing.assert_close(path[-1], model.reconstruct(x[1:2])[0].detach())


@pytest.mark.parametrize("name", ["ae", "vae", "aae"])
def test_anomaly_score_is_a_differentiable_per_example_function(name):
    torch.manual_seed(0)
    model = archlab.create_model(name, input_size=[6, 6], hidden_dims=[8], latent_dim=3).eval()
    x = _images(size=(6, 6)).requires_grad_(True)
    score = model.anomaly_score(x)
    assert score.shape == (6,) and torch.isfinite(score).all()
    torch.testing.assert_close(model.anomaly_score(x), score)  # deterministic, the VAE's too
    (grad,) = torch.autograd.grad(score.sum(), x)
    assert grad.shape == x.shape and grad.abs().sum() > 0
    # per example: the score of one input does not depend on the others in the batch
    torch.testing.assert_close(model.anomaly_score(x[2:3]), score[2:3])


def test_a_perfect_reconstruction_scores_zero_anomaly():
    model = AE((5,), latent_dim=5, hidden_dims=(), decoder="gaussian").eval()
    with torch.no_grad():
        for linear in (model.encoder.mlp[0], model.decoder.mlp[0]):
            linear.weight.copy_(torch.eye(5))
            linear.bias.zero_()
    x = torch.randn(7, 5)
    torch.testing.assert_close(model.reconstruct(x), x)
    assert torch.equal(model.anomaly_score(x), torch.zeros(7))
    with torch.no_grad():
        model.decoder.mlp[0].bias.fill_(0.1)  # every reconstruction now off by 0.1 per feature
    torch.testing.assert_close(model.anomaly_score(x), torch.full((7,), 5 * 0.1**2))


def test_samples_come_from_the_prior_and_follow_the_generator():
    torch.manual_seed(0)
    model = archlab.create_model("vae", input_size=[6, 6], hidden_dims=[8], latent_dim=3)
    a = model.sample(5, torch.Generator().manual_seed(1))
    b = model.sample(5, torch.Generator().manual_seed(1))
    assert a.shape == (5, 1, 6, 6) and torch.equal(a, b) and ((a >= 0) & (a <= 1)).all()
    assert model.training  # the helper restores the mode
    assert not hasattr(archlab.create_model("ae", input_size=[6, 6]), "sample")  # no prior, no sampling


def _small_vae(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return VAE((1, 4, 4), latent_dim=2, hidden_dims=(16,), activation="tanh").to(dtype).eval()


def test_importance_weighted_bound_exceeds_the_elbo_and_grows_with_k():
    model = _small_vae()
    x = torch.bernoulli(torch.full((300, 1, 4, 4), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        g = torch.Generator().manual_seed(2)
        elbo = model.elbo(x, num_samples=200, generator=g).mean()
        bounds = [model.log_likelihood(x, k, torch.Generator().manual_seed(3)).mean() for k in (1, 5, 50, 500)]
    assert abs(bounds[0] - elbo) < 0.5  # L_1 is an unbiased estimate of the ELBO
    assert bounds[1] > elbo
    assert bounds[0] < bounds[1] < bounds[2] < bounds[3], bounds


def test_importance_weights_are_the_joint_over_the_posterior():
    model = _small_vae()
    x = torch.bernoulli(torch.full((3, 1, 4, 4), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = model.log_likelihood(x, 1, torch.Generator().manual_seed(5))
        mu, logvar = model.encode_distribution(x)
        z = model.reparameterize(mu, logvar, 1, torch.Generator().manual_seed(5))[0]
        p = torch.distributions
        log_px_z = p.Bernoulli(logits=model.decode(z)).log_prob(x).flatten(1).sum(-1)
        log_pz = p.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_qz = p.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(got, log_px_z + log_pz - log_qz)


def test_chunked_log_likelihood_matches_one_chunk(monkeypatch):
    model = _small_vae()
    x = torch.bernoulli(torch.full((20, 1, 4, 4), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = model.log_likelihood(x, 400, torch.Generator().manual_seed(0))
        monkeypatch.setattr(vae_module, "IW_CHUNK_ELEMENTS", 20 * 16 * 7)  # chunks of 7 samples
        chunked = model.log_likelihood(x, 400, torch.Generator().manual_seed(0))
    assert (whole - chunked).abs().mean() < 0.1


def test_gaussian_decoder_learns_its_scale_and_tabular_data_defaults_to_it():
    model = archlab.create_model("vae", in_features=4, hidden_dims=[8], latent_dim=2)
    assert model.decoder_kind == "gaussian" and model.log_scale.shape == (4,)
    x = torch.randn(5, 4) * 3  # standardized features, outside [0, 1]: fine for a Gaussian decoder
    assert torch.isfinite(model.elbo(x)).all()


def test_bernoulli_decoder_refuses_inputs_outside_unit_interval():
    model = archlab.create_model("vae", input_size=[4, 4], hidden_dims=[8], latent_dim=2)
    x = torch.rand(3, 1, 4, 4) * 2 - 0.5
    with pytest.raises(DataError, match=r"decoder='bernoulli' models pixel intensities in \[0, 1\].*decoder='gaussian'"):
        model.elbo(x)
    ae = archlab.create_model("ae", input_size=[4, 4], hidden_dims=[8], latent_dim=2)
    from archlab.models.autoencoder import AETask
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        AETask().training_step(ae, {"x": x})


@pytest.mark.parametrize("name", ["ae", "vae", "aae"])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_latent_size_must_be_positive(name, bad):
    # a non-int is refused against the signature, a small int by the model: both name the parameter and value
    with pytest.raises(ConfigError, match=rf"(?i)latent_dim.* must be an int.* got {re.escape(repr(bad))}"):
        archlab.create_model(name, latent_dim=bad)


def test_bad_hyperparameters_name_what_was_expected():
    with pytest.raises(ConfigError, match=r"The 'architecture' parameter of AE must be one of 'mlp', 'conv'\. "
                                          r"Got 'transformer' instead\."):
        archlab.create_model("ae", architecture="transformer")
    with pytest.raises(ConfigError, match="needs image inputs"):
        archlab.create_model("vae", in_features=5, architecture="conv")
    with pytest.raises(ConfigError, match=r"The 'decoder' parameter of VAE must be 'auto' or one of .*\. Got 'poisson'"):
        archlab.create_model("vae", decoder="poisson")
    with pytest.raises(ConfigError, match=r"The 'prior' parameter of AAE must be one of .*\. Got 'laplace' instead\."):
        archlab.create_model("aae", prior="laplace")
    with pytest.raises(ConfigError, match=r"The 'beta' parameter of VAE must be a float >= 0\. Got -1\.0 instead\."):
        archlab.create_model("vae", beta=-1.0)
    with pytest.raises(ConfigError, match=r"The 'denoising' parameter of AE must be a float in \[0, 1\)\. "
                                          r"Got 1\.5 instead\."):
        archlab.create_model("ae", denoising=1.5)
    with pytest.raises(ConfigError, match="too small"):
        archlab.create_model("ae", input_size=[4, 4], architecture="conv", channels=[4, 4, 4])
    model = archlab.create_model("vae", input_size=[4, 4], hidden_dims=[8], latent_dim=2)
    with pytest.raises(ConfigError, match=r"The 'k' parameter of VAE\.log_likelihood must be an int >= 1\. Got 0 instead\."):
        model.log_likelihood(torch.rand(2, 1, 4, 4), k=0)
    with pytest.raises(ConfigError, match=r"The 'steps' parameter of VAE\.interpolate must be an int >= 2\. Got 1 instead\."):
        model.interpolate(torch.rand(1, 4, 4), torch.rand(1, 4, 4), steps=1)
    with pytest.raises(DataError, match=r"expects input of shape \(batch, 1, 4, 4\)"):
        model.encode(torch.rand(2, 1, 5, 5))


def test_denoising_masks_inputs_only_in_training():
    model = AE((1, 8, 8), latent_dim=2, hidden_dims=(4,), denoising=0.5)
    x = torch.ones(64, 1, 8, 8)
    torch.manual_seed(0)
    masked = model.corrupt(x)
    assert 0.4 < (masked == 0).float().mean() < 0.6 and set(masked.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(model.eval().corrupt(x), x)


def test_sparsity_adds_the_l1_norm_of_the_code():
    from archlab.models.autoencoder import AETask

    torch.manual_seed(0)
    plain = AE((1, 4, 4), latent_dim=3, hidden_dims=(8,))
    sparse = AE((1, 4, 4), latent_dim=3, hidden_dims=(8,), sparsity=0.25)
    sparse.load_state_dict(plain.state_dict())
    x = torch.rand(5, 1, 4, 4)
    expected = AETask().training_step(plain, {"x": x}) + 0.25 * plain.encode(x).abs().sum(-1).mean()
    torch.testing.assert_close(AETask().training_step(sparse, {"x": x}), expected)


@pytest.mark.parametrize("name", ["vae", "aae"])
def test_sampling_follows_the_model_dtype(name):
    model = archlab.create_model(name, input_size=[4, 4], hidden_dims=[8], latent_dim=2).double()
    assert model.sample(3).dtype == torch.float64


def test_mixture_prior_places_components_on_a_circle():
    from archlab.models.autoencoder import priors

    means = priors.mixture_means(4, 3)
    torch.testing.assert_close(means.norm(dim=1), torch.full((4,), priors.MIXTURE_RADIUS))
    assert torch.equal(means[:, 2], torch.zeros(4))
    z = priors.sample_prior("mixture", 4000, 3, 4, torch.Generator().manual_seed(0))
    nearest = torch.cdist(z, means).argmin(1)
    assert torch.bincount(nearest, minlength=4).min() > 800  # equal weights
    spread = (z - means[nearest]).std(0)
    torch.testing.assert_close(spread, torch.full((3,), priors.MIXTURE_STD), atol=0.03, rtol=0)
    gaussian = priors.sample_prior("gaussian", 4000, 3, generator=torch.Generator().manual_seed(0))
    assert gaussian.mean(0).abs().max() < 0.06 and (gaussian.std(0) - 1).abs().max() < 0.05


def test_aae_standardized_codes_have_the_prior_moments_and_keep_them_in_evaluation():
    torch.manual_seed(0)
    model = archlab.create_model("aae", input_size=[6, 6], hidden_dims=[8], latent_dim=3, standardize_code=True)
    x = _images(n=256, size=(6, 6))
    code = model.encode(x)  # training mode: batch statistics
    torch.testing.assert_close(code.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    # v / (v + eps) with BatchNorm's eps = 1e-5 and this small untrained net's small variance v
    torch.testing.assert_close(code.var(0, unbiased=False), torch.ones(3), atol=0.02, rtol=0)
    assert not any("standardize" in name for name, _ in model.named_parameters())  # no learned scale or shift
    with torch.no_grad():
        for _ in range(300):  # the running statistics converge to this batch's (momentum 0.1)
            model.encode(x)
    # (the running variance is the unbiased one: a factor sqrt(255 / 256) apart)
    torch.testing.assert_close(model.eval().encode(x), code, atol=1e-3, rtol=5e-3)
    plain = archlab.create_model("aae", input_size=[6, 6], hidden_dims=[8], latent_dim=3)
    assert sorted(plain.state_dict()) == sorted(k for k in model.state_dict() if not k.startswith("standardize"))


def test_aae_fit_code_statistics_makes_the_evaluation_codes_of_that_data_exactly_standard():
    torch.manual_seed(0)
    model = archlab.create_model("aae", input_size=[6, 6], hidden_dims=[8], latent_dim=3, standardize_code=True)
    x = _images(n=300, size=(6, 6))
    model.train()
    model.fit_code_statistics(x.split(64))  # uneven batches; the exact statistics of all 300
    assert model.training  # the mode is restored
    code = model.eval().encode(x).double()
    h = model.encoder(x).double()
    torch.testing.assert_close(model.standardize.running_mean.double(), h.mean(0), atol=1e-6, rtol=0)
    torch.testing.assert_close(model.standardize.running_var.double(), h.var(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(code.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    # sigma = sqrt(var + eps) with BatchNorm's eps = 1e-5
    expected = (h.var(0) / (h.var(0) + 1e-5)).sqrt()
    torch.testing.assert_close(code.std(0), expected, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="standardize_code=True"):
        archlab.create_model("aae", input_size=[6, 6], hidden_dims=[8], latent_dim=3).fit_code_statistics([x])
    with pytest.raises(ConfigError, match="at least 2 inputs; got 1"):
        model.fit_code_statistics([x[:1]])

