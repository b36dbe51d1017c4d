"""Faithfulness of attributions: the completeness of Integrated Gradients, and the deletion and
insertion curves of Petsiuk et al. (2018)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import (Baselines, Target, as_tuple, check_inputs, check_positive_int, format_baselines, format_target,
                   repeat_target, run_forward, select_target)


def completeness_error(forward_func, inputs: torch.Tensor, attributions: torch.Tensor, target: Target = None, *,
                       baselines: Baselines = None, additional_forward_args=None) -> torch.Tensor:
    r"""Relative completeness error of attributions from a baseline :math:`x'`:

    .. math:: \frac{\left|\sum_i a_i - (f_c(x) - f_c(x'))\right|}{|f_c(x) - f_c(x')|}

    Shapes:
        inputs and attributions ``(B, ...)``; returns ``(B,)``.
    """
    name = "completeness_error"
    inputs = check_inputs(inputs, name, floating=False)
    if attributions.shape != inputs.shape:
        raise ValueError(f"{name}: attributions of shape {tuple(attributions.shape)} must be shaped like the inputs "
                         f"{tuple(inputs.shape)}.")
    target = format_target(target, inputs.shape[0], name)
    baselines = format_baselines(inputs, baselines, name)
    args = as_tuple(additional_forward_args)
    with torch.no_grad():
        gap = run_forward(forward_func, inputs, target, args, name) - run_forward(forward_func, baselines, target,
                                                                                  args, name)
    total = attributions.detach().reshape(inputs.shape[0], -1).sum(1).to(gap.dtype)
    return (total - gap).abs() / gap.abs()


@dataclass
class PerturbationCurve:
    """The explained score as more and more of the input is deleted (or inserted)."""

    fractions: torch.Tensor  # (steps + 1,), from 0 to 1
    scores: torch.Tensor  # (B, steps + 1)
    auc: torch.Tensor  # (B,): trapezoidal area under each curve

    @property
    def mean_auc(self) -> float:
        return float(self.auc.mean())


def _curve(forward_func, inputs, attributions, target, baselines, steps, probability, additional_forward_args,
           insertion: bool, batch_size: int | None) -> PerturbationCurve:
    name = "insertion_curve" if insertion else "deletion_curve"
    inputs = check_inputs(inputs, name, floating=False).detach()
    check_positive_int(steps, "steps", name)
    batch = inputs.shape[0]
    if not isinstance(attributions, torch.Tensor) or attributions.shape[0] != batch:
        raise ValueError(f"{name}: attributions must be a tensor with one map per example ({batch}); got "
                         f"{tuple(getattr(attributions, 'shape', ()))}.")
    try:
        torch.broadcast_shapes(attributions.shape, inputs.shape)
    except RuntimeError:
        raise ValueError(f"{name}: attributions of shape {tuple(attributions.shape)} do not broadcast to the inputs "
                         f"{tuple(inputs.shape)}.") from None
    target = format_target(target, batch, name)
    baselines = format_baselines(inputs, baselines, name).detach()
    args = as_tuple(additional_forward_args)
    features = attributions[0].numel()
    # rank[b, i]: position of feature i in the order of decreasing attribution
    order = attributions.detach().reshape(batch, -1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(features, device=order.device).expand(batch, -1))
    counts = torch.round(torch.linspace(0, features, steps + 1, dtype=torch.float64)).long()
    rows = batch_size or max(batch, 2**17 // max(1, inputs[0].numel()))
    per_pass = max(1, rows // batch)
    scores = []
    with torch.no_grad():
        for start in range(0, steps + 1, per_pass):
            k = counts[start:start + per_pass].to(order.device)  # features changed at these steps
            changed = (rank[None] < k[:, None, None]).reshape(len(k), *attributions.shape)  # (s, B, ...)
            changed = changed.expand(len(k), *inputs.shape)
            source, canvas = (inputs, baselines) if insertion else (baselines, inputs)
            batch_in = torch.where(changed, source[None], canvas[None]).reshape(len(k) * batch, *inputs.shape[1:])
            expanded = tuple(torch.cat([a] * len(k)) if isinstance(a, torch.Tensor) and a.dim() and a.shape[0] == batch
                             else a for a in args)
            output = forward_func(batch_in, *expanded)
            if probability:
                if output.dim() != 2:
                    raise ValueError(f"{name}: probability=True needs logits of shape (batch, classes); got "
                                     f"{tuple(output.shape)}. Pass probability=False to use the raw output.")
                output = torch.softmax(output, dim=1)
            scores.append(select_target(output, repeat_target(target, len(k)), name).view(len(k), batch))
    scores = torch.cat(scores).T.contiguous()  # (B, steps + 1)
    fractions = counts.to(scores.dtype) / features
    auc = torch.trapezoid(scores, fractions.to(scores.device), dim=1)
    return PerturbationCurve(fractions, scores, auc)


def deletion_curve(forward_func, inputs: torch.Tensor, attributions: torch.Tensor, target: Target = None, *,
                   baselines: Baselines = None, steps: int = 50, probability: bool = True,
                   additional_forward_args=None, batch_size: int | None = None) -> PerturbationCurve:
    r"""Delete features in the order of decreasing attribution (replace them by the baseline)
    and follow the explained score; a faithful map makes it fall fast, so a low area

    .. math:: \mathrm{AUC} = \int_0^1 p_c\big(x \text{ with the top } t \text{ fraction deleted}\big)\, dt

    is better. `probability=True` scores the softmax probability of the target, as Petsiuk
    et al. do. Attributions may be per pixel and broadcast over channels (e.g. ``(B, 1, H, W)``).

    Shapes:
        inputs ``(B, ...)``; attributions ``(B, ...)`` broadcastable to inputs; scores ``(B, steps + 1)``.
    """
    return _curve(forward_func, inputs, attributions, target, baselines, steps, probability,
                  additional_forward_args, insertion=False, batch_size=batch_size)


def insertion_curve(forward_func, inputs: torch.Tensor, attributions: torch.Tensor, target: Target = None, *,
                    baselines: Baselines = None, steps: int = 50, probability: bool = True,
                    additional_forward_args=None, batch_size: int | None = None) -> PerturbationCurve:
    r"""Insert features into the baseline (Petsiuk et al. use a blurred copy of the input) in
    the order of decreasing attribution; a faithful map makes the score rise fast, so a
    high area is better.

    Shapes:
        as `deletion_curve`.
    """
    return _curve(forward_func, inputs, attributions, target, baselines, steps, probability,
                  additional_forward_args, insertion=True, batch_size=batch_size)
