"""Registry-driven smoke tests over every registered model."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.errors import ConfigError
from archlab.jobs.train import model_kwargs_for
from archlab.models.registry import create_model, create_task, list_models, model_info

from .examples import example_for


def build(name: str, seed: int = 0):
    spec, batch = example_for(name)
    torch.manual_seed(seed)
    model = archlab.create_model(name, **model_kwargs_for(name, spec, {}))
    return model, create_task(model_info(name).task, model, spec), batch


@pytest.mark.parametrize("name", archlab.list_models())
def test_training_step_reaches_every_parameter(name):
    model, task, batch = build(name)
    model.train()
    loss = task.training_step(model, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", archlab.list_models())
def test_same_seed_same_output(name):
    outputs = []
    for _ in range(2):
        model, task, batch = build(name, seed=3)
        model.eval()
        with torch.no_grad():
            outputs.append(task.training_step(model, batch))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", [n for n in archlab.list_models() if model_info(n).task == "classification"])
def test_classifier_output_shape(name):
    model, _, batch = build(name)
    model.eval()
    with torch.no_grad():
        out = model(batch["x"], lengths=batch["lengths"]) if "lengths" in batch else model(batch["x"])
    assert out.shape == (len(batch["y"]), 3)


def test_unknown_model_suggests_close_match():
    with pytest.raises(ConfigError, match="Did you mean 'lstm'"):
        archlab.create_model("lstn")


def test_unknown_kwarg_lists_valid_keys():
    with pytest.raises(ConfigError, match="Valid keys: .*hidden_dims"):
        archlab.create_model("mlp", hiden_dims=[3])


def test_model_records_its_config_with_the_defaults():
    model = archlab.create_model("mlp", in_features=7, num_classes=2)
    assert model.archlab_config == {"name": "mlp", "kwargs": {
        "in_features": 7, "num_classes": 2, "hidden_dims": (100,), "activation": "relu", "dropout": 0.0,
        "batch_norm": False, "init_std": None}}


def test_a_checkpoint_is_rebuilt_as_saved_after_a_default_changes(tmp_path, monkeypatch):
    import dataclasses
    import inspect

    from archlab.engine.checkpoint import save_checkpoint
    from archlab.models import registry

    model = archlab.create_model("mlp", in_features=5, num_classes=3)
    save_checkpoint(tmp_path / "run", model, meta={"model": model.archlab_config})
    info = registry.model_info("mlp")

    signature = inspect.signature(info.builder)
    signature = signature.replace(parameters=[
        p.replace(default=(128,)) if p.name == "hidden_dims" else p for p in signature.parameters.values()])

    def wider(**kwargs):  # mlp with another default
        bound = signature.bind(**kwargs)
        bound.apply_defaults()
        return info.builder(**bound.arguments)

    wider.__signature__ = signature
    monkeypatch.setitem(registry._MODELS, "mlp", dataclasses.replace(info, builder=wider))
    widths = [p.shape[0] for p in archlab.create_model("mlp", in_features=5, num_classes=3).parameters()]
    assert widths == [128, 128, 3, 3]
    loaded = archlab.load_model(tmp_path / "run")  # built with (100,) as saved, not the new default
    saved, rebuilt = model.state_dict(), loaded.state_dict()
    assert list(saved) == list(rebuilt) and all(torch.equal(saved[k], rebuilt[k]) for k in saved)


def test_a_checkpoint_that_recorded_only_the_given_kwargs_is_built_with_the_former_defaults(tmp_path):
    from archlab.engine.checkpoint import save_checkpoint

    model = archlab.create_model("mlp", in_features=5, num_classes=3, hidden_dims=[64, 64])  # mlp's until 2026-12
    save_checkpoint(tmp_path / "run", model, meta={"model": {"name": "mlp", "kwargs": {"in_features": 5,
                                                                                      "num_classes": 3}}})
    loaded = archlab.load_model(tmp_path / "run")
    assert [tuple(p.shape) for p in loaded.parameters()] == [tuple(p.shape) for p in model.parameters()]


def test_a_user_length_replaces_the_default_length_of_the_other_kind():
    from archlab.jobs.train import train_config

    assert train_config("gpt", epochs=2).steps is None and train_config("gpt", epochs=2).epochs == 2
    assert train_config("cnn", steps=7).epochs is None and train_config("cnn", steps=7).steps == 7


def _size_parameter(name: str) -> str:
    """The first int hyperparameter whose default is a positive size."""
    from archlab.validation import annotations_of

    info = model_info(name)
    hints = annotations_of(info.builder)
    return next(p for p, par in info.parameters.items() if hints.get(p) is int and type(par.default) is int
                and par.default >= 1)


@pytest.mark.parametrize("name", list_models())
def test_a_mistyped_hyperparameter_exits_2_in_every_family(name, capsys):
    from archlab.cli import main

    key = _size_parameter(name)
    assert main(["train", name, "--data", "digits", "--set", f"{key}=abc", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"archlab: error: The '{key}' parameter of model '{name}' must be an int. Got 'abc' instead."]


@pytest.mark.parametrize("name", list_models())
def test_a_negative_size_is_refused_as_a_configuration_error_in_every_family(name):
    with pytest.raises(ConfigError, match=_size_parameter(name)):
        create_model(name, **{_size_parameter(name): -3})


@pytest.mark.parametrize("name", list_models())
def test_a_builder_restates_no_default_of_the_class_it_builds(name):
    """A builder's defaults are its class's defaults, and the class's other parameters are fixed by the
    builder on purpose (e.g. lenet5's channels), never left to drift."""
    import inspect

    from .examples import example_for

    spec, _ = example_for(name)
    model = create_model(name, **model_kwargs_for(name, spec, {}))
    built = inspect.signature(type(model).__init__).parameters
    for key, parameter in model_info(name).parameters.items():
        if key in built and built[key].default is not inspect.Parameter.empty:
            assert parameter.default == built[key].default, key
