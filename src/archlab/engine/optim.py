"""Optimizers and per-step learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from ..errors import unknown_name

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "linear")


def build_optimizer(params: Iterable, name: str, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.optim.Optimizer:
    """AdamW, Adam (`betas`, `eps` as torch's), or SGD with (Nesterov-free) momentum."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise unknown_name("optimizer", name, OPTIMIZERS)


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
              ) -> float:
    r"""Multiplier of the base learning rate at `step` (0-based): a linear warm-up that reaches 1
    at step `warmup_steps`, where the decay starts, then constant, cosine or linear decay to
    `min_lr_ratio` at `total_steps` (nanoGPT's ``get_lr`` with ``lr_decay_iters = total_steps``,
    ``min_lr = min_lr_ratio * lr``).

    .. math::
        f(s) = \frac{s + 1}{W + 1} \;(s < W), \qquad
        f(s) = r + (1 - r)\, d(p), \quad p = \min\!\left(1, \frac{s - W}{T - W}\right)

    with :math:`d(p) = \tfrac12 (1 + \cos \pi p)` (cosine) or :math:`1 - p` (linear)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "linear":
        decay = 1.0 - progress
    else:
        raise unknown_name("schedule", schedule, SCHEDULES)
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int, warmup_steps: int = 0,
                    min_lr_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    if schedule not in SCHEDULES:
        raise unknown_name("schedule", schedule, SCHEDULES)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(schedule, step, total_steps, warmup_steps, min_lr_ratio)
    )
