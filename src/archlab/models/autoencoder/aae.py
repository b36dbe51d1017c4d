"""The adversarial autoencoder (Makhzani et al., 2016): an autoencoder whose aggregated
posterior is matched to a prior by a discriminator on codes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ...errors import ConfigError
from ...nn import MLP
from ..registry import register_model
from .tasks import aae_task
from .ae import AEOutput
from .base import Autoencoder, PriorSampling
from .networks import build_decoder, build_encoder, check_choices, input_shape_of, resolve_decoder
from .priors import check_prior, sample_prior


class AAE(PriorSampling, Autoencoder):
    """Deterministic encoder :math:`q(z|x)`, decoder :math:`p(x|z)` and discriminator :math:`D(z)`.

    Training alternates, on every batch (see `AAETask`), the paper's three phases:
    reconstruction (encoder + decoder), discriminator (prior samples vs codes) and generator
    (the encoder fools the discriminator), so the aggregated posterior
    :math:`q(z) = \\int q(z|x)\\,p_d(x)\\,dx` approaches the prior :math:`p(z)`
    (``"gaussian"``: :math:`\\mathcal N(0, I)`; ``"mixture"``: `num_components` Gaussians on a circle).

    `standardize_code` ends the encoder with a batch normalization without affine parameters,
    :math:`f(x) = (h(x) - \\mu) / \\sigma` per dimension (batch statistics in training): the codes'
    first two moments are the prior's by construction, and the adversarial phases shape the rest
    of the distribution. In evaluation :math:`\\mu, \\sigma` are the running statistics, which
    `fit_code_statistics` replaces with the exact ones of a whole dataset (`fit` does so on the
    training set before every evaluation): a running average over the last few hundred codes is
    off by a few hundredths per dimension.

    Shapes:
        input ``(B, *input_shape)``; `forward` returns ``AEOutput(out, code)``; `discriminate` maps
        ``(B, latent_dim)`` to logits ``(B,)``.
    """

    def __init__(self, input_shape: tuple[int, ...], latent_dim: int = 8, architecture: str = "mlp",
                 hidden_dims: Sequence[int] = (512, 512), channels: Sequence[int] = (32, 64),
                 activation: str = "relu", decoder: str = "auto", prior: str = "gaussian", num_components: int = 10,
                 discriminator_dims: Sequence[int] = (512, 512), batch_norm: bool = False,
                 standardize_code: bool = False):
        super().__init__()
        decoder = resolve_decoder(decoder, input_shape)
        check_choices("AAE", latent_dim, architecture, decoder, input_shape)
        check_prior("AAE", prior, num_components)
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.decoder_kind = decoder
        self.prior = prior
        self.num_components = num_components
        self.encoder = build_encoder(architecture, self.input_shape, latent_dim, hidden_dims, channels, activation,
                                     batch_norm)
        self.decoder = build_decoder(architecture, latent_dim, self.input_shape, hidden_dims, channels, activation,
                                     batch_norm)
        # Batch statistics in training, running ones in evaluation; no affine part, so the
        # discriminator, not a learned scale, decides everything beyond the first two moments.
        self.standardize = nn.BatchNorm1d(latent_dim, affine=False) if standardize_code else nn.Identity()
        self.discriminator = MLP(latent_dim, 1, discriminator_dims, activation_name="relu")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.standardize(self.encoder(x))

    @torch.no_grad()
    def fit_code_statistics(self, batches: Iterable[torch.Tensor]) -> None:
        """Set the code standardization's statistics to the mean and (unbiased) variance of the
        encoder's output over `batches` of inputs, as the encoder computes it in evaluation mode.
        Requires ``standardize_code=True``."""
        if not isinstance(self.standardize, nn.BatchNorm1d):
            raise ConfigError("fit_code_statistics needs an AAE built with standardize_code=True; "
                              "this one has no code standardization.")
        was_training = self.training
        self.eval()
        codes = []
        for x in batches:
            self.check_input(x)
            codes.append(self.encoder(x).double())
        self.train(was_training)
        h = torch.cat(codes) if codes else torch.empty(0, self.latent_dim, dtype=torch.float64)
        if len(h) < 2:
            raise ConfigError(f"fit_code_statistics needs at least 2 inputs; got {len(h)}.")
        mean, var = h.mean(0), h.var(0)
        self.standardize.running_mean.copy_(mean)
        self.standardize.running_var.copy_(var)

    def discriminate(self, z: torch.Tensor) -> torch.Tensor:
        """Logit of "z was drawn from the prior", ``(B,)``."""
        return self.discriminator(z).squeeze(-1)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        weight = next(self.parameters())
        return sample_prior(self.prior, n, self.latent_dim, self.num_components, generator, weight.device
                            ).to(weight.dtype)

    def forward(self, x: torch.Tensor) -> AEOutput:
        code = self.encode(x)
        return AEOutput(self.decode(code), code)


@register_model("aae", family="autoencoder", data_kinds=("image", "tabular"), task=aae_task,
                explanation="anomaly", generates="images",
                train_defaults={"epochs": 30, "batch_size": 100, "lr": 1e-3, "optimizer": "adam"})
def aae(
    in_channels: int = 1,
    input_size: int | Sequence[int] = 28,
    in_features: int | None = None,
    latent_dim: int = 8,
    architecture: str = "mlp",
    hidden_dims: Sequence[int] = (512, 512),
    channels: Sequence[int] = (32, 64),
    activation: str = "relu",
    decoder: str = "auto",
    prior: str = "gaussian",
    num_components: int = 10,
    discriminator_dims: Sequence[int] = (512, 512),
    batch_norm: bool = False,
    standardize_code: bool = False,
) -> AAE:
    """Adversarial autoencoder: a discriminator matches the codes to a Gaussian or mixture prior;
    optionally the encoder ends with a standardizing layer (`standardize_code`)."""
    return AAE(input_shape_of("AAE", in_channels, input_size, in_features), latent_dim, architecture, hidden_dims,
               channels, activation, decoder, prior, num_components, discriminator_dims, batch_norm,
               standardize_code)
