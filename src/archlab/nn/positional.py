"""Positional encodings: sinusoidal (Vaswani et al., 2017), learned, and rotary (Su et al., 2021)."""

from __future__ import annotations

import torch
from torch import nn
from ..validation import check_choice, fail


def _check_length(steps: int, offset: int, context_length: int) -> None:
    if offset + steps > context_length:
        raise ValueError(f"sequence of {steps} steps at offset {offset} is longer than the context: "
                         f"at most {context_length} positions are encoded (context_length).")


class SinusoidalPositionalEncoding(nn.Module):
    r"""Fixed sinusoids added to the input.

    .. math::
        PE_{p, 2i} = \sin(p / 10000^{2i/E}), \qquad PE_{p, 2i+1} = \cos(p / 10000^{2i/E})

    Shapes:
        input ``(B, T, E)``; output ``(B, T, E)``.
    """

    def __init__(self, embed_dim: int, context_length: int, base: float = 10000.0):
        super().__init__()
        position = torch.arange(context_length, dtype=torch.float64)[:, None]
        inv_freq = base ** (-torch.arange(0, embed_dim, 2, dtype=torch.float64) / embed_dim)
        pe = torch.zeros(context_length, embed_dim, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(position * inv_freq)
        pe[:, 1::2] = torch.cos(position * inv_freq[: embed_dim // 2])
        self.context_length = context_length
        self.register_buffer("pe", pe.float(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_length(x.shape[1], offset, self.context_length)
        return x + self.pe[offset:offset + x.shape[1]].to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """A learned vector per position, added to the input (BERT, GPT-2).

    Shapes:
        input ``(B, T, E)``; output ``(B, T, E)``.
    """

    def __init__(self, embed_dim: int, context_length: int):
        super().__init__()
        self.context_length = context_length
        self.embedding = nn.Embedding(context_length, embed_dim)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_length(x.shape[1], offset, self.context_length)
        positions = torch.arange(offset, offset + x.shape[1], device=x.device)
        return x + self.embedding(positions)


class RotaryEmbedding(nn.Module):
    r"""Rotary position embedding (RoPE), applied to queries and keys inside attention.

    Each pair of channels :math:`(x_i, x_{i + D/2})` at position :math:`p` is rotated by the
    angle :math:`p\,\theta_i` with :math:`\theta_i = b^{-2i/D}` (the GPT-NeoX / Llama "half"
    layout), so that :math:`\langle R_m q, R_n k \rangle` depends on :math:`m - n` only.

    .. math::
        R_p x = x \odot \cos(p\theta) + \mathrm{rotate\_half}(x) \odot \sin(p\theta)

    Shapes:
        input ``(B, H, T, D)`` with even ``D``; output the same.
    """

    def __init__(self, head_dim: int, context_length: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise fail("RotaryEmbedding", "head_dim", "an even int", head_dim)
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.arange(context_length, dtype=torch.float64)[:, None] * inv_freq  # (L, D/2)
        angles = torch.cat([angles, angles], dim=-1)  # (L, D)
        self.context_length = context_length
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        steps = x.shape[-2]
        _check_length(steps, offset, self.context_length)
        cos = self.cos[offset:offset + steps].to(x.dtype)
        sin = self.sin[offset:offset + steps].to(x.dtype)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin


POSITIONAL = {"sinusoidal": SinusoidalPositionalEncoding, "learned": LearnedPositionalEmbedding}
POSITIONAL_KINDS = ("sinusoidal", "learned", "rotary")


def check_positional(owner: str, name: str) -> None:
    check_choice(owner, "positional", name, POSITIONAL_KINDS)


__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "RotaryEmbedding"]
