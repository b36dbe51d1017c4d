"""The maths of MAML: meta-gradients against independent references, in float64."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from archlab.errors import ConfigError
from archlab.meta import MAML, AdaptationError

from .helpers import (
    assert_unchanged, classification_tasks, grads_of, meta_gradient, snapshot, tiny_cnn, tiny_mlp,
)


def learn2learn_reference(model, tasks, inner_lr, steps):
    """learn2learn's method: clone the parameters, autograd.grad(create_graph=True), step, per task."""
    names = [n for n, _ in model.named_parameters()]
    total = 0.0
    for i in range(len(tasks)):
        support, query = tasks.task(i)
        params = {n: p.clone() for n, p in model.named_parameters()}
        for _ in range(steps):
            loss = F.cross_entropy(functional_call(model, params, (support["x"],)), support["y"])
            grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
            params = {n: params[n] - inner_lr * g for n, g in zip(names, grads)}
        total = total + F.cross_entropy(functional_call(model, params, (query["x"],)), query["y"]) / len(tasks)
    grads = torch.autograd.grad(total, list(model.parameters()))
    return dict(zip(names, grads))


@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
def test_zero_inner_steps_gives_the_plain_gradient(make):
    model = make()
    tasks = classification_tasks(shape=(4,) if make is tiny_mlp else (1, 8, 8))
    got = meta_gradient(MAML(model, inner_lr=0.5, inner_steps=0), tasks)
    model.zero_grad()
    loss = sum(F.cross_entropy(model(tasks.query_x[i]), tasks.query_y[i]) for i in range(len(tasks))) / len(tasks)
    loss.backward()
    torch.testing.assert_close(got, grads_of(model), rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
def test_first_order_gradient_is_the_query_gradient_at_the_adapted_parameters(make):
    model = make()
    tasks = classification_tasks(shape=(4,) if make is tiny_mlp else (1, 8, 8))
    got = meta_gradient(MAML(model, inner_lr=0.3, inner_steps=3, first_order=True), tasks)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(tasks)):
        learner = copy.deepcopy(model)  # adapt a real copy with torch's own SGD
        opt = torch.optim.SGD(learner.parameters(), lr=0.3)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(learner(tasks.support_x[i]), tasks.support_y[i]).backward()
            opt.step()
        learner.zero_grad()
        F.cross_entropy(learner(tasks.query_x[i]), tasks.query_y[i]).backward()
        for n, p in learner.named_parameters():
            expected[n] += p.grad / len(tasks)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_gradient_matches_explicit_autograd_loop(make, steps):
    model = make()
    tasks = classification_tasks(shape=(4,) if make is tiny_mlp else (1, 8, 8))
    got = meta_gradient(MAML(model, inner_lr=0.3, inner_steps=steps), tasks)
    expected = learn2learn_reference(model, tasks, 0.3, steps)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)
    # ...and it is not the first-order gradient (the second-order terms are there)
    first = meta_gradient(MAML(model, inner_lr=0.3, inner_steps=steps, first_order=True), tasks)
    assert max((got[n] - first[n]).abs().max().item() for n in got) > 1e-4


def test_second_order_gradient_matches_finite_differences():
    model = tiny_mlp()
    tasks = classification_tasks()
    maml = MAML(model, inner_lr=0.5, inner_steps=2)
    got = meta_gradient(maml, tasks)
    eps = 1e-6
    for name, p in model.named_parameters():
        for index in (0, p.numel() - 1):
            with torch.no_grad():
                p.view(-1)[index] += eps
                plus = maml.meta_loss(tasks)[0].item()
                p.view(-1)[index] -= 2 * eps
                minus = maml.meta_loss(tasks)[0].item()
                p.view(-1)[index] += eps
            assert abs((plus - minus) / (2 * eps) - got[name].view(-1)[index].item()) < 1e-7


def test_adaptation_lowers_the_support_loss_and_leaves_the_model_alone():
    model = tiny_mlp()
    before = snapshot(model)
    tasks = classification_tasks()
    maml = MAML(model, inner_lr=0.5, inner_steps=5)
    for i in range(len(tasks)):
        support, _ = tasks.task(i)
        initial = F.cross_entropy(model(support["x"]), support["y"]).item()
        adapted = maml.adapt(support)
        after = F.cross_entropy(maml.predict(adapted, support["x"]), support["y"]).item()
        assert after < initial
    assert_unchanged(model, before)
    assert all(p.grad is None for p in model.parameters())


def test_meta_step_improves_query_loss_and_only_the_optimizer_changes_weights():
    model = tiny_mlp()
    tasks = classification_tasks(n_tasks=4)
    maml = MAML(model, inner_lr=0.3, inner_steps=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = snapshot(model)
    maml.meta_loss(tasks)  # computing a meta-loss changes nothing
    assert_unchanged(model, before)
    first = maml.meta_step(tasks, opt)["loss"]
    for _ in range(20):
        last = maml.meta_step(tasks, opt)["loss"]
    assert last < first
    assert set(maml.meta_step(tasks, opt)) == {"loss", "accuracy"}


def test_meta_sgd_learns_per_parameter_step_sizes():
    model = tiny_mlp()
    tasks = classification_tasks()
    maml = MAML(model, inner_lr=0.3, inner_steps=2, learn_inner_lr=True)
    assert len(list(maml.parameters())) == 2 * len(list(model.parameters()))
    # with every step size equal to inner_lr it is MAML
    plain = meta_gradient(MAML(model, inner_lr=0.3, inner_steps=2), tasks)
    torch.testing.assert_close(meta_gradient(maml, tasks), plain, rtol=0, atol=1e-12)
    assert all(lr.grad is not None and lr.grad.abs().sum() > 0 for lr in maml.inner_lrs)
    opt = torch.optim.Adam(maml.parameters(), lr=0.01)
    maml.meta_step(tasks, opt)
    assert any((lr - 0.3).abs().max() > 1e-3 for lr in maml.inner_lrs)


def test_regression_uses_mse():
    model = tiny_mlp(out=1, features=1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 1, generator=g, dtype=torch.float64)
    from archlab.data import TaskBatch

    tasks = TaskBatch(x[:, :5], torch.sin(x[:, :5]), x[:, 5:], torch.sin(x[:, 5:]))
    maml = MAML(model, inner_lr=0.01, inner_steps=1, kind="regression")
    stats = maml.meta_step(tasks, torch.optim.Adam(model.parameters(), 1e-3))
    assert set(stats) == {"loss", "mse"} and stats["loss"] == pytest.approx(stats["mse"])


def test_non_finite_inner_step_names_the_numbers_and_changes_nothing():
    model = tiny_mlp()
    tasks = classification_tasks()
    bad = tasks.support_x.clone()
    bad[1, 0, 0] = float("nan")
    from archlab.data import TaskBatch

    tasks = TaskBatch(bad, tasks.support_y, tasks.query_x, tasks.query_y)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    before = snapshot(model)
    for strategy in ("loop", "vmap"):
        maml = MAML(model, inner_lr=0.3, inner_steps=2)
        with pytest.raises(AdaptationError, match=r"inner step 1 of 2 on task 1 .*nan.*inner_lr=0\.3"):
            maml.meta_step(tasks, opt, strategy=strategy)
        assert_unchanged(model, before)
        assert all(p.grad is None for p in model.parameters()) and not opt.state


def test_diverging_inner_lr_is_reported():
    import archlab

    model = archlab.create_model("mlp", in_features=4, num_classes=3, hidden_dims=[8]).double()  # ReLU: unbounded
    tasks = classification_tasks()
    maml = MAML(model, inner_lr=1e300, inner_steps=3)
    before = snapshot(model)
    with pytest.raises(AdaptationError, match="inner_lr=1e\\+300"):
        maml.meta_step(tasks, torch.optim.SGD(model.parameters(), lr=0.1), strategy="loop")
    assert_unchanged(model, before)


def test_bad_arguments():
    frozen = tiny_mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="0 trainable of 139 parameters"):
        MAML(frozen)
    with pytest.raises(ValueError, match="track_running_stats=True"):
        import archlab

        MAML(archlab.create_model("resnet", input_size=8))
    with pytest.raises(ConfigError, match=r"The 'inner_lr' parameter of MAML must be a float > 0\. Got -1 instead\."):
        MAML(tiny_mlp(), inner_lr=-1)
    with pytest.raises(ConfigError, match=r"The 'inner_steps' parameter of MAML must be an int >= 0\. Got 1\.5 instead\."):
        MAML(tiny_mlp(), inner_steps=1.5)
    with pytest.raises(ConfigError, match="'strategy' parameter"):
        MAML(tiny_mlp(), strategy="thread")


def test_evaluation_scores_a_diverged_task_instead_of_stopping():
    import archlab
    from archlab.data import Sinusoid

    model = archlab.create_model("mlp", in_features=1, num_classes=1, hidden_dims=[8]).double()
    maml = MAML(model, inner_lr=1e6, inner_steps=1, kind="regression")
    scores = maml.evaluate(Sinusoid(5, 5), n_tasks=4, inner_steps=[0, 3])
    assert scores["mse_step0"] < 100 and not scores["mse_step3"] < 1e6  # inf or NaN, reported
    assert set(scores) == {f"mse_step{k}{s}" for k in (0, 3) for s in ("", "_ci95", "_median")}
