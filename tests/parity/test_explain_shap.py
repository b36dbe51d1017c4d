"""GradientShap, DeepLift, KernelShap and Lime against Captum 0.9, in float64, given the same random draws."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum import attr as captum
from torch import nn
from torch.testing import assert_close

from archlab.explain import DeepLift, GradientShap
from archlab.explain.gradient_shap import GradientShapDraws

from ..explain.helpers import wine_mlp

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
EXACT = {"atol": 1e-8, "rtol": 0.0}


@pytest.fixture(scope="module")
def mlp():
    model, x, y = wine_mlp(torch.float64)
    return model, x[:8], y[:8]


def small_cnn() -> nn.Module:
    """Conv -> ReLU -> conv -> max pool -> linear -> tanh -> linear: no two nonlinear modules in a row,
    the models on which Captum's module hooks give the rescale rule."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 16), nn.Tanh(), nn.Linear(16, 5)).double().eval()


def captum_gradient_shap_draws(seed: int, references: int, rows: int, shape: tuple, stdev: float) -> GradientShapDraws:
    """The draws Captum 0.9 makes after ``np.random.seed(seed); torch.manual_seed(seed)``, in its order:
    baseline indices (NumPy), the noise (``torch.normal``), then the path points (NumPy)."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    index = torch.tensor(np.random.choice(references, rows))
    noise = torch.normal(0, torch.tensor(stdev).repeat((rows, *shape)))
    alphas = torch.tensor(np.random.uniform(0.0, 1.0, rows))
    return GradientShapDraws((index,), (noise,), alphas)


@pytest.mark.parametrize("which", ["mlp", "cnn"])
@pytest.mark.parametrize("stdev", [0.0, 0.2])
def test_gradient_shap_matches_captum_given_its_draws(which, stdev, mlp):
    if which == "mlp":
        model, x, y = mlp
    else:
        model, g = small_cnn(), torch.Generator().manual_seed(1)
        x, y = torch.rand(4, 1, 8, 8, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 4])
    references = x[:3] * 0.5
    n = 6
    np.random.seed(3)
    torch.manual_seed(3)
    theirs, their_delta = captum.GradientShap(model).attribute(x, references, n_samples=n, stdevs=stdev, target=y,
                                                               return_convergence_delta=True)
    explainer = GradientShap(model)
    draws = captum_gradient_shap_draws(3, len(references), len(x) * n, tuple(x.shape[1:]), stdev)
    explainer.draw = lambda *args: draws
    ours, delta = explainer.attribute(x, y, baselines=references, n_samples=n, stdevs=stdev,
                                      internal_batch_size=5, return_convergence_delta=True)
    assert_close(ours, theirs, atol=1e-6, rtol=0.0)
    assert_close(delta, their_delta, atol=1e-6, rtol=0.0)


def test_deep_lift_matches_captum_on_an_mlp(mlp):
    model, x, y = mlp
    for baselines in (None, x.mean(0, keepdim=True), x.flip(0)):
        theirs, their_delta = captum.DeepLift(model).attribute(x, baselines, target=y, return_convergence_delta=True)
        ours, delta = DeepLift(model).attribute(x, y, baselines=baselines, return_convergence_delta=True)
        assert_close(ours, theirs, **EXACT)
        assert_close(delta, their_delta, **EXACT)


def test_deep_lift_matches_captum_on_a_cnn_with_max_pooling():
    model, g = small_cnn(), torch.Generator().manual_seed(2)
    x = torch.rand(5, 1, 8, 8, generator=g, dtype=torch.float64)
    for baselines in (None, 0.5, torch.rand(5, 1, 8, 8, generator=g, dtype=torch.float64)):
        theirs = captum.DeepLift(model).attribute(x, baselines, target=3)
        assert_close(DeepLift(model).attribute(x, 3, baselines=baselines), theirs, **EXACT)


class Reused(nn.Module):
    """One ReLU module applied twice, then a functional ReLU (or functional ReLUs only): the cases
    Captum's per-module hooks get wrong."""

    def __init__(self, functional_only: bool = False):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = nn.Linear(5, 7), nn.Linear(7, 6), nn.Linear(6, 4), nn.Linear(4, 3)
        self.relu = F.relu if functional_only else nn.ReLU()

    def forward(self, x):
        h = self.relu(self.fc1(x))
        h = self.relu(self.fc2(h))
        return self.fc4(F.relu(self.fc3(h)))


def rescale_rule(model: Reused, x: torch.Tensor, x0: torch.Tensor, target: int) -> torch.Tensor:
    """DeepLift's attributions written out: multipliers m = (relu(z) - relu(z0)) / (z - z0) per layer,
    chained backwards through the weights."""
    layers = [model.fc1, model.fc2, model.fc3]
    h, h0, multipliers = x, x0, []
    for layer in layers:
        z, z0 = layer(h), layer(h0)
        multipliers.append((z.relu() - z0.relu()) / (z - z0))
        h, h0 = z.relu(), z0.relu()
    grad = model.fc4.weight[target].expand(len(x), -1)
    for layer, m in zip(reversed(layers), reversed(multipliers)):
        grad = (grad * m) @ layer.weight
    return (x - x0) * grad


@pytest.mark.parametrize("functional_only", [False, True])
def test_deep_lift_gives_each_call_its_own_multiplier_where_captum_does_not(functional_only):
    torch.manual_seed(0)
    model = Reused(functional_only).double().eval()
    x, x0 = torch.randn(6, 5, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)
    ours, delta = DeepLift(model).attribute(x, 2, baselines=x0, return_convergence_delta=True)
    with torch.no_grad():
        expected = rescale_rule(model, x, x0.expand_as(x), 2)
    assert_close(ours, expected, atol=1e-12, rtol=0.0)
    assert delta.abs().max() < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not functional_only:  # Captum 0.9 refuses the module it sees twice
            with pytest.raises(RuntimeError, match="used more than once"):
                captum.DeepLift(model).attribute(x, x0, target=2)
            return
        theirs = captum.DeepLift(model).attribute(x, x0, target=2)  # F.relu unseen: its plain gradient
    assert (theirs - expected).abs().max() > 1e-2 * expected.abs().max()


def test_deep_lift_counts_adjacent_nonlinearities_right():
    """ReLU straight into max pooling: completeness holds for archlab; Captum's adjacent hooks break it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(48, 2)).double().eval()
    x, x0 = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.randn(4, 1, 8, 8, dtype=torch.float64)
    _, delta = DeepLift(model).attribute(x, 1, baselines=x0, return_convergence_delta=True)
    _, their_delta = captum.DeepLift(model).attribute(x, x0, target=1, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12 and their_delta.abs().max() > 1e-3


@pytest.fixture
def captum_surrogates_in_float64(monkeypatch):
    """Captum 0.9 casts the outputs, the weights and the distances of Lime and KernelShap to float32
    (`.float()`) before fitting; this keeps float64 tensors as they are during the call, so the
    algorithms can be compared (its result is still returned in float32)."""
    original = torch.Tensor.float
    monkeypatch.setattr(torch.Tensor, "float", lambda self, *args, **kwargs: self if self.dtype == torch.float64
                        else original(self, *args, **kwargs))


def feed(samples: torch.Tensor):
    """A Captum perturbation generator yielding archlab's draws: example after example, one row at a time."""
    examples = iter(samples)

    def perturb(original_inputs, **kwargs):
        for row in next(examples):
            yield row[None].long()

    return perturb


def surrogate_case(which: str, mlp):
    if which == "mlp":
        model, x, y = mlp
        return model, x[:3], y[:3], torch.tensor([[0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7]]), x.mean(0, keepdim=True)
    model, g = small_cnn(), torch.Generator().manual_seed(4)
    x = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
    patches = (torch.arange(8)[:, None] // 2 * 4 + torch.arange(8)[None] // 2)[None]  # 16 patches of 2 x 2
    return model, x, torch.tensor([1, 3]), patches, 0.25


@pytest.mark.parametrize("which", ["mlp", "cnn"])
@pytest.mark.parametrize("surrogate", ["lasso", "linear"])
def test_lime_matches_captum_given_the_same_samples(which, surrogate, mlp, captum_surrogates_in_float64):
    from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression

    from archlab.explain import Lime

    model, x, y, mask, baselines = surrogate_case(which, mlp)
    n = 60
    lime = Lime(model, interpretable_model=surrogate, alpha=0.01)
    ours = lime.attribute(x, y, baselines=baselines, feature_mask=mask, n_samples=n, seed=5)
    features = int(mask.max()) + 1
    samples = lime.draw_samples(len(x), n, features, torch.Generator().manual_seed(5))
    fitted = SkLearnLasso(alpha=0.01, tol=1e-9, max_iter=100_000) if surrogate == "lasso" else \
        SkLearnLinearRegression()
    theirs = captum.Lime(model, interpretable_model=fitted, perturb_func=feed(samples)).attribute(
        x, baselines, target=y, feature_mask=mask, n_samples=n)
    assert_close(ours, theirs.double(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_kernel_shap_matches_captum_given_the_same_samples(which, mlp, captum_surrogates_in_float64):
    from archlab.explain import KernelShap

    model, x, y, mask, baselines = surrogate_case(which, mlp)
    n = 40
    shap = KernelShap(model)
    ours = shap.attribute(x, y, baselines=baselines, feature_mask=mask, n_samples=n, seed=6)
    samples = shap.draw_samples(len(x), n, int(mask.max()) + 1, torch.Generator().manual_seed(6))
    theirs_method = captum.KernelShap(model)
    theirs_method.perturb_func = feed(samples)
    theirs = theirs_method.attribute(x, baselines, target=y, feature_mask=mask, n_samples=n)
    assert_close(ours, theirs.double(), atol=1e-6, rtol=1e-6)
