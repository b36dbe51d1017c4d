"""FeatureAblation and Occlusion on inputs of any dtype, on several inputs, and on models that
return one value (or a few) for the whole batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from archlab.errors import ConfigError, DataError
from archlab.explain import FeatureAblation, Occlusion


def half_sum(x):
    return 0.5 * x.float().sum(1)


@pytest.mark.parametrize("method", ["ablation", "occlusion"])
def test_integer_inputs_are_not_truncated(method):
    # issue 18, bug 1: the attributions and the 0.5 baseline were cast to the input's int64
    x = torch.tensor([[1, 2, 3]])
    attribute = (FeatureAblation(half_sum).attribute if method == "ablation"
                 else lambda x, **kw: Occlusion(half_sum).attribute(x, sliding_window_shapes=(1,), **kw))
    assert_close(attribute(x), torch.tensor([[0.5, 1.0, 1.5]]))
    assert_close(attribute(x, baselines=0.5), torch.tensor([[0.25, 0.75, 1.25]]))


def test_occlusion_of_an_integer_output_is_a_float_average():
    x = torch.tensor([[1, 2, 3]])
    attr = Occlusion(lambda x: x.sum(1)).attribute(x, sliding_window_shapes=(2,))
    assert attr.dtype == torch.get_default_dtype()
    # windows [1, 2] and [2, 3] drop the sum by 3 and 5; the middle feature averages both
    assert_close(attr, torch.tensor([[3.0, 4.0, 5.0]]))


def test_feature_ablation_of_an_integer_output_keeps_its_dtype():
    attr = FeatureAblation(lambda x: x.sum(1)).attribute(torch.tensor([[4, -2, 7]]))
    assert attr.dtype == torch.int64
    assert attr.tolist() == [[4, -2, 7]]


def test_boolean_inputs():
    # issue 18, bug 2: boolean inputs crashed, and baselines=True was refused
    model = lambda x: 10 * x.float().sum(1)  # noqa: E731
    x = torch.tensor([[True, False, True]])
    assert_close(FeatureAblation(model).attribute(x), torch.tensor([[10.0, 0.0, 10.0]]))
    assert_close(FeatureAblation(model).attribute(x, baselines=True), torch.tensor([[0.0, -10.0, 0.0]]))


def test_the_baseline_written_into_a_boolean_input_keeps_it_boolean():
    seen = []

    def model(x):
        seen.append(x.dtype)
        return x.float().sum(1)

    FeatureAblation(model).attribute(torch.tensor([[True, False]]), baselines=True)
    assert set(seen) == {torch.bool}


def sum_of_two(a, b):
    return a.sum(1) + 2 * b.flatten(1).sum(1)


def test_two_inputs_give_two_attributions():
    a, b = torch.rand(3, 2, dtype=torch.float64), torch.rand(3, 2, 2, dtype=torch.float64)
    attr_a, attr_b = FeatureAblation(sum_of_two).attribute((a, b))
    assert_close(attr_a, a)
    assert_close(attr_b, 2 * b)
    occ_a, occ_b = Occlusion(sum_of_two).attribute((a, b), sliding_window_shapes=((1,), (1, 2)))
    assert_close(occ_a, a)
    assert_close(occ_b, 2 * b.sum(2, keepdim=True).expand_as(b))  # each (1, 2) window's drop, to both features
    (single,) = FeatureAblation(lambda a: a.sum(1)).attribute((a,))  # a 1-tuple in, a 1-tuple out
    assert_close(single, a)


def test_a_feature_id_shared_by_two_inputs_is_ablated_once_for_both():
    a, b = torch.ones(1, 2), torch.ones(1, 2)
    product = lambda a, b: a.sum(1) * b.sum(1)  # noqa: E731  f = 4; without a[0] and b[1]: 1
    attr_a, attr_b = FeatureAblation(product).attribute((a, b), feature_mask=(torch.tensor([[0, 1]]),
                                                                               torch.tensor([[2, 0]])))
    assert_close(attr_a, torch.tensor([[3.0, 2.0]]))
    assert_close(attr_b, torch.tensor([[2.0, 3.0]]))


@pytest.mark.parametrize("output", ["0-d tensor", "1-element tensor", "python float"])
def test_a_batch_level_scalar_output_is_attributed_over_the_batch(output):
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64)
    weights = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    total = {"0-d tensor": lambda x: (x * weights).sum(), "1-element tensor": lambda x: (x * weights).sum().view(1),
             "python float": lambda x: float((x * weights).sum())}[output]
    expected = (x * weights).sum(0, keepdim=True)  # (1, 3): one row for the one output value
    assert_close(FeatureAblation(total).attribute(x), expected)
    assert_close(Occlusion(total).attribute(x, sliding_window_shapes=(1,)), expected)
    assert_close(FeatureAblation(total).attribute(x[:1]), x[:1] * weights)


def test_a_batch_level_output_of_several_values_has_a_row_per_value():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    attr = FeatureAblation(lambda x: x.sum(0)).attribute(x)  # (2,) for a batch of 3
    assert_close(attr, torch.tensor([[9.0, 0.0], [0.0, 12.0]]))


def test_a_batch_level_output_cannot_be_split_over_perturbations():
    x = torch.rand(2, 3)
    with pytest.raises(ConfigError, match="'perturbations_per_eval' parameter of FeatureAblation must be 1"):
        FeatureAblation(lambda x: x.sum()).attribute(x, perturbations_per_eval=2)
    with pytest.raises(DataError, match="use perturbations_per_eval=1"):
        FeatureAblation(lambda x: x.sum().view(1)).attribute(x[:1], perturbations_per_eval=2)
    with pytest.raises(ConfigError, match="pass target=None"):
        FeatureAblation(lambda x: x.sum()).attribute(x, 0)


def test_per_example_tuple_targets_on_a_multi_dimensional_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Unflatten(1, (2, 3))).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    target = [(0, 1), (1, 2), (1, 0)]
    attr = FeatureAblation(model).attribute(x, target)
    weight = model[0].weight.detach().view(2, 3, 4)
    expected = torch.stack([x[b] * weight[i, j] for b, (i, j) in enumerate(target)])
    assert_close(attr, expected)
