"""Completeness, deletion/insertion curves, the randomization sanity check and permutation importance."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.testing import assert_close

from archlab.explain import (FeatureAblation, IntegratedGradients, Occlusion, Saliency, completeness_error,
                             deletion_curve, insertion_curve, model_randomization_check, permutation_importance,
                             spearman)


def linear_model(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(8, 3).double()


def test_perturbation_methods_on_a_linear_model():
    model = linear_model()
    x, b = torch.randn(4, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    expected = (x - b) * model.weight[1].detach()
    assert_close(FeatureAblation(model).attribute(x, 1, baselines=b), expected)
    assert_close(Occlusion(model).attribute(x, 1, baselines=b, sliding_window_shapes=1), expected)
    # a window of 3 with stride 1 credits each feature the mean effect of the windows covering it
    wide = Occlusion(model).attribute(x, 1, baselines=b, sliding_window_shapes=3, perturbations_per_eval=2)
    windows = [range(s, s + 3) for s in range(6)]
    manual = torch.stack([torch.stack([expected[:, list(w)].sum(1) for w in windows if i in w]).mean(0)
                          for i in range(8)], 1)
    assert_close(wide, manual)
    grouped = FeatureAblation(model).attribute(x, 1, baselines=b, feature_mask=torch.tensor([0, 0, 1, 1, 1, 2, 2, 2]))
    assert_close(grouped[:, 0], expected[:, :2].sum(1))


def test_completeness_error_of_integrated_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x = torch.randn(5, 8, dtype=torch.float64)
    attr = IntegratedGradients(model).attribute(x, 2, n_steps=50)
    assert completeness_error(model, x, attr, 2).max() < 1e-8
    coarse = IntegratedGradients(model).attribute(x, 2, n_steps=2, method="riemann_left")
    assert completeness_error(model, x, coarse, 2).max() > 1e-3


def test_deletion_and_insertion_curves_follow_the_ranking():
    # a model whose class-0 logit is the sum of the first 4 features: deleting them first is optimal
    model = nn.Linear(8, 2, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, :4] = 1.0
    x = torch.ones(3, 8, dtype=torch.float64)
    good = torch.tensor([[4, 3, 2, 1, 0, 0, 0, 0]], dtype=torch.float64).expand(3, -1)
    bad = good.flip(1)
    d_good = deletion_curve(model, x, good, 0, steps=8, probability=False)
    d_bad = deletion_curve(model, x, bad, 0, steps=8, probability=False)
    assert_close(d_good.scores[0], torch.tensor([4, 3, 2, 1, 0, 0, 0, 0, 0], dtype=torch.float64))
    assert_close(d_good.fractions, torch.arange(9, dtype=torch.float64) / 8)
    assert d_good.mean_auc < d_bad.mean_auc
    assert d_good.auc[0].item() == pytest.approx(np.trapezoid([4, 3, 2, 1, 0, 0, 0, 0, 0], dx=1 / 8))
    i_good = insertion_curve(model, x, good, 0, steps=8)
    i_bad = insertion_curve(model, x, bad, 0, steps=8)
    assert i_good.mean_auc > i_bad.mean_auc
    assert ((i_good.scores >= 0) & (i_good.scores <= 1)).all()  # softmax probabilities
    chunked = deletion_curve(model, x, good, 0, steps=8, probability=False, batch_size=4)
    assert_close(chunked.scores, d_good.scores)


def test_deletion_curve_takes_a_map_per_pixel_for_several_channels():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).double()
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    curve = deletion_curve(model, x, torch.rand(2, 1, 4, 4, dtype=torch.float64), [0, 1], steps=16)
    assert curve.scores.shape == (2, 17)
    with torch.no_grad():
        assert_close(curve.scores[:, -1], torch.softmax(model(torch.zeros_like(x)), 1)[[0, 1], [0, 1]])


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (3, 40), generator=g).double()
    b = a + torch.randn(3, 40, generator=g, dtype=torch.float64)
    ours = spearman(a, b)
    for i in range(3):
        assert ours[i].item() == pytest.approx(spearmanr(a[i], b[i]).statistic, abs=1e-12)


def test_model_randomization_check_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(10, 6, dtype=torch.float64)
    steps = model_randomization_check(model, lambda m: Saliency(m).attribute(x, 0), seed=1)
    assert [s.layer for s in steps] == ["4", "2", "0"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    again = model_randomization_check(model, lambda m: Saliency(m).attribute(x, 0), seed=1)
    assert [s.spearman for s in steps] == [s.spearman for s in again]
    assert steps[-1].spearman < 0.9
    assert steps[0].spearman_per_example.shape == (10,)


def test_permutation_importance_of_an_ignored_feature_is_zero():
    model = nn.Linear(4, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0, 0.0, 0.0], [-3.0, 0.0, 0.0, 0.1]]))
        model.bias.zero_()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, generator=g, dtype=torch.float64)
    y = (x[:, 0] < 0).long()  # the model's rule
    result = permutation_importance(model, x, y, n_repeats=4, random_state=0)
    assert result.baseline_score == pytest.approx(1.0, abs=0.02)
    assert result.importances.shape == (4, 4)
    assert result.ranking()[0] == 0
    assert result.importances_mean[0] > 0.3
    np.testing.assert_array_equal(result.importances[1:3], 0.0)
    loss = permutation_importance(model, x, y, n_repeats=2, random_state=0, scoring="neg_log_loss")
    assert loss.importances_mean[0] > loss.importances_mean[1]
