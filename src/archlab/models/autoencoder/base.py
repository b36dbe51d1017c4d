"""What every autoencoder offers its users: encoding (`encode`, scikit-learn style
`transform`), reconstruction, latent interpolation and a per-example anomaly score.

Tensor methods (`encode`, `decode`, `reconstruct`, `anomaly_score`) are plain
differentiable functions of their input; `transform`, `sample` and `interpolate`
are inference helpers (no gradient, evaluation mode, NumPy accepted).
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ...errors import DataError
from ..base import check_input
from .losses import bernoulli_log_likelihood, check_unit_interval, gaussian_log_likelihood, squared_error
from ...validation import check_int


@contextlib.contextmanager
def inference(model: nn.Module) -> Iterator[None]:
    """Evaluation mode without gradients, restoring the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class Autoencoder(nn.Module, abc.ABC):
    """Base of `AE`, `VAE` and `AAE`: an encoder, a decoder with a Bernoulli (logits) or
    Gaussian output, and the user-facing helpers.

    Subclasses set ``input_shape``, ``latent_dim``, ``decoder_kind``, ``decoder`` and
    implement `encode`.
    """

    input_shape: tuple[int, ...]
    latent_dim: int
    decoder_kind: str  # "bernoulli" | "gaussian"

    def _init_likelihood(self) -> None:
        # A learned per-feature log standard deviation for the Gaussian decoder.
        if self.decoder_kind == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(self.input_shape))

    @property
    def feature_dims(self) -> int:
        return len(self.input_shape)

    def check_input(self, x: torch.Tensor) -> None:
        check_input(x, self.input_shape, type(self).__name__)

    def check_targets(self, x: torch.Tensor) -> None:
        """Refuse inputs a Bernoulli decoder cannot model (outside [0, 1])."""
        if self.decoder_kind == "bernoulli":
            check_unit_interval(x, f"{type(self).__name__} with decoder='bernoulli'")

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each input (the posterior mean for the VAE).

        Shapes:
            input ``(B, *input_shape)``; output ``(B, latent_dim)``.
        """

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output: Bernoulli logits, or the Gaussian mean.

        Shapes:
            input ``(*, latent_dim)``; output ``(*, *input_shape)``.
        """
        return self.decoder(z)

    def output_mean(self, out: torch.Tensor) -> torch.Tensor:
        """The mean of the decoder's distribution: ``sigmoid(logits)`` or the Gaussian mean."""
        return torch.sigmoid(out) if self.decoder_kind == "bernoulli" else out

    def log_likelihood_given_code(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(x \\mid z)` from the decoder output; ``(*, B)`` for ``out`` of shape ``(*, B, *input_shape)``."""
        if self.decoder_kind == "bernoulli":
            return bernoulli_log_likelihood(out, x, self.feature_dims)
        return gaussian_log_likelihood(out, x, self.log_scale, self.feature_dims)

    def reconstruction_loss(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-example reconstruction loss of a deterministic autoencoder, shape ``(B,)``: binary
        cross-entropy on logits (Bernoulli decoder) or squared error (Gaussian decoder of fixed variance)."""
        if self.decoder_kind == "bernoulli":
            return -bernoulli_log_likelihood(out, x, self.feature_dims)
        return squared_error(out, x, self.feature_dims)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's mean for the code of `x`; same shape as `x`."""
        self.check_input(x)
        return self.output_mean(self.decode(self.encode(x)))

    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction error :math:`\\lVert x - \\hat x \\rVert^2` per example, shape ``(B,)``;
        zero for a perfect reconstruction, differentiable in `x`."""
        return squared_error(self.reconstruct(x), x, self.feature_dims)

    # --- inference helpers -------------------------------------------------------------

    def as_input(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A float tensor on the model's device shaped ``(N, *input_shape)``; flat rows
        ``(N, prod(input_shape))`` are reshaped, scikit-learn style."""
        device = next(self.parameters()).device
        x = torch.as_tensor(np.asarray(X, dtype=np.float32) if not torch.is_tensor(X) else X,
                            dtype=torch.float32, device=device)
        if x.dim() == 2 and len(self.input_shape) > 1 and x.shape[1] == math.prod(self.input_shape):
            x = x.reshape(len(x), *self.input_shape)
        if x.dim() == len(self.input_shape):
            raise DataError(f"{type(self).__name__} expects a batch of inputs of shape (N, "
                            f"{', '.join(map(str, self.input_shape))}); got one input of shape {tuple(x.shape)}. "
                            "Add a batch dimension.")
        self.check_input(x)
        return x

    def transform(self, X: np.ndarray | torch.Tensor, batch_size: int = 1024) -> np.ndarray:
        """Codes of `X` as a NumPy array ``(N, latent_dim)`` (dimensionality reduction)."""
        x = self.as_input(X)
        with inference(self):
            return torch.cat([self.encode(x[i:i + batch_size]).cpu() for i in range(0, len(x), batch_size)]
                             ).numpy() if len(x) else np.zeros((0, self.latent_dim), np.float32)

    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decoded means along the straight line between the codes of inputs `a` and `b`.

        Shapes:
            `a`, `b` ``(*input_shape)`` or ``(1, *input_shape)``; output ``(steps, *input_shape)``.
        """
        check_int(f"{type(self).__name__}.interpolate", "steps", steps, minimum=2)  # both end points included
        ends = []
        for end in (a, b):
            end = torch.as_tensor(end, dtype=torch.float32) if not torch.is_tensor(end) else end
            ends.append(self.as_input(end.reshape(1, *self.input_shape) if end.numel() == math.prod(self.input_shape)
                                      else end))
        with inference(self):
            za, zb = (self.encode(e) for e in ends)  # (1, D) each
            t = torch.linspace(0.0, 1.0, steps, device=za.device).unsqueeze(1)  # (steps, 1)
            return self.output_mean(self.decode((1 - t) * za + t * zb))


class PriorSampling:
    """`sample(n)` for autoencoders with a prior over codes (VAE, AAE)."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` new examples: the decoder's mean for codes drawn from the prior.

        Shapes:
            output ``(n, *input_shape)``.
        """
        check_int(f"{type(self).__name__}.sample", "n", n, minimum=1)
        with inference(self):
            return self.output_mean(self.decode(self.sample_prior(n, generator)))
