"""check_model_size: the count on the meta device is the real one, and the limits are read
from the environment."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.models.model_size import check_model_size
from archlab.models.registry import create_model
from archlab.errors import CheckpointError, ConfigError


@pytest.mark.parametrize("name", archlab.list_models())
def test_every_model_is_counted_on_the_meta_device_as_built(name):
    torch.manual_seed(0)
    counted = check_model_size(name, {}, "config.json", lambda **kw: create_model(name, **kw))
    assert counted == sum(p.numel() for p in archlab.create_model(name).parameters())


def test_the_limits_are_read_from_the_environment(monkeypatch):
    kwargs = {"in_features": 3, "num_classes": 2, "hidden_dims": [4]}
    assert check_model_size("mlp", kwargs, "config.json", lambda **kw: create_model("mlp", **kw)) == 26
    monkeypatch.setenv("ARCHLAB_MAX_PARAMETERS", "10")
    with pytest.raises(CheckpointError, match=r"config.json describes a 'mlp' model of more than 12 parameters "
                                              r"\(in_features=3, num_classes=2, hidden_dims of 1 entries\), above the "
                                              "limit of 10; .* ARCHLAB_MAX_PARAMETERS"):
        check_model_size("mlp", kwargs, "config.json", lambda **kw: create_model("mlp", **kw))
    monkeypatch.delenv("ARCHLAB_MAX_PARAMETERS")
    monkeypatch.setenv("ARCHLAB_MAX_MODULES", "1")
    with pytest.raises(CheckpointError, match="more than 1 modules holding weights.*ARCHLAB_MAX_MODULES"):
        check_model_size("mlp", kwargs, "config.json", lambda **kw: create_model("mlp", **kw))
    monkeypatch.setenv("ARCHLAB_MAX_MODULES", "0")
    with pytest.raises(ConfigError, match="ARCHLAB_MAX_MODULES must be a number >= 1. Got '0' instead."):
        check_model_size("mlp", kwargs, "config.json", lambda **kw: create_model("mlp", **kw))
