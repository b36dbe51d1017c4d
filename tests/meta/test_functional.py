"""The functional core runs a model with new weights and leaves the module as it was, whatever
the model shares: a submodule registered under two names, or weights tied on purpose."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archlab
from archlab.data import TaskBatch
from archlab.meta import MAML

from .helpers import assert_unchanged, classification_tasks, grads_of, snapshot


class SharedSubmodule(nn.Module):
    """One linear layer reachable as ``body`` and as ``net.0`` (two names, one module)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.net = nn.Sequential(self.body, nn.Tanh(), nn.Linear(3, 3))

    def forward(self, x):
        return self.net(x)


def shared_model():
    torch.manual_seed(0)
    return SharedSubmodule().double()


def tiny_gpt():
    torch.manual_seed(0)
    return archlab.create_model("gpt", vocab_size=11, num_layers=1, num_heads=2, embed_dim=8,
                                context_length=6).double()


def next_token(call, batch):
    return call(batch["x"])[:, -1]  # (N, vocab): the logits of the token after each sequence


def token_tasks(n_tasks=2, support=4, query=5, length=6, vocab=11, seed=3):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(torch.randint(0, vocab, (n_tasks, support, length), generator=g),
                     torch.randint(0, vocab, (n_tasks, support), generator=g),
                     torch.randint(0, vocab, (n_tasks, query, length), generator=g),
                     torch.randint(0, vocab, (n_tasks, query), generator=g))


def assert_same_parameters(model, objects, values):
    """The very `Parameter` objects of before, under every name, with the values of before."""
    now = dict(model.named_parameters(remove_duplicate=False))
    assert now.keys() == objects.keys()
    for name, p in now.items():
        assert p is objects[name] and isinstance(p, nn.Parameter), name
    assert_unchanged(model, values)


@pytest.mark.parametrize("strategy", ["loop", "threads", "vmap"])
def test_a_submodule_under_two_names_is_left_alone(strategy):
    model = shared_model()
    objects, values = dict(model.named_parameters(remove_duplicate=False)), snapshot(model)
    tasks = classification_tasks(n_tasks=3)
    maml = MAML(model, inner_lr=0.3, inner_steps=2, strategy=strategy)
    support, query = tasks.task(0)
    adapted = maml.adapt(support)
    maml.predict(adapted, query["x"])
    assert_same_parameters(model, objects, values)
    # meta-steps run (twice: a leftover adapted tensor made the second fail) and only the optimizer
    # changes the weights; lr=0 keeps them, so the gradient can be compared with an unshared copy
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for _ in range(2):
        maml.meta_step(tasks, optimizer)
        assert_same_parameters(model, objects, values)
    plain = nn.Sequential(copy.deepcopy(model.body), nn.Tanh(), copy.deepcopy(model.net[2]))
    MAML(plain, inner_lr=0.3, inner_steps=2, strategy="loop").meta_step(
        tasks, torch.optim.SGD(plain.parameters(), lr=0.0))
    expected = grads_of(plain)
    got = grads_of(model)
    torch.testing.assert_close(got["body.weight"], expected["0.weight"], rtol=0, atol=1e-12)
    torch.testing.assert_close(got["net.2.bias"], expected["2.bias"], rtol=0, atol=1e-12)


def test_tied_weights_stay_one_tensor_while_adapting():
    model = tiny_gpt()
    assert model.lm_head.weight is model.embedding.weight
    objects, values = dict(model.named_parameters(remove_duplicate=False)), snapshot(model)
    tasks = token_tasks()
    maml = MAML(model, inner_lr=0.5, inner_steps=1, forward=next_token)
    support, query = tasks.task(0)
    adapted = maml.adapt(support)
    assert "embedding.weight" in adapted and "lm_head.weight" not in adapted  # one tensor for both uses
    # the adapted embedding also serves as the LM head: as in a tied copy given the adapted weights
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(adapted[name])
    assert reference.lm_head.weight is reference.embedding.weight
    torch.testing.assert_close(maml.predict(adapted, query["x"]), reference(query["x"])[:, -1], rtol=0, atol=1e-12)
    assert_same_parameters(model, objects, values)


def test_tied_weights_get_the_gradient_of_both_uses():
    model = tiny_gpt()
    tasks = token_tasks()
    maml = MAML(model, inner_lr=0.5, inner_steps=2, first_order=True, forward=next_token, strategy="loop")
    maml.meta_step(tasks, torch.optim.SGD(model.parameters(), lr=0.0))
    got = grads_of(model)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(tasks)):
        learner = copy.deepcopy(model)  # tied too: torch's SGD moves the one shared tensor
        opt = torch.optim.SGD(learner.parameters(), lr=0.5)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(learner(tasks.support_x[i])[:, -1], tasks.support_y[i]).backward()
            opt.step()
        learner.zero_grad()
        F.cross_entropy(learner(tasks.query_x[i])[:, -1], tasks.query_y[i]).backward()
        for n, p in learner.named_parameters():
            expected[n] += p.grad / len(tasks)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert model.lm_head.weight is model.embedding.weight
