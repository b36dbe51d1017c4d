"""`MultiHeadAttention` and `TransformerBlock` against torch.nn with copied weights, in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.nn import MultiHeadAttention, TransformerBlock

E, H, B, T = 16, 4, 3, 7


def pair(dropout: float = 0.0):
    torch.manual_seed(0)
    ours = MultiHeadAttention(E, H, dropout).double()
    ref = nn.MultiheadAttention(E, H, dropout=dropout, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.in_proj.weight)
        ref.in_proj_bias.copy_(ours.in_proj.bias)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ours.eval(), ref.eval()


def padding(lengths, steps):
    return torch.arange(steps)[None, :] >= torch.tensor(lengths)[:, None]  # True at padding


@pytest.mark.parametrize("masks", ["none", "padding", "causal", "both", "float"])
@pytest.mark.parametrize("need_weights", [False, True])
def test_self_attention_matches_torch(masks, need_weights):
    ours, ref = pair()
    x = torch.randn(B, T, E, dtype=torch.float64)
    kpm = padding([7, 4, 1], T) if masks in ("padding", "both") else None
    causal = torch.ones(T, T, dtype=torch.bool).triu(1) if masks in ("causal", "both") else None
    float_mask = torch.randn(T, T, dtype=torch.float64) if masks == "float" else None
    attn_mask = causal if causal is not None else float_mask
    expected, expected_w = ref(x, x, x, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
                               average_attn_weights=False)
    got, got_w = ours(x, key_padding_mask=kpm, is_causal=causal is not None, attn_mask=float_mask,
                      need_weights=need_weights)
    assert (got - expected).abs().max() <= 1e-10
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
    if need_weights:
        torch.testing.assert_close(got_w, expected_w, rtol=0, atol=1e-10)
    else:
        assert got_w is None


def test_cross_attention_matches_torch():
    ours, ref = pair()
    q = torch.randn(B, T, E, dtype=torch.float64)
    kv = torch.randn(B, 5, E, dtype=torch.float64)
    kpm = padding([5, 2, 3], 5)
    expected, _ = ref(q, kv, kv, key_padding_mask=kpm)
    got, _ = ours(q, kv, kv, key_padding_mask=kpm)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_attention_dropout_is_applied_in_training_only():
    ours, _ = pair(dropout=0.5)
    x = torch.randn(B, T, E, dtype=torch.float64)
    ours.train()
    torch.manual_seed(1)
    a, _ = ours(x)
    torch.manual_seed(2)
    b, _ = ours(x)
    assert not torch.allclose(a, b)
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ours(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_matches_torch_encoder_layer(norm_first):
    torch.manual_seed(0)
    ours = TransformerBlock(E, H, 32, activation="gelu", norm_first=norm_first).double().eval()
    ref = nn.TransformerEncoderLayer(E, H, 32, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=norm_first).double().eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.attention.in_proj.weight)
        ref.self_attn.in_proj_bias.copy_(ours.attention.in_proj.bias)
        ref.self_attn.out_proj.load_state_dict(ours.attention.out_proj.state_dict())
        ref.linear1.load_state_dict(ours.mlp[0].state_dict())
        ref.linear2.load_state_dict(ours.mlp[2].state_dict())
        ref.norm1.load_state_dict(ours.norm1.state_dict())
        ref.norm2.load_state_dict(ours.norm2.state_dict())
    x = torch.randn(B, T, E, dtype=torch.float64)
    kpm = padding([7, 5, 2], T)
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    expected = ref(x, src_mask=causal, src_key_padding_mask=kpm)
    got, _ = ours(x, key_padding_mask=kpm, is_causal=True)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)
