"""Several inputs against Captum 0.9, in float64 to 1e-8: a model of two inputs of different
shapes, ``(B, 3)`` and ``(B, 2, 4)``, given to both libraries as a tuple."""

from __future__ import annotations

import pytest
import torch
from captum import attr as captum
from captum.attr._core.noise_tunnel import NoiseTunnel
from torch import nn
from torch.testing import assert_close

import archlab.explain.integrated_gradients as ig_module
from archlab.explain import FeatureAblation, InputXGradient, IntegratedGradients, Occlusion, Saliency, SmoothGrad
from archlab.explain.quadrature import METHODS

from .test_explain_gradients import captum_quadrature
from .test_explain_perturbation import captum_occlusion_in_float64  # noqa: F401  (a fixture)

pytestmark = pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
EXACT = {"atol": 1e-8, "rtol": 0.0}


class TwoInputNet(nn.Module):
    """Logits ``(B, 4)`` of a vector ``(B, 3)`` and a small map ``(B, 2, 4)``, optionally scaled per example."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.vector, self.grid = nn.Linear(3, 16), nn.Conv1d(2, 4, 3, padding=1)
        self.head = nn.Linear(16 + 16, 4)

    def forward(self, vector, grid, scale=None):
        h = torch.cat([torch.tanh(self.vector(vector)), torch.nn.functional.softplus(self.grid(grid)).flatten(1)], 1)
        out = self.head(h)
        return out if scale is None else out * scale[:, None]


@pytest.fixture(scope="module")
def net():
    g = torch.Generator().manual_seed(3)
    inputs = (torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 2, 4, generator=g,
                                                                                dtype=torch.float64))
    scale = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    return TwoInputNet().double().eval(), inputs, torch.tensor([0, 3, 1, 2, 3]), scale


def assert_tuple_close(ours, theirs):
    assert isinstance(ours, tuple) and len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        assert_close(a, b.detach(), **EXACT)


@pytest.mark.parametrize("absolute", [True, False])
def test_saliency(absolute, net):
    model, inputs, target, scale = net
    assert_tuple_close(Saliency(model).attribute(inputs, target, abs=absolute, additional_forward_args=(scale,)),
                       captum.Saliency(model).attribute(inputs, target=target, abs=absolute,
                                                        additional_forward_args=(scale,)))


def test_input_x_gradient(net):
    model, inputs, target, scale = net
    assert_tuple_close(InputXGradient(model).attribute(inputs, target, additional_forward_args=(scale,)),
                       captum.InputXGradient(model).attribute(inputs, target=target, additional_forward_args=(scale,)))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("baselines", ["zeros", "mixed"])
def test_integrated_gradients(method, baselines, net, monkeypatch):
    model, inputs, target, scale = net
    baselines = None if baselines == "zeros" else (0.25, inputs[1].mean(0, keepdim=True))
    theirs, their_delta = captum.IntegratedGradients(model).attribute(
        inputs, baselines=baselines, target=target, additional_forward_args=(scale,), n_steps=20, method=method,
        return_convergence_delta=True)
    monkeypatch.setattr(ig_module, "quadrature", captum_quadrature)  # Captum's float32 nodes and weights
    ours, delta = IntegratedGradients(model).attribute(inputs, target, baselines=baselines, n_steps=20, method=method,
                                                       additional_forward_args=(scale,), internal_batch_size=15,
                                                       return_convergence_delta=True)
    assert_tuple_close(ours, theirs)
    assert_close(delta, their_delta, **EXACT)


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_with_the_same_noise(nt_type, net, monkeypatch):
    """Captum draws its noise from the global generator; here it is handed archlab's draws
    (sample after sample, input after input, from the seeded generator), laid out
    example-major as Captum repeats its inputs."""
    model, inputs, target, _ = net
    samples, stdevs, seed = 4, (0.3, 0.1), 5
    g = torch.Generator().manual_seed(seed)
    draws = [[torch.randn(x.shape, generator=g, dtype=x.dtype) * s for x, s in zip(inputs, stdevs)]
             for _ in range(samples)]
    calls = iter(range(len(inputs)))

    def add_archlab_noise(x, stdev, n):
        i = next(calls)
        noise = torch.stack([draws[k][i] for k in range(n)], 1)  # (B, n, ...): example-major
        return x.repeat_interleave(n, dim=0) + noise.reshape(-1, *x.shape[1:])

    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input", staticmethod(add_archlab_noise))
    theirs = NoiseTunnel(captum.Saliency(model)).attribute(inputs, nt_type=nt_type, nt_samples=samples,
                                                           stdevs=stdevs, target=target, abs=False)
    ours = SmoothGrad(model).attribute(inputs, target, nt_type=nt_type, nt_samples=samples, stdevs=stdevs, seed=seed,
                                       abs=False)
    assert_tuple_close(ours, theirs)


def test_smoothgrad_of_integrated_gradients_and_its_deltas(net, monkeypatch):
    model, inputs, target, _ = net
    monkeypatch.setattr(NoiseTunnel, "_add_noise_to_input",
                        staticmethod(lambda x, stdev, n: x.repeat_interleave(n, dim=0)))
    theirs, their_delta = NoiseTunnel(captum.IntegratedGradients(model)).attribute(
        inputs, nt_samples=3, stdevs=0.1, target=target, n_steps=16, method="riemann_middle",
        return_convergence_delta=True)
    monkeypatch.setattr(ig_module, "quadrature", captum_quadrature)
    ours, delta = SmoothGrad(IntegratedGradients(model)).attribute(inputs, target, nt_samples=3, stdevs=0.0,
                                                                   n_steps=16, method="riemann_middle",
                                                                   return_convergence_delta=True)
    assert_tuple_close(ours, theirs)
    assert_close(delta, their_delta, **EXACT)  # example-major, as Captum orders them


@pytest.mark.parametrize("per_eval", [1, 4])
def test_feature_ablation(per_eval, net):
    model, inputs, target, scale = net
    kwargs = {"additional_forward_args": (scale,), "perturbations_per_eval": per_eval}
    assert_tuple_close(FeatureAblation(model).attribute(inputs, target, **kwargs),
                       captum.FeatureAblation(model).attribute(inputs, target=target, **kwargs))
    masks = (torch.tensor([[0, 0, 1]]), torch.tensor([[[1, 2, 2, 3], [3, 3, 4, 4]]]))  # id 1 spans both inputs
    baselines = (0.5, inputs[1].mean(0))
    assert_tuple_close(
        FeatureAblation(model).attribute(inputs, target, feature_mask=masks, baselines=baselines, **kwargs),
        captum.FeatureAblation(model).attribute(inputs, target=target, feature_mask=masks, baselines=baselines,
                                                **kwargs))


def test_feature_ablation_of_a_batch_level_scalar(net):
    model, inputs, _, _ = net

    def total(vector, grid):
        return model(vector, grid).logsumexp(1).sum()

    masks = (torch.tensor([[0, 1, 1]]), torch.tensor([[[2, 2, 3, 3], [4, 5, 5, 5]]]))
    assert_tuple_close(FeatureAblation(total).attribute(inputs, feature_mask=masks),
                       captum.FeatureAblation(total).attribute(inputs, feature_mask=masks))


def test_occlusion(net, captum_occlusion_in_float64):  # noqa: F811
    model, inputs, target, scale = net
    kwargs = {"sliding_window_shapes": ((2,), (1, 3)), "strides": ((1,), (1, 2)), "additional_forward_args": (scale,),
              "perturbations_per_eval": 3, "baselines": (0.1, -0.2)}
    assert_tuple_close(Occlusion(model).attribute(inputs, target, **kwargs),
                       captum.Occlusion(model).attribute(inputs, target=target, **kwargs))


def test_saliency_with_a_target_tuple_per_example(net):
    model, inputs, _, _ = net

    def grid_logits(vector, grid):
        return model(vector, grid).view(-1, 2, 2)

    target = [(0, 1), (1, 1), (1, 0), (0, 0), (1, 1)]
    assert_tuple_close(Saliency(grid_logits).attribute(inputs, target, abs=False),
                       captum.Saliency(grid_logits).attribute(inputs, target=target, abs=False))
