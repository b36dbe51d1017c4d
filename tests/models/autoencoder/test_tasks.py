"""Training tasks: the VAE's evaluation (seeded, binarized, IW NLL), the AAE's three phases
with their own optimizers, and a diverging adversarial phase that leaves the checkpoint intact."""

from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest
import torch

import archlab
from archlab.data import Dataset, DataSpec, TensorSplit
from archlab.engine import TrainConfig, build_optimizer, fit
from archlab.models.registry import create_task, load_model
from archlab.errors import ConfigError, NonFiniteLossError
from archlab.models.autoencoder import AAETask, VAETask


def _data(n=96, size=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    # two blurry "classes": bright top half or bright left half
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.1 * torch.rand(n, 1, size, size, generator=g)
    x[y == 0, :, : size // 2] += 0.8
    x[y == 1, :, :, : size // 2] += 0.8
    spec = DataSpec("toy-images", "image", (1, size, size), num_classes=2)
    split = TensorSplit(x=x.clamp(0, 1), y=y)
    return Dataset(spec, {"train": split, "val": split.subset(torch.arange(32)), "test": split.subset(torch.arange(32))})


def _model(name, **kwargs):
    torch.manual_seed(0)
    return archlab.create_model(name, in_channels=1, input_size=[6, 6], hidden_dims=[16], latent_dim=2, **kwargs)


def test_vae_evaluation_is_seeded_and_leaves_the_global_rng_alone():
    data = _data()
    model = _model("vae")
    task = create_task("vae", model, data.spec, iw_samples=20)
    state = torch.get_rng_state()
    first = task.evaluate(model, data["val"], batch_size=10)
    assert torch.equal(torch.get_rng_state(), state)
    assert first == task.evaluate(model, data["val"], batch_size=10)
    assert set(first) == {"loss", "elbo", "reconstruction", "kl", "nll"}
    assert first["kl"] >= 0 and first["elbo"] == pytest.approx(-first["reconstruction"] - first["kl"])
    assert -first["nll"] >= first["elbo"] - 0.5  # the IW bound is (in expectation) above the ELBO


def test_vae_dynamic_binarization_feeds_binary_inputs():
    model = _model("vae")
    x = torch.full((4, 1, 6, 6), 0.5)
    torch.manual_seed(0)
    first = VAETask.inputs(model, x)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, VAETask.inputs(model, x))  # a fresh binarization every time
    assert torch.equal(VAETask.inputs(_model("vae", binarize=False), x), x)


def test_vae_beta_weights_the_kl():
    data = _data()
    batch = next(data["train"].batches(16))
    losses = []
    for beta in (0.0, 1.0, 4.0):
        model = _model("vae", beta=beta, binarize=False)
        torch.manual_seed(1)
        losses.append(VAETask().training_step(model, batch))
    assert losses[0] < losses[1] < losses[2]
    torch.testing.assert_close(losses[2] - losses[1], 3 * (losses[1] - losses[0]))


def test_task_options_are_checked():
    spec = _data().spec
    with pytest.raises(ConfigError, match=r"The 'iw_samples' parameter of VAETask must be an int >= 0\. Got -1 instead\."):
        create_task("vae", _model("vae"), spec, iw_samples=-1)
    with pytest.raises(ConfigError, match=r"The 'adversarial_lr_scale' parameter of AAETask must be a float > 0\. "
                                          r"Got 0 instead\."):
        create_task("aae", _model("aae"), spec, adversarial_lr_scale=0)
    for betas in ((0.5,), (0.5, 1.0), (-0.1, 0.9), "0.5"):
        shown = re.escape(repr(betas) if isinstance(betas, str) else str(betas))
        with pytest.raises(ConfigError, match=rf"The 'adversarial_betas' parameter of AAETask must be two floats in "
                                              rf"\[0, 1\) or None\. Got {shown} instead\."):
            create_task("aae", _model("aae"), spec, adversarial_betas=betas)


def test_aae_phases_update_their_own_parameters():
    data = _data()
    model = _model("aae")
    task = AAETask(adversarial_lr_scale=0.5)
    optimizers = task.configure_optimizers(model, partial(build_optimizer, name="adam", lr=1e-2))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [{names[id(p)].split(".")[0] for g in opt.param_groups for p in g["params"]} for opt in optimizers]
    assert groups == [{"encoder", "decoder"}, {"discriminator"}, {"encoder"}]
    assert [opt.param_groups[0]["lr"] for opt in optimizers] == [1e-2, 5e-3, 5e-3]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = next(data["train"].batches(32))
    loss = task.optimization_step(model, batch, optimizers, grad_clip=1.0)
    assert loss.dim() == 0 and not loss.requires_grad
    for name, p in model.named_parameters():
        assert not torch.equal(before[name], p), f"{name} was not updated"
    assert all(p.grad is None for p in model.parameters())


def test_aae_adversarial_betas_reach_only_the_adversarial_optimizers():
    model = _model("aae")
    task = create_task("aae", model, _data().spec, adversarial_betas=[0.5, 0.99])
    optimizers = task.configure_optimizers(model, partial(build_optimizer, name="adam", lr=1e-3))
    assert [opt.param_groups[0]["betas"] for opt in optimizers] == [(0.9, 0.999), (0.5, 0.99), (0.5, 0.99)]


def test_aae_fit_lowers_the_reconstruction_loss_and_reports_code_statistics():
    data = _data(n=128)
    model = _model("aae")
    task = create_task("aae", model, data.spec)
    before = task.evaluate(model, data["val"], 64)
    fit(model, task, data, TrainConfig(epochs=5, batch_size=32, lr=2e-3, optimizer="adam", quiet=True))
    after = task.evaluate(model, data["val"], 64)
    assert after["loss"] < before["loss"]
    assert set(after) >= {"discriminator_accuracy", "code_mean_abs_max", "code_std_min", "code_std_max"}


def test_a_diverging_adversarial_phase_stops_with_the_checkpoint_intact(tmp_path):
    data = _data()
    model = _model("aae")
    task = create_task("aae", model, data.spec)
    out = tmp_path / "aae"

    class Diverge:
        def on_step_end(self, state):
            if state.step == 4:  # after the first epoch's checkpoint: blow up the discriminator
                with torch.no_grad():
                    model.discriminator[0].weight.fill_(float("inf"))

    config = TrainConfig(epochs=3, batch_size=32, checkpoint_interval=0, quiet=True)
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 5.*last good checkpoint is kept"):
        fit(model, task, data, config, out=out, callbacks=(Diverge(),))
    saved = load_model(out)
    assert all(torch.isfinite(p).all() for p in saved.parameters())
    x = data["val"]["x"]
    assert torch.isfinite(saved.anomaly_score(x)).all()


@pytest.mark.parametrize("name, extra", [("vae", {}), ("aae", {}), ("aae", {"standardize_code": True})])
def test_an_interrupted_run_resumes_to_the_same_weights(name, extra, tmp_path):
    import os
    import signal

    from safetensors.torch import load_file

    from archlab.errors import TrainingInterrupted

    options = dict(epochs=2, batch_size=32, seed=3, quiet=True, checkpoint_interval=0,
                   model_kwargs={"hidden_dims": [16], "latent_dim": 2, **extra})

    class Interrupt:
        def on_step_end(self, state):
            if state.step == 5:
                os.kill(os.getpid(), signal.SIGINT)

    data = _data()
    archlab.train(name, data, out=tmp_path / "full", **options)
    with pytest.raises(TrainingInterrupted):
        archlab.train(name, data, out=tmp_path / "cut", callbacks=(Interrupt(),), **options)
    archlab.train(name, data, out=tmp_path / "cut", resume=True, **options)
    full, cut = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)


def test_aae_with_standardized_codes_trains_and_reloads_its_running_statistics(tmp_path):
    data = _data(n=128)
    model = _model("aae", standardize_code=True)
    task = create_task("aae", model, data.spec)
    fit(model, task, data, TrainConfig(epochs=3, batch_size=32, lr=2e-3, optimizer="adam", quiet=True),
        out=tmp_path / "aae")
    # fit set the statistics to the training set's before the last evaluation: exact, not a running average
    train_codes = torch.as_tensor(model.transform(data["train"]["x"])).double()
    torch.testing.assert_close(train_codes.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5, rtol=0)
    with torch.no_grad():
        var = model.encoder(data["train"]["x"]).double().var(0)
    torch.testing.assert_close(train_codes.std(0), (var / (var + 1e-5)).sqrt(), atol=1e-5, rtol=0)  # BatchNorm's eps
    x = data["val"]["x"]
    np.testing.assert_allclose(load_model(tmp_path / "aae").transform(x), model.transform(x), rtol=1e-5, atol=1e-6)
