"""ANIL: the inner loop adapts the head alone, and ANIL is MAML restricted to the head, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from archlab.errors import ConfigError
from archlab.meta import ANIL, MAML

from .helpers import assert_unchanged, classification_tasks, grads_of, meta_gradient, snapshot, tiny_cnn, tiny_mlp

IMAGE = (1, 8, 8)


def head_names(model, head="head"):
    return [n for n, _ in model.named_parameters() if n.startswith(head + ".")]


def hand_written_anil(model, tasks, inner_lr, steps, first_order=False, head="head"):
    """The ANIL meta-gradient written out: autograd.grad of the support loss in the head's
    parameters only (create_graph unless first-order), SGD steps, then the query loss's gradient
    in every parameter."""
    names = [n for n, _ in model.named_parameters()]
    heads = head_names(model, head)
    total = 0.0
    for i in range(len(tasks)):
        support, query = tasks.task(i)
        params = dict(model.named_parameters())
        for _ in range(steps):
            loss = F.cross_entropy(functional_call(model, params, (support["x"],)), support["y"])
            grads = torch.autograd.grad(loss, [params[n] for n in heads], create_graph=not first_order)
            params = {**params, **{n: params[n] - inner_lr * g for n, g in zip(heads, grads)}}
        total = total + F.cross_entropy(functional_call(model, params, (query["x"],)), query["y"]) / len(tasks)
    return dict(zip(names, torch.autograd.grad(total, list(model.parameters()))))


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("make, shape, head", [(tiny_cnn, IMAGE, "head"), (tiny_mlp, (4,), "mlp.4")],
                         ids=["cnn-batchnorm", "mlp"])
def test_meta_gradient_equals_the_hand_written_loop(make, shape, head, first_order):
    model = make()
    tasks = classification_tasks(shape=shape)
    anil = ANIL(model, inner_lr=0.3, inner_steps=2, first_order=first_order)
    assert anil.head == head  # the default head: `head`, or the MLP's output layer
    got = meta_gradient(anil, tasks)
    expected = hand_written_anil(model, tasks, 0.3, 2, first_order, head)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_head_meta_gradient_equals_maml_with_the_body_frozen(first_order):
    model = tiny_cnn()
    tasks = classification_tasks(shape=IMAGE)
    anil_grads = meta_gradient(ANIL(model, inner_lr=0.3, inner_steps=2, first_order=first_order), tasks)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("head."))
    maml = MAML(model, inner_lr=0.3, inner_steps=2, first_order=first_order)
    maml.zero_grad(set_to_none=True)
    loss, _ = maml.meta_loss(tasks, strategy="loop")
    loss.backward()
    heads = head_names(model)
    assert heads and all(model.get_parameter(n).grad is not None for n in heads)
    for n in heads:
        torch.testing.assert_close(anil_grads[n], model.get_parameter(n).grad, rtol=0, atol=1e-12)
    # and the adapted heads are the same numbers
    for name, p in model.named_parameters():
        p.requires_grad_(True)
    support, _ = tasks.task(0)
    adapted = ANIL(model, inner_lr=0.3, inner_steps=2).adapt(support)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("head."))
    frozen = MAML(model, inner_lr=0.3, inner_steps=2).adapt(support)
    for n in heads:
        torch.testing.assert_close(adapted[n], frozen[n], rtol=0, atol=1e-13)


def test_the_inner_loop_leaves_the_body_untouched():
    model = tiny_cnn()
    before = snapshot(model)
    support, _ = classification_tasks(shape=IMAGE).task(0)
    anil = ANIL(model, inner_lr=0.5, inner_steps=3)
    adapted = anil.adapt(support)
    own = dict(model.named_parameters())
    for name, tensor in adapted.items():
        if name.startswith("head."):
            assert not torch.equal(tensor, own[name])
        else:
            assert tensor is own[name]  # the body's parameters themselves, not even a copy
    assert_unchanged(model, before)
    path = list(anil.adaptation_path(support, 3))
    for step, params, _ in path:
        assert all(torch.equal(params[n], own[n]) for n in own if not n.startswith("head."))
    torch.testing.assert_close(path[-1][1]["head.0.weight"], adapted["head.0.weight"].detach(), rtol=0, atol=1e-13)


class Wrapped(torch.nn.Module):
    """A model without forward_features / forward_head: ANIL runs it whole at each inner step."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_cached_features_give_what_the_whole_model_gives(steps):
    model = tiny_cnn()
    tasks = classification_tasks(shape=IMAGE)
    cached = ANIL(model, inner_lr=0.3, inner_steps=steps)
    whole = ANIL(Wrapped(model), inner_lr=0.3, inner_steps=steps, head="net.head")
    assert cached.cached_features and not whole.cached_features
    got, expected = meta_gradient(cached, tasks), meta_gradient(whole, tasks)
    torch.testing.assert_close(got, {n[len("net."):]: g for n, g in expected.items()}, rtol=0, atol=1e-12)


def test_zero_inner_steps_gives_the_plain_gradient():
    model = tiny_cnn()
    tasks = classification_tasks(shape=IMAGE)
    got = meta_gradient(ANIL(model, inner_lr=0.5, inner_steps=0), tasks)
    model.zero_grad()
    (sum(F.cross_entropy(model(tasks.query_x[i]), tasks.query_y[i]) for i in range(3)) / 3).backward()
    torch.testing.assert_close(got, grads_of(model), rtol=0, atol=1e-12)


@pytest.mark.parametrize("strategy", ["threads", "vmap"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
def test_strategies_match_the_loop(strategy, first_order, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # two workers for `threads`
    model = tiny_cnn()
    tasks = classification_tasks(n_tasks=4, shape=IMAGE)
    anil = ANIL(model, inner_lr=0.3, inner_steps=2, first_order=first_order)
    torch.testing.assert_close(meta_gradient(anil, tasks, strategy), meta_gradient(anil, tasks, "loop"),
                               rtol=0, atol=1e-10)


def test_meta_step_moves_the_body_too():
    model = tiny_mlp()
    tasks = classification_tasks()
    anil = ANIL(model, inner_lr=0.5, inner_steps=1)
    opt = torch.optim.Adam(anil.parameters(), lr=0.01)
    before = snapshot(model)
    stats = anil.meta_step(tasks, opt, strategy="loop")
    assert set(stats) == {"loss", "accuracy"}
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if not k.startswith("mlp.4"))


def test_clone_adapts_the_head_and_reaches_the_body():
    model = tiny_cnn()
    support, query = classification_tasks(shape=IMAGE).task(0)
    anil = ANIL(model, inner_lr=0.3, inner_steps=1)
    learner = anil.clone()
    learner.adapt(F.cross_entropy(learner(support["x"]), support["y"]))
    expected = anil.adapt(support, create_graph=True)
    for name, p in learner.named_parameters():
        torch.testing.assert_close(p, expected[name], rtol=0, atol=1e-13)
    F.cross_entropy(learner(query["x"]), query["y"]).backward()
    assert next(model.features.parameters()).grad is not None and model.head[0].weight.grad is not None


def test_bad_head_is_one_clear_line():
    with pytest.raises(ConfigError, match=r"'head' parameter of ANIL must name a submodule of ConvNet, e\.g\. "
                                          r"features, .*Got 'classifier' instead"):
        ANIL(tiny_cnn(), head="classifier")
    model = tiny_cnn()
    model.head.requires_grad_(False)
    with pytest.raises(ConfigError, match="ANIL's head 'head' has no trainable parameters"):
        ANIL(model, head="head")


def test_per_task_batch_norm_normalizes_each_task_alone():
    from archlab.meta.anil import per_task_batch_norm

    g = torch.Generator().manual_seed(5)
    x = torch.randn(3 * 4, 2, 5, 5, generator=g, dtype=torch.float64)
    weight, bias = torch.randn(2, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)
    expected = torch.cat([F.batch_norm(part, None, None, weight, bias, training=True, eps=1e-5)
                          for part in x.split(4)])
    torch.testing.assert_close(per_task_batch_norm(x, 3, weight, bias, 1e-5), expected, rtol=0, atol=1e-12)


def test_vmap_without_cached_features_matches_the_loop():
    model = Wrapped(tiny_cnn())
    tasks = classification_tasks(n_tasks=3, shape=IMAGE)
    anil = ANIL(model, inner_lr=0.3, inner_steps=2, head="net.head")
    torch.testing.assert_close(meta_gradient(anil, tasks, "vmap"), meta_gradient(anil, tasks, "loop"),
                               rtol=0, atol=1e-10)


def test_auto_batches_the_body_for_small_task_batches_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    import archlab

    paper = archlab.create_model("cnn", input_size=28, num_classes=5, channels=[64] * 4, hidden_dims=[],
                                 dropout=0.0, batch_norm=True, track_running_stats=False)
    anil, maml = ANIL(paper), MAML(paper)
    small = classification_tasks(n_tasks=32, support=5, query=5, shape=(1, 28, 28))  # 320 examples
    big = classification_tasks(n_tasks=32, support=5, query=75, shape=(1, 28, 28))  # 2,560
    assert anil.choose_strategy(small) == "vmap" and maml.choose_strategy(small) == "threads"
    assert anil.choose_strategy(big) == maml.choose_strategy(big) != "vmap"  # MAML's rule: loop
    assert anil.choose_strategy(big, "vmap") == "vmap"


def test_a_recurrent_body_is_batched_not_vmapped():
    import archlab

    torch.manual_seed(0)
    model = archlab.create_model("gru", input_dim=3, num_classes=3, hidden_dim=6).double()
    tasks = classification_tasks(n_tasks=3, shape=(5, 3))  # sequences of 5 steps
    anil = ANIL(model, inner_lr=0.3, inner_steps=2)
    assert anil.choose_strategy(tasks) == "vmap"
    torch.testing.assert_close(meta_gradient(anil, tasks, "vmap"), meta_gradient(anil, tasks, "loop"),
                               rtol=0, atol=1e-10)
