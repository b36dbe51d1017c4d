"""The one table of activation functions, by the name a model's ``activation`` parameter takes."""

from __future__ import annotations

from torch import nn

from .gelu import TanhGELU

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,  # exact (erf), as BERT
    "gelu_tanh": TanhGELU,  # GPT-2's "gelu_new", the tanh approximation
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    """A new activation module for `name` (one of `ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"The 'activation' parameter must be one of {', '.join(map(repr, ACTIVATIONS))}. "
                         f"Got {name!r} instead.")
    return ACTIVATIONS[name]()
