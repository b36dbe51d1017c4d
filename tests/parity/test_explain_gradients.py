"""Gradient attributions against Captum 0.9 on a trained MNIST CNN and a tabular MLP, in float64."""

from __future__ import annotations

import pytest
import torch
from captum import attr as captum
from captum.attr._utils.approximation_methods import approximation_parameters
from torch.testing import assert_close

import archlab.explain.integrated_gradients as ig_module
from archlab.explain import GradCAM, InputXGradient, IntegratedGradients, Saliency, quadrature
from archlab.explain.quadrature import METHODS

from ..explain.helpers import mnist_cnn, mnist_test, wine_mlp

pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
EXACT = {"atol": 1e-8, "rtol": 0.0}


@pytest.fixture(scope="module")
def cnn():
    x, y = mnist_test(8, torch.float64)
    return mnist_cnn(torch.float64), x, y


@pytest.fixture(scope="module")
def mlp():
    model, x, y = wine_mlp(torch.float64)
    return model, x[:16], y[:16]


def captum_quadrature(method: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Captum's own nodes and weights: it makes its Riemann nodes with a float32 `torch.linspace`,
    rounds every weight to float32 (`torch.tensor(step_sizes).float()`), and its trapezoid
    weights are ``1/n`` (they sum to ``(n-1)/n``)."""
    step_sizes, alphas = approximation_parameters(method)
    return torch.tensor(alphas(n_steps), dtype=torch.float64), torch.tensor(step_sizes(n_steps)).float().double()


@pytest.mark.parametrize("which", ["cnn", "mlp"])
@pytest.mark.parametrize("signed", [False, True])
def test_saliency_matches_captum(which, signed, request):
    model, x, y = request.getfixturevalue(which)
    ours = Saliency(model).attribute(x, y, abs=not signed)
    assert_close(ours, captum.Saliency(model).attribute(x, target=y, abs=not signed), **EXACT)


@pytest.mark.parametrize("which", ["cnn", "mlp"])
def test_input_x_gradient_matches_captum(which, request):
    model, x, y = request.getfixturevalue(which)
    assert_close(InputXGradient(model).attribute(x, y), captum.InputXGradient(model).attribute(x, target=y).detach(),
                 **EXACT)


@pytest.mark.parametrize("which", ["cnn", "mlp"])
@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_matches_captum_with_its_quadrature(which, method, request, monkeypatch):
    """Same nodes and weights as Captum -> the same attributions and convergence deltas to 1e-8."""
    model, x, y = request.getfixturevalue(which)
    baselines = x.mean(0, keepdim=True) if which == "mlp" else None
    theirs, their_delta = captum.IntegratedGradients(model).attribute(
        x, target=y, baselines=baselines, n_steps=20, method=method, return_convergence_delta=True)
    monkeypatch.setattr(ig_module, "quadrature", captum_quadrature)
    ours, delta = IntegratedGradients(model).attribute(x, y, baselines=baselines, n_steps=20, method=method,
                                                       internal_batch_size=3 * len(x), return_convergence_delta=True)
    assert_close(ours, theirs, **EXACT)
    assert_close(delta, their_delta, **EXACT)


@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_matches_captum_with_exact_quadrature(method, cnn):
    """Our float64 quadrature differs from Captum's only by its float32 rounding (and its
    trapezoid weights, which are ours times (n-1)/n)."""
    model, x, y = cnn
    n = 50
    ours = IntegratedGradients(model).attribute(x[:4], y[:4], n_steps=n, method=method)
    theirs = captum.IntegratedGradients(model).attribute(x[:4], target=y[:4], n_steps=n, method=method)
    scale = (n - 1) / n if method == "riemann_trapezoid" else 1.0
    assert_close(ours * scale, theirs, atol=1e-7 * theirs.abs().max().item(), rtol=0.0)


@pytest.mark.parametrize("method", METHODS)
def test_quadrature_nodes_and_weights_match_captum(method):
    alphas, weights = quadrature(method, 50)
    their_alphas, their_weights = captum_quadrature(method, 50)
    assert_close(alphas, their_alphas, atol=1e-7, rtol=0.0)
    scale = 49 / 50 if method == "riemann_trapezoid" else 1.0
    assert_close(weights * scale, their_weights, atol=1e-9, rtol=0.0)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12)  # a rule on [0, 1] integrates 1 exactly


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_matches_layer_gradcam(relu, cnn):
    model, x, y = cnn
    layer = model.features[1][0]  # the second convolution
    theirs = captum.LayerGradCam(model, layer).attribute(x, target=y, relu_attributions=relu).detach()
    assert_close(GradCAM(model, layer).attribute(x, y, relu_attributions=relu, upsample=False), theirs, **EXACT)
    upsampled = GradCAM(model, "features.1.0").attribute(x, y, relu_attributions=relu, interpolate_mode="nearest")
    assert_close(upsampled, captum.LayerAttribution.interpolate(theirs, (28, 28)), **EXACT)


def test_gradcam_per_channel_matches_layer_gradcam(cnn):
    model, x, y = cnn
    layer = model.features[0][0]
    theirs = captum.LayerGradCam(model, layer).attribute(x, target=y, attr_dim_summation=False).detach()
    ours = GradCAM(model, layer).attribute(x, y, attr_dim_summation=False, relu_attributions=False, upsample=False)
    assert_close(ours, theirs, **EXACT)
