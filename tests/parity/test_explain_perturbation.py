"""Perturbation attributions against Captum 0.9 and permutation importance against scikit-learn, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum import attr as captum
from captum.attr._core import feature_ablation as captum_feature_ablation
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from torch.testing import assert_close

from archlab.explain import FeatureAblation, Occlusion, permutation_importance

from ..explain.helpers import mnist_cnn, mnist_test, wine_mlp

EXACT = {"atol": 1e-8, "rtol": 0.0}


@pytest.fixture(scope="module")
def cnn():
    x, y = mnist_test(4, torch.float64)
    return mnist_cnn(torch.float64), x, y


@pytest.fixture(scope="module")
def mlp():
    model, x, y = wine_mlp(torch.float64)
    return model, x, y


@pytest.fixture
def captum_occlusion_in_float64(monkeypatch):
    """Captum 0.9 casts Occlusion's result to float32 (`single_attrib.float() / weight`); this
    keeps its float64 sums so the algorithms can be compared to 1e-8."""
    def format_result(total_attrib, weights, is_inputs_tuple, use_weights):
        attrib = tuple(a / w.to(a.dtype) for a, w in zip(total_attrib, weights)) if use_weights else tuple(total_attrib)
        return attrib if is_inputs_tuple else attrib[0]

    monkeypatch.setattr(captum_feature_ablation, "format_result", format_result)


@pytest.mark.parametrize("window,strides,baselines", [
    ((1, 5, 5), (1, 3, 3), None),  # overlapping windows, the last one clipped at the border
    ((1, 4, 4), (1, 4, 4), 0.5),  # a tiling
    ((1, 3, 7), (1, 2, 7), "mean"),
])
def test_occlusion_matches_captum(window, strides, baselines, cnn, captum_occlusion_in_float64):
    model, x, y = cnn
    if baselines == "mean":
        baselines = x.mean(0, keepdim=True)
    ours = Occlusion(model).attribute(x, y, sliding_window_shapes=window, strides=strides, baselines=baselines)
    theirs = captum.Occlusion(model).attribute(x, target=y, sliding_window_shapes=window, strides=strides,
                                               baselines=baselines, perturbations_per_eval=16)
    assert theirs.dtype == torch.float64
    assert_close(ours, theirs, **EXACT)


def test_occlusion_matches_captum_float32_output(cnn):
    model, x, y = cnn
    ours = Occlusion(model).attribute(x, y, sliding_window_shapes=(1, 6, 6), strides=(1, 4, 4))
    theirs = captum.Occlusion(model).attribute(x, target=y, sliding_window_shapes=(1, 6, 6), strides=(1, 4, 4))
    assert_close(ours.float(), theirs, atol=1e-6, rtol=1e-6)


def test_occlusion_on_a_table_matches_captum(mlp, captum_occlusion_in_float64):
    model, x, y = mlp
    ours = Occlusion(model).attribute(x, y, sliding_window_shapes=3, strides=2)
    theirs = captum.Occlusion(model).attribute(x, target=y, sliding_window_shapes=(3,), strides=2)
    assert_close(ours, theirs, **EXACT)


@pytest.mark.parametrize("grouped", [False, True])
def test_feature_ablation_matches_captum_on_a_table(grouped, mlp):
    model, x, y = mlp
    mask = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]) if grouped else None
    baselines = x.mean(0, keepdim=True)
    ours = FeatureAblation(model).attribute(x, y, baselines=baselines, feature_mask=mask)
    theirs = captum.FeatureAblation(model).attribute(x, target=y, baselines=baselines,
                                                     feature_mask=None if mask is None else mask[None])
    assert_close(ours, theirs, **EXACT)


def test_feature_ablation_matches_captum_on_images(cnn):
    model, x, y = cnn
    # 7x7 superpixels: 16 features per image
    mask = (torch.arange(28)[:, None] // 7 * 4 + torch.arange(28)[None, :] // 7)[None, None]
    ours = FeatureAblation(model).attribute(x, y, feature_mask=mask)
    theirs = captum.FeatureAblation(model).attribute(x, target=y, feature_mask=mask)
    assert_close(ours, theirs, **EXACT)
    pixels = FeatureAblation(model).attribute(x[:1], y[:1])
    assert_close(pixels, captum.FeatureAblation(model).attribute(x[:1], target=y[:1], perturbations_per_eval=64),
                 **EXACT)


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A trained torch classifier seen by scikit-learn (predicts the argmax of its logits)."""

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        with torch.no_grad():
            return self.model(torch.as_tensor(X)).argmax(1).numpy()


@pytest.mark.parametrize("random_state", [0, 7])
def test_permutation_importance_equals_scikit_learn(random_state, mlp):
    model, x, y = mlp
    estimator = TorchClassifier(model).fit(x.numpy(), y.numpy())
    theirs = sklearn_permutation_importance(estimator, x.numpy(), y.numpy(), n_repeats=6, random_state=random_state)
    ours = permutation_importance(model, x, y, n_repeats=6, random_state=random_state)
    np.testing.assert_array_equal(ours.importances, theirs.importances)
    np.testing.assert_array_equal(ours.importances_mean, theirs.importances_mean)
    np.testing.assert_array_equal(ours.importances_std, theirs.importances_std)
    assert ours.importances.std() > 0  # the shuffles do change the score
