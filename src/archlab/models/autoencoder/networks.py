"""Encoders and decoders shared by the AE, VAE and AAE: an MLP pair for any input,
and a convolutional pair for images, built from `archlab.nn.MLP` and `ConvBlock`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ...errors import ConfigError
from ...nn import MLP, ConvBlock, activation
from ...validation import check_choice, check_float, check_int, fail

ARCHITECTURES = ("mlp", "conv")
DECODERS = ("bernoulli", "gaussian")


def resolve_decoder(decoder: str, input_shape: tuple[int, ...]) -> str:
    """``"auto"`` is Bernoulli (logits) for images and Gaussian for feature vectors."""
    if decoder == "auto":
        return "bernoulli" if len(input_shape) == 3 else "gaussian"
    return decoder


def input_shape_of(owner: str, in_channels: int, input_size: int | Sequence[int], in_features: int | None
                   ) -> tuple[int, ...]:
    """``(in_features,)`` for feature vectors, else ``(in_channels, H, W)``."""
    if in_features is not None:
        if not isinstance(in_features, int) or in_features < 1:
            raise fail(owner, "in_features", "an int >= 1", in_features)
        return (in_features,)
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if len(size) != 2 or min(size) < 1:
        raise fail(owner, "input_size", "an int >= 1 or (height, width) of them", input_size)
    if in_channels < 1:
        raise fail(owner, "in_channels", "an int >= 1", in_channels)
    return (in_channels, *size)


def check_choices(owner: str, latent_dim: int, architecture: str, decoder: str, input_shape: tuple[int, ...]
                  ) -> None:
    """Validate the hyperparameters every autoencoder shares (`owner` is the model's class name)."""
    check_int(owner, "latent_dim", latent_dim, minimum=1)  # the size of the code
    check_choice(owner, "architecture", architecture, ARCHITECTURES)
    if decoder not in DECODERS:
        raise fail(owner, "decoder", f"'auto' or one of {', '.join(map(repr, DECODERS))}", decoder)
    if architecture == "conv" and len(input_shape) != 3:
        raise ConfigError(f"architecture='conv' needs image inputs (channels, height, width); "
                          f"got input shape {input_shape}. Use architecture='mlp' for feature vectors.")


class MLPEncoder(nn.Module):
    """Flatten, then an MLP to `out_features`.

    Shapes:
        input ``(B, *input_shape)``; output ``(B, out_features)``.
    """

    def __init__(self, input_shape: tuple[int, ...], out_features: int, hidden_dims: Sequence[int],
                 activation_name: str = "relu"):
        super().__init__()
        self.mlp = MLP(math.prod(input_shape), out_features, hidden_dims, activation_name=activation_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.flatten(1))


class MLPDecoder(nn.Module):
    """An MLP from the code to one output per input feature, reshaped to the input.

    Shapes:
        input ``(*, latent_dim)``; output ``(*, *output_shape)``.
    """

    def __init__(self, latent_dim: int, output_shape: tuple[int, ...], hidden_dims: Sequence[int],
                 activation_name: str = "relu"):
        super().__init__()
        self.output_shape = output_shape
        self.mlp = MLP(latent_dim, math.prod(output_shape), hidden_dims, activation_name=activation_name)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(z).unflatten(-1, self.output_shape)


def conv_stage_sizes(input_shape: tuple[int, ...], channels: Sequence[int], kernel_size: int
                     ) -> list[tuple[int, int]]:
    """Spatial size before the first block and after each conv + 2x2 max-pool block."""
    sizes = [tuple(input_shape[1:])]
    for _ in channels:
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    if min(sizes[-1]) < 1:
        raise ConfigError(f"an input of size {input_shape[1:]} is too small for {len(channels)} conv blocks "
                          f"with 2x2 pooling; use fewer channels entries.")
    return sizes  # type: ignore[return-value]


class ConvEncoder(nn.Module):
    """Conv -> ReLU -> max-pool blocks, then a linear map to `out_features`.

    Shapes:
        input ``(B, C, H, W)``; output ``(B, out_features)``.
    """

    def __init__(self, input_shape: tuple[int, ...], out_features: int, channels: Sequence[int],
                 kernel_size: int = 3, batch_norm: bool = False):
        super().__init__()
        if not channels:
            raise ConfigError("channels must name at least one convolution block for architecture='conv'.")
        sizes = conv_stage_sizes(input_shape, channels, kernel_size)
        blocks, width = [], input_shape[0]
        for out_channels in channels:
            blocks.append(ConvBlock(width, out_channels, kernel_size, batch_norm=batch_norm, pool=2))
            width = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(width * math.prod(sizes[-1]), out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))  # (B, C', H', W') -> (B, out_features)


class ConvDecoder(nn.Module):
    """The mirror of `ConvEncoder`: a linear map to the last feature map, then per block
    nearest-neighbour upsampling to the encoder's size at that depth and a convolution.
    Upsampling to recorded sizes (not by a fixed factor) reproduces odd sizes exactly (7 -> 14 -> 28, 3 -> 7).

    Shapes:
        input ``(*, latent_dim)``; output ``(*, C, H, W)``.
    """

    def __init__(self, latent_dim: int, output_shape: tuple[int, ...], channels: Sequence[int],
                 kernel_size: int = 3, batch_norm: bool = False):
        super().__init__()
        sizes = conv_stage_sizes(output_shape, channels, kernel_size)
        self.output_shape = output_shape
        self.start = (channels[-1], *sizes[-1])
        self.head = nn.Linear(latent_dim, math.prod(self.start))
        layers: list[nn.Module] = [nn.ReLU()]
        widths = [output_shape[0], *channels]  # widths[i]: channels at depth i
        for depth in range(len(channels), 0, -1):
            layers.append(nn.Upsample(size=sizes[depth - 1], mode="nearest"))
            last = depth == 1
            layers.append(nn.Conv2d(widths[depth], widths[depth - 1], kernel_size, padding=kernel_size // 2,
                                    bias=last or not batch_norm))
            if not last:
                if batch_norm:
                    layers.append(nn.BatchNorm2d(widths[depth - 1]))
                layers.append(nn.ReLU())
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.head(z.reshape(-1, z.shape[-1])).unflatten(-1, self.start)  # (N, C_L, H_L, W_L)
        return self.features(h).reshape(*lead, *self.output_shape)


def build_encoder(architecture: str, input_shape: tuple[int, ...], out_features: int, hidden_dims: Sequence[int],
                  channels: Sequence[int], activation_name: str, batch_norm: bool = False) -> nn.Module:
    activation(activation_name)  # validates the name
    if architecture == "conv":
        return ConvEncoder(input_shape, out_features, channels, batch_norm=batch_norm)
    return MLPEncoder(input_shape, out_features, hidden_dims, activation_name)


def build_decoder(architecture: str, latent_dim: int, output_shape: tuple[int, ...], hidden_dims: Sequence[int],
                  channels: Sequence[int], activation_name: str, batch_norm: bool = False) -> nn.Module:
    if architecture == "conv":
        return ConvDecoder(latent_dim, output_shape, channels, batch_norm=batch_norm)
    return MLPDecoder(latent_dim, output_shape, tuple(reversed(hidden_dims)), activation_name)


class MaskingNoise(nn.Module):
    """Denoising corruption of Vincent et al. (2008): in training, each input value is set to
    zero with probability `p` (no rescaling, unlike dropout); the identity in evaluation."""

    def __init__(self, p: float):
        super().__init__()
        # the layer is AE's `denoising` option, so its value is refused under that name
        check_float("AE", "denoising", p, low=0, high=1, high_open=True)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
