"""The deterministic autoencoder, with optional denoising and a sparsity penalty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from ..registry import register_model
from .tasks import autoencoder_task
from .base import Autoencoder
from .networks import MaskingNoise, build_decoder, build_encoder, check_choices, input_shape_of, resolve_decoder
from ...validation import check_float


class AEOutput(NamedTuple):
    out: torch.Tensor  # decoder output: Bernoulli logits or Gaussian mean, (B, *input_shape)
    code: torch.Tensor  # (B, latent_dim)


class AE(Autoencoder):
    """Autoencoder :math:`\\hat x = g(f(\\tilde x))` trained to reconstruct `x` from a corrupted
    :math:`\\tilde x` (masking noise with probability `denoising`; :math:`\\tilde x = x` when 0).

    The loss (see `AETask`) is :math:`-\\log p(x \\mid g(f(\\tilde x))) + \\lambda \\lVert f(\\tilde x) \\rVert_1`
    with :math:`\\lambda` = `sparsity`: binary cross-entropy on logits for ``decoder="bernoulli"``,
    squared error for ``decoder="gaussian"`` (``"auto"``: Bernoulli for images, Gaussian for feature vectors).

    Shapes:
        input ``(B, *input_shape)``; `forward` returns ``AEOutput(out (B, *input_shape), code (B, latent_dim))``.
    """

    def __init__(self, input_shape: tuple[int, ...], latent_dim: int = 32, architecture: str = "mlp",
                 hidden_dims: Sequence[int] = (256, 128), channels: Sequence[int] = (32, 64),
                 activation: str = "relu", decoder: str = "auto", denoising: float = 0.0,
                 sparsity: float = 0.0, batch_norm: bool = False):
        super().__init__()
        decoder = resolve_decoder(decoder, input_shape)
        check_choices("AE", latent_dim, architecture, decoder, input_shape)
        check_float("AE", "sparsity", sparsity, low=0)  # the L1 weight on the code
        self.input_shape = tuple(input_shape)
        self.latent_dim = latent_dim
        self.decoder_kind = decoder
        self.sparsity = float(sparsity)
        self.corrupt = MaskingNoise(denoising)
        self.encoder = build_encoder(architecture, self.input_shape, latent_dim, hidden_dims, channels, activation,
                                     batch_norm)
        self.decoder = build_decoder(architecture, latent_dim, self.input_shape, hidden_dims, channels, activation,
                                     batch_norm)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> AEOutput:
        code = self.encode(self.corrupt(x))
        return AEOutput(self.decode(code), code)


@register_model("ae", family="autoencoder", data_kinds=("image", "tabular"), task=autoencoder_task,
                explanation="anomaly",
                train_defaults={"epochs": 30, "batch_size": 64, "lr": 2e-3, "optimizer": "adam",
                                "schedule": "cosine"})
def ae(
    in_channels: int = 1,
    input_size: int | Sequence[int] = 28,
    in_features: int | None = None,
    latent_dim: int = 32,
    architecture: str = "mlp",
    hidden_dims: Sequence[int] = (256, 128),
    channels: Sequence[int] = (32, 64),
    activation: str = "relu",
    decoder: str = "auto",
    denoising: float = 0.0,
    sparsity: float = 0.0,
    batch_norm: bool = False,
) -> AE:
    """Autoencoder (MLP or convolutional); optional denoising (masking noise) and L1 code sparsity."""
    return AE(input_shape_of("AE", in_channels, input_size, in_features), latent_dim, architecture, hidden_dims,
              channels, activation, decoder, denoising, sparsity, batch_norm)
