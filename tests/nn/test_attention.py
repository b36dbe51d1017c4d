"""Properties of attention, its cache and the positional encodings."""

from __future__ import annotations

import pytest
import torch

from archlab.errors import ConfigError
from archlab.nn import (LearnedPositionalEmbedding, MultiHeadAttention, RotaryEmbedding,
                        SinusoidalPositionalEncoding, TransformerBlock)


def test_cache_gives_the_same_outputs_as_full_causal_attention():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, rotary=RotaryEmbedding(4, 32)).double().eval()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    full, _ = attn(x, is_causal=True)
    cache = attn.new_cache(2, 32)
    first, _ = attn(x[:, :5], is_causal=True, cache=cache)  # a prompt, then one step at a time
    steps = [attn(x[:, i:i + 1], is_causal=True, cache=cache)[0] for i in range(5, 9)]
    torch.testing.assert_close(torch.cat([first, *steps], 1), full, rtol=0, atol=1e-12)
    assert cache.length == 9


def test_causal_output_ignores_the_future():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2).double().eval()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    y = x.clone()
    y[:, 4:] = torch.randn(1, 2, 8, dtype=torch.float64)
    torch.testing.assert_close(block(x, is_causal=True)[0][:, :4], block(y, is_causal=True)[0][:, :4])


def test_weights_are_distributions_that_skip_padding():
    attn = MultiHeadAttention(8, 2).eval()
    pad = torch.tensor([[False, False, True, True]])
    _, w = attn(torch.randn(1, 4, 8), key_padding_mask=pad, need_weights=True)
    assert w.shape == (1, 2, 4, 4)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 4))
    assert (w[..., 2:] == 0).all()


def test_mask_of_wrong_shape_is_refused():
    attn = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape .*\(2, 5\); got \(2, 4\)"):
        attn(torch.randn(2, 5, 8), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        attn(torch.randn(2, 5, 8), attn_mask=torch.zeros(4, 4, dtype=torch.bool))


def test_bad_heads_and_cache_overflow():
    with pytest.raises(ConfigError, match=r"The 'num_heads' parameter of MultiHeadAttention must be a divisor of "
                                          r"embed_dim=10\. Got 3 instead\."):
        MultiHeadAttention(10, 3)
    attn = MultiHeadAttention(8, 2)
    cache = attn.new_cache(1, 3)
    with pytest.raises(ValueError, match="at most 3 steps"):
        attn(torch.randn(1, 4, 8), is_causal=True, cache=cache)


def test_rotary_scores_depend_on_relative_position_only():
    rope = RotaryEmbedding(8, 64).double()
    q = torch.randn(1, 1, 1, 8, dtype=torch.float64)
    k = torch.randn(1, 1, 1, 8, dtype=torch.float64)

    def score(m, n):
        return (rope(q, m) * rope(k, n)).sum()

    torch.testing.assert_close(score(5, 2), score(40, 37))
    torch.testing.assert_close(rope(q, 9).norm(), q.norm())  # a rotation keeps the norm


def test_sinusoidal_values_and_context_limit():
    pe = SinusoidalPositionalEncoding(6, 10)
    out = pe(torch.zeros(1, 3, 6))
    p, i = 2, 1  # position 2, pair 1: sin(p / 10000^(2/6)), cos(...)
    angle = torch.tensor(p / 10000 ** (2 * i / 6))
    torch.testing.assert_close(out[0, p, 2 * i], torch.sin(angle))
    torch.testing.assert_close(out[0, p, 2 * i + 1], torch.cos(angle))
    with pytest.raises(ValueError, match="longer than the context"):
        pe(torch.zeros(1, 11, 6))
    with pytest.raises(ValueError, match="longer than the context"):
        LearnedPositionalEmbedding(6, 4)(torch.zeros(1, 3, 6), offset=2)
