"""Recurrent classifiers over torch's fused `nn.RNN` / `nn.LSTM` / `nn.GRU` kernels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import DataError
from ..nn import MLP
from ..validation import check_choice, check_float, check_int
from .registry import register_model

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "mean", "max")


class RNNClassifier(nn.Module):
    """A (stacked, optionally bidirectional) RNN, a pooling over time, and an MLP head.

    Inputs are continuous sequences ``(B, T, input_dim)``, or token ids ``(B, T)``
    when `vocab_size` is set (an embedding layer then comes first). `lengths` ``(B,)``
    gives each sequence's valid length; padded steps are packed away and never
    reach the RNN or the pooling.

    Pooling: ``last`` is the final hidden state (for a bidirectional RNN, the forward
    direction's state at the last valid step joined with the backward direction's
    state at the first); ``mean`` and ``max`` pool the top layer's outputs over the
    valid steps. `embed_dropout` drops inputs of the RNN (after the embedding), `dropout`
    the pooled features, the head's hidden layers and between stacked layers.

    Shapes:
        input ``(B, T, input_dim)`` or ``(B, T)``; output ``(B, num_classes)``.
    """

    def __init__(
        self,
        input_dim: int = 1,
        num_classes: int = 2,
        cell: str = "lstm",
        hidden_dim: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
        vocab_size: int | None = None,
        embed_dim: int = 128,
        padding_idx: int = 0,
        head_hidden_dims: Sequence[int] = (),
        embed_dropout: float = 0.0,
    ):
        super().__init__()
        check_int("RNNClassifier", "embed_dim", embed_dim, minimum=1)
        check_choice("RNNClassifier", "cell", cell, sorted(CELLS))
        check_choice("RNNClassifier", "pooling", pooling, POOLINGS)
        self.embedding = None
        check_float("RNNClassifier", "embed_dropout", embed_dropout, low=0, high=1, high_open=True)
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
            input_dim = embed_dim
        # dropout on the RNN's inputs (token embeddings or features), the usual regularizer of a
        # from-scratch text model
        self.embed_dropout = nn.Dropout(embed_dropout) if embed_dropout > 0 else nn.Identity()
        self.input_dim = input_dim
        self.vocab_size = vocab_size
        self.cell = cell
        self.pooling = pooling
        self.bidirectional = bidirectional
        # torch applies inter-layer dropout only between stacked layers.
        self.rnn = CELLS[cell](
            input_dim, hidden_dim, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )
        out_dim = hidden_dim * (2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = MLP(out_dim, num_classes, head_hidden_dims, dropout=dropout)

    def _check(self, x: torch.Tensor, lengths: torch.Tensor | None) -> None:
        name = type(self).__name__
        if self.embedding is not None:
            if x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
                raise DataError(f"{name} with vocab_size expects token ids (batch, time) of integers; "
                                f"got {tuple(x.shape)} {x.dtype}.")
        elif x.dim() != 3 or x.shape[-1] != self.input_dim:
            raise DataError(f"{name} expects input of shape (batch, time, {self.input_dim}); got {tuple(x.shape)}.")
        if lengths is not None and tuple(lengths.shape) != (x.shape[0],):
            raise DataError(f"lengths must have shape ({x.shape[0]},) to match the batch; got {tuple(lengths.shape)}.")

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled sequence representation, ``(B, hidden_dim * directions)``."""
        self._check(x, lengths)
        if self.embedding is not None:
            x = self.embedding(x)  # (B, T, E)
        x = self.embed_dropout(x)
        steps = x.shape[1]
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, h_n = self.rnn(packed)
            out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=steps)  # (B, T, D*H)
        else:
            out, h_n = self.rnn(x)
        if isinstance(h_n, tuple):  # LSTM returns (h_n, c_n)
            h_n = h_n[0]
        if self.pooling == "last":
            # h_n: (num_layers * directions, B, H); the top layer's states come last.
            if self.bidirectional:
                return torch.cat([h_n[-2], h_n[-1]], dim=-1)
            return h_n[-1]
        if lengths is None:
            return out.mean(1) if self.pooling == "mean" else out.amax(1)
        valid = (torch.arange(steps, device=out.device)[None, :] < lengths.to(out.device)[:, None])[..., None]
        if self.pooling == "mean":
            return (out * valid).sum(1) / valid.sum(1).clamp_min(1)
        return out.masked_fill(~valid, float("-inf")).amax(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


_SEQ_DEFAULTS = {"epochs": 40, "batch_size": 64, "lr": 3e-3, "schedule": "cosine", "grad_clip": 1.0}


def _rnn_builder(cell: str):
    def build(
        input_dim: int = 1,
        num_classes: int = 2,
        hidden_dim: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pooling: str = "last",
        vocab_size: int | None = None,
        embed_dim: int = 128,
        padding_idx: int = 0,
        head_hidden_dims: Sequence[int] = (),
        embed_dropout: float = 0.0,
    ) -> RNNClassifier:
        return RNNClassifier(input_dim, num_classes, cell, hidden_dim, num_layers, bidirectional, dropout,
                             pooling, vocab_size, embed_dim, padding_idx, head_hidden_dims, embed_dropout)

    build.__doc__ = f"{cell.upper()} sequence classifier (torch.nn.{CELLS[cell].__name__}), last/mean/max pooling."
    return build


for _cell in CELLS:
    register_model(_cell, family="rnn", data_kinds=("sequence", "text"), train_defaults=_SEQ_DEFAULTS)(
        _rnn_builder(_cell)
    )
