"""GradientShap, DeepLift, KernelShap and Lime: the maths they promise, seeding, and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from archlab.errors import ConfigError
from archlab.explain import DeepLift, GradientShap
from archlab.explain.integrated_gradients import CPU_CHUNK_ELEMENTS


class Functional(nn.Module):
    """Nonlinearities in every call form: functional, Tensor methods, in place, modules, max pooling."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 8)
        self.out = nn.Linear(8, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.act(self.conv(x))
        h = F.max_pool2d(F.gelu(self.conv2(h)), 2)
        h = torch.sigmoid(self.fc(h.flatten(1)))
        h = F.leaky_relu(h * 3 - 1, 0.1).tanh()
        return self.out(F.silu(h).relu_())


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Functional().double().eval()


@pytest.mark.parametrize("baselines", [None, 0.25, "per-example"])
def test_deep_lift_sums_to_the_change_of_the_output(model, baselines):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, 8, 8, generator=g, dtype=torch.float64)
    if baselines == "per-example":
        baselines = torch.randn(5, 2, 8, 8, generator=g, dtype=torch.float64)
    attr, delta = DeepLift(model).attribute(x, 1, baselines=baselines, return_convergence_delta=True)
    assert attr.shape == x.shape
    assert delta.abs().max() < 1e-12
    with torch.no_grad():
        reference = torch.zeros_like(x) if baselines is None else torch.as_tensor(baselines, dtype=x.dtype)
        change = model(x)[:, 1] - model(reference.expand_as(x))[:, 1]
    assert_close(attr.flatten(1).sum(1), change, atol=1e-12, rtol=0.0)


def test_deep_lift_of_a_linear_model_is_its_exact_decomposition():
    torch.manual_seed(0)
    linear = nn.Linear(6, 2).double()
    x, x0 = torch.randn(3, 6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    attr = DeepLift(linear).attribute(x, 0, baselines=x0)
    assert_close(attr, (x - x0) * linear.weight[0].detach(), atol=1e-14, rtol=0.0)


def test_deep_lift_tuple_inputs_and_forward_args():
    torch.manual_seed(0)
    a, b = nn.Linear(3, 4).double(), nn.Linear(2, 4).double()

    def forward(x, y, scale):
        return (F.relu(a(x)) * scale[:, None] + torch.tanh(b(y))).sum(1)

    x, y, scale = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64), torch.rand(4).double()
    (ax, ay), delta = DeepLift(forward).attribute((x, y), baselines=(0.1, 0.0), additional_forward_args=(scale,),
                                                  return_convergence_delta=True)
    assert ax.shape == x.shape and ay.shape == y.shape
    assert delta.abs().max() < 1e-12


def test_deep_lift_refuses_data_dependent_control_flow():
    def forward(x):
        return F.relu(F.relu(x)).sum(1) if x.sum() > 0 else F.relu(x).sum(1)

    with pytest.raises(ConfigError, match="same nonlinearity calls"):
        DeepLift(forward).attribute(torch.ones(2, 3), baselines=-1.0)


def test_deep_lift_handles_a_model_that_folds_the_batch():
    torch.manual_seed(0)
    layer = nn.Linear(4, 4)

    def forward(x):  # (B, T, 4) -> (B * T, 4) through the nonlinearity
        b, t, d = x.shape
        return F.relu(layer(x.reshape(b * t, d))).view(b, t, d).sum((1, 2))

    x = torch.randn(3, 5, 4, dtype=torch.float64)
    layer.double()
    _, delta = DeepLift(forward).attribute(x, baselines=0.5, return_convergence_delta=True)
    assert delta.abs().max() < 1e-12


def test_gradient_shap_expectation_meets_completeness_on_one_baseline():
    """With one baseline and no noise the expectation over the path point is IG: E[sum a] = f(x) - f(x')."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    x, x0 = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    n = 4000
    attr, delta = GradientShap(model).attribute(x, baselines=x0, n_samples=n, return_convergence_delta=True, seed=1)
    with torch.no_grad():
        change = (model(x) - model(x0[None])).squeeze(1)
    total = attr.sum(1)
    # delta holds each draw's error: its spread gives the Monte-Carlo standard error of the mean
    per_draw = delta.view(3, n) + change[:, None]
    standard_error = per_draw.std(1) / n ** 0.5
    assert ((total - change).abs() < 4 * standard_error + 1e-12).all()
    assert_close(total, per_draw.mean(1), atol=1e-12, rtol=0.0)


def test_gradient_shap_is_seeded_and_independent_of_the_pass_size():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, references = torch.randn(5, 4), torch.randn(10, 4)
    shap = GradientShap(model)
    first = shap.attribute(x, 2, baselines=references, n_samples=7, stdevs=0.1, seed=3)
    assert_close(shap.attribute(x, 2, baselines=references, n_samples=7, stdevs=0.1, seed=3, internal_batch_size=4),
                 first)
    assert not torch.equal(shap.attribute(x, 2, baselines=references, n_samples=7, stdevs=0.1, seed=4), first)
    generator = torch.Generator().manual_seed(3)
    assert_close(shap.attribute(x, 2, baselines=references, n_samples=7, stdevs=0.1, generator=generator), first)


def test_gradient_shap_passes_are_sized_by_one_example_not_by_the_draws():
    """On CPU the B * n_samples rows go in equal passes of at most CPU_CHUNK_ELEMENTS input values (not all
    at once), with the same result as one pass."""
    linear = nn.Linear(1000, 2)
    sizes = []

    def forward(x):
        sizes.append(x.shape[0])
        return linear(x)

    x = torch.randn(4, 1000)
    attr = GradientShap(forward).attribute(x, 1, n_samples=100, stdevs=0.1)
    limit = CPU_CHUNK_ELEMENTS // 1000
    passes = -(-400 // limit)
    assert passes > 1 and len(sizes) == passes and sum(sizes) == 400
    assert max(sizes) <= limit and max(sizes) - min(sizes) < passes
    assert_close(GradientShap(forward).attribute(x, 1, n_samples=100, stdevs=0.1, internal_batch_size=400), attr)


@pytest.mark.parametrize("kwargs,message", [
    ({"baselines": torch.zeros(3, 5)}, "distribution of reference examples of shape"),
    ({"n_samples": 0}, "'n_samples' parameter of GradientShap must be an int >= 1"),
    ({"stdevs": -1.0}, "'stdevs' parameter of GradientShap"),
])
def test_gradient_shap_bad_input(kwargs, message):
    model = nn.Linear(4, 2)
    with pytest.raises(ConfigError, match=message):
        GradientShap(model).attribute(torch.randn(2, 4), 0, **kwargs)


def test_surrogates_of_a_linear_model_recover_its_weights():
    """A linear model is fitted exactly: each feature group gets the sum of w_i (x_i - b_i) over its elements."""
    from archlab.explain import KernelShap, Lime

    torch.manual_seed(0)
    linear = nn.Linear(6, 2).double()
    x, b = torch.randn(3, 6, dtype=torch.float64), torch.randn(1, 6, dtype=torch.float64)
    mask = torch.tensor([0, 0, 1, 2, 2, 3])
    with torch.no_grad():
        contribution = (x - b) * linear.weight[1]
    expected = torch.zeros(3, 4, dtype=torch.float64).index_add_(1, mask, contribution)
    for method in (KernelShap(linear), Lime(linear, interpretable_model="linear")):
        coefficients = method.attribute(x, 1, baselines=b, feature_mask=mask, n_samples=30, return_input_shape=False)
        assert_close(coefficients, expected, atol=1e-8, rtol=0.0)
        spread = method.attribute(x, 1, baselines=b, feature_mask=mask, n_samples=30)
        assert_close(spread, expected[:, mask], atol=1e-8, rtol=0.0)


def exact_shapley(f, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Shapley values of the features of one example x (M,) against baseline b, by enumerating coalitions."""
    import itertools
    import math

    m = x.numel()
    values = torch.zeros(m, dtype=torch.float64)
    for j in range(m):
        others = [i for i in range(m) if i != j]
        for size in range(m):
            for coalition in itertools.combinations(others, size):
                on = torch.zeros(m, dtype=torch.bool)
                on[list(coalition)] = True
                without = torch.where(on, x, b)
                on[j] = True
                weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
                values[j] += weight * (f(torch.where(on, x, b)) - f(without))
    return values


def test_kernel_shap_converges_to_the_shapley_values_and_sums_to_the_change():
    from archlab.explain import KernelShap

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x, b = torch.randn(2, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    attr = KernelShap(model).attribute(x, baselines=b, n_samples=3000, seed=0)
    with torch.no_grad():
        for row, example in zip(attr, x):
            exact = exact_shapley(lambda v: model(v[None])[0, 0], example, b)
            assert_close(row, exact, atol=2e-2, rtol=0.0)
            change = model(example[None])[0, 0] - model(b[None])[0, 0]
            assert abs(float(row.sum() - change)) < 1e-4  # the full and empty coalitions' weight 1e6


def test_surrogates_are_seeded():
    from archlab.explain import KernelShap, Lime

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(2, 5)
    for method in (KernelShap(model), Lime(model)):
        first = method.attribute(x, 0, n_samples=40, seed=1)
        assert_close(method.attribute(x, 0, n_samples=40, seed=1, perturbations_per_eval=3), first)
        assert not torch.equal(method.attribute(x, 0, n_samples=40, seed=2), first)
        generator = torch.Generator().manual_seed(1)
        assert torch.equal(method.attribute(x, 0, n_samples=40, generator=generator), first)


def test_kernel_shap_warns_with_more_features_than_samples():
    from archlab.explain import KernelShap

    model = nn.Linear(30, 2)
    with pytest.warns(UserWarning, match="30 features but only 25 samples"):
        KernelShap(model).attribute(torch.randn(1, 30), 0)


@pytest.mark.parametrize("make,kwargs,message", [
    (lambda m: __import__("archlab.explain", fromlist=["Lime"]).Lime(m, interpretable_model="ridge"), {},
     "'interpretable_model' parameter of Lime"),
    (lambda m: __import__("archlab.explain", fromlist=["Lime"]).Lime(m, kernel_width=0.0), {},
     "'kernel_width' parameter of Lime"),
    (lambda m: __import__("archlab.explain", fromlist=["KernelShap"]).KernelShap(m),
     {"feature_mask": torch.zeros(4)}, "feature_mask must be an integer tensor"),
    (lambda m: __import__("archlab.explain", fromlist=["KernelShap"]).KernelShap(m), {"n_samples": 0},
     "'n_samples' parameter of KernelShap must be an int >= 1"),
])
def test_surrogate_bad_input(make, kwargs, message):
    model = nn.Linear(4, 2)
    with pytest.raises(ConfigError, match=message):
        make(model).attribute(torch.randn(2, 4), 0, **kwargs)
