"""Convolutional networks: a configurable `ConvNet`, LeNet-5 and a small ResNet."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..nn import MLP, BasicBlock, ConvBlock
from .registry import register_model
from .base import check_input
from ..validation import fail


def _pair(owner: str, size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise fail(owner, "input_size", "an int or (height, width)", size)
    return size  # type: ignore[return-value]


# Tuned so that `archlab train cnn --data digits` (the README's main job) reaches >= 97%
# test accuracy in a few seconds; pass --epochs for larger datasets.
_IMAGE_DEFAULTS = {"epochs": 30, "batch_size": 32, "lr": 2e-3, "schedule": "cosine"}


@register_model("cnn", family="cnn", data_kinds=("image",), train_defaults=_IMAGE_DEFAULTS)
class ConvNet(nn.Module):
    """Conv -> ReLU -> max-pool blocks and an MLP head.

    The flatten size is derived from `input_size` by each block's `output_size` (arithmetic, no
    trial forward: building on the meta device, as a checkpoint's size check does, stays cheap).

    Shapes:
        input ``(B, in_channels, H, W)`` with ``(H, W) == input_size``; output ``(B, num_classes)``,
        or with ``num_classes=0`` the flattened features ``(B, num_features)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int | Sequence[int] = 28,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        padding: int | Sequence[int] | None = None,
        hidden_dims: Sequence[int] = (128,),
        batch_norm: bool = False,
        track_running_stats: bool = True,
        dropout: float = 0.2,
        pool: int = 2,
    ):
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one convolution block.")
        self.input_shape = (in_channels, *_pair(type(self).__name__, input_size))
        paddings = list(padding) if isinstance(padding, (list, tuple)) else [padding] * len(channels)
        blocks = []
        width = in_channels
        for out_channels, pad in zip(channels, paddings):
            blocks.append(
                ConvBlock(width, out_channels, kernel_size, padding=pad, batch_norm=batch_norm,
                          track_running_stats=track_running_stats, pool=pool)
            )
            width = out_channels
        self.features = nn.Sequential(*blocks)
        size = self.input_shape[1:]
        try:
            for block in blocks:
                size = block.output_size(size)
        except ValueError as err:
            raise ValueError(
                f"input_size {self.input_shape[1:]} is too small for {len(channels)} blocks of "
                f"kernel {kernel_size} with pooling {pool}: {err}"
            ) from err
        flat = width * math.prod(size)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # num_classes=0, as in timm: no classifier, the model returns its flattened features
        # (an embedding network, e.g. for prototypical networks)
        self.head = MLP(flat, num_classes, hidden_dims, dropout=dropout) if num_classes else nn.Identity()
        self.num_features = flat

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape, type(self).__name__)
        return self.features(x)  # (B, C', H', W')

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ResNet(nn.Module):
    """A small residual network for 28x28 / 32x32 images (He et al., 2016, CIFAR variant).

    Shapes:
        input ``(B, in_channels, H, W)``; output ``(B, num_classes)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int | Sequence[int] = 28,
        channels: Sequence[int] = (16, 32, 64),
        depths: Sequence[int] = (1, 1, 1),
    ):
        super().__init__()
        if not channels:
            raise fail("ResNet", "channels", "a non-empty list of ints", channels)
        if len(depths) != len(channels):
            raise fail("ResNet", "depths", f"a list of {len(channels)} ints, one per entry of channels", depths)
        self.input_shape = (in_channels, *_pair(type(self).__name__, input_size))
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()
        )
        stages = []
        width = channels[0]
        for i, (out_width, depth) in enumerate(zip(channels, depths)):
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(width, out_width, stride))
                width = out_width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape, type(self).__name__)
        return self.stages(self.stem(x))  # (B, C', H', W')

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(features).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))




# Three epochs reach LeNet-5's MNIST accuracy (>= 99%; benchmarks/NOTES.md).
@register_model("lenet5", family="cnn", data_kinds=("image",),
                train_defaults={"epochs": 3, "batch_size": 64, "lr": 4e-3, "schedule": "cosine"})
def lenet5(in_channels: int = 1, num_classes: int = 10, input_size: int | Sequence[int] = 28) -> ConvNet:
    """LeNet-5 style CNN (LeCun et al., 1998) with ReLU and max-pooling: 6 and 16 5x5 filters, 120-84 head."""
    return ConvNet(in_channels, num_classes, input_size, channels=(6, 16), kernel_size=5, padding=2,
                   hidden_dims=(120, 84), dropout=0.0)


@register_model("resnet", family="cnn", data_kinds=("image",), train_defaults=_IMAGE_DEFAULTS)
def resnet(
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int | Sequence[int] = 28,
    channels: Sequence[int] = (16, 32, 64),
    depths: Sequence[int] = (1, 1, 1),
) -> ResNet:
    """Small residual network for 28x28 / 32x32 images (three stages of basic blocks)."""
    return ResNet(in_channels, num_classes, input_size, channels, depths)
