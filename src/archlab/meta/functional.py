"""The functional core of gradient-based meta-learning, on `torch.func.functional_call`.

A model's trainable parameters are read once into a dict of tensors; adaptation
builds *new* dicts from them and runs the module through `functional_call`, so the
module's own parameters are never mutated and no private module state is touched.

One inner step of gradient descent on the support loss (Finn et al., 2017):

.. math:: \\theta' = \\theta - \\alpha \\odot \\nabla_\\theta \\mathcal{L}_{\\mathrm{support}}(\\theta)

With ``create_graph=True`` the step stays differentiable, so the query loss at
:math:`\\theta'` back-propagates through it to :math:`\\theta` (second-order MAML);
without it the gradient is a constant and :math:`\\partial \\theta' / \\partial \\theta = I`
(first-order MAML). :math:`\\alpha` is a float or, for Meta-SGD, one learned tensor per
parameter.

BatchNorm follows the MAML paper: batch statistics in the inner loop, on the query and
at meta-test time alike, and no running statistics; a BatchNorm layer built with
``track_running_stats=True`` is refused (build it with ``track_running_stats=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.modules.batchnorm import _BatchNorm
from ..validation import fail

Params = dict[str, torch.Tensor]
Batch = Mapping[str, torch.Tensor]
Forward = Callable[[Callable[..., torch.Tensor], Batch], torch.Tensor]
LOSSES = ("classification", "regression")


class AdaptationError(RuntimeError):
    """An inner or outer step produced a non-finite loss; the meta-parameters were not changed."""


def default_forward(call: Callable[..., torch.Tensor], batch: Batch) -> torch.Tensor:
    """``model(x)``, or ``model(x, lengths=...)`` for variable-length sequences.

    A custom `forward(call, batch)` adapts other models, e.g. a GCN scoring the nodes
    ``batch["x"]`` of a fixed graph: ``lambda call, b: call(graph_x, edge_index)[b["x"]]``.
    """
    if "lengths" in batch:
        return call(batch["x"], lengths=batch["lengths"])
    return call(batch["x"])


def task_loss(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits ``(N, C)`` against labels ``(N,)``, or the mean squared error."""
    if kind == "classification":
        return F.cross_entropy(output, target)
    return F.mse_loss(output, target.reshape(output.shape))


def task_metric(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Accuracy for classification, mean squared error for regression (a 0-dim tensor)."""
    if kind == "classification":
        return (output.argmax(-1) == target).to(output.dtype).mean()
    return F.mse_loss(output, target.reshape(output.shape))


def check_model(model: nn.Module, who: str) -> None:
    """Refuse a model the functional core cannot adapt, naming what to change."""
    if not isinstance(model, nn.Module):
        raise fail(who, "model", "a torch.nn.Module", type(model).__name__)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable == 0:
        total = sum(p.numel() for p in model.parameters())
        raise ValueError(f"{who} needs a model with trainable parameters; {type(model).__name__} has 0 trainable "
                         f"of {total} parameters (all frozen or none).")
    for name, module in model.named_modules():
        if isinstance(module, _BatchNorm) and module.track_running_stats:
            raise ValueError(
                f"{who} uses batch statistics in the inner loop and at meta-test time, as in the MAML paper, and "
                f"keeps no running statistics; BatchNorm '{name or type(module).__name__}' has "
                "track_running_stats=True. Build the model with track_running_stats=False "
                "(e.g. create_model('cnn', batch_norm=True, track_running_stats=False))."
            )


def split_state(model: nn.Module) -> tuple[Params, Params]:
    """The trainable parameters (the tensors adaptation differentiates) and everything else
    `functional_call` needs (buffers and frozen parameters), both by name."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    others = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    others.update(dict(model.named_buffers()))
    return params, others


def by_slot(model: nn.Module, state: Params) -> Params:
    """`state` (keyed by the names `split_state` gives) keyed by every place in `model` that holds one
    of its tensors: each (module, attribute) pair once.

    Tied weights (GPT's token embedding and LM head: two attributes, one `Parameter`) get the same
    new tensor in both places, so they stay tied. A submodule registered under two names
    (``self.body`` and ``self.net = nn.Sequential(self.body)``) is one place and is named once:
    `functional_call`'s own ``tie_weights=True`` swaps such a place twice and then restores it
    from the second swap, leaving the new tensor in the module (pytorch/pytorch#164759).
    """
    name_of = {id(t): n for n, t in model.named_parameters()}
    name_of.update({id(t): n for n, t in model.named_buffers()})
    slots = {}
    for prefix, module in model.named_modules():  # each module once, under its first name
        held = [*module.named_parameters(recurse=False, remove_duplicate=False),
                *module.named_buffers(recurse=False, remove_duplicate=False)]
        for attribute, tensor in held:
            source = name_of[id(tensor)]
            if source in state:
                slots[f"{prefix}.{attribute}" if prefix else attribute] = state[source]
    return slots


def make_call(model: nn.Module, params: Params, others: Params) -> Callable[..., torch.Tensor]:
    """``call(*args, **kwargs)`` runs `model` with `params` in place of its own parameters
    (tied weights stay tied; the module is restored after every call, see `by_slot`)."""
    state = by_slot(model, {**others, **params})

    def call(*args: Any, **kwargs: Any) -> torch.Tensor:
        return functional_call(model, state, args, kwargs, tie_weights=False)

    return call


def sgd_update(params: Params, grads: Mapping[str, torch.Tensor | None], lr: float | Mapping[str, torch.Tensor]
               ) -> Params:
    """:math:`\\theta - \\alpha \\odot g`; a parameter the loss does not reach keeps its value."""
    out = {}
    for name, p in params.items():
        g = grads[name]
        if g is None:
            out[name] = p
        else:
            step = lr[name] if isinstance(lr, Mapping) else lr
            out[name] = p - step * g
    return out


def check_finite(value: float, *, where: str, inner_lr: Any) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        raise AdaptationError(
            f"{where} gave a non-finite loss ({value}) with inner_lr={_describe_lr(inner_lr)}; the meta-parameters "
            "were left unchanged. Lower the inner learning rate, or check the task data for NaN."
        )


def _describe_lr(lr: Any) -> str:
    if isinstance(lr, Mapping):
        values = torch.cat([v.detach().flatten() for v in lr.values()])
        return f"learned per-parameter (range {values.min().item():.3g} .. {values.max().item():.3g})"
    return f"{lr:g}"


def adapt(
    model: nn.Module,
    params: Params,
    others: Params,
    support: Batch,
    *,
    kind: str,
    inner_lr: float | Mapping[str, torch.Tensor],
    steps: int,
    create_graph: bool,
    forward: Forward = default_forward,
    task_index: int | None = None,
    check: bool = True,
) -> Params:
    """`steps` of gradient descent on the support loss, from `params` (autograd version).

    The returned dict is new; `params` and the module are unchanged. A non-finite support
    loss raises `AdaptationError` naming the step (unless `check` is False: evaluation scores
    a diverged task as it is, instead of stopping).
    """
    names = list(params)
    for step in range(steps):
        loss = task_loss(kind, forward(make_call(model, params, others), support), support["y"])
        if check:
            where = f"inner step {step + 1} of {steps}" + (f" on task {task_index}" if task_index is not None else "")
            check_finite(loss.item(), where=where, inner_lr=inner_lr)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph, allow_unused=True)
        params = sgd_update(params, dict(zip(names, grads)), inner_lr)
    return params


def adapt_vmappable(
    model: nn.Module,
    params: Params,
    others: Params,
    support: Batch,
    *,
    kind: str,
    inner_lr: float | Mapping[str, torch.Tensor],
    steps: int,
    first_order: bool,
    forward: Forward = default_forward,
) -> tuple[Params, torch.Tensor]:
    """The same adaptation with `torch.func.grad`, so it runs under `vmap` over tasks.

    Returns the adapted parameters and the support losses of the steps ``(steps,)``,
    checked for finiteness by the caller (a value cannot be read inside `vmap`).
    """

    def support_loss(p: Params) -> torch.Tensor:
        return task_loss(kind, forward(make_call(model, p, others), support), support["y"])

    losses = []
    for _ in range(steps):
        grads, loss = torch.func.grad_and_value(support_loss)(params)
        if first_order:
            grads = {n: g.detach() for n, g in grads.items()}
        params = sgd_update(params, grads, inner_lr)
        losses.append(loss.detach())
    stacked = torch.stack(losses) if losses else torch.zeros(0, dtype=next(iter(params.values())).dtype)
    return params, stacked
