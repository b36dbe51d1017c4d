"""Optimizers and learning-rate schedules of the engine."""

from __future__ import annotations

import math

import pytest
import torch

from archlab.engine import TrainConfig, build_optimizer, build_scheduler
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
    assert lr_factor("cosine", 0, total, warmup) == pytest.approx(1 / 11)
    assert lr_factor("cosine", warmup - 1, total, warmup) == pytest.approx(10 / 11)  # the peak comes at `warmup`
    assert lr_factor("cosine", warmup, total, warmup) == pytest.approx(1.0)
    assert lr_factor("cosine", total, total, warmup) == pytest.approx(0.0, abs=1e-12)
    middle = warmup + (total - warmup) // 2
    assert lr_factor("cosine", middle, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor("linear", total, total, warmup) == pytest.approx(0.0)
    assert lr_factor("constant", 57, total, warmup) == 1.0


def nanogpt_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT's ``get_lr`` (train.py), restated."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


@pytest.mark.parametrize("total, warmup, ratio", [(2000, 100, 0.1), (50, 7, 0.0), (30, 0, 0.25)])
def test_cosine_schedule_gives_nanogpts_lr_at_every_step(total, warmup, ratio):
    opt = build_optimizer(_params(), "adamw", lr=1e-3)
    sched = build_scheduler(opt, "cosine", total, warmup, min_lr_ratio=ratio)
    for it in range(total + 1):  # the lr the update `it` (0-based) is taken with
        assert opt.param_groups[0]["lr"] == pytest.approx(nanogpt_lr(it, 1e-3, warmup, total, ratio * 1e-3),
                                                         rel=1e-12), it
        opt.step()
        sched.step()


def test_linear_schedule_decays_to_the_floor_and_constant_ignores_it():
    assert lr_factor("linear", 10, 110, 10, min_lr_ratio=0.2) == pytest.approx(1.0)
    assert lr_factor("linear", 60, 110, 10, min_lr_ratio=0.2) == pytest.approx(0.6)
    assert lr_factor("linear", 500, 110, 10, min_lr_ratio=0.2) == pytest.approx(0.2)
    assert lr_factor("constant", 500, 110, 10, min_lr_ratio=0.2) == 1.0


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_train_config_refuses_a_bad_min_lr_ratio(ratio):
    with pytest.raises(ConfigError, match=r"The 'min_lr_ratio' parameter of TrainConfig must be a float in \[0, 1\]"):
        TrainConfig(min_lr_ratio=ratio).validate()
