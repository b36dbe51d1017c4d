"""Optimizers and learning-rate schedules of the engine."""

from __future__ import annotations

import math

import pytest
import torch

from archlab.engine import TrainConfig, build_optimizer
from archlab.engine.optim import lr_factor
from archlab.errors import ConfigError


def _params():
    return [torch.nn.Parameter(torch.zeros(3))]


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_adam_family_takes_betas_and_eps(name, cls):
    opt = build_optimizer(_params(), name, lr=0.1, weight_decay=0.01, betas=(0.5, 0.9), eps=1e-4)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["betas"], group["eps"]) == (0.1, 0.01, (0.5, 0.9), 1e-4)


def test_sgd_uses_momentum():
    opt = build_optimizer(_params(), "sgd", lr=0.1, momentum=0.8)
    assert type(opt) is torch.optim.SGD and opt.param_groups[0]["momentum"] == 0.8


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(ConfigError, match="adamw"):
        build_optimizer(_params(), "adamx", lr=0.1)


@pytest.mark.parametrize("eps", [0.0, -1e-8, float("nan")])
def test_train_config_refuses_a_bad_eps(eps):
    with pytest.raises(ConfigError, match=r"The 'eps' parameter of TrainConfig must be a float > 0"):
        TrainConfig(eps=eps).validate()


def test_schedules_warm_up_then_decay_to_zero():
    total, warmup = 100, 10
    assert lr_factor("cosine", 0, total, warmup) == pytest.approx(0.1)
    assert lr_factor("cosine", warmup, total, warmup) == pytest.approx(1.0)
    assert lr_factor("cosine", total, total, warmup) == pytest.approx(0.0, abs=1e-12)
    middle = warmup + (total - warmup) // 2
    assert lr_factor("cosine", middle, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor("linear", total, total, warmup) == pytest.approx(0.0)
    assert lr_factor("constant", 57, total, warmup) == 1.0
