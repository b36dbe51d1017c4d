"""The sinusoid regression tasks of Finn et al. (2017), section 5.1.

A task is :math:`y = A \\sin(x - \\varphi)` with amplitude :math:`A \\sim U[0.1, 5]`,
phase :math:`\\varphi \\sim U[0, \\pi]`, and inputs :math:`x \\sim U[-5, 5]`; `shots`
support points and `query` query points are drawn per task. There are no
meta-splits: every task is new, and a separately seeded generator gives the test tasks.
"""

from __future__ import annotations

import math

import torch

from .fewshot import TaskBatch, check_counts


class Sinusoid:
    """Sinusoid regression tasks; `sample(n_tasks, generator)` returns a `TaskBatch`.

    Shapes:
        ``support_x, support_y (T, shots, 1)``, ``query_x, query_y (T, query, 1)``.
    """

    kind = "regression"
    input_shape = (1,)
    output_dim = 1
    name = "sinusoid"

    def __init__(self, shots: int = 10, query: int = 10, *, amplitude: tuple[float, float] = (0.1, 5.0),
                 phase: tuple[float, float] = (0.0, math.pi), x_range: tuple[float, float] = (-5.0, 5.0)):
        check_counts("Sinusoid", 1, shots, query)
        self.shots, self.query = shots, query
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    @staticmethod
    def _uniform(shape: tuple[int, ...], bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
        low, high = bounds
        return low + (high - low) * torch.rand(shape, generator=generator)

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch:
        amplitude = self._uniform((n_tasks, 1, 1), self.amplitude, generator)
        phase = self._uniform((n_tasks, 1, 1), self.phase, generator)
        x = self._uniform((n_tasks, self.shots + self.query, 1), self.x_range, generator)
        y = amplitude * torch.sin(x - phase)
        k = self.shots
        return TaskBatch(x[:, :k], y[:, :k], x[:, k:], y[:, k:])
