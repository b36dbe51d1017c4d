"""The issue's targets on a briefly trained MNIST CNN (100 test images): IG completeness, the
model-randomization sanity check, and IG's deletion AUC against a random ordering."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIG

from archlab.explain import (IntegratedGradients, Saliency, completeness_error, deletion_curve,
                             model_randomization_check)

from .helpers import mnist_cnn, mnist_test

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cnn():
    x, y = mnist_test(100, torch.float64)
    return mnist_cnn(torch.float64), x, y


def test_integrated_gradients_completeness_on_mnist(cnn):
    model, x, y = cnn
    attr, delta = IntegratedGradients(model).attribute(x, y, n_steps=50, return_convergence_delta=True)
    _, their_delta = CaptumIG(model).attribute(x, target=y, n_steps=50, return_convergence_delta=True)
    relative = completeness_error(model, x, attr, y)
    assert relative.median() <= 0.01
    assert relative.max() <= 0.05
    torch.testing.assert_close(delta, their_delta, atol=1e-7, rtol=0.0)


def test_saliency_fails_to_survive_full_randomization(cnn):
    model, x, y = cnn
    steps = model_randomization_check(model, lambda m: Saliency(m).attribute(x, y), seed=0)
    assert steps[-1].spearman < 0.3


def test_integrated_gradients_deletes_faster_than_random(cnn):
    model, x, _ = cnn
    with torch.no_grad():
        predicted = model(x).argmax(1)
    attr = IntegratedGradients(model).attribute(x, predicted, n_steps=50)
    random_order = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    assert deletion_curve(model, x, attr, predicted).mean_auc < deletion_curve(model, x, random_order,
                                                                               predicted).mean_auc
