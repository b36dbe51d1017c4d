"""Transformer encoder classifier for token ids (text) or continuous sequences."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import DataError
from ..nn import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding, TransformerBlock
from ..nn.positional import check_positional
from ..validation import check_choice, check_int
from .registry import register_model
from .text_inputs import check_token_ids, padding_mask

POOLINGS = ("mean", "cls")


class TransformerClassifier(nn.Module):
    """Embedding + positions, a stack of transformer blocks, a pooling, a linear head.

    Inputs are token ids ``(B, T)`` when `vocab_size` is set (``model.embedding`` is the
    token embedding), else continuous sequences ``(B, T, input_dim)`` projected to
    `embed_dim`. `lengths` ``(B,)`` masks the padding steps out of attention and pooling.

    Pooling: ``mean`` averages the valid steps; ``cls`` prepends a learned [CLS] vector
    and classifies its final state (the attention maps then have ``T + 1`` steps, the
    [CLS] position first).

    ``forward(x, lengths, return_attention=True)`` returns ``(logits, attentions)``,
    attentions a list (one per layer) of ``(B, num_heads, T, T)`` tensors.

    Shapes:
        input ``(B, T)`` or ``(B, T, input_dim)``; output ``(B, num_classes)``.
    """

    def __init__(self, input_dim: int = 1, num_classes: int = 2, vocab_size: int | None = None,
                 embed_dim: int = 128, num_layers: int = 2, num_heads: int = 4, mlp_dim: int | None = None,
                 dropout: float = 0.1, attention_dropout: float = 0.0, pooling: str = "mean",
                 positional: str = "sinusoidal", context_length: int = 512, norm_first: bool = True,
                 padding_idx: int = 0):
        super().__init__()
        check_int("TransformerClassifier", "num_layers", num_layers, minimum=1)
        check_choice("TransformerClassifier", "pooling", pooling, POOLINGS)
        check_positional("TransformerClassifier", positional)
        self.vocab_size = vocab_size
        self.input_dim = input_dim
        self.context_length = context_length
        self.pooling = pooling
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        else:
            self.embedding = None
            self.input_proj = nn.Linear(input_dim, embed_dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02) if pooling == "cls" else None
        steps = context_length + (pooling == "cls")
        rotary = RotaryEmbedding(embed_dim // num_heads, steps) if positional == "rotary" else None
        self.positional = {"sinusoidal": SinusoidalPositionalEncoding, "learned": LearnedPositionalEmbedding}[
            positional](embed_dim, steps) if rotary is None else None
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(embed_dim, num_heads, mlp_dim, dropout=dropout, attention_dropout=attention_dropout,
                             norm_first=norm_first, rotary=rotary) for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dim) if norm_first else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        if self.embedding is not None:
            check_token_ids(x, self.vocab_size, self.context_length, name)
            return self.embedding(x)
        if x.dim() != 3 or x.shape[-1] != self.input_dim:
            raise DataError(f"{name} expects input of shape (batch, steps, {self.input_dim}); got {tuple(x.shape)}.")
        if x.shape[1] > self.context_length:
            raise DataError(f"{name}: a sequence of {x.shape[1]} steps is longer than the context of "
                            f"{self.context_length} (context_length).")
        return self.input_proj(x)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None, return_attention: bool = False):
        """The pooled representation ``(B, embed_dim)`` (and the attention maps when asked)."""
        h = self._embed(x)  # (B, T, E)
        batch, steps = h.shape[:2]
        pad = padding_mask(lengths, batch, steps, h.device)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(batch, -1, -1), h], dim=1)  # (B, 1 + T, E)
            if pad is not None:
                pad = torch.cat([pad.new_zeros(batch, 1), pad], dim=1)
        if self.positional is not None:
            h = self.positional(h)
        h = self.dropout(h)
        attentions = []
        for block in self.blocks:
            h, weights = block(h, key_padding_mask=pad, need_weights=return_attention)
            attentions.append(weights)
        h = self.norm(h)
        if self.cls_token is not None:
            pooled = h[:, 0]
        elif pad is None:
            pooled = h.mean(1)
        else:
            valid = (~pad)[..., None].to(h.dtype)
            pooled = (h * valid).sum(1) / valid.sum(1)
        return (pooled, attentions) if return_attention else pooled

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, return_attention: bool = False):
        if return_attention:
            pooled, attentions = self.forward_features(x, lengths, True)
            return self.head(pooled), attentions
        return self.head(self.forward_features(x, lengths))


@register_model("transformer", family="transformer", data_kinds=("text", "sequence"),
                train_defaults={"epochs": 10, "batch_size": 64, "lr": 5e-4, "weight_decay": 0.01,
                                "schedule": "cosine", "warmup_steps": 100, "grad_clip": 1.0})
def transformer(input_dim: int = 1, num_classes: int = 2, vocab_size: int | None = None, embed_dim: int = 128,
                num_layers: int = 2, num_heads: int = 4, mlp_dim: int | None = None, dropout: float = 0.1,
                attention_dropout: float = 0.0, pooling: str = "mean", positional: str = "sinusoidal",
                context_length: int = 512, norm_first: bool = True, padding_idx: int = 0) -> TransformerClassifier:
    """Transformer encoder classifier (pre-LN; sinusoidal, learned or rotary positions; mean or [CLS] pooling)."""
    return TransformerClassifier(input_dim, num_classes, vocab_size, embed_dim, num_layers, num_heads, mlp_dim,
                                 dropout, attention_dropout, pooling, positional, context_length, norm_first,
                                 padding_idx)
