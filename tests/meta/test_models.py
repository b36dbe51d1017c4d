"""MAML and Reptile run on the archlab model families: gradients reach every parameter."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.data import TaskBatch
from archlab.meta import MAML
from archlab.meta.reptile import Reptile

from .helpers import snapshot


def sequence_tasks(n_tasks=2, steps=5, features=3):
    g = torch.Generator().manual_seed(0)
    return TaskBatch(torch.randn(n_tasks, 6, steps, features, generator=g), torch.randint(0, 3, (n_tasks, 6), generator=g),
                     torch.randn(n_tasks, 6, steps, features, generator=g), torch.randint(0, 3, (n_tasks, 6), generator=g))


MODELS = {
    "mlp": (lambda: archlab.create_model("mlp", in_features=3, num_classes=3, hidden_dims=[8]),
            lambda: TaskBatch(torch.randn(2, 6, 3), torch.randint(0, 3, (2, 6)), torch.randn(2, 6, 3),
                              torch.randint(0, 3, (2, 6)))),
    "cnn": (lambda: archlab.create_model("cnn", in_channels=1, num_classes=3, input_size=8, channels=[4, 4],
                                         hidden_dims=[], dropout=0.0, batch_norm=True, track_running_stats=False),
            lambda: TaskBatch(torch.rand(2, 6, 1, 8, 8), torch.randint(0, 3, (2, 6)), torch.rand(2, 6, 1, 8, 8),
                              torch.randint(0, 3, (2, 6)))),
    "gru": (lambda: archlab.create_model("gru", input_dim=3, num_classes=3, hidden_dim=8), sequence_tasks),
    "lstm": (lambda: archlab.create_model("lstm", input_dim=3, num_classes=3, hidden_dim=8), sequence_tasks),
    "transformer": (lambda: archlab.create_model("transformer", input_dim=3, num_classes=3, embed_dim=8,
                                                 num_layers=1, num_heads=2, mlp_dim=16, dropout=0.0),
                    sequence_tasks),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("first_order", [False, True], ids=["maml", "fomaml"])
def test_maml_reaches_every_parameter(name, first_order):
    torch.manual_seed(0)
    build, make_tasks = MODELS[name]
    model = build()
    maml = MAML(model, inner_lr=0.1, inner_steps=1, first_order=first_order)
    tasks = make_tasks()
    before = snapshot(model)
    stats = maml.meta_step(tasks, torch.optim.SGD(model.parameters(), lr=0.01))
    assert torch.isfinite(torch.tensor(stats["loss"]))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert sorted(changed) == sorted(n for n, _ in model.named_parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_reptile_moves_every_parameter(name):
    torch.manual_seed(0)
    build, make_tasks = MODELS[name]
    model = build()
    before = snapshot(model)
    Reptile(model, inner_lr=0.01, inner_steps=2, meta_step_size=0.5).meta_step(make_tasks())
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert sorted(changed) == sorted(n for n, _ in model.named_parameters())


def test_gcn_node_tasks_with_a_custom_forward():
    """Few-shot node classification: a task's examples are node ids of one fixed graph."""
    torch.manual_seed(0)
    x = torch.randn(12, 5)
    edge_index = torch.tensor([[i for i in range(12)] + [(i + 1) % 12 for i in range(12)],
                               [(i + 1) % 12 for i in range(12)] + [i for i in range(12)]])
    model = archlab.create_model("gcn", in_features=5, num_classes=3, hidden_dim=8, cached=False, dropout=0.0)

    def forward(call, batch):
        return call(x, edge_index)[batch["x"]]

    nodes = torch.randperm(12).view(2, 6)
    tasks = TaskBatch(nodes[:, :3], torch.randint(0, 3, (2, 3)), nodes[:, 3:], torch.randint(0, 3, (2, 3)))
    maml = MAML(model, inner_lr=0.1, inner_steps=2, forward=forward)
    before = snapshot(model)
    for strategy in ("loop", "vmap"):
        maml.zero_grad(set_to_none=True)
        maml.meta_loss(tasks, strategy=strategy)[0].backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    maml.meta_step(tasks, torch.optim.SGD(model.parameters(), lr=0.1))
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())
