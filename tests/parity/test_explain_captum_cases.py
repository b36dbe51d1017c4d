"""Captum's own test cases (tests/attr/test_feature_ablation.py, test_occlusion.py,
test_integrated_gradients_basic.py, test_saliency.py, test_input_x_gradient.py), run through
archlab's API on Captum's toy models, with Captum's inputs and expected numbers."""

from __future__ import annotations

import pytest
import torch
from captum.testing.helpers.basic_models import (BasicModel, BasicModel2, BasicModel3, BasicModel4_MultiArgs,
                                                 BasicModel5_MultiArgs, BasicModel6_MultiTensor,
                                                 BasicModel_ConvNet_One_Conv, BasicModel_MultiLayer,
                                                 BasicModel_MultiLayer_MultiInput, BasicModelBoolInput)
from captum.testing.helpers.classification_models import SoftmaxModel
from torch.testing import assert_close

from archlab.explain import FeatureAblation, InputXGradient, IntegratedGradients, Occlusion, Saliency, SmoothGrad
from archlab.explain.quadrature import METHODS

T = torch.tensor


def assert_attributions(got, expected, dtype=None, atol=1e-4):
    """Captum's check: same shapes (and dtype where it fixes one), values to 1e-4."""
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_attributions(g, e, dtype, atol)
        return
    expected = expected if isinstance(expected, torch.Tensor) else T(expected)
    assert got.shape == expected.shape
    if dtype is not None:
        assert got.dtype == dtype
    assert_close(got.double(), expected.double(), atol=atol, rtol=0)


# Captum's three-input case: x1 + x2 + x3 through BasicModel_MultiLayer, scaled by the extra argument
IN1 = T([[23.0, 100.0, 0.0], [20.0, 50.0, 30.0]])
IN2 = T([[20.0, 50.0, 30.0], [0.0, 100.0, 0.0]])
IN3 = T([[0.0, 100.0, 10.0], [2.0, 10.0, 3.0]])
MASKS = (T([[1, 1, 1], [0, 1, 0]]), T([[3, 4, 2]]), T([[5, 6, 7], [5, 5, 5]]))
MASKED = ([[492.0, 492.0, 492.0], [200.0, 200.0, 200.0]], [[80.0, 200.0, 120.0], [0.0, 400.0, 0.0]],
          [[0.0, 400.0, 40.0], [60.0, 60.0, 60.0]])
CONV_IN = (torch.arange(16, dtype=torch.float).view(1, 1, 4, 4), torch.ones((1, 1, 4, 4)))


@pytest.mark.parametrize("per_eval", [1, 2, 3])
def test_feature_ablation_on_one_input(per_eval):
    net = BasicModel_MultiLayer()
    x = T([[20.0, 50.0, 30.0]])
    assert_attributions(FeatureAblation(net).attribute(x, 0, perturbations_per_eval=per_eval), [[80.0, 200.0, 120.0]])
    assert_attributions(FeatureAblation(net).attribute(x, 0, feature_mask=T([[0, 0, 1]]),
                                                       perturbations_per_eval=per_eval), [[280.0, 280.0, 120.0]])
    assert_attributions(FeatureAblation(net).attribute(x, 0, feature_mask=T([[0, 0, 1]]), baselines=4,
                                                       perturbations_per_eval=per_eval), [[248.0, 248.0, 104.0]])
    batch = T([[2.0, 10.0, 3.0], [20.0, 50.0, 30.0]])
    assert_attributions(FeatureAblation(net).attribute(batch, 0, perturbations_per_eval=per_eval),
                        [[8.0, 35.0, 12.0], [80.0, 200.0, 120.0]])
    assert_attributions(FeatureAblation(net).attribute(batch, 0, feature_mask=T([[0, 0, 1], [1, 1, 0]]),
                                                       perturbations_per_eval=per_eval),
                        [[41.0, 41.0, 12.0], [280.0, 280.0, 120.0]])


@pytest.mark.parametrize("per_eval", [1, 2, 3])
def test_feature_ablation_on_integer_and_boolean_inputs(per_eval):
    x = T([[-3, 1, 2]])
    assert_attributions(FeatureAblation(BasicModel()).attribute(x, 0, perturbations_per_eval=per_eval),
                        T([[-3, 0, 0]]), torch.int64)
    as_float = FeatureAblation(lambda x: BasicModel()(x).float())
    assert_attributions(as_float.attribute(x, 0, perturbations_per_eval=per_eval), [[-3.0, 0.0, 0.0]], torch.float32)
    flags, mask = T([[True, False, True]]), T([[0, 0, 1]])
    assert_attributions(FeatureAblation(BasicModelBoolInput()).attribute(flags, 0, feature_mask=mask,
                                                                         perturbations_per_eval=per_eval),
                        [[40.0, 40.0, 40.0]])
    assert_attributions(FeatureAblation(BasicModelBoolInput()).attribute(flags, 0, feature_mask=mask, baselines=True,
                                                                         perturbations_per_eval=per_eval),
                        [[-40.0, -40.0, 0.0]])
    noisy = SmoothGrad(FeatureAblation(BasicModel())).attribute(x.float(), 0, stdevs=1e-10,
                                                                perturbations_per_eval=per_eval)
    assert_attributions(noisy, [[-3.0, 0.0, 0.0]])


@pytest.mark.parametrize("per_eval", [1, 2, 3])
def test_feature_ablation_on_three_inputs(per_eval):
    net = BasicModel_MultiLayer_MultiInput()
    ablation = FeatureAblation(net)
    assert_attributions(ablation.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,), feature_mask=MASKS,
                                           perturbations_per_eval=per_eval), MASKED)
    assert_attributions(ablation.attribute((IN1, IN2), 0, additional_forward_args=(IN3, 1), feature_mask=MASKS[:2],
                                           perturbations_per_eval=per_eval), MASKED[:2])
    assert_attributions(
        ablation.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,), feature_mask=MASKS, baselines=(2, 3.0, 4),
                           perturbations_per_eval=per_eval),
        ([[468.0, 468.0, 468.0], [184.0, 192.0, 184.0]], [[68.0, 188.0, 108.0], [-12.0, 388.0, -12.0]],
         [[-16.0, 384.0, 24.0], [12.0, 12.0, 12.0]]))
    shared_ids = (T([[1, 1, 1], [0, 1, 0]]), T([[0, 1, 2]]), T([[0, 1, 2], [0, 0, 0]]))
    assert_attributions(
        ablation.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,), feature_mask=shared_ids,
                           perturbations_per_eval=per_eval),
        ([[1092.0, 1092.0, 1092.0], [260.0, 600.0, 260.0]], [[80.0, 1092.0, 160.0], [260.0, 600.0, 0.0]],
         [[80.0, 1092.0, 160.0], [260.0, 260.0, 260.0]]))
    assert_attributions(
        ablation.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,), feature_mask=shared_ids,
                           baselines=(2, 3.0, 4), perturbations_per_eval=per_eval),
        ([[1040.0, 1040.0, 1040.0], [184.0, 580.0, 184.0]], [[52.0, 1040.0, 132.0], [184.0, 580.0, -12.0]],
         [[52.0, 1040.0, 132.0], [184.0, 184.0, 184.0]]))
    assert_attributions(
        ablation.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,), perturbations_per_eval=per_eval,
                           baselines=(T([[3.0, 0.0, 0.0]]), T([[0.0, 1.0, 0.0]]), T([[1.0, 2.0, 3.0]]))),
        ([[80.0, 400.0, 0.0], [68.0, 200.0, 120.0]], [[80.0, 196.0, 120.0], [0.0, 396.0, 0.0]],
         [[-4.0, 392.0, 28.0], [4.0, 32.0, 0.0]]))
    per_example_baselines = (T([[3.0, 0.0, 0.0], [3.0, 0.0, 2.0]]), T([[0.0, 1.0, 0.0], [0.0, 1.0, 4.0]]),
                             T([[3.0, 2.0, 4.0], [1.0, 2.0, 3.0]]))
    assert_attributions(
        ablation.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,), baselines=per_example_baselines,
                           perturbations_per_eval=per_eval),
        ([[80.0, 400.0, 0.0], [68.0, 200.0, 112.0]], [[80.0, 196.0, 120.0], [0.0, 396.0, -16.0]],
         [[-12.0, 392.0, 24.0], [4.0, 32.0, 0.0]]))


def test_feature_ablation_of_integer_and_float_inputs_with_float_baselines():
    def sum_forward(*inputs):
        return torch.cat([x.flatten(1) for x in inputs], dim=1).sum(1)

    inputs = (T([[0, 1], [3, 4]]), T([[[0.1, 0.2], [0.3, 0.2]], [[0.4, 0.5], [0.3, 0.2]]]), T([[0], [1]]))
    assert_attributions(FeatureAblation(sum_forward).attribute(inputs, baselines=(0.2, 3.1, 0.4)),
                        ([[-0.2, 0.8], [2.8, 3.8]], [[[-3.0, -2.9], [-2.8, -2.9]], [[-2.7, -2.6], [-2.8, -2.9]]],
                         [[-0.4], [0.6]]))


@pytest.mark.parametrize("per_eval", [1, 2, 4, 8, 12, 16])
def test_feature_ablation_of_two_images_each_one_feature(per_eval):
    a, b = CONV_IN
    attr = FeatureAblation(BasicModel_ConvNet_One_Conv()).attribute((a, b), 0, feature_mask=(T(0), T(1)),
                                                                    perturbations_per_eval=per_eval)
    assert_attributions(attr, (67 * torch.ones_like(a), 13 * torch.ones_like(b)))


@pytest.mark.parametrize("per_eval", [1, 3, 7, 14])
def test_feature_ablation_of_two_images_pixel_by_pixel(per_eval):
    attr = FeatureAblation(BasicModel_ConvNet_One_Conv()).attribute(CONV_IN, 0, perturbations_per_eval=per_eval)
    assert_attributions(attr, ([[[[0.0, 2.0, 4.0, 3.0], [4.0, 9.0, 10.0, 7.0], [4.0, 13.0, 14.0, 11.0],
                                  [0.0, 0.0, 0.0, 0.0]]]],
                               [[[[1.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 1.0],
                                  [0.0, 0.0, 0.0, 0.0]]]]))


NET = BasicModel_MultiLayer()
THREE = BasicModel_MultiLayer_MultiInput()
BATCH_SCALARS = {  # Captum's forms of one output for the whole batch, and the dtype each gives
    "float": (lambda *x: torch.sum(NET(*x)).item(), lambda *x: torch.sum(THREE(*x)).item(), torch.float64),
    "0-d tensor": (lambda *x: torch.sum(NET(*x)), lambda *x: torch.sum(THREE(*x)), torch.float32),
    "1-d tensor": (lambda *x: torch.sum(NET(*x)).reshape(1), lambda *x: torch.sum(THREE(*x)).reshape(1),
                   torch.float32),
    "int": (lambda *x: int(torch.sum(NET(*x)).item()), lambda *x: int(torch.sum(THREE(*x)).item()), torch.int64),
}


@pytest.mark.parametrize("form", BATCH_SCALARS)
def test_feature_ablation_of_a_batch_level_scalar(form):
    one_input, three_inputs, dtype = BATCH_SCALARS[form]
    mask = T([[0, 0, 1]])
    assert_attributions(FeatureAblation(one_input).attribute(T([[2.0, 10.0, 3.0]]), feature_mask=mask),
                        T([[82.0, 82.0, 24.0]]), dtype)
    assert_attributions(FeatureAblation(one_input).attribute(T([[2.0, 10.0, 3.0], [20.0, 50.0, 30.0]]),
                                                             feature_mask=mask), T([[642.0, 642.0, 264.0]]), dtype)
    attr = FeatureAblation(three_inputs).attribute((IN1, IN2, IN3), additional_forward_args=(1,),
                                                   feature_mask=(T([[1, 1, 1]]), T([[0, 3, 2]]), T([[4, 5, 6]])))
    assert_attributions(attr, (T([[1784, 1784, 1784]]), T([[160, 1200, 240]]), T([[16, 880, 104]])), dtype)


def test_feature_ablation_of_batch_level_outputs_of_several_values():
    assert_attributions(FeatureAblation(lambda x: torch.ones(1, 5, 3, 2)).attribute(
        torch.randn(10, 5), feature_mask=torch.arange(5).unsqueeze(0)), torch.zeros(30, 5))
    first_row = FeatureAblation(lambda x: x[0].unsqueeze(0))
    x = T([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    diagonal = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
    assert_attributions(first_row.attribute(x, feature_mask=T([[0, 1, 2]])), diagonal)
    assert_attributions(first_row.attribute(x), diagonal)
    assert_attributions(first_row.attribute(x, feature_mask=T([[0, 0, 1]])),
                        [[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 3.0]])


@pytest.mark.parametrize("per_eval", [1, 2, 3])
def test_occlusion_on_one_input(per_eval):
    x = T([[20.0, 50.0, 30.0]])
    occlusion = Occlusion(BasicModel_MultiLayer())
    assert_attributions(occlusion.attribute(x, 0, sliding_window_shapes=(1,), perturbations_per_eval=per_eval),
                        [[80.0, 200.0, 120.0]])
    assert_attributions(occlusion.attribute(x, 0, sliding_window_shapes=(2,), baselines=T([10.0, 10.0, 10.0]),
                                            perturbations_per_eval=per_eval), [[200.0, 220.0, 240.0]])
    assert_attributions(occlusion.attribute(x, 0, sliding_window_shapes=(2,), strides=2,
                                            perturbations_per_eval=per_eval), [[280.0, 280.0, 120.0]])
    assert_attributions(occlusion.attribute(T([[2.0, 10.0, 3.0], [20.0, 50.0, 30.0]]), 0,
                                            sliding_window_shapes=((1,),), perturbations_per_eval=per_eval),
                        [[8.0, 35.0, 12.0], [80.0, 200.0, 120.0]])


def test_occlusion_on_two_scalar_inputs():
    expected = ([[0.0], [1.0]], [[0.0], [-1.0]])
    for model, inputs in [(BasicModel3(), (T([[-10], [3]]), T([[-5], [1]]))),
                          (lambda *x: BasicModel3()(*x).float(), (T([[-10], [3]]), T([[-5], [1]]))),
                          (BasicModel3(), (T([[-10.0], [3.0]]), T([[-5.0], [1.0]])))]:
        assert_attributions(Occlusion(model).attribute(inputs, 0, sliding_window_shapes=((1,), (1,))), expected)
    assert_attributions(Occlusion(BasicModel3()).attribute((T([-10.0, 3.0]), T([-5.0, 1.0])),
                                                           sliding_window_shapes=((), ())), ([0.0, 1.0], [0.0, -1.0]))


@pytest.mark.parametrize("per_eval", [1, 2, 3])
def test_occlusion_on_three_inputs(per_eval):
    occlusion = Occlusion(BasicModel_MultiLayer_MultiInput())
    expected = ([[492.0, 492.0, 492.0], [400.0, 400.0, 400.0]], [[80.0, 200.0, 120.0], [0.0, 400.0, 0.0]],
                [[400.0, 420.0, 440.0], [48.0, 50.0, 52.0]])
    assert_attributions(occlusion.attribute((IN1, IN2, IN3), 0, additional_forward_args=(1,),
                                            sliding_window_shapes=((3,), (1,), (2,)), perturbations_per_eval=per_eval),
                        expected)
    assert_attributions(occlusion.attribute((IN1, IN2), 0, additional_forward_args=(IN3, 1),
                                            sliding_window_shapes=((3,), (1,)), perturbations_per_eval=per_eval),
                        expected[:2])
    assert_attributions(
        occlusion.attribute((IN1, IN2, IN3), 0, baselines=(T([[1.0, 4, 7], [3.0, 6, 9]]), 3.0, T([[4.0], [6]])),
                            additional_forward_args=(1,), sliding_window_shapes=((3,), (1,), (2,)), strides=(2, 1, 2),
                            perturbations_per_eval=per_eval),
        ([[444.0, 444.0, 444.0], [328.0, 328.0, 328.0]], [[68.0, 188.0, 108.0], [-12.0, 388.0, -12.0]],
         [[368.0, 368.0, 24.0], [0.0, 0.0, -12.0]]))


@pytest.mark.parametrize("per_eval", [1, 3, 7, 14])
def test_occlusion_on_two_images(per_eval):
    a, b = CONV_IN
    occlusion = Occlusion(BasicModel_ConvNet_One_Conv())
    assert_attributions(occlusion.attribute((a, b), 0, sliding_window_shapes=((1, 4, 4), (1, 4, 4)),
                                            perturbations_per_eval=per_eval),
                        (67 * torch.ones_like(a), 13 * torch.ones_like(b)))
    assert_attributions(
        occlusion.attribute((a, b), 0, sliding_window_shapes=((1, 2, 3), (1, 1, 2)), strides=((1, 2, 1), (1, 1, 2)),
                            perturbations_per_eval=per_eval),
        ([[[[17.0, 17.0, 17.0, 17.0], [17.0, 17.0, 17.0, 17.0], [64.0, 65.5, 65.5, 67.0], [64.0, 65.5, 65.5, 67.0]]]],
         [[[[3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0], [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]]]]))
    assert_attributions(
        occlusion.attribute((a, torch.ones((1, 1, 4, 1))), 0, sliding_window_shapes=((1, 2, 4), (1, 2, 1)),
                            strides=((1, 2, 1), (1, 1, 1)), perturbations_per_eval=per_eval),
        ([[[[17.0, 17.0, 17.0, 17.0], [17.0, 17.0, 17.0, 17.0], [67.0, 67.0, 67.0, 67.0], [67.0, 67.0, 67.0, 67.0]]]],
         [[[[10.0], [10.0], [8.0], [6.0]]]]))


@pytest.mark.parametrize("multiply_by_inputs", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_on_the_papers_two_variable_models(method, multiply_by_inputs):
    inputs, baselines = (T([3.0]), T([1.0])), (T([0.0]), T([0.0]))
    totals = []
    for model in (BasicModel2(), BasicModel3()):
        ig = IntegratedGradients(model, multiply_by_inputs=multiply_by_inputs)
        attr, delta = ig.attribute(inputs, baselines=baselines, n_steps=500, method=method,
                                   return_convergence_delta=True)
        assert_attributions(attr, ([1.5] if multiply_by_inputs else [0.5], [-0.5]), atol=0.05)
        if multiply_by_inputs:
            assert delta.abs().max() < 0.07
        totals.append(attr[0] + attr[1])
    assert_close(totals[0], totals[1])  # implementation invariance


@pytest.mark.parametrize("method", METHODS)
def test_integrated_gradients_completeness_on_captum_multi_argument_models(method):
    cases = [
        (BasicModel(), T([1.0]), T([0.0]), None),
        (BasicModel(), T([-1.0]), 0.00001, None),
        (BasicModel4_MultiArgs(), (T([[1.5, 2.0, 34.3]]), T([[3.0, 3.5, 23.2]])), (0.0, torch.zeros((1, 3))),
         torch.arange(1.0, 4.0).reshape(1, 3)),
        (BasicModel4_MultiArgs(), (T([[1.5, 2.0, 34.3], [3.4, 1.2, 2.0]]), T([[3.0, 3.5, 23.2], [2.3, 1.2, 0.3]])),
         (torch.zeros((2, 3)), 0.0), (torch.arange(1.0, 7.0).reshape(2, 3), 1)),
        (BasicModel5_MultiArgs(), (T([[1.5, 2.0, 34.3], [3.4, 1.2, 2.0]]), T([[3.0, 3.5, 23.2], [2.3, 1.2, 0.3]])),
         (torch.zeros((1, 3)), 0.00001), ([2, 3], 1)),
        (BasicModel6_MultiTensor(), (T([[1.5, 2.0, 3.3]]), T([[3.0, 3.5, 2.2]])), None, None),
    ]
    for model, inputs, baselines, args in cases:
        ig = IntegratedGradients(model)
        attr, delta = ig.attribute(inputs, baselines=baselines, additional_forward_args=args, n_steps=500,
                                   method=method, return_convergence_delta=True)
        shapes = [x.shape for x in (inputs if isinstance(inputs, tuple) else (inputs,))]
        assert [a.shape for a in (attr if isinstance(attr, tuple) else (attr,))] == shapes
        assert delta.shape == (shapes[0][0],) and delta.abs().max() < 0.07
        assert_close(ig.convergence_delta(attr, baselines, inputs, additional_forward_args=args), delta)


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("nt_samples_batch_size", [None, 1, 2, 3])
def test_noise_tunnel_of_integrated_gradients_on_a_batch_of_two_inputs(nt_type, nt_samples_batch_size):
    inputs = (T([[1.5, 2.1, 1.9], [0.5, 0.0, 0.7], [1.5, 2.1, 1.1]]), T([[0.3, 1.9, 2.4], [0.5, 0.6, 2.1],
                                                                          [1.2, 2.1, 0.2]]))
    smooth = SmoothGrad(IntegratedGradients(BasicModel_MultiLayer()))  # forward(x, add_input) adds the two
    attr, delta = smooth.attribute(inputs, 0, nt_type=nt_type, nt_samples=5, stdevs=0.00000002, n_steps=500,
                                   method="riemann_trapezoid", nt_samples_batch_size=nt_samples_batch_size,
                                   return_convergence_delta=True)
    assert [a.shape for a in attr] == [x.shape for x in inputs]
    assert delta.shape == (3 * 5,) and delta.abs().max() < 0.07
    without = smooth.attribute(inputs, 0, nt_type=nt_type, nt_samples=5, stdevs=0.00000002, n_steps=500,
                               method="riemann_trapezoid", nt_samples_batch_size=3)
    assert_attributions(attr, without, atol=0.05)


def test_noise_tunnel_without_multiplying_by_inputs():
    inputs = T([[1.5, 2.0, 1.3], [0.5, 0.1, 2.3], [1.5, 2.0, 1.3]])
    plain = SmoothGrad(IntegratedGradients(BasicModel_MultiLayer(), multiply_by_inputs=False)).attribute(
        inputs, 0, nt_samples=5, stdevs=0.0, n_steps=500)
    times = SmoothGrad(IntegratedGradients(BasicModel_MultiLayer())).attribute(inputs, 0, nt_samples=5, stdevs=0.0,
                                                                               n_steps=500)
    assert_attributions(plain * inputs, times)


def test_saliency_and_input_x_gradient_on_captum_configs():
    x = T([1.0, 2.0, 3.0, 0.0, -1.0, 7.0])  # six examples of one value each
    grads = T([-0.0, -0.0, -0.0, 1.0, 1.0, -0.0])
    assert_attributions(Saliency(BasicModel()).attribute(x), grads.abs())
    assert_attributions(InputXGradient(BasicModel()).attribute(x), grads * x)
    inputs = (T([[1.5, 2.0, 34.3], [3.4, 1.2, 2.0]]), T([[3.0, 3.5, 23.2], [2.3, 1.2, 0.3]]))
    args = ([2, 3], 1)
    for method in (Saliency, InputXGradient):
        attr = method(BasicModel5_MultiArgs()).attribute(inputs, additional_forward_args=args)
        assert [a.shape for a in attr] == [x.shape for x in inputs]
    for nt_type in ("smoothgrad", "smoothgrad_sq", "vargrad"):
        batched = SmoothGrad(Saliency(BasicModel5_MultiArgs())).attribute(
            inputs, nt_type=nt_type, nt_samples=10, nt_samples_batch_size=3, stdevs=0.0000002,
            additional_forward_args=args)
        whole = SmoothGrad(Saliency(BasicModel5_MultiArgs())).attribute(
            inputs, nt_type=nt_type, nt_samples=10, stdevs=0.0000002, additional_forward_args=args)
        assert_attributions(batched, whole)


def test_saliency_and_input_x_gradient_on_a_softmax_classifier():
    torch.manual_seed(0)
    model = SoftmaxModel(5, 20, 10)
    x = T([[0.0, 1.0, 2.0, 3.0, 4.0]], requires_grad=True)
    model(x)[:, 5].backward()
    assert_close(Saliency(model).attribute(x, T(5)), x.grad.abs())
    assert_close(InputXGradient(model.forward).attribute(x, T(5)), (x.grad * x).detach())
    for nt_type in ("smoothgrad", "vargrad"):
        assert SmoothGrad(Saliency(model)).attribute(x, T(5), nt_type=nt_type, nt_samples=10,
                                                     stdevs=0.0002).shape == x.shape
