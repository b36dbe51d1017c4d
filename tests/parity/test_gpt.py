"""`gpt` against transformers' `GPT2LMHeadModel` with copied weights, in float64."""

from __future__ import annotations

import pytest
import torch

from archlab import create_model

transformers = pytest.importorskip("transformers")


def test_gpt_matches_gpt2_lm_head_model():
    torch.manual_seed(0)
    ours = create_model("gpt", vocab_size=37, num_layers=2, num_heads=4, embed_dim=32, context_length=16,
                        bias=True).double().eval()
    config = transformers.GPT2Config(vocab_size=37, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    ref = transformers.GPT2LMHeadModel(config).double().eval()
    state = {"transformer.wte.weight": ours.embedding.weight,
             "transformer.wpe.weight": ours.positional.embedding.weight,
             "transformer.ln_f.weight": ours.norm.weight, "transformer.ln_f.bias": ours.norm.bias}
    for i, block in enumerate(ours.blocks):
        h = f"transformer.h.{i}."
        # GPT-2's Conv1D stores (in, out): the transpose of nn.Linear's weight
        pairs = {"ln_1": block.norm1, "ln_2": block.norm2}
        for name, norm in pairs.items():
            state[h + name + ".weight"], state[h + name + ".bias"] = norm.weight, norm.bias
        for name, linear in {"attn.c_attn": block.attention.in_proj, "attn.c_proj": block.attention.out_proj,
                             "mlp.c_fc": block.mlp[0], "mlp.c_proj": block.mlp[2]}.items():
            state[h + name + ".weight"], state[h + name + ".bias"] = linear.weight.T, linear.bias
    missing, _ = ref.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=False)
    assert [k for k in missing if k != "lm_head.weight"] == []
    x = torch.randint(0, 37, (3, 16))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(input_ids=x).logits, rtol=0, atol=1e-10)
