"""Bad input gets a ValueError naming what was expected and what came."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.errors import ConfigError, DataError
from archlab.explain import (FeatureAblation, GradCAM, InputXGradient, IntegratedGradients, Occlusion, Saliency,
                             SmoothGrad, deletion_curve, model_randomization_check, permutation_importance)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


@pytest.fixture
def x():
    return torch.rand(2, 1, 6, 6)


@pytest.mark.parametrize("method", [Saliency, InputXGradient, IntegratedGradients, SmoothGrad, FeatureAblation])
@pytest.mark.parametrize("target", [4, -1, [0, 7], torch.tensor([9, 0])])
def test_target_out_of_range(method, target, model, x):
    with pytest.raises(ValueError, match=r"target -?\d+ is out of range: the model has 4 outputs"):
        method(model).attribute(x, target)


def test_target_of_the_wrong_length_or_missing(model, x):
    with pytest.raises(ValueError, match="2 integer class indices, one per example"):
        Saliency(model).attribute(x, [0, 1, 2])
    with pytest.raises(ValueError, match="target is required"):
        Saliency(model).attribute(x)
    with pytest.raises(ValueError, match="target is required"):
        Occlusion(model).attribute(x, sliding_window_shapes=(1, 2, 2))


@pytest.mark.parametrize("baselines", [torch.zeros(3, 1, 6, 6), torch.zeros(5, 5), torch.zeros(1, 2, 6, 6)])
def test_baselines_that_do_not_broadcast(baselines, model, x):
    for call in (lambda: IntegratedGradients(model).attribute(x, 0, baselines=baselines),
                 lambda: FeatureAblation(model).attribute(x, 0, baselines=baselines),
                 lambda: Occlusion(model).attribute(x, 0, baselines=baselines, sliding_window_shapes=(1, 2, 2))):
        with pytest.raises(ValueError, match=r"baselines of shape .* do not broadcast to the inputs of shape"):
            call()


def test_layer_not_in_the_model(model):
    with pytest.raises(ValueError, match="layer 'conv9' is not in the model; its layers are: 0, 1, 2, 3"):
        GradCAM(model, "conv9")
    with pytest.raises(ValueError, match="not a submodule of the model"):
        GradCAM(model, nn.Conv2d(1, 3, 3))
    with pytest.raises(ValueError, match=r"layers \['head'\] are not in the model"):
        model_randomization_check(model, lambda m: torch.zeros(1, 3), layers=["head"])


def test_layer_not_called_by_a_forward_function(model, x):
    unused = nn.Conv2d(1, 1, 1)
    with pytest.raises(ValueError, match="is not called by the model's forward"):
        GradCAM(lambda inputs: model(inputs), unused).attribute(x, 0)


class ArgmaxModel(nn.Module):
    """A model whose output is not differentiable (a one-hot of the argmax)."""

    def forward(self, x):
        return nn.functional.one_hot(x.flatten(1).argmax(1) % 4, 4).float()


class NoGradModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(36, 4)

    def forward(self, x):
        with torch.no_grad():
            return self.linear(x.flatten(1))


@pytest.mark.parametrize("bad", [ArgmaxModel, NoGradModel])
@pytest.mark.parametrize("method", [Saliency, InputXGradient, IntegratedGradients, SmoothGrad])
def test_non_differentiable_model_given_to_a_gradient_method(bad, method, x):
    with pytest.raises(ValueError, match="gradient method, but the model's output does not depend differentiably"):
        method(bad()).attribute(x, 0)
    # perturbation methods need no gradient
    assert FeatureAblation(bad()).attribute(x, 0).shape == x.shape


def test_gradcam_on_a_non_differentiable_model(x):
    model = NoGradModel()
    with pytest.raises(ValueError, match="does not depend differentiably on the layer"):
        GradCAM(model, model.linear).attribute(x, 0)


def test_bad_parameters(model, x):
    with pytest.raises(ValueError, match="The 'n_steps' parameter of IntegratedGradients must be an int >= 1"):
        IntegratedGradients(model).attribute(x, 0, n_steps=0)
    with pytest.raises(ValueError, match="'n_steps' parameter .* >= 2 for riemann_trapezoid"):
        IntegratedGradients(model).attribute(x, 0, n_steps=1, method="riemann_trapezoid")
    with pytest.raises(ValueError, match="The 'method' parameter of IntegratedGradients must be one of"):
        IntegratedGradients(model).attribute(x, 0, method="simpson")
    with pytest.raises(ValueError, match="'internal_batch_size' parameter"):
        IntegratedGradients(model).attribute(x, 0, internal_batch_size=0)
    with pytest.raises(ValueError, match="'nt_type' parameter of SmoothGrad"):
        SmoothGrad(model).attribute(x, 0, nt_type="smooth")
    with pytest.raises(ValueError, match="'sliding_window_shapes' parameter of Occlusion"):
        Occlusion(model).attribute(x, 0, sliding_window_shapes=(2, 2))
    with pytest.raises(ValueError, match="larger than the inputs"):
        Occlusion(model).attribute(x, 0, sliding_window_shapes=(1, 7, 2))
    with pytest.raises(ValueError, match="must not exceed the window"):
        Occlusion(model).attribute(x, 0, sliding_window_shapes=(1, 2, 2), strides=(1, 3, 3))
    with pytest.raises(ValueError, match="feature_mask of shape"):
        FeatureAblation(model).attribute(x, 0, feature_mask=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="inputs must be floating point"):
        Saliency(model).attribute(torch.ones(2, 1, 6, 6, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="needs a torch.nn.Module or a forward function"):
        Saliency("model")
    with pytest.raises(ValueError, match="attributions of shape"):
        deletion_curve(model, x, torch.zeros(2, 3, 3), 0)
    with pytest.raises(ValueError, match="The 'n_repeats' parameter of permutation_importance"):
        permutation_importance(nn.Linear(3, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), n_repeats=0)
    with pytest.raises(ValueError, match="'scoring' parameter"):
        permutation_importance(nn.Linear(3, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), scoring="f1")


@pytest.mark.parametrize("method", [Saliency, InputXGradient, IntegratedGradients, SmoothGrad, FeatureAblation])
@pytest.mark.parametrize("target", [0.0, torch.tensor(0.0), torch.zeros(2, 1, 6, 6)])
def test_a_float_target_is_refused_as_a_captum_positional_baseline(method, target, model, x):
    # issue 18: attribute(x, 0.0) read the Captum-positional baseline 0.0 as target 0
    with pytest.raises(ConfigError, match=r"positional order is \(inputs, target\).*pass baselines by keyword"):
        method(model).attribute(x, target)


def test_smoothgrad_convergence_delta_needs_a_method_that_has_one(model, x):
    with pytest.raises(ConfigError, match="return_convergence_delta=True needs a method that reports a convergence "
                                          "delta, such as IntegratedGradients; Saliency has none"):
        SmoothGrad(model).attribute(x, 0, return_convergence_delta=True)


def test_several_inputs_that_do_not_fit(model, x):
    two = lambda a, b: model(a + b)  # noqa: E731
    with pytest.raises(DataError, match=r"same batch size \(first dimension\); got \[2, 3\]"):
        Saliency(two).attribute((x, torch.rand(3, 1, 6, 6)), 0)
    with pytest.raises(DataError, match="inputs is an empty tuple"):
        Saliency(two).attribute((), 0)
    with pytest.raises(ConfigError, match="baselines must have one entry per input"):
        IntegratedGradients(two).attribute((x, x), 0, baselines=(0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="baselines for 2 inputs must be a number or a tuple of 2"):
        FeatureAblation(two).attribute((x, x), 0, baselines=torch.zeros(6, 6))
    with pytest.raises(ConfigError, match="feature_mask must have one entry per input"):
        FeatureAblation(two).attribute((x, x), 0, feature_mask=(torch.zeros(6, 6, dtype=torch.long),))
    with pytest.raises(ConfigError, match="'sliding_window_shapes' parameter of Occlusion must have one entry per"):
        Occlusion(two).attribute((x, x), 0, sliding_window_shapes=(1, 2, 2))
    with pytest.raises(ConfigError, match=r"The 'stdevs' parameter of SmoothGrad must be a float >= 0 or a tuple of them, one per input\. "
                                          r"Got \(0\.1, -1\.0\) instead\."):
        SmoothGrad(two).attribute((x, x), 0, stdevs=(0.1, -1.0))


def test_a_gradient_method_on_a_batch_level_output(x):
    with pytest.raises(ValueError, match="single value for the whole batch; this method needs one output per example"):
        Saliency(lambda inputs: inputs.sum()).attribute(x)
