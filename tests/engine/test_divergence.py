"""Divergence is caught before NaN: a loss far above its start, a non-finite gradient norm, and
non-finite validation metrics; the checkpoint kept is the last one whose evaluation was finite."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archlab.cli import main
from archlab.data import TensorSplit
from archlab.engine import TrainConfig, fit
from archlab.engine.checkpoint import read_training_state
from archlab.engine.tasks import Task
from archlab.errors import DivergenceError


def _data(n: int = 32) -> dict:
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(x=torch.randn(n, 3, generator=g), y=torch.randn(n, generator=g))
    return {"train": split, "val": split}


class Scripted(Task):
    """A squared-error task whose training loss is multiplied by `scale(step)` and whose validation
    loss is `val(evaluation)`."""

    monitor = "val_loss"

    def __init__(self, scale=lambda step: 1.0, val=lambda i: 1.0):
        self.scale, self.val, self.steps, self.evaluations = scale, val, 0, 0

    def training_step(self, model, batch):
        self.steps += 1
        return self.scale(self.steps) * (model(batch["x"]).squeeze(-1) - batch["y"]).pow(2).mean()

    def evaluate(self, model, split, batch_size):
        self.evaluations += 1
        return {"loss": float(self.val(self.evaluations))}


def _fit(task, tmp_path=None, **config):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    options = dict(steps=20, batch_size=8, lr=1e-2, optimizer="sgd", quiet=True, **config)
    return fit(model, task, _data(), TrainConfig(**options), out=tmp_path)


def test_a_loss_far_above_its_start_stops_the_run_before_nan():
    task = Scripted(scale=lambda step: 1.0 if step < 12 else 1e6)
    with pytest.raises(DivergenceError, match=r"^training diverged at step 12: the loss .* is more than 1000 times"):
        _fit(task)


def test_a_non_finite_gradient_norm_stops_the_run_before_the_weights_change():
    class InfiniteGradient(Scripted):
        def training_step(self, model, batch):
            return torch.sqrt((model.weight - model.weight.detach()).abs()).sum()  # finite loss, inf gradient

    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    before = model.weight.detach().clone()
    with pytest.raises(DivergenceError, match="at step 1: the gradient norm is"):
        fit(model, InfiniteGradient(), _data(), TrainConfig(steps=3, batch_size=8, quiet=True))
    assert torch.equal(model.weight.detach(), before)


def test_the_kept_checkpoint_is_the_last_one_with_a_finite_evaluation(tmp_path):
    # 4 steps an epoch, an evaluation (and, with interval 0, a checkpoint) at each epoch's end
    task = Scripted(val=lambda i: 1.0 if i < 3 else math.nan)
    with pytest.raises(DivergenceError, match=r"at step 12: the validation metrics val_loss are not finite.*"
                                              r"kept at"):
        _fit(task, tmp_path / "run", checkpoint_interval=0.0)
    assert read_training_state(tmp_path / "run")["step"] == 8


def test_divergence_through_the_command_line_is_one_line_and_exit_1(tmp_path, capsys):
    code = main(["train", "mlp", "--data", "wine", "--lr", "1e6", "--epochs", "5", "--out", str(tmp_path / "r"),
                 "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and ("diverged" in err[0] or "became nan" in err[0])
