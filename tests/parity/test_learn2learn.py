"""learn2learn's MAML and MetaSGD test cases, re-expressed for `archlab.meta.MAML` and its clones.

learn2learn cannot be installed here, so its unit tests (tests/unit/algorithms/maml_test.py and
metasgd_test.py: the toy model, the norm objective, the properties checked) are restated against
archlab's API, in float64, and the meta-gradient is checked against a closed form derived by hand.
learn2learn's ``MetaSGD(model, lr)`` is ``MAML(model, lr, learn_inner_lr=True)`` here, and its
``lrs`` are ``inner_lrs``.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.data import TaskBatch
from archlab.errors import ConfigError
from archlab.meta import MAML

INPUT_SIZE = 10
HIDDEN_SIZE = 20
NUM_INPUTS = 7


pytestmark = pytest.mark.usefixtures("single_thread")  # tiny ops (tests/conftest.py)


def l2l_model(seed: int = 0) -> nn.Sequential:
    """learn2learn's test model: three linear layers, ReLU / sigmoid / softmax, and a buffer."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(INPUT_SIZE, HIDDEN_SIZE), nn.ReLU(), nn.Linear(HIDDEN_SIZE, HIDDEN_SIZE),
                          nn.Sigmoid(), nn.Linear(HIDDEN_SIZE, HIDDEN_SIZE), nn.Softmax(dim=1)).double()
    model.register_buffer("dummy_buf", torch.zeros(1, 2, 3, 4, dtype=torch.float64))
    return model


def inputs(seed: int = 1) -> torch.Tensor:
    return torch.randn(NUM_INPUTS, INPUT_SIZE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def meta_learner(model, lr, meta_sgd, **kwargs):
    return MAML(model, lr, learn_inner_lr=meta_sgd, **kwargs)


both = pytest.mark.parametrize("meta_sgd", [False, True], ids=["maml", "meta-sgd"])


@both
@pytest.mark.parametrize("first_order", [False, True])
def test_a_clone_computes_what_the_model_computes(meta_sgd, first_order):
    model = l2l_model()
    maml = meta_learner(model, 0.1, meta_sgd, first_order=first_order)
    x = inputs()
    for clone in (maml.clone(), maml.clone()):
        torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)
    torch.testing.assert_close(maml(x), model(x), rtol=0, atol=0)


def test_first_order_gradient_is_the_gradient_at_the_adapted_weights():
    model = l2l_model()
    maml = MAML(model, 0.01, first_order=True)
    x = inputs()
    clone = maml.clone()
    for _ in range(3):
        clone.adapt(clone(x).norm())
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for p, fast in zip(reference.parameters(), clone.parameters()):
            p.copy_(fast)
    reference(x).norm().backward()
    clone(x).norm().backward()
    for p, ref in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, ref.grad, rtol=0, atol=1e-12)


@both
def test_the_graph_reaches_the_weights(meta_sgd):
    model = l2l_model()
    maml = meta_learner(model, 0.1, meta_sgd)
    maml.clone()(inputs()).norm().backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.norm() > 0


@both
def test_adaptation_lowers_the_loss_and_the_meta_gradient_reaches_every_meta_parameter(meta_sgd):
    model = l2l_model()
    maml = meta_learner(model, 0.1, meta_sgd)
    x = inputs()
    clone = maml.clone()
    loss = clone(x).norm()
    clone.adapt(loss)
    new_loss = clone(x).norm()
    assert new_loss < loss
    new_loss.backward()
    meta_parameters = list(maml.parameters())
    assert len(meta_parameters) == (12 if meta_sgd else 6)  # Meta-SGD: a step size for every weight
    for p in meta_parameters:
        assert p.grad is not None and p.grad.norm() > 0


def test_meta_sgd_has_one_step_size_a_weight_starting_at_lr():
    model = l2l_model()
    maml = MAML(model, 0.1, learn_inner_lr=True)
    assert sum(p.numel() for p in maml.parameters()) == 2 * sum(p.numel() for p in model.parameters())
    for lr, p in zip(maml.inner_lrs, model.parameters()):
        assert lr.shape == p.shape
        torch.testing.assert_close(lr, torch.full_like(p, 0.1), rtol=0, atol=0)


def test_allow_unused_keeps_the_weights_the_loss_does_not_reach():
    model = l2l_model()
    maml = MAML(model, 0.01, allow_unused=True)
    clone = maml.clone()

    def weights_only(c):  # every other tensor: the weights, not the biases
        return sum(p.norm() for i, p in enumerate(c.parameters()) if i % 2 == 0)

    clone.adapt(weights_only(clone))
    for (name, fast), p in zip(clone.named_parameters(), model.parameters()):
        assert (fast is p) == name.endswith("bias"), name
    weights_only(clone).backward()
    for name, p in model.named_parameters():
        assert (p.grad is None) == name.endswith("bias"), name
    strict = MAML(model, 0.01).clone()
    with pytest.raises(ConfigError, match=r"does not reach the fast weights 0\.bias, 2\.bias, 4\.bias"):
        strict.adapt(weights_only(strict))


def test_allow_nograd_holds_frozen_weights_fixed_and_refuses_them_by_default():
    model = l2l_model()
    model[2].weight.requires_grad_(False)
    frozen = model[2].weight.detach().clone()
    maml = MAML(model, 0.01, allow_unused=False, allow_nograd=False)
    clone = maml.clone()
    loss = sum(p.norm() for p in clone.parameters())
    with pytest.raises(ConfigError, match=r"requires_grad=False \(2\.weight\) and allow_nograd=False"):
        clone.adapt(loss)
    clone.adapt(loss, allow_nograd=True)
    sum(p.norm() for p in clone.parameters()).backward()
    assert model[2].weight.grad is None
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    clone = MAML(model, 0.01, allow_nograd=True).clone()
    clone.adapt(sum(p.norm() for p in clone.parameters()))
    torch.testing.assert_close(dict(clone.named_parameters())["2.weight"], frozen, rtol=0, atol=0)
    torch.testing.assert_close(model[2].weight, frozen, rtol=0, atol=0)


def test_a_module_shared_by_two_containers_adapts_and_is_left_alone():
    class SharedContainers(nn.Module):  # learn2learn's case: `net` holds the very `seq` and `head`
        def __init__(self):
            super().__init__()
            self.seq = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU())
            self.head = nn.Sequential(nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 5, 3, 2, 1))
            self.net = nn.Sequential(self.seq, self.head)

        def forward(self, x):
            return self.net(x)

    torch.manual_seed(0)
    module = SharedContainers().double()
    objects = dict(module.named_parameters(remove_duplicate=False))
    values = {n: p.detach().clone() for n, p in objects.items()}
    maml = MAML(module, 0.1)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for _ in range(2):  # twice: the first round must leave nothing behind in the module
        clone = maml.clone()
        clone.adapt(sum(p.norm() for p in clone.parameters()) + clone(x).square().mean())
        (sum(p.norm() for p in clone.parameters()) + clone(x).square().mean()).backward()
    for name, p in module.named_parameters(remove_duplicate=False):
        assert p is objects[name] and isinstance(p, nn.Parameter), name
        torch.testing.assert_close(p, values[name], rtol=0, atol=0)
        assert p.grad is not None


@both
def test_clones_are_independent(meta_sgd):
    model = l2l_model()
    maml = meta_learner(model, 0.5, meta_sgd)
    x, other = inputs(1), inputs(2)
    a, b = maml.clone(), maml.clone()
    a.adapt(a(x).norm())
    before_b = a(x).detach()
    b.adapt(-b(other).sum())  # another objective entirely
    c = a.clone()
    c.adapt(c(other).norm())
    torch.testing.assert_close(a(x), before_b, rtol=0, atol=0)  # neither b's nor c's step moved a
    assert (a(x) - b(x)).abs().max() > 1e-6 and (a(x) - c(x)).abs().max() > 1e-6
    torch.testing.assert_close(maml.clone()(x), model(x), rtol=0, atol=0)


@both
def test_first_and_second_order_meta_gradients_differ(meta_sgd):
    x = inputs()
    grads = {}
    for first_order in (False, True):
        model = l2l_model()
        clone = meta_learner(model, 0.5, meta_sgd, first_order=first_order).clone()
        clone.adapt(clone(x).norm())
        clone(x).norm().backward()
        grads[first_order] = [p.grad for p in model.parameters()]
    assert max((s - f).abs().max().item() for s, f in zip(grads[False], grads[True])) > 1e-6
    # first_order given to adapt overrides the clone's
    model = l2l_model()
    clone = meta_learner(model, 0.5, meta_sgd).clone()
    clone.adapt(clone(x).norm(), first_order=True)
    clone(x).norm().backward()
    for p, f in zip(model.parameters(), grads[True]):
        torch.testing.assert_close(p.grad, f, rtol=0, atol=1e-12)


# -- a meta-gradient derived by hand ------------------------------------------------------------
#
# A linear model f(x) = x~ theta, with x~ = [x, 1] and theta = [w, b], and the squared loss
# L(theta) = ||X~ theta - y||^2 / n have gradient g = 2/n X~^T (X~ theta - y) and constant Hessian
# H = 2/n X~^T X~. One inner step with step sizes alpha (a scalar, or a vector for Meta-SGD),
# theta' = theta - alpha * g_s(theta), gives
#     dL_q(theta')/dtheta = (I - H_s diag(alpha)) g_q(theta')      (second order)
#     dL_q(theta')/dtheta = g_q(theta')                             (first order)
#     dL_q(theta')/dalpha = -g_s(theta) * g_q(theta')               (both)

def linear_tasks(n_tasks=3, features=3, support=5, query=7):
    g = torch.Generator().manual_seed(4)
    make = lambda n: (torch.randn(n_tasks, n, features, generator=g, dtype=torch.float64),  # noqa: E731
                      torch.randn(n_tasks, n, 1, generator=g, dtype=torch.float64))
    return make(support), make(query)


def closed_form(theta, alpha, tasks, first_order):
    (sx, sy), (qx, qy) = tasks
    eye = torch.eye(len(theta), dtype=theta.dtype)
    d_theta, d_alpha, losses = torch.zeros_like(theta), torch.zeros_like(theta), []
    for i in range(len(sx)):
        xs = torch.cat([sx[i], torch.ones(len(sx[i]), 1, dtype=theta.dtype)], 1)
        xq = torch.cat([qx[i], torch.ones(len(qx[i]), 1, dtype=theta.dtype)], 1)
        g_s = 2 / len(xs) * xs.T @ (xs @ theta - sy[i].flatten())
        h_s = 2 / len(xs) * xs.T @ xs
        adapted = theta - alpha * g_s
        g_q = 2 / len(xq) * xq.T @ (xq @ adapted - qy[i].flatten())
        d_theta += (g_q if first_order else (eye - h_s * alpha) @ g_q) / len(sx)  # h_s * alpha = H diag(alpha)
        d_alpha += -g_s * g_q / len(sx)
        losses.append(((xq @ adapted - qy[i].flatten()) ** 2).mean())
    return d_theta, d_alpha, torch.stack(losses).mean()


@both
@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_meta_gradient_of_a_linear_model_matches_the_closed_form(meta_sgd, first_order):
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    maml = MAML(model, 0.1, first_order=first_order, learn_inner_lr=meta_sgd)
    if meta_sgd:  # step sizes that differ from entry to entry
        with torch.no_grad():
            maml.inner_lrs[0].copy_(torch.tensor([[0.05, 0.1, 0.2]]))
            maml.inner_lrs[1].fill_(0.3)
    tasks = linear_tasks()
    (sx, sy), (qx, qy) = tasks
    total = 0.0
    for i in range(len(sx)):  # learn2learn's outer loop, with a loss written by hand
        clone = maml.clone()
        clone.adapt((clone(sx[i]) - sy[i]).pow(2).mean())
        total = total + (clone(qx[i]) - qy[i]).pow(2).mean() / len(sx)
    total.backward()

    theta = torch.cat([model.weight.detach().flatten(), model.bias.detach()])
    alpha = torch.cat([lr.detach().flatten() for lr in maml.inner_lrs]) if meta_sgd else 0.1
    d_theta, d_alpha, loss = closed_form(theta, alpha, tasks, first_order)
    torch.testing.assert_close(total.detach(), loss, rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.cat([model.weight.grad.flatten(), model.bias.grad]), d_theta, rtol=0, atol=1e-10)
    if meta_sgd:
        got = torch.cat([lr.grad.flatten() for lr in maml.inner_lrs])
        torch.testing.assert_close(got, d_alpha, rtol=0, atol=1e-10)


@both
@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_a_hand_written_outer_loop_equals_meta_loss(meta_sgd, first_order):
    """The clone interface runs the same functional core as `MAML.meta_loss`."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    maml = MAML(model, 0.3, inner_steps=2, first_order=first_order, learn_inner_lr=meta_sgd, strategy="loop")
    g = torch.Generator().manual_seed(2)
    tasks = TaskBatch(torch.randn(3, 6, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (3, 6), generator=g),
                      torch.randn(3, 9, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (3, 9), generator=g))
    maml.meta_loss(tasks)[0].backward()
    expected = [p.grad.clone() for p in maml.parameters()]
    maml.zero_grad(set_to_none=True)
    total = 0.0
    for i in range(len(tasks)):
        support, query = tasks.task(i)
        clone = maml.clone()
        for _ in range(2):
            clone.adapt(F.cross_entropy(clone(support["x"]), support["y"]))
        total = total + F.cross_entropy(clone(query["x"]), query["y"]) / len(tasks)
    total.backward()
    for p, e in zip(maml.parameters(), expected):
        torch.testing.assert_close(p.grad, e, rtol=0, atol=1e-12)


def test_clone_arguments_are_checked():
    maml = MAML(l2l_model(), 0.1)
    clone = maml.clone()
    x = inputs()
    with pytest.raises(ConfigError, match="must be a scalar tensor. Got \\(7, 20\\)"):
        clone.adapt(clone(x))
    with torch.no_grad():
        detached = clone(x).norm()
    with pytest.raises(ConfigError, match="does not depend on the fast weights"):
        clone.adapt(detached)
    with pytest.raises(ConfigError, match="'first_order' parameter of MAMLClone.adapt must be a bool"):
        clone.adapt(clone(x).norm(), first_order="yes")
    with pytest.raises(ConfigError, match="not a loss.*maml.clone\\(\\)"):
        maml.adapt(clone(x).norm())
    with pytest.raises(ConfigError, match="'allow_nograd' parameter of MAML must be a bool"):
        MAML(l2l_model(), 0.1, allow_nograd=None)
