"""Loop and vmap execute the same maths; `auto` picks vmap only where it may."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.errors import ConfigError
from archlab.meta import MAML, choose_strategy
from archlab.meta.batchnorm import BatchStatisticsNorm
from archlab.meta.strategy import VMAP_MAX_WORK_CPU

from .helpers import classification_tasks, meta_gradient, tiny_cnn, tiny_mlp


@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("make", [tiny_mlp, tiny_cnn], ids=["mlp", "cnn-batchnorm"])
def test_loop_and_vmap_agree(make, first_order):
    model = make()
    tasks = classification_tasks(shape=(4,) if make is tiny_mlp else (1, 8, 8))
    maml = MAML(model, inner_lr=0.3, inner_steps=2, first_order=first_order)
    loop = meta_gradient(maml, tasks, "loop")
    vmap = meta_gradient(maml, tasks, "vmap")
    torch.testing.assert_close(vmap, loop, rtol=0, atol=1e-10)
    loss_loop, acc_loop = maml.meta_loss(tasks, strategy="loop")
    loss_vmap, acc_vmap = maml.meta_loss(tasks, strategy="vmap")
    torch.testing.assert_close(loss_vmap, loss_loop, rtol=0, atol=1e-12)
    torch.testing.assert_close(acc_vmap, acc_loop)


def test_loop_and_vmap_agree_for_meta_sgd():
    model = tiny_mlp()
    tasks = classification_tasks()
    maml = MAML(model, inner_lr=0.3, inner_steps=2, learn_inner_lr=True)
    got = {}
    for strategy in ("loop", "vmap"):
        maml.zero_grad(set_to_none=True)
        maml.meta_loss(tasks, strategy=strategy)[0].backward()
        got[strategy] = [p.grad.clone() for p in maml.parameters()]
    torch.testing.assert_close(got["vmap"], got["loop"], rtol=0, atol=1e-10)


def test_batch_statistics_norm_matches_torch_batch_norm():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3, track_running_stats=False).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    with BatchStatisticsNorm():
        ours = bn(x)
    torch.testing.assert_close(ours, bn(x), rtol=0, atol=1e-12)


def test_auto_strategy():
    cpu = torch.device("cpu")
    cnn = tiny_cnn()
    n_params = sum(p.numel() for p in cnn.parameters())
    assert choose_strategy(cnn, cpu, 10) == "vmap"
    assert choose_strategy(cnn, cpu, VMAP_MAX_WORK_CPU // n_params + 1) == "loop"
    paper = archlab.create_model("cnn", input_size=28, channels=[64] * 4, hidden_dims=[], num_classes=5,
                                 batch_norm=True, track_running_stats=False)
    assert choose_strategy(paper, cpu, 5 * (1 + 1)) == "loop"  # 5-way 1-shot, 1 query a class
    assert choose_strategy(paper, cpu, 5 * (1 + 15)) == "loop"  # 15 queries a class
    assert choose_strategy(cnn, torch.device("cuda"), 1000) == "vmap"
    assert choose_strategy(cnn, cpu, 10, "loop") == "loop"
    gru = archlab.create_model("gru", input_dim=3, num_classes=3, hidden_dim=4)
    assert choose_strategy(gru, cpu, 10) == "loop"
    with pytest.raises(ConfigError, match="GRU.*Use strategy='loop'"):
        choose_strategy(gru, cpu, 10, "vmap")
