"""Attention rollout (Abnar & Zuidema, 2020): how much each input token flows into the
pooled representation through the layers' attention maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Attribution, check_inputs
from ..validation import check_choice, fail

HEAD_FUSIONS = ("mean", "max", "min")


def attention_rollout(attentions: Sequence[torch.Tensor], *, head_fusion: str = "mean",
                      residual: bool = True) -> torch.Tensor:
    r"""Roll the attention maps of the layers out into one token-to-token flow.

    .. math:: \tilde A_l = \mathrm{rownorm}\big(\tfrac12 \bar A_l + \tfrac12 I\big), \qquad
              R = \tilde A_L \tilde A_{L-1} \cdots \tilde A_1

    where :math:`\bar A_l` fuses the heads of layer ``l`` (mean, max or min) and the
    identity accounts for the residual connections (``residual=False`` leaves it out).
    Row ``i`` of ``R`` is how much each input position flows into position ``i`` at the top.

    Shapes:
        attentions: one ``(B, heads, T, T)`` per layer; returns ``(B, T, T)``.
    """
    check_choice("attention_rollout", "head_fusion", head_fusion, HEAD_FUSIONS)
    if not attentions or any(not isinstance(a, torch.Tensor) or a.dim() != 4 or a.shape[-1] != a.shape[-2]
                             for a in attentions):
        shapes = [tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__ for a in attentions]
        raise ValueError("attention_rollout needs one attention map (batch, heads, T, T) per layer; got "
                         f"{shapes or 'none'}.")
    rollout = None
    for a in attentions:
        a = a.detach()
        fused = {"mean": lambda t: t.mean(1), "max": lambda t: t.amax(1), "min": lambda t: t.amin(1)}[head_fusion](a)
        if residual:
            fused = 0.5 * fused + 0.5 * torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
        fused = fused / fused.sum(-1, keepdim=True).clamp_min(torch.finfo(fused.dtype).tiny)
        rollout = fused if rollout is None else fused @ rollout
    return rollout


class AttentionRollout(Attribution):
    """Token relevance from attention rollout for a transformer whose forward accepts
    ``return_attention=True`` and then returns ``(output, attentions)`` (archlab's transformers).

    The relevance of input token ``t`` is the rolled-out flow into the pooled representation:
    with ``pooling="cls"`` the row of the [CLS] position (a prepended [CLS] position is dropped
    from the columns, so the result lines up with the tokens); with ``"mean"`` the mean of the
    rows of the valid (unpadded) positions; an int picks that position's row. By default the
    model's own ``pooling`` attribute decides, else ``"mean"``. Rollout does not depend on
    the class, so it takes no target.

    Images ``(B, C, H, W)`` go to a vision transformer, whose tokens are the patches of its
    ``grid_size`` grid: the relevance of each patch is laid out on that grid, ``(B, 1, rows,
    columns)``, and with `upsample` (the default) spread over the patch's pixels, ``(B, 1, H, W)``
    (broadcastable to the image, as `GradCAM`'s maps).

    Shapes:
        inputs ``(B, T)`` token ids (or ``(B, T, D)`` sequences); lengths ``(B,)``; returns ``(B, T)``.
        inputs ``(B, C, H, W)`` images; returns ``(B, 1, H, W)``, or ``(B, 1, rows, columns)``.
    """

    def attribute(self, inputs: torch.Tensor, *, lengths: torch.Tensor | None = None,
                  pooling: str | int | None = None, head_fusion: str = "mean", residual: bool = True,
                  upsample: bool = True) -> torch.Tensor:
        name = type(self).__name__
        inputs = check_inputs(inputs, name, floating=False)
        grid = getattr(self.forward_func, "grid_size", None) if inputs.dim() == 4 else None
        if grid is not None and lengths is not None:
            raise ValueError(f"{name}: images have no lengths; pass lengths=None.")
        batch, steps = inputs.shape[0], inputs.shape[1] if grid is None else grid[0] * grid[1]
        args = () if lengths is None else (lengths,)
        with torch.no_grad():
            try:
                result = self.forward_func(inputs, *args, return_attention=True)
            except TypeError as err:
                raise ValueError(f"{name} needs a model whose forward accepts return_attention=True and returns "
                                 f"(output, attentions); calling it failed: {err}") from err
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (list, tuple))):
            raise ValueError(f"{name}: with return_attention=True the model must return (output, attentions), "
                             f"attentions a list of (batch, heads, T, T); got {type(result).__name__}.")
        flow = attention_rollout(result[1], head_fusion=head_fusion, residual=residual)  # (B, T', T')
        size = flow.shape[-1]
        if size not in (steps, steps + 1):
            raise ValueError(f"{name}: attention maps over {size} positions do not match inputs of {steps} steps.")
        pooling = pooling if pooling is not None else getattr(self.forward_func, "pooling", "mean")
        offset = size - steps  # 1 when the model prepends a [CLS] position
        if pooling == "cls" or (isinstance(pooling, int) and not isinstance(pooling, bool)):
            row = 0 if pooling == "cls" else pooling
            if not 0 <= row < size:
                raise ValueError(f"{name}: pooling position {row} is out of range for {size} positions.")
            relevance = flow[:, row, offset:]
        elif pooling != "mean":
            raise fail(name, "pooling", "'mean', 'cls' or a position", pooling)
        else:
            valid = torch.ones(batch, size, dtype=flow.dtype, device=flow.device)
            if lengths is not None:
                valid[:, offset:] = (torch.arange(steps, device=flow.device)[None] < lengths.to(flow.device)[:, None])
            relevance = ((flow * valid[..., None]).sum(1) / valid.sum(1, keepdim=True))[:, offset:]
        if grid is None:
            return relevance
        relevance = relevance.reshape(batch, 1, *grid)  # patches run over the grid row by row
        if not upsample:
            return relevance
        height, width = inputs.shape[2:]
        if height % grid[0] or width % grid[1]:
            raise ValueError(f"{name}: a {grid[0]}x{grid[1]} patch grid does not tile images of {height}x{width}.")
        return relevance.repeat_interleave(height // grid[0], 2).repeat_interleave(width // grid[1], 3)
