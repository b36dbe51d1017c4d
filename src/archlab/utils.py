"""Seeding and device selection."""

from __future__ import annotations

import random

import numpy as np
import torch

from .errors import ConfigError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; `cuda` without a GPU is refused."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} was asked for, but torch sees no CUDA GPU here; use --device cpu or auto.")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"--device must be auto, cpu or cuda[:N]; got '{device}'.") from err
