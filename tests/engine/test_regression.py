"""The regression task: least squares on the standardized target, metrics in the target's units."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.data import DataSpec, TensorSplit
from archlab.engine import classification_task
from archlab.engine.regression import RegressionTask
from archlab.errors import ConfigError


def linear(weight: list[float], bias: float) -> nn.Linear:
    layer = nn.Linear(len(weight), 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weight], dtype=torch.float64))
        layer.bias.fill_(bias)
    return layer


def regression_spec(mean: float = 0.0, std: float = 1.0) -> DataSpec:
    return DataSpec("t", "tabular", (2,), 0, preprocess={"target_kind": "regression", "target_mean": mean,
                                                         "target_std": std})


def test_metrics_match_scikit_learn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(37, 2, generator=generator, dtype=torch.float64)
    y = 10 + 5 * x[:, 0] - 2 * x[:, 1] + torch.randn(37, generator=generator, dtype=torch.float64)
    task = RegressionTask(target_mean=10.0, target_std=4.0)
    model = linear([1.0, -0.5], 0.1)
    metrics = task.evaluate(model, TensorSplit(x=x, y=y), batch_size=8)  # several batches, one ragged
    predicted = (model(x)[:, 0] * 4.0 + 10.0).detach().numpy()
    assert metrics["mse"] == pytest.approx(mean_squared_error(y.numpy(), predicted), rel=1e-12)
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y.numpy(), predicted), rel=1e-12)
    assert metrics["r2"] == pytest.approx(r2_score(y.numpy(), predicted), rel=1e-10)
    assert metrics["loss"] == pytest.approx(metrics["mse"] / 16.0, rel=1e-12)  # the standardized target's MSE


def test_training_loss_is_on_the_standardized_target_and_predict_undoes_it():
    task = RegressionTask(target_mean=100.0, target_std=20.0)
    model = linear([0.0, 0.0], 0.5)  # predicts z = 0.5, that is y = 110
    batch = {"x": torch.zeros(3, 2, dtype=torch.float64), "y": torch.tensor([100.0, 110.0, 140.0])}
    z = (batch["y"] - 100.0) / 20.0
    torch.testing.assert_close(task.training_step(model, batch).double(), ((0.5 - z.double()) ** 2).mean())
    torch.testing.assert_close(task.predict(model, batch), torch.full((3,), 110.0, dtype=torch.float64))


def test_constant_target_r2_follows_scikit_learn():
    task = RegressionTask()
    split = TensorSplit(x=torch.zeros(4, 2, dtype=torch.float64), y=torch.full((4,), 0.5, dtype=torch.float64))
    assert task.evaluate(linear([0.0, 0.0], 0.5), split, 2)["r2"] == 1.0  # perfect
    assert task.evaluate(linear([0.0, 0.0], 0.0), split, 2)["r2"] == 0.0


def test_classification_task_gives_regression_for_a_numeric_target():
    task = classification_task(None, regression_spec(3.0, 2.0))
    assert isinstance(task, RegressionTask) and (task.target_mean, task.target_std) == (3.0, 2.0)
    assert (task.monitor, task.mode) == ("val_mse", "min")
    assert regression_spec().model_kwargs()["num_classes"] == 1
    with pytest.raises(ConfigError, match="label_smoothing applies to class targets"):
        classification_task(None, regression_spec(), label_smoothing=0.1)


def test_a_model_with_several_outputs_is_refused():
    batch = {"x": torch.zeros(2, 2), "y": torch.zeros(2)}
    with pytest.raises(ConfigError, match=r"one value per example, shape \(B, 1\); got \(2, 3\)"):
        RegressionTask().training_step(nn.Linear(2, 3), batch)
    with pytest.raises(ConfigError, match="'target_std' parameter of RegressionTask must be a float > 0"):
        RegressionTask(target_std=0.0)
