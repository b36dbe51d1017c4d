"""Transformer blocks: attention and a position-wise MLP, each in a residual branch,
with the layer norm before (pre-LN, GPT-2) or after (post-LN, Vaswani et al. / BERT) it."""

from __future__ import annotations

import torch
from torch import nn

from .attention import KVCache, MultiHeadAttention
from .activation import activation as make_activation

class FeedForward(nn.Sequential):
    """``Linear(E, mlp_dim) -> activation -> Linear(mlp_dim, E)``."""

    def __init__(self, embed_dim: int, mlp_dim: int, activation: str = "gelu", bias: bool = True):
        super().__init__(nn.Linear(embed_dim, mlp_dim, bias=bias), make_activation(activation),
                         nn.Linear(mlp_dim, embed_dim, bias=bias))


class TransformerBlock(nn.Module):
    r"""One transformer layer.

    .. math::
        \text{pre-LN:}\quad h = x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad y = h + \mathrm{MLP}(\mathrm{LN}_2(h))

        \text{post-LN:}\quad h = \mathrm{LN}_1(x + \mathrm{Attn}(x)), \qquad y = \mathrm{LN}_2(h + \mathrm{MLP}(h))

    Dropout (`dropout`) is applied to each branch's output before the residual sum;
    `attention_dropout` to the attention weights.

    Shapes:
        input ``(B, T, E)``; output ``(B, T, E)``; attention weights ``(B, num_heads, T, S)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int | None = None, *, dropout: float = 0.0,
                 attention_dropout: float = 0.0, activation: str = "gelu", norm_first: bool = True,
                 layer_norm_eps: float = 1e-5, bias: bool = True, rotary: nn.Module | None = None):
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(embed_dim, num_heads, attention_dropout, bias=bias, rotary=rotary)
        self.norm1 = nn.LayerNorm(embed_dim, eps=layer_norm_eps, bias=bias)
        self.mlp = FeedForward(embed_dim, mlp_dim or 4 * embed_dim, activation, bias=bias)
        self.norm2 = nn.LayerNorm(embed_dim, eps=layer_norm_eps, bias=bias)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, *, key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None, is_causal: bool = False, need_weights: bool = False,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns ``(output, attention weights or None)``."""
        kwargs = dict(key_padding_mask=key_padding_mask, attn_mask=attn_mask, is_causal=is_causal,
                      need_weights=need_weights, cache=cache)
        if self.norm_first:
            a, weights = self.attention(self.norm1(x), **kwargs)
            x = x + self.dropout(a)
            return x + self.dropout(self.mlp(self.norm2(x))), weights
        a, weights = self.attention(x, **kwargs)
        x = self.norm1(x + self.dropout(a))
        return self.norm2(x + self.dropout(self.mlp(x))), weights
