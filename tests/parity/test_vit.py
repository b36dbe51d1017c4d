"""archlab's `vit` against `transformers.ViTForImageClassification` with the same weights (float64)."""

from __future__ import annotations

import pytest
import torch

from archlab import create_model

transformers = pytest.importorskip("transformers")


def hf_state_for(model, hf) -> dict[str, torch.Tensor]:
    """Hugging Face's tensors renamed (and query/key/value stacked) into archlab's layout."""
    src = hf.state_dict()
    state = {
        "cls_token.token": src["vit.embeddings.cls_token"],
        "positional.embedding.weight": src["vit.embeddings.position_embeddings"][0],
        "patch_embed.proj.weight": src["vit.embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": src["vit.embeddings.patch_embeddings.projection.bias"],
        "norm.weight": src["vit.layernorm.weight"], "norm.bias": src["vit.layernorm.bias"],
        "head.weight": src["classifier.weight"], "head.bias": src["classifier.bias"],
    }
    for i in range(len(model.blocks)):
        ours, theirs = f"blocks.{i}.", f"vit.layers.{i}."  # transformers 5's names
        for kind in ("weight", "bias"):
            state[f"{ours}attention.in_proj.{kind}"] = torch.cat(
                [src[f"{theirs}attention.{p}_proj.{kind}"] for p in ("q", "k", "v")])
            state[f"{ours}attention.out_proj.{kind}"] = src[f"{theirs}attention.o_proj.{kind}"]
            state[f"{ours}norm1.{kind}"] = src[f"{theirs}layernorm_before.{kind}"]
            state[f"{ours}mlp.0.{kind}"] = src[f"{theirs}mlp.fc1.{kind}"]
            state[f"{ours}mlp.2.{kind}"] = src[f"{theirs}mlp.fc2.{kind}"]
            state[f"{ours}norm2.{kind}"] = src[f"{theirs}layernorm_after.{kind}"]
    return state


@pytest.mark.parametrize("size, patch", [(12, 4), ((8, 12), 2)])
def test_vit_matches_transformers(size, patch):
    torch.manual_seed(0)
    height, width = (size, size) if isinstance(size, int) else size
    config = transformers.ViTConfig(image_size=size, patch_size=patch, num_channels=3, hidden_size=32,
                                    num_hidden_layers=3, num_attention_heads=4, intermediate_size=48,
                                    hidden_act="gelu", layer_norm_eps=1e-12, num_labels=7,
                                    attn_implementation="eager")
    hf = transformers.ViTForImageClassification(config).double().eval()
    ours = create_model("vit", in_channels=3, num_classes=7, input_size=size, patch_size=patch, embed_dim=32,
                        num_layers=3, num_heads=4, mlp_dim=48, layer_norm_eps=1e-12).double().eval()
    ours.load_state_dict(hf_state_for(ours, hf))  # strict: every tensor of ours is set
    x = torch.randn(5, 3, height, width, dtype=torch.float64)
    with torch.no_grad():
        expected = hf(pixel_values=x, output_attentions=True, output_hidden_states=True)
        logits, attentions = ours(x, return_attention=True)
        tokens = ours.forward_features(x)
    # transformers' eager attention takes its softmax in float32 (modeling_vit.py), so the float64
    # models agree to float32's precision, not to float64's
    torch.testing.assert_close(logits, expected.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(tokens, hf.vit.layernorm(expected.hidden_states[-1]), rtol=0, atol=1e-6)
    assert len(attentions) == len(expected.attentions)
    for a, b in zip(attentions, expected.attentions):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
