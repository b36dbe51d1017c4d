"""A multi-layer perceptron classifier for tabular data."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..nn import MLP
from ..registry import register_model
from .base import check_input


class MLPClassifier(nn.Module):
    """An MLP over feature vectors.

    Shapes:
        input ``(B, in_features)``; output ``(B, num_classes)``.
    """

    def __init__(
        self,
        in_features: int = 4,
        num_classes: int = 2,
        hidden_dims: Sequence[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        super().__init__()
        self.input_shape = (in_features,)
        self.mlp = MLP(in_features, num_classes, hidden_dims, activation_name=activation,
                       dropout=dropout, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.input_shape, type(self).__name__)
        return self.mlp(x)


@register_model("mlp", family="mlp", data_kinds=("tabular",),
                train_defaults={"epochs": 100, "batch_size": 32, "lr": 3e-3, "schedule": "cosine",
                                "weight_decay": 1e-4})
def mlp(
    in_features: int = 4,
    num_classes: int = 2,
    hidden_dims: Sequence[int] = (64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> MLPClassifier:
    """Multi-layer perceptron for tabular features."""
    return MLPClassifier(in_features, num_classes, hidden_dims, activation, dropout, batch_norm)
