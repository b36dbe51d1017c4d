"""The model-randomization sanity check of Adebayo et al. (2018): a map that explains the model
must change when the model's weights are replaced by random ones."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of each row, ties sharing their average rank (as `scipy.stats.rankdata`).

    Shapes:
        ``(B, n)`` -> ``(B, n)`` float64.
    """
    x = x.detach().double()
    order = x.argsort(dim=1, stable=True)
    sorted_x = x.gather(1, order)
    n = x.shape[1]
    # a new group starts where the sorted value changes; each group gets the mean of its positions
    starts = torch.ones_like(sorted_x, dtype=torch.bool)
    starts[:, 1:] = sorted_x[:, 1:] != sorted_x[:, :-1]
    group = starts.long().cumsum(1) - 1
    position = torch.arange(1, n + 1, dtype=torch.float64).expand_as(sorted_x)
    sums = torch.zeros_like(sorted_x).scatter_add_(1, group, position)
    sizes = torch.zeros_like(sorted_x).scatter_add_(1, group, torch.ones_like(position))
    ranks_sorted = (sums / sizes.clamp_min(1)).gather(1, group)
    return torch.empty_like(ranks_sorted).scatter_(1, order, ranks_sorted)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Spearman rank correlation between the maps of each example (Pearson's r of the ranks).

    .. math:: \rho = \frac{\operatorname{cov}(R(a), R(b))}{\sigma_{R(a)}\,\sigma_{R(b)}}

    Shapes:
        a and b ``(B, ...)`` with the same shape; returns ``(B,)``.
    """
    if a.shape != b.shape:
        raise ValueError(f"spearman: the maps must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}.")
    ra, rb = rankdata(a.reshape(a.shape[0], -1)), rankdata(b.reshape(b.shape[0], -1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


@dataclass
class RandomizationStep:
    layer: str  # the layer randomized at this step (all layers above it are random too)
    spearman: float  # mean over examples of the rank correlation with the trained model's maps
    spearman_per_example: torch.Tensor  # (B,)


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters and can re-initialise them, from the input to the output."""
    return [name for name, module in model.named_modules()
            if any(True for _ in module.parameters(recurse=False)) and hasattr(module, "reset_parameters")]


def model_randomization_check(model: nn.Module, explain: Callable[[nn.Module], torch.Tensor], *,
                              layers: list[str] | None = None, absolute: bool = True,
                              seed: int = 0) -> list[RandomizationStep]:
    """Cascading randomization: re-initialise the layers from the top (output) down, one
    more at each step, and compare each map with the trained model's by Spearman rank
    correlation. The last step is the fully randomized model.

    `explain(model)` returns the maps ``(B, ...)`` of a model (e.g.
    ``lambda m: Saliency(m).attribute(x, y)``). With `absolute`, maps are compared by their
    magnitude, as Adebayo et al. do for saliency. The model itself is left unchanged (a copy
    is randomized, its initialisation seeded by `seed` without touching the global RNG).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model_randomization_check needs a torch.nn.Module; got {type(model).__name__}.")
    names = parameter_layers(model) if layers is None else list(layers)
    named = dict(model.named_modules())
    missing = [n for n in names if n not in named]
    if missing:
        raise ValueError(f"model_randomization_check: layers {missing} are not in the model; its layers with "
                         f"parameters are: {', '.join(parameter_layers(model))}.")
    if not names:
        raise ValueError("model_randomization_check: the model has no layer with parameters to randomize.")

    def prepare(maps: torch.Tensor) -> torch.Tensor:
        return maps.detach().abs() if absolute else maps.detach()

    reference = prepare(explain(model))
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    steps = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in reversed(names):
            with torch.no_grad():
                modules[name].reset_parameters()
            rho = spearman(reference, prepare(explain(randomized)))
            steps.append(RandomizationStep(name, float(rho.mean()), rho))
    return steps
