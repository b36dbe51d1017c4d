"""A multi-layer perceptron, used as a model and as the head of other models."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .activation import activation

class MLP(nn.Sequential):
    """Linear -> [BatchNorm] -> activation -> [Dropout] for each hidden layer, then a linear output.

    Shapes:
        input ``(B, in_features)``, output ``(B, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_dims: Sequence[int] = (),
        *,
        activation_name: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers.append(nn.Linear(width, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(activation(activation_name))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        self.in_features = in_features
        self.out_features = out_features
