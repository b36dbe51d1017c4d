"""Reptile: the interpolation, its annealing, and that adaptation leaves the model alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.data import Sinusoid, TaskBatch
from archlab.errors import ConfigError
from archlab.meta import AdaptationError
from archlab.meta.reptile import Reptile

from .helpers import assert_unchanged, classification_tasks, snapshot, tiny_mlp


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_meta_step_interpolates_toward_the_adapted_weights(optimizer):
    model = tiny_mlp()
    tasks = classification_tasks(n_tasks=1)
    support, query = tasks.task(0)
    both = {"x": torch.cat([support["x"], query["x"]]), "y": torch.cat([support["y"], query["y"]])}
    reptile = Reptile(model, inner_lr=0.1, inner_steps=3, meta_step_size=0.25, inner_optimizer=optimizer)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    phi = reptile.adapt(both)
    assert_unchanged(model, {k: v for k, v in snapshot(model).items()})
    reptile.meta_step(tasks)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[n] + 0.25 * (phi[n] - theta[n]), rtol=0, atol=1e-12)


def test_sgd_inner_loop_is_torch_sgd():
    model = tiny_mlp()
    tasks = classification_tasks(n_tasks=1)
    support, _ = tasks.task(0)
    phi = Reptile(model, inner_lr=0.2, inner_steps=4, inner_optimizer="sgd").adapt(support)
    import copy

    learner = copy.deepcopy(model)
    opt = torch.optim.SGD(learner.parameters(), lr=0.2)
    for _ in range(4):
        opt.zero_grad()
        F.cross_entropy(learner(support["x"]), support["y"]).backward()
        opt.step()
    torch.testing.assert_close(phi, dict(learner.named_parameters()), rtol=0, atol=1e-12)


def test_adam_inner_loop_is_torch_adam_with_beta1_zero():
    model = tiny_mlp()
    support, _ = classification_tasks(n_tasks=1).task(0)
    phi = Reptile(model, inner_lr=0.01, inner_steps=4, inner_optimizer="adam").adapt(support)
    import copy

    learner = copy.deepcopy(model)
    opt = torch.optim.Adam(learner.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-8)
    for _ in range(4):
        opt.zero_grad()
        F.cross_entropy(learner(support["x"]), support["y"]).backward()
        opt.step()
    torch.testing.assert_close(phi, dict(learner.named_parameters()), rtol=0, atol=1e-10)


def test_meta_step_size_is_annealed_linearly():
    reptile = Reptile(tiny_mlp(), meta_step_size=1.0, meta_step_size_final=0.1, total_iterations=10)
    assert reptile.step_size_at(0) == 1.0
    assert reptile.step_size_at(5) == pytest.approx(0.55)
    assert reptile.step_size_at(10) == pytest.approx(0.1)
    assert reptile.step_size_at(50) == pytest.approx(0.1)
    assert Reptile(tiny_mlp(), meta_step_size=0.3).step_size_at(1000) == 0.3


def test_reptile_learns_sinusoids():
    torch.manual_seed(0)
    import archlab

    model = archlab.create_model("mlp", in_features=1, num_classes=1, hidden_dims=[32, 32])
    reptile = Reptile(model, inner_lr=0.02, inner_steps=5, meta_step_size=0.5, inner_optimizer="sgd",
                      kind="regression", total_iterations=300)
    sampler = Sinusoid(shots=10, query=10)
    before = reptile.evaluate(sampler, 50, [5], seed=1)["mse_step5"]
    g = torch.Generator().manual_seed(0)
    for i in range(300):
        reptile.meta_step(sampler.sample(4, g), iteration=i)
    assert reptile.evaluate(sampler, 50, [5], seed=1)["mse_step5"] < 0.7 * before


def test_non_finite_inner_loss_leaves_the_model_unchanged():
    model = tiny_mlp()
    tasks = classification_tasks()
    x = tasks.query_x.clone()
    x[2, 3, 1] = float("nan")
    before = snapshot(model)
    with pytest.raises(AdaptationError, match="inner step 1 of 2 on task 2"):
        Reptile(model, inner_steps=2).meta_step(TaskBatch(tasks.support_x, tasks.support_y, x, tasks.query_y))
    assert_unchanged(model, before)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="'inner_optimizer' parameter of Reptile must be one of"):
        Reptile(tiny_mlp(), inner_optimizer="rmsprop")
    with pytest.raises(ConfigError, match=r"The 'meta_step_size' parameter of Reptile must be a float in \[0, 1\]\. Got 2 instead\."):
        Reptile(tiny_mlp(), meta_step_size=2)
    with pytest.raises(ValueError, match="0 trainable"):
        Reptile(tiny_mlp().requires_grad_(False))
