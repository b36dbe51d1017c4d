"""The loop shared by the perturbation methods: replace a masked part of the inputs by the
baselines, and credit the change of the explained output to the masked features.

As in Captum, the explained output may be one value per example (the usual case) or
values for the whole batch (a forward function returning a scalar, or an output whose
first dimension is not the batch). Attributions have one row per explained output value:
``(B, ...)`` in the first case, ``(n_outputs, ...)`` in the second, where each row
credits that output value to the features of the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ..errors import ConfigError, DataError
from .base import Target, check_baseline, check_positive_int, expand_args, per_input, repeat_target, select_target

# Rows per forward pass when `perturbations_per_eval` is not given (fast on CPU).
CHUNK_ELEMENTS = 2**18

# One perturbation: a boolean mask per input (None where that input is left as it is).
Perturbation = tuple


def auto_perturbations_per_eval(inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> int:
    per_batch = max(1, sum(x.numel() for x in (inputs if isinstance(inputs, tuple) else (inputs,))))
    return max(1, CHUNK_ELEMENTS // per_batch)


def perturbation_baselines(inputs: tuple[torch.Tensor, ...], baselines, method: str) -> tuple[torch.Tensor, ...]:
    """One baseline per input, broadcast to it, in the dtype an input takes once a baseline is
    written into it: ``torch.result_type(input, baseline)``, so integer inputs keep a 0.5
    baseline and boolean inputs accept ``True`` (Captum). ``None`` is zero (``False`` for
    boolean inputs)."""
    formatted = []
    for x, b in zip(inputs, per_input(baselines, inputs, "baselines", method)):
        if b is None:
            formatted.append(torch.zeros((), dtype=x.dtype, device=x.device).expand_as(x))
            continue
        if isinstance(b, (bool, int, float)):
            b = torch.tensor(b, dtype=torch.result_type(x, b), device=x.device)
        check_baseline(b, x, method)
        formatted.append(b.to(device=x.device, dtype=torch.result_type(x, b)).expand_as(x))
    return tuple(formatted)


def _explained(output, target: Target, batch: int, method: str) -> tuple[torch.Tensor, bool]:
    """The explained output values, ``(B,)`` per example or all values of a batch-level output
    flattened, and whether they are per example."""
    if isinstance(output, (int, float)) and not isinstance(output, bool):
        # a Python number, typed as Captum types it (float -> float64, int -> int64)
        output = torch.tensor(output, dtype=torch.float64 if isinstance(output, float) else torch.int64)
    if not isinstance(output, torch.Tensor):
        raise DataError(f"{method}: the model must return a tensor or a number; got {type(output).__name__}.")
    if output.dim() == 0 or output.shape[0] != batch:
        if target is not None and output.dim() == 0:
            raise ConfigError(f"{method}: the model returns a single value for the whole batch; there is no output "
                              f"to select with target {target!r} (pass target=None).")
        batch_level = output if target is None else select_target(output, target, method)
        return batch_level.reshape(-1), False
    return select_target(output, target, method), True


def ablate(forward_func: Callable, inputs: tuple[torch.Tensor, ...], baselines: tuple[torch.Tensor, ...],
           target: Target, args: tuple, perturbations: Iterable[Perturbation], perturbations_per_eval: int | None,
           method: str) -> tuple[torch.Tensor, ...]:
    r"""Sums over the perturbations :math:`M_k` (a boolean mask per input) of

    .. math:: \big(f_c(x) - f_c(x \odot (1 - M_k) + b \odot M_k)\big)\, M_k

    for each input, in the dtype of the explained output.

    Shapes:
        inputs and baselines ``(B, ...)`` each; a mask ``(1, ...)`` or ``(B, ...)`` (or None);
        returns one tensor ``(n_rows, ...)`` per input, ``n_rows`` being ``B`` for one
        explained value per example, else the number of batch-level output values.
    """
    batch = inputs[0].shape[0]
    with torch.no_grad():
        initial, per_example = _explained(forward_func(*inputs, *args), target, batch, method)  # (n_rows,)
        if perturbations_per_eval is None:
            if per_example and batch == 1:
                # one example and one value: per example only if two copies give two values
                twice = tuple(x.repeat(2, *(1,) * (x.dim() - 1)) for x in inputs)
                output = forward_func(*twice, *expand_args(args, 1, 2))
                per_example = isinstance(output, torch.Tensor) and output.dim() > 0 and output.shape[0] == 2
            perturbations_per_eval = auto_perturbations_per_eval(inputs) if per_example else 1
        check_positive_int(perturbations_per_eval, "perturbations_per_eval", method)
        if not per_example and perturbations_per_eval > 1:
            raise ConfigError(f"The 'perturbations_per_eval' parameter of {method} must be 1 when the model returns "
                              f"{initial.numel()} value(s) for the whole batch of {batch} (its output cannot be "
                              f"split per perturbation). Got {perturbations_per_eval} instead.")
        rows = initial.numel()
        totals = [torch.zeros((rows, *x.shape[1:]), dtype=initial.dtype, device=x.device) for x in inputs]
        expanded_args: dict[int, tuple] = {}
        pending: list[Perturbation] = []

        def flush() -> None:
            k = len(pending)
            ablated, stacks = [], []
            for i, (x, b) in enumerate(zip(inputs, baselines)):
                masks = [p[i] for p in pending]
                if all(m is None for m in masks):
                    ablated.append(x.repeat(k, *(1,) * (x.dim() - 1)))
                    stacks.append(None)
                    continue
                lead = max(m.shape[0] for m in masks if m is not None)  # 1, or B for per-example masks
                stack = torch.stack([torch.zeros((lead, *x.shape[1:]), dtype=torch.bool, device=x.device)
                                     if m is None else m.expand(lead, *x.shape[1:]) for m in masks])  # (k, lead, ...)
                ablated.append(torch.where(stack, b[None], x[None].to(b.dtype)).reshape(k * batch, *x.shape[1:]))
                stacks.append(stack)
            if k not in expanded_args:
                expanded_args[k] = expand_args(args, batch, k)
            out, _ = _explained(forward_func(*ablated, *expanded_args[k]), repeat_target(target, k), k * batch,
                                method)
            if out.numel() != k * rows:
                raise DataError(f"{method}: the model returned {out.numel()} explained values for {k} perturbation(s) "
                                f"of the batch, where {k * rows} were expected; with a batch-level output use "
                                "perturbations_per_eval=1.")
            diff = (initial[None] - out.view(k, rows)).to(initial.dtype)  # (k, n_rows)
            for total, stack in zip(totals, stacks):
                if stack is None:
                    continue
                if stack.shape[1] != 1 and stack.shape[1] != rows:
                    raise ConfigError(f"{method}: a feature mask that differs between examples needs one explained "
                                      f"output per example; the model returns {rows} value(s) for the batch.")
                total.add_((diff.view(k, rows, *(1,) * (total.dim() - 1)) * stack.to(initial.dtype)).sum(0))
            pending.clear()

        for perturbation in perturbations:
            pending.append(tuple(None if m is None else m.to(x.device) for m, x in zip(perturbation, inputs)))
            if len(pending) == perturbations_per_eval:
                flush()
        if pending:
            flush()
    return tuple(totals)
