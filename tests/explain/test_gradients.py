"""Properties of the gradient attributions on small models whose answers are known."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from archlab.explain import GradCAM, InputXGradient, IntegratedGradients, Saliency, SmoothGrad, quadrature
from archlab.explain.quadrature import METHODS


def linear_model(features: int = 5, classes: int = 3, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(features, classes).double()


def smooth_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 4)).double()


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(5 * 6 * 6, 3)).double()


def test_saliency_of_a_linear_model_is_its_weight_row():
    model = linear_model()
    x = torch.randn(4, 5, dtype=torch.float64)
    assert_close(Saliency(model).attribute(x, 2, abs=False), model.weight[2].detach().expand(4, -1))
    assert_close(Saliency(model).attribute(x, 2), model.weight[2].detach().abs().expand(4, -1))
    assert_close(InputXGradient(model).attribute(x, 2), x * model.weight[2].detach())


@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_of_a_linear_model_is_exact(method):
    model = linear_model()
    x, b = torch.randn(4, 5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0])
    attr, delta = IntegratedGradients(model).attribute(x, target, baselines=b, n_steps=7, method=method,
                                                       return_convergence_delta=True)
    assert_close(attr, (x - b) * model.weight[target].detach())
    assert_close(delta, torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)


def test_integrated_gradients_completeness_on_a_smooth_model():
    model = smooth_model()
    x = torch.randn(8, 6, dtype=torch.float64)
    attr, delta = IntegratedGradients(model).attribute(x, 1, n_steps=50, return_convergence_delta=True)
    with torch.no_grad():
        gap = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    assert_close(attr.sum(1), gap, atol=1e-10, rtol=0)  # Gauss-Legendre is exact to machine precision here
    assert delta.abs().max() < 1e-10


@pytest.mark.parametrize("internal_batch_size", [1, 5, 8, 13, 1000])
def test_integrated_gradients_does_not_depend_on_the_internal_batch(internal_batch_size):
    model, x = small_cnn(), torch.rand(4, 2, 8, 8, dtype=torch.float64)
    reference = IntegratedGradients(model).attribute(x, 1, n_steps=9, internal_batch_size=10_000)
    attr = IntegratedGradients(model).attribute(x, 1, n_steps=9, internal_batch_size=internal_batch_size)
    assert_close(attr, reference)


@pytest.mark.parametrize("method", METHODS)
def test_quadrature_integrates_polynomials(method):
    alphas, weights = quadrature(method, 10)
    # left and right sums are off by exactly 1/(2n) for a linear integrand; the others are exact
    error = {"riemann_left": -0.05, "riemann_right": 0.05}.get(method, 0.0)
    assert (weights * alphas).sum().item() == pytest.approx(0.5 + error, abs=1e-12)
    if method == "gausslegendre":  # exact up to degree 2n - 1 = 19
        assert (weights * alphas**19).sum().item() == pytest.approx(1 / 20, abs=1e-14)


def test_attribution_of_a_forward_function_with_additional_arguments():
    model = linear_model()
    x, scale = torch.randn(3, 5, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)

    def forward(inputs, factor):
        return model(inputs) * factor[:, None]

    attr = IntegratedGradients(forward).attribute(x, 0, additional_forward_args=(scale,), n_steps=4,
                                                  internal_batch_size=3)
    assert_close(attr, x * model.weight[0].detach() * scale[:, None])
    assert_close(Saliency(forward).attribute(x, 0, abs=False, additional_forward_args=scale),
                 model.weight[0].detach() * scale[:, None])


def test_one_output_per_example_needs_no_target():
    model = nn.Sequential(nn.Linear(5, 1), nn.Flatten(0)).double()
    x = torch.randn(3, 5, dtype=torch.float64)
    assert_close(Saliency(model).attribute(x, abs=False), model[0].weight.detach().expand(3, -1))


def test_smoothgrad_is_seeded_and_reduces_to_the_gradient_without_noise():
    model, x = smooth_model(), torch.randn(3, 6, dtype=torch.float64)
    plain = Saliency(model).attribute(x, 2, abs=False)
    assert_close(SmoothGrad(model).attribute(x, 2, stdevs=0.0, abs=False), plain)
    a = SmoothGrad(model).attribute(x, 2, nt_samples=6, nt_samples_batch_size=4, stdevs=0.5, seed=3, abs=False)
    b = SmoothGrad(model).attribute(x, 2, nt_samples=6, stdevs=0.5, seed=3, abs=False)
    assert_close(a, b)  # the same noise whatever the batching
    assert not torch.allclose(a, plain)
    sq = SmoothGrad(model).attribute(x, 2, nt_type="smoothgrad_sq", nt_samples=6, stdevs=0.5, seed=3, abs=False)
    var = SmoothGrad(model).attribute(x, 2, nt_type="vargrad", nt_samples=6, stdevs=0.5, seed=3, abs=False)
    assert_close(var, sq - a * a)
    assert (var >= -1e-15).all()


def test_smoothgrad_of_integrated_gradients_passes_baselines_per_example():
    model, x = smooth_model(), torch.randn(3, 6, dtype=torch.float64)
    baselines = torch.randn(3, 6, dtype=torch.float64)
    attr = SmoothGrad(IntegratedGradients(model)).attribute(x, 0, stdevs=0.0, nt_samples=2, baselines=baselines)
    assert_close(attr, IntegratedGradients(model).attribute(x, 0, baselines=baselines))


def test_gradcam_equals_its_definition():
    model, x = small_cnn(), torch.rand(2, 2, 8, 8, dtype=torch.float64)
    acts = model[:4](x).detach().requires_grad_()
    out = model[4:](acts)[:, 2].sum()
    (grad,) = torch.autograd.grad(out, acts)
    expected = torch.relu((grad.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True)).detach()
    assert_close(GradCAM(model, model[3]).attribute(x, 2, upsample=False), expected)
    assert GradCAM(model, "2").attribute(x, 2).shape == (2, 1, 8, 8)


def test_gradcam_with_a_forward_function_and_its_layer():
    model, x = small_cnn(), torch.rand(2, 2, 8, 8, dtype=torch.float64)
    via_function = GradCAM(lambda inputs: model(inputs), model[1]).attribute(x, 0, upsample=False)
    assert_close(via_function, GradCAM(model, model[1]).attribute(x, 0, upsample=False))


class TwoInputs(nn.Module):
    """f(a, b) = head(tanh(W_a a + W_b flatten(b))) for a ``(B, 3)`` and b ``(B, 2, 4)``."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.a, self.b, self.head = nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, a, b):
        return self.head(torch.tanh(self.a(a) + self.b(b.flatten(1))))


def two_inputs(batch: int = 3):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(batch, 3, generator=g, dtype=torch.float64),
            torch.randn(batch, 2, 4, generator=g, dtype=torch.float64))


def test_gradient_methods_on_two_inputs_are_the_gradients_of_each():
    model, (a, b) = TwoInputs().double(), two_inputs()
    a_, b_ = a.clone().requires_grad_(), b.clone().requires_grad_()
    grad_a, grad_b = torch.autograd.grad(model(a_, b_)[:, 2].sum(), (a_, b_))
    sal = Saliency(model).attribute((a, b), 2, abs=False)
    assert isinstance(sal, tuple) and len(sal) == 2
    assert_close(sal[0], grad_a)
    assert_close(sal[1], grad_b)
    ixg = InputXGradient(model).attribute((a, b), 2)
    assert_close(ixg[0], a * grad_a)
    assert_close(ixg[1], b * grad_b)


def test_integrated_gradients_completeness_over_two_inputs():
    model, (a, b) = TwoInputs().double(), two_inputs()
    baselines = (0.5, torch.randn(2, 4, dtype=torch.float64))
    target = torch.tensor([0, 3, 1])
    (attr_a, attr_b), delta = IntegratedGradients(model).attribute((a, b), target, baselines=baselines, n_steps=40,
                                                                   return_convergence_delta=True)
    with torch.no_grad():
        gap = (model(a, b) - model(torch.full_like(a, 0.5), baselines[1].expand_as(b))).gather(1, target[:, None])[:, 0]
    assert_close(attr_a.sum(1) + attr_b.flatten(1).sum(1), gap, atol=1e-10, rtol=0)
    assert delta.abs().max() < 1e-10
    batched = IntegratedGradients(model).attribute((a, b), target, baselines=baselines, n_steps=40,
                                                   internal_batch_size=7)
    assert_close(batched[0], attr_a)
    assert_close(batched[1], attr_b)


def test_smoothgrad_of_integrated_gradients_returns_the_deltas_of_every_sample():
    # issue 18: return_convergence_delta=True crashed with "'tuple' object has no attribute 'view'"
    model, x = smooth_model(), torch.randn(3, 6, dtype=torch.float64)
    attr, delta = SmoothGrad(IntegratedGradients(model)).attribute(x, 1, nt_samples=4, nt_samples_batch_size=3,
                                                                   stdevs=0.1, return_convergence_delta=True)
    assert attr.shape == x.shape and delta.shape == (3 * 4,)
    assert delta.abs().max() < 1e-8  # Gauss-Legendre IG on every noisy copy
    plain = SmoothGrad(IntegratedGradients(model)).attribute(x, 1, nt_samples=4, stdevs=0.1)
    assert_close(attr, plain)


def test_smoothgrad_on_two_inputs_draws_noise_for_each():
    model, (a, b) = TwoInputs().double(), two_inputs()
    without_noise = SmoothGrad(model).attribute((a, b), 0, stdevs=0.0, abs=False)
    plain = Saliency(model).attribute((a, b), 0, abs=False)
    assert_close(without_noise[0], plain[0])
    assert_close(without_noise[1], plain[1])
    noisy_a_only = SmoothGrad(model).attribute((a, b), 0, stdevs=(0.5, 0.0), nt_samples=3, abs=False)
    assert not torch.allclose(noisy_a_only[0], plain[0])
    single = SmoothGrad(model).attribute(a, 0, nt_samples=3, stdevs=0.5, abs=False, additional_forward_args=(b,))
    first = SmoothGrad(model).attribute((a,), 0, nt_samples=3, stdevs=0.5, abs=False, additional_forward_args=(b,))
    assert_close(first[0], single)  # a 1-tuple draws the same noise as the tensor
