"""Splits of text data: a token stream for language modelling, padded sentences for classification.

Language-modelling batches are ``{"x": (B, T), "y": (B, T)}`` with ``y`` the next token of
each position; classification batches are ``{"x": (B, T), "lengths": (B,), "y": (B,)}``
padded only to the longest sentence of the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..errors import DataError
from .base import DataSpec, TensorSplit
from .tokenizer import TOKENIZER_FILE


class TokenStream:
    """One long sequence of token ids, cut into windows of `context_length` (+1 for the targets).

    Shuffled batches are windows at random offsets drawn from a `torch.Generator`
    seeded with `seed` (as nanoGPT's ``get_batch``); ordered batches are the
    non-overlapping windows from the start, which cover the whole stream once.
    """

    def __init__(self, tokens: torch.Tensor, context_length: int):
        if tokens.dim() != 1:
            raise DataError(f"a token stream is one-dimensional; got shape {tuple(tokens.shape)}.")
        if len(tokens) < context_length + 1:
            raise DataError(f"a token stream of {len(tokens)} tokens is too short for windows of {context_length} "
                            "(+1 target); lower context_length.")
        self.tokens = tokens.long()
        self.context_length = context_length

    def __len__(self) -> int:
        return (len(self.tokens) - 1) // self.context_length

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TokenStream:
        """On `device`; token ids have no floating-point dtype to convert."""
        return TokenStream(self.tokens.to(device), self.context_length)

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def _gather(self, starts: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
        index = starts.to(self.tokens.device)[:, None] + torch.arange(length + 1, device=self.tokens.device)
        window = self.tokens[index]  # (B, length + 1)
        return {"x": window[:, :-1], "y": window[:, 1:]}

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0
                ) -> Iterator[dict[str, torch.Tensor]]:
        if not shuffle:
            yield from self.windows(self.context_length, batch_size, start=start)
            return
        generator = torch.Generator().manual_seed(seed)
        high = len(self.tokens) - self.context_length  # last start that still has a target
        for i in range(self.num_batches(batch_size)):
            starts = torch.randint(high, (batch_size,), generator=generator)
            if i >= start:  # skipped batches still draw, so a resumed epoch sees the same windows
                yield self._gather(starts, self.context_length)

    def windows(self, length: int, batch_size: int, *, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """The non-overlapping windows of `length` tokens from the start, in order."""
        count = (len(self.tokens) - 1) // length
        if count == 0:
            raise DataError(f"a stream of {len(self.tokens)} tokens has no window of {length} (+1 target).")
        starts = torch.arange(count) * length
        for i in range(start * batch_size, count, batch_size):
            yield self._gather(starts[i:i + batch_size], length)


class TextSplit(TensorSplit):
    """Token-id sentences padded to a common length, with their lengths and labels;
    each batch is trimmed to its longest sentence."""

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0, start: int = 0
                ) -> Iterator[dict[str, torch.Tensor]]:
        for batch in super().batches(batch_size, shuffle=shuffle, seed=seed, start=start):
            batch["x"] = batch["x"][:, :int(batch["lengths"].max())]
            yield batch

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TextSplit:
        return TextSplit(**TensorSplit.to(self, device, dtype).tensors)

    def subset(self, index) -> TextSplit:
        return TextSplit(**TensorSplit.subset(self, index).tensors)


def pad_sentences(ids: Sequence[Sequence[int]], labels: Sequence[int], context_length: int, pad_id: int = 0
                  ) -> TextSplit:
    """Pad (and truncate to `context_length`) token-id sentences into a `TextSplit`."""
    width = min(context_length, max(len(s) for s in ids))
    x = torch.full((len(ids), width), pad_id, dtype=torch.long)
    lengths = torch.empty(len(ids), dtype=torch.long)
    for i, sentence in enumerate(ids):
        sentence = list(sentence)[:width]
        if not sentence:
            raise DataError(f"sentence {i} is empty after tokenization.")
        x[i, :len(sentence)] = torch.tensor(sentence, dtype=torch.long)
        lengths[i] = len(sentence)
    return TextSplit(x=x, lengths=lengths, y=torch.as_tensor(list(labels), dtype=torch.long))


def text_spec(name: str, *, vocab_size: int, context_length: int, num_classes: int, target: str,
              class_names: list[str] | None = None, options: dict | None = None, pad_id: int = 0) -> DataSpec:
    """The spec of a text dataset. ``preprocess`` names the tokenizer file saved beside a
    checkpoint and the vocabulary size; ``target`` is ``"next-token"`` or ``"class"``."""
    return DataSpec(name=name, kind="text", input_shape=(context_length,), num_classes=num_classes,
                    class_names=class_names, options=dict(options or {}),
                    preprocess={"tokenizer": TOKENIZER_FILE, "vocab_size": vocab_size, "pad_id": pad_id,
                                "target": target})
