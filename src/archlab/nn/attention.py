"""Multi-head attention on `F.scaled_dot_product_attention`, with masks and a key/value cache."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from ..validation import check_float, fail


class KVCache:
    """Keys and values of the steps seen so far, for incremental decoding.

    Preallocated to `max_length` steps, so appending a step is a copy into place
    rather than a `torch.cat` of the whole history.

    Shapes:
        keys and values ``(B, num_heads, max_length, head_dim)``; `length` steps are filled.
    """

    def __init__(self, batch_size: int, num_heads: int, max_length: int, head_dim: int, *,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        shape = (batch_size, num_heads, max_length, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    @property
    def max_length(self) -> int:
        return self.keys.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store `k`, `v` ``(B, H, T, D)`` after the cached steps; return all keys and values so far."""
        end = self.length + k.shape[2]
        if end > self.max_length:
            raise ValueError(f"the key/value cache holds at most {self.max_length} steps; "
                             f"got {self.length} cached + {k.shape[2]} new.")
        if k.shape[0] != self.keys.shape[0]:
            raise ValueError(f"the cache was made for batch size {self.keys.shape[0]}; got {k.shape[0]}.")
        self.keys[:, :, self.length:end] = k
        self.values[:, :, self.length:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention (Vaswani et al., 2017).

    .. math::
        \mathrm{head}_h = \mathrm{softmax}\!\left(\frac{Q W^Q_h (K W^K_h)^\top}{\sqrt{d}} + M\right) V W^V_h,
        \qquad \mathrm{out} = [\mathrm{head}_1; \dots; \mathrm{head}_H]\, W^O

    where :math:`d` = ``embed_dim / num_heads`` and :math:`M` is :math:`-\infty` where
    attention is not allowed (padding keys, future steps under a causal mask).

    The projections are stored as in `torch.nn.MultiheadAttention` (``in_proj`` holds
    :math:`W^Q, W^K, W^V` stacked, ``out_proj`` is :math:`W^O`); self-attention computes
    all three in one matrix product. The attention itself runs in
    `F.scaled_dot_product_attention` (fused kernels), except when the weights are asked
    for (``need_weights=True``) or for a single cached decoding step: it is then computed
    explicitly.

    Masks follow torch's convention: ``key_padding_mask`` ``(B, S)`` is True at padding
    keys; a boolean ``attn_mask`` ``(T, S)`` or ``(B, T, S)`` is True where attention is
    NOT allowed (a float mask is added to the scores); ``is_causal`` lets step ``i`` see
    keys ``<= i`` (counting cached steps first).

    Shapes:
        query ``(B, T, E)``, key/value ``(B, S, E)`` (default: the query);
        output ``(B, T, E)``; weights ``(B, num_heads, T, S)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 rotary: nn.Module | None = None):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise fail("MultiHeadAttention", "num_heads", f"a divisor of embed_dim={embed_dim}", num_heads)
        check_float("MultiHeadAttention", "dropout", dropout, low=0, high=1, high_open=True)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.in_proj = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.rotary = rotary  # a RotaryEmbedding applied to queries and keys, or None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def _project(self, query: torch.Tensor, key: torch.Tensor | None, value: torch.Tensor | None):
        if key is None and value is None:
            return self.in_proj(query).split(self.embed_dim, dim=-1)
        key = query if key is None else key
        value = key if value is None else value
        w_q, w_k, w_v = self.in_proj.weight.split(self.embed_dim)
        b_q, b_k, b_v = self.in_proj.bias.split(self.embed_dim) if self.in_proj.bias is not None else (None,) * 3
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _mask(self, batch: int, t: int, s: int, offset: int, key_padding_mask, attn_mask, is_causal: bool,
              device, dtype) -> torch.Tensor | None:
        """One additive float mask ``(B or 1, 1, T, S)`` (0 allowed, -inf not), or None."""
        mask = None
        if attn_mask is not None:
            if attn_mask.dim() == 2:
                attn_mask = attn_mask[None]
            if attn_mask.dim() != 3 or tuple(attn_mask.shape[1:]) != (t, s) or attn_mask.shape[0] not in (1, batch):
                raise ValueError(f"attn_mask must have shape ({t}, {s}) or ({batch}, {t}, {s}); "
                                 f"got {tuple(attn_mask.shape)}.")
            mask = _additive(attn_mask, dtype)[:, None]
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, s):
                raise ValueError(f"key_padding_mask must have shape (batch, keys) = ({batch}, {s}); "
                                 f"got {tuple(key_padding_mask.shape)}.")
            pad = _additive(key_padding_mask, dtype)[:, None, None, :]
            mask = pad if mask is None else mask + pad
        if is_causal:
            # query i sits at absolute step offset + i and may see keys 0 .. offset + i
            future = torch.ones(t, s, dtype=torch.bool, device=device).triu(offset + 1)
            causal = _additive(future, dtype)[None, None]
            mask = causal if mask is None else mask + causal
        return None if mask is None else mask.to(device)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend; returns ``(output, weights)`` with weights None unless `need_weights`.

        With a `cache`, the new keys/values are appended to it and the queries attend
        to every cached step as well (self-attention only)."""
        if query.dim() != 3 or query.shape[-1] != self.embed_dim:
            raise ValueError(f"query must have shape (batch, steps, {self.embed_dim}); got {tuple(query.shape)}.")
        if cache is not None and (key is not None or value is not None):
            raise ValueError("a key/value cache is for self-attention; pass no key or value with it.")
        batch, t, _ = query.shape
        q, k, v = (self._heads(p) for p in self._project(query, key, value))  # (B, H, T|S, D)
        offset = cache.length if cache is not None else 0
        if self.rotary is not None:
            q = self.rotary(q, offset)
            k = self.rotary(k, offset)
        if cache is not None:
            k, v = cache.append(k, v)
        s = k.shape[2]
        dropout = self.dropout if self.training else 0.0
        if is_causal and t == 1:
            is_causal = False  # one query at the newest step may see every key
        fast_causal = is_causal and offset == 0 and t == s and key_padding_mask is None and attn_mask is None
        mask = None if fast_causal else self._mask(batch, t, s, offset, key_padding_mask, attn_mask,
                                                   is_causal, query.device, q.dtype)
        weights = None
        # One new query against cached keys is a matrix-vector product: done explicitly it is
        # several times faster on CPU than the fused kernels, which are built for long queries.
        if need_weights or (cache is not None and t == 1):
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, S)
            if fast_causal:
                mask = self._mask(batch, t, s, 0, None, None, True, query.device, q.dtype)
            if mask is not None:
                scores = scores + mask
            attention = scores.softmax(-1)
            weights = attention if need_weights else None
            out = F.dropout(attention, dropout, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=fast_causal)
        out = out.transpose(1, 2).reshape(batch, t, self.embed_dim)  # (B, T, E)
        return self.out_proj(out), weights

    def new_cache(self, batch_size: int, max_length: int, *, device=None, dtype=None) -> KVCache:
        """An empty cache for this layer."""
        weight = self.in_proj.weight
        return KVCache(batch_size, self.num_heads, max_length, self.head_dim,
                       device=device or weight.device, dtype=dtype or weight.dtype)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean "not allowed" mask as 0 / -inf; a float mask as it is."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)
