"""Mixed precision and compilation for `fit`: ``precision`` and ``compile`` of `TrainConfig`.

- ``precision="32"`` trains in float32 (the default); ``"bf16"`` runs the forward passes under
  ``torch.autocast(dtype=torch.bfloat16)`` on CPU or CUDA; ``"16-mixed"`` runs them in float16 under
  autocast with a ``torch.amp.GradScaler``, on CUDA only (float16 without loss scaling underflows, and
  CPU kernels gain nothing from it: use bf16 there). Weights and optimizer states stay float32.
  ``precision="64"`` (Lightning's "64-true") runs everything in float64: the weights, the optimizer
  states, the splits' floating-point tensors and, as torch's default dtype during the run, the
  tensors a task creates; for checks that float32's rounding would hide.
- ``compile=True`` compiles the model in place with ``nn.Module.compile`` (so its state dict and
  checkpoints keep their names). A model that cannot compile runs eagerly after one warning that
  names the reason; so does a platform without the C++ compiler that inductor needs on CPU.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..validation import check_choice

PRECISIONS = ("32", "64", "bf16", "16-mixed")


def precision_dtype(name: str) -> torch.dtype | None:
    """The dtype a run at precision `name` holds its weights and data in when it is not float32
    (float64 for ``"64"``), else None."""
    return torch.float64 if name == "64" else None

#: the backend `compile_model` hands to `torch.compile` (tests use ``"eager"``: dynamo's capture
#: without inductor's code generation)
COMPILE_BACKEND: Any = "inductor"


class Precision:
    """The autocast context and, for float16, the gradient scaler of one run on `device`; for
    ``"64"``, the dtype of the whole run (`true_dtype`) instead."""

    def __init__(self, name: str, device: torch.device):
        check_choice("TrainConfig", "precision", name, PRECISIONS)
        self.name = name
        self.device = device
        self.dtype: torch.dtype | None = None  # autocast's
        self.true_dtype = precision_dtype(name)  # the weights', data's and new tensors' ("64")
        self.scaler: torch.amp.GradScaler | None = None
        if self.true_dtype is not None and device.type == "mps":
            raise ConfigError("--precision 64 needs float64 kernels, which MPS does not have; use --device cpu.")
        if name == "16-mixed":
            if device.type != "cuda":
                raise ConfigError(f"--precision 16-mixed (float16 with a gradient scaler) needs a CUDA GPU; this run "
                                  f"is on {device.type}. Use --precision bf16, which autocasts on CPU too.")
            self.dtype = torch.float16
            self.scaler = torch.amp.GradScaler("cuda")
        elif name == "bf16":
            if device.type == "cuda" and not torch.cuda.is_bf16_supported():
                raise ConfigError("--precision bf16 needs a GPU with bfloat16 support; this one has none. "
                                  "Use --precision 16-mixed.")
            self.dtype = torch.bfloat16

    def autocast(self):
        """``torch.autocast`` at the run's dtype, or nothing at float32."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @contextmanager
    def default_dtype(self) -> Iterator[None]:
        """torch's default dtype set to `true_dtype` while the run trains and scores (so the tensors
        a task creates, such as a graph's edge weights, match its weights), or nothing at float32."""
        if self.true_dtype is None:
            yield
            return
        previous = torch.get_default_dtype()
        torch.set_default_dtype(self.true_dtype)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


def compiler_missing(device: torch.device) -> str | None:
    """Why `torch.compile` cannot run here, or None."""
    from torch._dynamo import is_dynamo_supported

    if not is_dynamo_supported():
        return (f"torch.compile does not support this platform (Python "
                f"{sys.version_info.major}.{sys.version_info.minor} on {sys.platform})")
    if COMPILE_BACKEND == "inductor" and device.type == "cpu":
        from torch._inductor import config as inductor_config

        configured = inductor_config.cpp.cxx
        candidates = [c for c in (configured if isinstance(configured, tuple) else (configured,)) if c]
        candidates = candidates or ["g++"]
        if not any(shutil.which(c) for c in candidates):
            return f"inductor needs a C++ compiler on CPU and none was found ({', '.join(candidates)})"
    return None


def compile_model(model: nn.Module, device: torch.device) -> bool:
    """Compile `model` in place (`nn.Module.compile`); False, after one warning, when this platform
    cannot compile."""
    reason = compiler_missing(device)
    if reason is not None:
        warnings.warn(f"--compile: {reason}; training runs eagerly.", RuntimeWarning, stacklevel=2)
        return False
    model.compile(backend=COMPILE_BACKEND)
    return True


def uncompile(model: nn.Module, err: BaseException) -> None:
    """Run `model` eagerly again after its compilation failed with `err`, with one warning naming why."""
    model._compiled_call_impl = None
    cause = getattr(err, "inner_exception", None) or err  # a backend's failure, as dynamo wraps it
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    warnings.warn(f"--compile: {type(model).__name__} could not be compiled ({type(cause).__name__}: {first[:300]}); "
                  "training runs eagerly.", RuntimeWarning, stacklevel=2)


def is_compile_error(err: BaseException) -> bool:
    """Whether `err` came from dynamo or a compiler backend rather than from the model's own code."""
    module = type(err).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor", "torch.fx")) or "BackendCompilerFailed" in \
        type(err).__name__


def check_sync_batchnorm(model: nn.Module, device: torch.device, world_size: int) -> nn.Module:
    """`model` with its BatchNorm layers as `nn.SyncBatchNorm` (statistics over every rank's examples).
    torch's SyncBatchNorm runs on GPUs only: on CPU it is refused."""
    if device.type == "cpu":
        raise ConfigError("--sync-batchnorm needs CUDA (torch's SyncBatchNorm has no CPU kernel); on CPU each rank "
                          "normalizes with its own shard's statistics. Drop --sync-batchnorm, or run on GPUs.")
    if world_size <= 1:
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
