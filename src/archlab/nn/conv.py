"""Convolution blocks: conv -> [BatchNorm] -> ReLU -> [max-pool] -> [Dropout]."""

from __future__ import annotations

from torch import nn


class ConvBlock(nn.Sequential):
    """One ``Conv2d -> [BatchNorm2d] -> ReLU -> [MaxPool2d] -> [Dropout2d]`` block.

    `track_running_stats=False` makes BatchNorm use batch statistics in training
    and evaluation alike, as MAML does.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        padding: int | None = None,
        batch_norm: bool = False,
        track_running_stats: bool = True,
        pool: int = 2,
        dropout: float = 0.0,
    ):
        padding = kernel_size // 2 if padding is None else padding
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not batch_norm)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels, track_running_stats=track_running_stats))
        layers.append(nn.ReLU())
        if pool > 1:
            layers.append(nn.MaxPool2d(pool))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)
        self.kernel_size, self.padding, self.pool = kernel_size, padding, pool

    def output_size(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """The spatial size ``(H', W')`` of the output for an input of spatial size `size`, without
        running the block; `ValueError` when a dimension would vanish.

        .. math:: H_{conv} = H + 2p - k + 1, \qquad H' = \lfloor (H_{conv} - s) / s \rfloor + 1 \text{ (pool } s)
        """
        out = []
        for n in size:
            n = n + 2 * self.padding - self.kernel_size + 1  # the stride-1 convolution
            if self.pool > 1:
                n = (n - self.pool) // self.pool + 1 if n >= self.pool else 0  # max-pool, kernel = stride = pool
            if n < 1:
                k, s = self.kernel_size, self.pool
                raise ValueError(f"a {tuple(size)} input leaves no output after a {k}x{k} convolution "
                                 f"(padding {self.padding}) and {s}x{s} pooling")
            out.append(n)
        return tuple(out)


class BasicBlock(nn.Module):
    """The two-convolution residual block of He et al. (2016).

    .. math:: y = \\mathrm{ReLU}(\\mathrm{BN}(W_2 * \\mathrm{ReLU}(\\mathrm{BN}(W_1 * x))) + S x)

    where :math:`S` is the identity, or a strided 1x1 convolution with BatchNorm when
    the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))
