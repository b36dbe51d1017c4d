"""Input checks and masks shared by the transformer models."""

from __future__ import annotations

import torch

from ..errors import DataError


def check_token_ids(x: torch.Tensor, vocab_size: int, context_length: int, model: str) -> None:
    """Refuse token ids that are not ``(B, T)`` integers in ``[0, vocab_size)`` with ``T <= context_length``."""
    if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
        raise DataError(f"{model} expects token ids of shape (batch, steps) and an integer dtype; "
                        f"got {tuple(x.shape)} {x.dtype}.")
    if x.shape[1] > context_length:
        raise DataError(f"{model}: a sequence of {x.shape[1]} tokens is longer than the context of "
                        f"{context_length} (context_length).")
    # The range reads the ids back, which torch.compile cannot trace: there it runs eagerly, outside the graph
    # (one graph break, before the model's first operation), so that a compiled model refuses bad ids with the
    # error an eager one gives. An exported graph has no eager side to run it on, and goes without.
    if x.numel() and not torch.compiler.is_exporting():
        (_check_id_range_outside_graph if torch.compiler.is_compiling() else _check_id_range)(x, vocab_size, model)


def _check_id_range(x: torch.Tensor, vocab_size: int, model: str) -> None:
    if int(x.min()) < 0 or int(x.max()) >= vocab_size:
        raise DataError(f"{model}: token ids must be in [0, {vocab_size}) (vocab_size); "
                        f"got values from {int(x.min())} to {int(x.max())}.")


def _check_id_range_outside_graph(x: torch.Tensor, vocab_size: int, model: str) -> None:
    # built on the first compiled call: `torch.compiler.disable` imports torch._dynamo (about 2 s), which an
    # eager run never needs
    if not _OUTSIDE_GRAPH:
        _OUTSIDE_GRAPH.append(torch.compiler.disable(_check_id_range))
    _OUTSIDE_GRAPH[0](x, vocab_size, model)


_OUTSIDE_GRAPH: list = []  # a list, not functools.cache: dynamo traces the lookup, and warns on an lru_cache


def padding_mask(lengths: torch.Tensor | None, batch: int, steps: int, device) -> torch.Tensor | None:
    """``(B, T)`` True at the padding steps of sequences of the given `lengths`, or None."""
    if lengths is None:
        return None
    if tuple(lengths.shape) != (batch,):
        raise DataError(f"lengths must have shape ({batch},) to match the batch; got {tuple(lengths.shape)}.")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise DataError(f"lengths must be in [1, {steps}] (the number of steps); "
                        f"got values from {int(lengths.min())} to {int(lengths.max())}.")
    return torch.arange(steps, device=device)[None, :] >= lengths.to(device)[:, None]


def mask_from_attention_mask(attention_mask: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor | None:
    """A Hugging Face ``attention_mask`` (1 keep, 0 padding) as a padding mask (True at padding)."""
    if attention_mask is None:
        return None
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise DataError(f"attention_mask must have the shape of the token ids {tuple(input_ids.shape)}; "
                        f"got {tuple(attention_mask.shape)}.")
    return attention_mask == 0
