"""The variational autoencoder (Kingma & Welling, 2014), its ELBO and the importance-weighted
log-likelihood estimate of Burda et al. (2016)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from ..registry import register_model
from .tasks import vae_task
from .base import Autoencoder, PriorSampling
from ...nn.gaussian import gaussian_kl
from .losses import elbo, log_normal, log_standard_normal
from .networks import build_decoder, build_encoder, check_choices, input_shape_of, resolve_decoder
from ...validation import check_float, check_int

# Decoder outputs held at once while estimating the log-likelihood (elements, ~32 MB of float32).
IW_CHUNK_ELEMENTS = 1 << 23


class VAEOutput(NamedTuple):
    out: torch.Tensor  # decoder output for z: Bernoulli logits or Gaussian mean, (B, *input_shape)
    mu: torch.Tensor  # posterior mean, (B, latent_dim)
    logvar: torch.Tensor  # posterior log-variance, (B, latent_dim)
    z: torch.Tensor  # reparameterized sample, (B, latent_dim)


def _check_samples(owner: str, name: str, value: int) -> None:
    check_int(owner, name, value, minimum=1)


class VAE(PriorSampling, Autoencoder):
    """Gaussian encoder :math:`q(z|x) = \\mathcal N(\\mu(x), \\mathrm{diag}\\,\\sigma^2(x))`, prior
    :math:`p(z) = \\mathcal N(0, I)` and a Bernoulli-logits or Gaussian decoder :math:`p(x|z)`.

    .. math:: \\mathcal L_\\beta(x) = \\mathbb E_{q(z|x)}[\\log p(x|z)] - \\beta\\,\\mathrm{KL}(q(z|x) \\,\\|\\, p(z)),
              \\quad z = \\mu + \\sigma \\odot \\epsilon,\\ \\epsilon \\sim \\mathcal N(0, I)

    The defaults are the IWAE paper's MNIST architecture: 784-200-200-50, tanh, Bernoulli decoder.
    `binarize` asks the training task to resample binary inputs :math:`x \\sim \\mathrm{Bernoulli}(x)`
    each time a batch is seen (dynamic binarization; Bernoulli decoder only).

    Shapes:
        input ``(B, *input_shape)``; `forward` returns ``VAEOutput(out, mu, logvar, z)``.
    """

    def __init__(self, input_shape: tuple[int, ...], latent_dim: int = 50, architecture: str = "mlp",
                 hidden_dims: Sequence[int] = (200, 200), channels: Sequence[int] = (32, 64),
                 activation: str = "tanh", decoder: str = "auto", beta: float = 1.0, binarize: bool = True,
                 batch_norm: bool = False):
        super().__init__()
        decoder = resolve_decoder(decoder, input_shape)
        check_choices("VAE", latent_dim, architecture, decoder, input_shape)
        check_float("VAE", "beta", beta, low=0)  # the KL weight
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.decoder_kind = decoder
        self.beta = float(beta)
        self.binarize = bool(binarize) and decoder == "bernoulli"
        self.encoder = build_encoder(architecture, self.input_shape, 2 * latent_dim, hidden_dims, channels,
                                     activation, batch_norm)
        self.decoder = build_decoder(architecture, latent_dim, self.input_shape, hidden_dims, channels, activation,
                                     batch_norm)
        self._init_likelihood()

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of :math:`q(z|x)`, each ``(B, latent_dim)``."""
        self.check_input(x)
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean :math:`\\mu(x)`."""
        return self.encode_distribution(x)[0]

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int | None = None,
                       generator: torch.Generator | None = None, shared_noise: bool = False) -> torch.Tensor:
        """:math:`z = \\mu + e^{\\text{logvar}/2} \\odot \\epsilon`; ``(B, D)``, or ``(S, B, D)`` with `num_samples`.
        With `shared_noise` every example gets the same :math:`\\epsilon`, so each sample depends only on its own input."""
        batch = mu.shape[:-1] if not shared_noise else (1,) * (mu.dim() - 1)
        shape = (*batch, mu.shape[-1]) if num_samples is None else (num_samples, *batch, mu.shape[-1])
        eps = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        weight = next(self.parameters())
        return torch.randn(n, self.latent_dim, generator=generator, device=weight.device, dtype=weight.dtype)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                noise: torch.Tensor | None = None) -> VAEOutput:
        """`noise`, when given, is the :math:`\\epsilon` ``(B, latent_dim)`` of the reparameterization."""
        mu, logvar = self.encode_distribution(x)
        if noise is not None:
            z = mu + torch.exp(0.5 * logvar) * noise
        else:
            z = self.reparameterize(mu, logvar, generator=generator)
        return VAEOutput(self.decode(z), mu, logvar, z)

    def elbo(self, x: torch.Tensor, num_samples: int = 1, generator: torch.Generator | None = None,
             beta: float = 1.0, shared_noise: bool = False) -> torch.Tensor:
        """Monte-Carlo ELBO per example (analytic KL, `num_samples` reconstruction samples), shape ``(B,)``."""
        _check_samples(f"{type(self).__name__}.elbo", "num_samples", num_samples)
        self.check_targets(x)
        mu, logvar = self.encode_distribution(x)
        z = self.reparameterize(mu, logvar, num_samples, generator, shared_noise)  # (S, B, D)
        reconstruction = self.log_likelihood_given_code(self.decode(z), x).mean(0)
        return elbo(reconstruction, gaussian_kl(mu, logvar), beta)

    def log_likelihood(self, x: torch.Tensor, k: int = 1000, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
        """Importance-weighted estimate of :math:`\\log p(x)` with `k` samples from :math:`q(z|x)`
        (Burda et al., 2016): a lower bound that is the ELBO at k = 1 and tightens as k grows.

        .. math:: \\log p(x) \\gtrsim \\log \\frac1k \\sum_{i=1}^k \\frac{p(x|z_i)\\,p(z_i)}{q(z_i|x)}

        Samples are processed in chunks, so k = 5000 fits in memory. Shapes: output ``(B,)``.
        """
        _check_samples(f"{type(self).__name__}.log_likelihood", "k", k)
        self.check_targets(x)
        mu, logvar = self.encode_distribution(x)
        chunk = max(1, IW_CHUNK_ELEMENTS // max(1, len(x) * math.prod(self.input_shape)))
        partial = []  # log-sum-exp of each chunk's log-weights, (B,) each
        for start in range(0, k, chunk):
            z = self.reparameterize(mu, logvar, min(chunk, k - start), generator)  # (S, B, D)
            log_w = (self.log_likelihood_given_code(self.decode(z), x) + log_standard_normal(z)
                     - log_normal(z, mu, logvar))  # (S, B)
            partial.append(torch.logsumexp(log_w, dim=0))
        # log (1/k) sum_i w_i over all chunks: the same value as importance_weighted_bound on all k at once.
        return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)

    def anomaly_score(self, x: torch.Tensor, num_samples: int = 8, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
        """Negative ELBO per example, shape ``(B,)``, estimated with `num_samples` noise draws shared
        by all examples. Without a `generator` the draws come from a fixed seed, so the score is a
        deterministic, differentiable function of each example's own input."""
        if generator is None:
            generator = torch.Generator(device=x.device).manual_seed(0)
        return -self.elbo(x, num_samples, generator, shared_noise=True)


@register_model("vae", family="autoencoder", data_kinds=("image", "tabular"), task=vae_task,
                explanation="anomaly", generates="images",
                train_defaults={"epochs": 50, "batch_size": 100, "lr": 1e-3, "optimizer": "adam"})
def vae(
    in_channels: int = 1,
    input_size: int | Sequence[int] = 28,
    in_features: int | None = None,
    latent_dim: int = 50,
    architecture: str = "mlp",
    hidden_dims: Sequence[int] = (200, 200),
    channels: Sequence[int] = (32, 64),
    activation: str = "tanh",
    decoder: str = "auto",
    beta: float = 1.0,
    binarize: bool = True,
    batch_norm: bool = False,
) -> VAE:
    """Variational autoencoder (beta-VAE): Gaussian encoder, Bernoulli-logits or Gaussian decoder."""
    return VAE(input_shape_of("VAE", in_channels, input_size, in_features), latent_dim, architecture, hidden_dims,
               channels, activation, decoder, beta, binarize, batch_norm)
