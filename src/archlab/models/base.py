"""Input checks shared by the model families."""

from __future__ import annotations

import torch

from ..errors import DataError


def check_input(x: torch.Tensor, expected: tuple[int, ...], model: str) -> None:
    """Refuse an input whose per-example shape is not `expected` (batch dim first)."""
    if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != tuple(expected):
        raise DataError(
            f"{model} expects input of shape (batch, {', '.join(map(str, expected))}); "
            f"got {tuple(x.shape)}."
        )
