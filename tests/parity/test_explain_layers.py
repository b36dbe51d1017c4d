"""Layer Integrated Gradients through the embedding of archlab's text models against Captum's
`LayerIntegratedGradients`, in float64."""

from __future__ import annotations

import pytest
import torch
from captum import attr as captum
from torch.testing import assert_close

import archlab
import archlab.explain.layer_integrated_gradients as lig_module
from archlab.explain import LayerIntegratedGradients, TokenAttribution

from .test_explain_gradients import captum_quadrature


@pytest.mark.parametrize("name,extra,method", [
    ("lstm", {"hidden_dim": 12}, "gausslegendre"),
    ("lstm", {"hidden_dim": 12}, "riemann_trapezoid"),
    ("gru", {"hidden_dim": 12, "bidirectional": True, "pooling": "mean"}, "riemann_middle"),
    ("transformer", {"num_heads": 2, "context_length": 16}, "gausslegendre"),
    ("transformer", {"num_heads": 2, "context_length": 16, "pooling": "cls"}, "riemann_left"),
])
def test_layer_integrated_gradients_on_the_embedding_matches_captum(name, extra, method, monkeypatch):
    torch.manual_seed(0)
    model = archlab.create_model(name, vocab_size=30, embed_dim=8, num_classes=3, **extra).double().eval()
    x = torch.randint(1, 30, (4, 10))
    lengths = torch.tensor([10, 7, 5, 10])
    y = torch.tensor([0, 1, 2, 1])
    baselines = torch.zeros_like(x)
    theirs, their_delta = captum.LayerIntegratedGradients(model, model.embedding).attribute(
        x, target=y, baselines=baselines, additional_forward_args=(lengths,), n_steps=16, method=method,
        return_convergence_delta=True)
    monkeypatch.setattr(lig_module, "quadrature", captum_quadrature)
    ours, delta = LayerIntegratedGradients(model, model.embedding).attribute(
        x, y, baselines=baselines, additional_forward_args=(lengths,), n_steps=16, method=method,
        internal_batch_size=12, return_convergence_delta=True)
    assert_close(ours, theirs, atol=1e-8, rtol=0.0)
    assert_close(delta, their_delta, atol=1e-8, rtol=0.0)
    tokens = TokenAttribution(model).attribute(x, y, baselines=baselines, additional_forward_args=(lengths,),
                                               n_steps=16, method=method)
    assert_close(tokens, theirs.sum(-1), atol=1e-8, rtol=0.0)
