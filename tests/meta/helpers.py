"""Small float64 models and task batches for the meta-learning tests."""

from __future__ import annotations

import torch

import archlab
from archlab.data import TaskBatch


def tiny_mlp(out: int = 3, features: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return archlab.create_model("mlp", in_features=features, num_classes=out, hidden_dims=[8, 8],
                                activation="tanh").double()


def tiny_cnn(batch_norm: bool = True, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return archlab.create_model("cnn", in_channels=1, num_classes=3, input_size=8, channels=[4, 4], hidden_dims=[],
                                dropout=0.0, batch_norm=batch_norm, track_running_stats=False).double()


def classification_tasks(n_tasks: int = 3, shape=(4,), support: int = 6, query: int = 9, seed: int = 1,
                         classes: int = 3) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(n_tasks, support, *shape, generator=g, dtype=torch.float64),
        torch.randint(0, classes, (n_tasks, support), generator=g),
        torch.randn(n_tasks, query, *shape, generator=g, dtype=torch.float64),
        torch.randint(0, classes, (n_tasks, query), generator=g),
    )


def grads_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def meta_gradient(maml, tasks, strategy: str = "loop") -> dict[str, torch.Tensor]:
    maml.zero_grad(set_to_none=True)
    loss, _ = maml.meta_loss(tasks, strategy=strategy)
    loss.backward()
    return grads_of(maml.model)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0)
