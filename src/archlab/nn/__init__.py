"""Reusable layers, one concept a file."""

from .conv import BasicBlock, ConvBlock
from .mlp import MLP, activation
from .attention import KVCache, MultiHeadAttention
from .positional import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding
from .transformer import FeedForward, TransformerBlock

__all__ = ["MLP", "ConvBlock", "BasicBlock", "activation"]
__all__ += ["MultiHeadAttention", "KVCache", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
            "RotaryEmbedding", "TransformerBlock", "FeedForward"]
