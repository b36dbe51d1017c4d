"""Patch embedding (Dosovitskiy et al., 2021): an image cut into non-overlapping patches, each
flattened and linearly projected to one token; and the [CLS] token put before them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..validation import fail


def pair(owner: str, name: str, value: int | Sequence[int]) -> tuple[int, int]:
    """An int or a ``(height, width)`` pair of positive ints, as a pair."""
    values = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise fail(owner, name, "an int >= 1 or a (height, width) pair of them", value)
    return values  # type: ignore[return-value]


class PatchEmbedding(nn.Module):
    r"""Split ``(B, C, H, W)`` images into a ``(H / p_h) x (W / p_w)`` grid of patches and map each
    one to an `embed_dim` vector.

    .. math:: z_n = W \operatorname{vec}(x_{\text{patch } n}) + b, \qquad n = 1 \dots N, \quad
              N = \tfrac{H}{p_h}\tfrac{W}{p_w}

    The projection is stored as a convolution whose kernel and stride are the patch size (as in
    timm and Hugging Face's ViT), which is the same linear map of each flattened patch. Tokens
    run over the grid row by row.

    Shapes:
        input ``(B, in_channels, H, W)`` with ``(H, W) == input_size``; output ``(B, N, embed_dim)``.
    """

    def __init__(self, input_size: int | Sequence[int] = 28, patch_size: int | Sequence[int] = 4,
                 in_channels: int = 1, embed_dim: int = 64):
        super().__init__()
        owner = type(self).__name__
        self.input_size = pair(owner, "input_size", input_size)
        self.patch_size = pair(owner, "patch_size", patch_size)
        uneven = [f"{side} {size} by {patch}" for side, size, patch in
                  zip(("height", "width"), self.input_size, self.patch_size) if size % patch]
        if uneven:
            raise fail(owner, "patch_size", f"a divisor of the image size {self.input_size[0]}x{self.input_size[1]} "
                       f"(cannot cut the {' and the '.join(uneven)})", patch_size)
        self.grid_size = (self.input_size[0] // self.patch_size[0], self.input_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.in_channels = in_channels
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.in_channels, *self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{type(self).__name__} expects images of shape (batch, {', '.join(map(str, expected))}); "
                             f"got {tuple(x.shape)}.")
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, E, gh, gw) -> (B, N, E)


class ClassToken(nn.Module):
    """A learned [CLS] vector put before the tokens of each example.

    A module of its own, so that it re-initialises with `reset_parameters` like every other
    layer (the model-randomization check resets layers this way); it starts near zero
    (normal, std 1e-6, as timm's ViT).

    Shapes:
        input ``(B, T, E)``; output ``(B, 1 + T, E)``.
    """

    def __init__(self, embed_dim: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, embed_dim))

    def reset_parameters(self) -> None:
        nn.init.normal_(self.token, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
