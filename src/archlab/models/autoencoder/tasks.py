"""Training tasks of the autoencoder family: ``autoencoder`` (AE), ``vae`` and ``aae``.

Evaluation draws its randomness (posterior samples, binarization, prior samples) from a
`torch.Generator` seeded with `eval_seed`, never from torch's global RNG, so a resumed
run stays bitwise identical and two evaluations of one checkpoint agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...engine.distributed import all_reduce_gradients, bernoulli_rows, randn_rows, shard_rows
from ...engine.tasks import Task, training_task
from ...errors import NonFiniteLossError
from ...nn.gaussian import gaussian_kl
from .losses import code_sparsity, discriminator_loss, elbo, generator_loss, squared_error
from ...validation import check_float, check_int, fail


def _generator(split: Any, batch_size: int, seed: int) -> torch.Generator:
    first = next(iter(split.batches(batch_size)), None)
    device = first["x"].device if first is not None else torch.device("cpu")
    return torch.Generator(device=device).manual_seed(seed)


def _check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    check_int(owner, name, value, minimum=minimum)
    return value


def _check_betas(owner: str, betas: Any) -> tuple[float, float] | None:
    if betas is None:
        return None
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise fail(owner, "adversarial_betas", "two floats in [0, 1) or None", betas)
    return float(betas[0]), float(betas[1])


class AETask(Task):
    """Reconstruction loss plus the model's L1 code penalty (`AE.sparsity`)."""

    monitor = "val_loss"
    mode = "min"

    def training_step(self, model, batch):
        x = batch["x"]
        model.check_targets(x)
        out, code = model(x)  # the input is corrupted inside the model when it denoises
        loss = model.reconstruction_loss(out, x).mean()
        if model.sparsity > 0:
            loss = loss + model.sparsity * code_sparsity(code).mean()
        return loss

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        totals = torch.zeros(3, dtype=torch.float64)
        count = 0
        for batch in split.batches(batch_size):
            x = batch["x"]
            model.check_targets(x)
            out, code = model(x)  # evaluation mode: no input corruption
            reconstruction = model.reconstruction_loss(out, x)
            error = squared_error(model.output_mean(out), x, model.feature_dims)
            totals += torch.stack([reconstruction.sum(), code_sparsity(code).sum(), error.sum()]).double().cpu()
            count += len(x)
        if count == 0:
            return {}
        reconstruction, sparsity, error = (totals / count).tolist()
        return {"loss": reconstruction + model.sparsity * sparsity, "reconstruction": reconstruction,
                "reconstruction_error": error}


class VAETask(Task):
    """Negative beta-ELBO for training; ELBO, its two terms and, with `iw_samples` = k > 0,
    the importance-weighted negative log-likelihood ``nll`` (Burda et al.) for evaluation.
    With ``model.binarize`` the inputs are binarized, :math:`x \\sim \\mathrm{Bernoulli}(x)`:
    afresh at every training step (dynamic binarization), and with the seeded generator in evaluation."""

    monitor = "val_loss"
    mode = "min"

    def __init__(self, iw_samples: int = 0, eval_seed: int = 0):
        self.iw_samples = _check_int("VAETask", "iw_samples", iw_samples, 0)
        self.eval_seed = _check_int("VAETask", "eval_seed", eval_seed, 0)

    @staticmethod
    def inputs(model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        model.check_targets(x)
        return torch.bernoulli(x, generator=generator) if model.binarize else x

    def training_step(self, model, batch):
        # the step's draws are made for the whole batch when `fit` split it across ranks (`shard_rows`),
        # so N processes draw each example's binarization and noise as one process does
        rows = shard_rows(batch)
        x = batch["x"]
        model.check_targets(x)
        x = bernoulli_rows(x, rows) if model.binarize else x
        out = model(x, noise=randn_rows((model.latent_dim,), rows, x))
        reconstruction = model.log_likelihood_given_code(out.out, x)
        return -elbo(reconstruction, gaussian_kl(out.mu, out.logvar), model.beta).mean()

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        generator = _generator(split, batch_size, self.eval_seed)
        totals = torch.zeros(3, dtype=torch.float64)  # sum of log p(x|z), KL, IW log-likelihood
        count = 0
        for batch in split.batches(batch_size):
            x = self.inputs(model, batch["x"], generator)
            out = model(x, generator=generator)
            reconstruction = model.log_likelihood_given_code(out.out, x)
            kl = gaussian_kl(out.mu, out.logvar)
            iw = model.log_likelihood(x, self.iw_samples, generator) if self.iw_samples > 0 else torch.zeros(1)
            totals += torch.stack([reconstruction.sum(), kl.sum(), iw.sum()]).double().cpu()
            count += len(x)
        if count == 0:
            return {}
        reconstruction, kl, iw = (totals / count).tolist()
        metrics = {"loss": -(reconstruction - model.beta * kl), "elbo": reconstruction - kl,
                   "reconstruction": -reconstruction, "kl": kl}
        if self.iw_samples > 0:
            metrics["nll"] = -iw
        return metrics


class AAETask(Task):
    """The three phases of Makhzani et al. on every batch, each with its own optimizer:
    reconstruction (encoder + decoder), discriminator, generator (encoder).

    `adversarial_lr_scale` multiplies the learning rate of the two adversarial phases, and
    `adversarial_betas`, when given, are their Adam betas (GANs often train better with a
    smaller first-moment decay, such as (0.5, 0.999)).
    `training_step` returns the sum of the three losses (every parameter gets a gradient),
    for inspection; `optimization_step` is what trains.
    """

    monitor = "val_loss"
    mode = "min"

    def __init__(self, adversarial_lr_scale: float = 1.0, eval_seed: int = 0,
                 adversarial_betas: tuple[float, float] | None = None):
        check_float("AAETask", "adversarial_lr_scale", adversarial_lr_scale, low=0, low_open=True)
        self.adversarial_lr_scale = float(adversarial_lr_scale)
        self.adversarial_betas = _check_betas("AAETask", adversarial_betas)
        self.eval_seed = _check_int("AAETask", "eval_seed", eval_seed, 0)

    @staticmethod
    def phase_losses(model: nn.Module, x: torch.Tensor, prior_codes: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean reconstruction, discriminator and generator losses of one batch."""
        model.check_targets(x)
        out, code = model(x)
        reconstruction = model.reconstruction_loss(out, x).mean()
        disc = discriminator_loss(model.discriminate(prior_codes), model.discriminate(code.detach())).mean()
        gen = generator_loss(model.discriminate(code)).mean()
        return reconstruction, disc, gen

    def training_step(self, model, batch):
        x = batch["x"]
        return sum(self.phase_losses(model, x, model.sample_prior(len(x))))

    def configure_optimizers(self, model, make_optimizer: Callable) -> list[torch.optim.Optimizer]:
        autoencoder = make_optimizer([*model.encoder.parameters(), *model.decoder.parameters()])
        adversarial = {} if self.adversarial_betas is None else {"betas": self.adversarial_betas}
        discriminator = make_optimizer(model.discriminator.parameters(), **adversarial)
        generator = make_optimizer(model.encoder.parameters(), **adversarial)
        for optimizer in (discriminator, generator):
            for group in optimizer.param_groups:
                group["lr"] *= self.adversarial_lr_scale
        return [autoencoder, discriminator, generator]

    @staticmethod
    def _update(model: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, grad_clip: float | None
                ) -> None:
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLossError(step=-1, value=value)
        model.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in optimizer.param_groups for p in g["params"]]
        all_reduce_gradients(params)  # averaged over the ranks under torchrun
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()

    def optimization_step(self, model, batch, optimizers, grad_clip):
        x = batch["x"]
        model.check_targets(x)
        autoencoder, discriminator, generator = optimizers
        # 1. reconstruction: encoder and decoder
        out, _ = model(x)
        reconstruction = model.reconstruction_loss(out, x).mean()
        self._update(model, reconstruction, autoencoder, grad_clip)
        # 2. regularization, discriminator: prior samples are "real", codes are "fake"
        with torch.no_grad():
            code = model.encode(x)
        disc = discriminator_loss(model.discriminate(model.sample_prior(len(x))), model.discriminate(code)).mean()
        self._update(model, disc, discriminator, grad_clip)
        # 3. regularization, generator: the encoder learns to fool the discriminator
        gen = generator_loss(model.discriminate(model.encode(x))).mean()
        self._update(model, gen, generator, grad_clip)
        model.zero_grad(set_to_none=True)
        return reconstruction.detach()

    def calibrate(self, model, train, batch_size):
        if isinstance(model.standardize, nn.BatchNorm1d):  # exact code statistics, not a running average
            model.fit_code_statistics(batch["x"] for batch in train.batches(batch_size))

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        generator = _generator(split, batch_size, self.eval_seed)
        totals = torch.zeros(4, dtype=torch.float64)  # reconstruction, squared error, correct real, correct fake
        code_sum = code_sq = None
        count = 0
        for batch in split.batches(batch_size):
            x = batch["x"]
            model.check_targets(x)
            out, code = model(x)
            real = model.discriminate(model.sample_prior(len(x), generator))
            fake = model.discriminate(code)
            totals += torch.stack([model.reconstruction_loss(out, x).sum(),
                                   squared_error(model.output_mean(out), x, model.feature_dims).sum(),
                                   (real > 0).sum(), (fake <= 0).sum()]).double().cpu()
            code = code.double().cpu()
            code_sum = code.sum(0) if code_sum is None else code_sum + code.sum(0)
            code_sq = code.pow(2).sum(0) if code_sq is None else code_sq + code.pow(2).sum(0)
            count += len(x)
        if count == 0:
            return {}
        reconstruction, error, real_ok, fake_ok = totals.tolist()
        mean = code_sum / count
        std = (code_sq / count - mean.pow(2)).clamp_min(0).sqrt()
        return {"loss": reconstruction / count, "reconstruction_error": error / count,
                "discriminator_accuracy": (real_ok + fake_ok) / (2 * count),
                "code_mean_abs_max": float(mean.abs().max()), "code_std_min": float(std.min()),
                "code_std_max": float(std.max())}


@training_task("autoencoder")
def autoencoder_task(model, spec) -> Task:
    return AETask()


@training_task("vae")
def vae_task(model, spec, iw_samples: int = 0, eval_seed: int = 0) -> Task:
    return VAETask(iw_samples, eval_seed)


@training_task("aae")
def aae_task(model, spec, adversarial_lr_scale: float = 1.0, eval_seed: int = 0,
         adversarial_betas: tuple[float, float] | None = None) -> Task:
    return AAETask(adversarial_lr_scale, eval_seed, adversarial_betas)
