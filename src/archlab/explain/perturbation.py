"""The loop shared by the perturbation methods: replace a masked part of the input by the
baseline, and credit the drop of the explained output to the masked features."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .base import Target, repeat_target, run_forward

# Rows per forward pass when `perturbations_per_eval` is not given (fast on CPU).
CHUNK_ELEMENTS = 2**18


def auto_perturbations_per_eval(inputs: torch.Tensor) -> int:
    per_batch = max(1, inputs.numel())
    return max(1, CHUNK_ELEMENTS // per_batch)


def ablate(forward_func, inputs: torch.Tensor, baselines: torch.Tensor, target: Target, args: tuple,
           masks: Iterator[torch.Tensor], perturbations_per_eval: int, method: str
           ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Sums over the masks :math:`M_k` (bool, broadcastable to `inputs`) of

    .. math:: \big(f_c(x) - f_c(x \odot (1 - M_k) + b \odot M_k)\big)\, M_k

    and of the masks themselves (how often each feature was ablated).

    Shapes:
        inputs and baselines ``(B, ...)``; returns two tensors shaped like `inputs`.
    """
    batch = inputs.shape[0]
    expanded_args = {}
    total = torch.zeros_like(inputs)
    counts = torch.zeros_like(inputs)
    with torch.no_grad():
        initial = run_forward(forward_func, inputs, target, args, method)  # (B,)
        pending: list[torch.Tensor] = []

        def flush() -> None:
            k = len(pending)
            mask = torch.stack([m.expand_as(inputs) for m in pending])  # (k, B, ...)
            ablated = torch.where(mask, baselines[None], inputs[None]).reshape(k * batch, *inputs.shape[1:])
            if k not in expanded_args:
                expanded_args[k] = tuple(torch.cat([a] * k) if isinstance(a, torch.Tensor) and a.dim()
                                         and a.shape[0] == batch else a for a in args)
            out = run_forward(forward_func, ablated, repeat_target(target, k), expanded_args[k], method)
            diff = (initial[None] - out.view(k, batch)).to(inputs.dtype)  # (k, B)
            weight = mask.to(inputs.dtype)
            total.add_((diff.view(k, batch, *(1,) * (inputs.dim() - 1)) * weight).sum(0))
            counts.add_(weight.sum(0))
            pending.clear()

        for mask in masks:
            pending.append(mask.to(inputs.device))
            if len(pending) == perturbations_per_eval:
                flush()
        if pending:
            flush()
    return total, counts
