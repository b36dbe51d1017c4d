"""Reusable layers, one concept a file."""

from .conv import BasicBlock, ConvBlock
from .mlp import MLP, activation

__all__ = ["MLP", "ConvBlock", "BasicBlock", "activation"]
