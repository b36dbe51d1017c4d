"""Family-specific explanations: attention rollout, token attributions, GNNExplainer and the
attribution of an autoencoder's anomaly score."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import archlab
from archlab.explain import (AnomalyAttribution, AttentionRollout, GNNExplainer, TokenAttribution, attention_rollout)


def test_rollout_of_one_layer_is_its_mixed_attention():
    g = torch.Generator().manual_seed(0)
    a = torch.softmax(torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64), -1)
    expected = 0.5 * a.mean(1) + 0.5 * torch.eye(5, dtype=torch.float64)
    assert_close(attention_rollout([a]), expected)
    assert_close(attention_rollout([a], residual=False, head_fusion="max"),
                 a.amax(1) / a.amax(1).sum(-1, keepdim=True))
    two = attention_rollout([a, a.flip(1)])
    assert_close(two, (0.5 * a.flip(1).mean(1) + 0.5 * torch.eye(5, dtype=torch.float64)) @ expected)
    assert_close(two.sum(-1), torch.ones(2, 5, dtype=torch.float64))  # rows stay distributions


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_attention_rollout_of_an_archlab_transformer(pooling):
    torch.manual_seed(0)
    model = archlab.create_model("transformer", vocab_size=20, embed_dim=16, num_heads=2, num_classes=3,
                                 context_length=12, pooling=pooling).eval()
    x = torch.randint(1, 20, (3, 8))
    lengths = torch.tensor([8, 5, 3])
    relevance = AttentionRollout(model).attribute(x, lengths=lengths)
    assert relevance.shape == x.shape
    assert (relevance >= 0).all()
    # padded tokens receive no attention, so no relevance
    assert relevance[1, 5:].abs().max() == 0 and relevance[2, 3:].abs().max() == 0
    if pooling == "mean":
        assert_close(relevance.sum(1), torch.ones(3))


def test_attention_rollout_needs_the_attention_contract():
    with pytest.raises(ValueError, match="return_attention=True"):
        AttentionRollout(nn.Linear(3, 2)).attribute(torch.rand(2, 4, 3))


@pytest.mark.parametrize("name", ["lstm", "transformer"])
def test_token_attributions_are_complete(name):
    torch.manual_seed(0)
    extra = {"num_heads": 2, "context_length": 16} if name == "transformer" else {"hidden_dim": 12}
    model = archlab.create_model(name, vocab_size=25, embed_dim=8, num_classes=3, **extra).double().eval()
    x = torch.randint(1, 25, (4, 9))
    lengths = torch.tensor([9, 4, 6, 2])
    scores, delta = TokenAttribution(model).attribute(x, 2, additional_forward_args=lengths, n_steps=64,
                                                      return_convergence_delta=True)
    assert scores.shape == x.shape
    assert delta.abs().max() < 1e-6
    # tokens past the length cannot matter
    assert scores[1, 4:].abs().max() == 0 and scores[3, 2:].abs().max() == 0


def test_token_attribution_needs_an_embedding():
    with pytest.raises(ValueError, match="has no `embedding` layer"):
        TokenAttribution(nn.Linear(3, 2))


def two_paths_graph():
    """Node 0 hears node 1 (one hop) and node 2 (two hops, through 1); nodes 3-4 are another component."""
    edge_index = torch.tensor([[1, 2, 0, 1, 3, 4], [0, 1, 1, 2, 4, 3]])
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, 4, generator=g), edge_index


def test_gnn_explainer_masks_a_gcn_prediction():
    torch.manual_seed(0)
    model = archlab.create_model("gcn", in_features=4, num_classes=3, hidden_dim=8, cached=False).eval()
    x, edge_index = two_paths_graph()
    explainer = GNNExplainer(model, epochs=30)
    first = explainer.explain_node(0, x, edge_index, seed=1)
    again = explainer.explain_node(0, x, edge_index, seed=1)
    assert_close(first.edge_mask, again.edge_mask)
    assert first.edge_mask.shape == (6,) and first.feature_mask.shape == (4,)
    assert ((first.edge_mask >= 0) & (first.edge_mask <= 1)).all()
    # edges of the other component are outside node 0's receptive field
    assert first.edge_mask[4:].abs().max() == 0
    assert (first.edge_mask[:4] > 0).all()
    assert first.losses[-1] < first.losses[0]
    assert first.target == int(model(x, edge_index)[0].argmax())
    assert set(first.top_edges(2).tolist()) <= {0, 1, 2, 3}


def test_gnn_explainer_bad_input():
    model = archlab.create_model("gcn", in_features=4, num_classes=3, cached=False).eval()
    x, edge_index = two_paths_graph()
    with pytest.raises(ValueError, match="node 9 is out of range for a graph of 5 nodes"):
        GNNExplainer(model).explain_node(9, x, edge_index)
    with pytest.raises(ValueError, match="target 3 is out of range: the model has 3 outputs"):
        GNNExplainer(model).explain_node(0, x, edge_index, target=3)


@pytest.fixture
def autoencoder():
    torch.manual_seed(0)
    return archlab.create_model("ae", in_features=6, latent_dim=2, hidden_dims=[8], activation="tanh").double().eval()


def test_anomaly_attribution_is_complete_from_the_reconstruction(autoencoder):
    x = torch.randn(5, 6, dtype=torch.float64)
    explainer = AnomalyAttribution(autoencoder)
    attr = explainer.attribute(x, n_steps=64)
    with torch.no_grad():
        reconstruction = autoencoder.reconstruct(x)
        gap = autoencoder.anomaly_score(x) - autoencoder.anomaly_score(reconstruction)
    assert attr.shape == x.shape
    assert_close(attr.sum(1), gap, atol=1e-6, rtol=1e-5)
    errors = explainer.attribute(x, method="reconstruction_error")
    assert_close(errors.sum(1), autoencoder.anomaly_score(x).detach())
    assert explainer.attribute(x, method="saliency").shape == x.shape


def test_anomaly_attribution_bad_input(autoencoder):
    with pytest.raises(ValueError, match="anomaly_score"):
        AnomalyAttribution(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="target must be None"):
        AnomalyAttribution(autoencoder).attribute(torch.rand(2, 6, dtype=torch.float64), 1)
    with pytest.raises(ValueError, match="'method' parameter of AnomalyAttribution"):
        AnomalyAttribution(autoencoder).attribute(torch.rand(2, 6, dtype=torch.float64), method="shap")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_attention_rollout_of_a_vision_transformer_is_a_map_over_its_patches(pooling):
    torch.manual_seed(0)
    model = archlab.create_model("vit", in_channels=1, num_classes=3, input_size=(8, 12), patch_size=4,
                                 embed_dim=16, num_layers=2, num_heads=2, pooling=pooling).eval()
    x = torch.randn(2, 1, 8, 12)
    grid = AttentionRollout(model).attribute(x, upsample=False)
    assert grid.shape == (2, 1, 2, 3)
    _, attentions = model(x, return_attention=True)
    flow = attention_rollout(attentions)  # (B, T, T), [CLS] first when there is one
    expected = flow[:, 0, 1:] if pooling == "cls" else flow.mean(1)
    assert_close(grid.flatten(1), expected)
    image = AttentionRollout(model).attribute(x)
    assert image.shape == (2, 1, 8, 12)
    # each patch's relevance covers its 4x4 pixels
    assert_close(image, grid.repeat_interleave(4, 2).repeat_interleave(4, 3))
    if pooling == "mean":
        assert_close(grid.sum((1, 2, 3)), torch.ones(2))
