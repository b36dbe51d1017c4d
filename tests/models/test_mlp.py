"""The MLP model's optional truncated-normal initialisation (Finn et al.'s MAML sinusoid network)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import archlab
from archlab.errors import ConfigError


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def test_init_std_draws_truncated_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    model = archlab.create_model("mlp", in_features=1, num_classes=1, hidden_dims=[400, 400], init_std=0.01)
    for layer in linears(model):
        assert torch.count_nonzero(layer.bias) == 0
        assert layer.weight.abs().max() <= 0.02  # truncated at two standard deviations
    big = linears(model)[1].weight  # 160,000 draws
    # a normal truncated at +-2 sigma has standard deviation 0.8796 sigma and mean 0
    assert big.std().item() == pytest.approx(0.8796 * 0.01, rel=0.02)
    assert abs(big.mean().item()) < 1e-4


def test_default_init_is_torchs_and_is_not_truncated_normal():
    torch.manual_seed(0)
    model = archlab.create_model("mlp", in_features=1, num_classes=1, hidden_dims=[40, 40])
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))
    for ours, theirs in zip(linears(model), linears(reference)):
        torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=0)
        torch.testing.assert_close(ours.bias, theirs.bias, rtol=0, atol=0)
    assert linears(model)[0].weight.abs().max() > 0.02  # uniform(-1, 1) for one input feature


def test_init_std_is_recorded_and_survives_a_checkpoint(tmp_path):
    from archlab.engine.checkpoint import save_checkpoint
    from archlab.models.registry import load_model

    model = archlab.create_model("mlp", in_features=2, num_classes=1, hidden_dims=[8], init_std=0.5)
    assert model.archlab_config["kwargs"]["init_std"] == 0.5
    save_checkpoint(tmp_path / "run", model, meta={"model": model.archlab_config, "data": None, "task": None})
    loaded = load_model(tmp_path / "run")
    x = torch.randn(5, 2)
    torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.parametrize("bad", [0, -0.01, float("inf"), float("nan"), True, "0.01"])
def test_bad_init_std_is_refused_by_name(bad):
    shown = re.escape(repr(bad) if isinstance(bad, str) else str(bad))
    with pytest.raises(ConfigError, match=rf"^The 'init_std' parameter of MLPClassifier must be a float > 0 or None\. "
                                          rf"Got {shown} instead\.$"):
        archlab.create_model("mlp", in_features=1, num_classes=1, init_std=bad)
