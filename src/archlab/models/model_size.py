"""How big the model a config describes would be, found before any memory is allocated.

The model is built on the meta device (shapes, no memory) while a registration hook
counts every parameter and buffer; the build stops as soon as a limit is passed, so a
tampered ``config.json`` (``num_layers=10**6``, ``embed_dim=10**9``) is refused in
about a second instead of exhausting memory.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import (register_module_buffer_registration_hook,
                                     register_module_parameter_registration_hook)
from torch.nn.parameter import UninitializedTensorMixin
from torch.overrides import TorchFunctionMode

from ..errors import CheckpointError, ConfigError

MAX_PARAMETERS_ENV = "ARCHLAB_MAX_PARAMETERS"
DEFAULT_MAX_PARAMETERS = 2_000_000_000
# Building a module costs 0.05-0.3 ms even on the meta device, so a config asking for a million
# layers is refused by its count of modules before the construction loop runs for minutes;
# BERT-large has about 400 modules that hold weights.
MAX_MODULES_ENV = "ARCHLAB_MAX_MODULES"
DEFAULT_MAX_MODULES = 2_000


class _TooLarge(Exception):
    pass


# In-place ops that change a tensor's shape. Every other in-place op leaves the shape as it is.
_RESHAPING = frozenset({"resize_", "resize_as_", "set_", "as_strided_", "squeeze_", "unsqueeze_", "t_",
                        "transpose_", "swapaxes_", "swapdims_"})


class _ShapesOnly(TorchFunctionMode):
    """Skips the in-place ops (``normal_``, ``uniform_``, ``zero_``: the initialisers) on meta
    tensors: counting needs only shapes, and ``normal_`` on meta costs seconds of imports at its
    first call, then milliseconds a tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else kwargs.get("tensor")  # nn.init.* pass it by keyword
        if (name.endswith("_") and not name.startswith("_") and name not in _RESHAPING
                and isinstance(target, torch.Tensor) and target.is_meta):
            return target
        return func(*args, **kwargs)


def _limit(env: str, default: int) -> int:
    text = os.environ.get(env)
    if text is None:
        return default
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"the environment variable {env} must be a number >= 1. Got {text!r} instead.")
    return value


def _largest_settings(kwargs: dict[str, Any]) -> str:
    sizes = {k: v for k, v in kwargs.items() if isinstance(v, int) and not isinstance(v, bool)}
    sizes.update({k: len(v) for k, v in kwargs.items() if isinstance(v, (list, tuple))})
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k}={v}" if isinstance(kwargs[k], int) else f"{k} of {v} entries" for k, v in top)


def check_model_size(name: str, kwargs: dict[str, Any], source: str | os.PathLike,
                     build: Callable[..., nn.Module]) -> int:
    """Build the model `source` describes on the meta device (shapes, no memory) and return its
    parameter count; `CheckpointError` above ``$ARCHLAB_MAX_PARAMETERS`` (default 2e9 parameters
    and buffer values) or ``$ARCHLAB_MAX_MODULES`` (default 2000 modules holding tensors). The
    build stops as soon as a limit is passed, so a tampered ``num_layers=10**6`` is refused fast.
    `build(**kwargs)` builds the model (the registry's `create_model` for `name`)."""
    max_parameters = _limit(MAX_PARAMETERS_ENV, DEFAULT_MAX_PARAMETERS)
    max_modules = _limit(MAX_MODULES_ENV, DEFAULT_MAX_MODULES)
    thread = threading.get_ident()
    tensors: set[int] = set()
    modules: set[int] = set()
    count = 0

    def tally(module: nn.Module, _name: str, tensor: torch.Tensor | None) -> None:
        nonlocal count
        if threading.get_ident() != thread or tensor is None or id(tensor) in tensors:
            return
        tensors.add(id(tensor))
        modules.add(id(module))
        if not isinstance(tensor, UninitializedTensorMixin):
            count += tensor.numel()
        if count > max_parameters or len(modules) > max_modules:
            raise _TooLarge

    # Weights a builder copies in (`pretrained`) leave the shapes as they are; reading them here
    # would load the file twice. The real build repeats any warning the builder gives.
    shapes = {k: v for k, v in kwargs.items() if k != "pretrained"}
    handles = [register_module_parameter_registration_hook(tally), register_module_buffer_registration_hook(tally)]
    try:
        with torch.device("meta"), _ShapesOnly(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build(**shapes)
    except _TooLarge:
        settings = _largest_settings(kwargs)
        if count > max_parameters:
            raise CheckpointError(
                f"{source} describes a '{name}' model of more than {count:,} parameters ({settings}), above the "
                f"limit of {max_parameters:,}; if it is genuine, raise the limit with the environment variable "
                f"{MAX_PARAMETERS_ENV}.") from None
        raise CheckpointError(
            f"{source} describes a '{name}' model of more than {max_modules:,} modules holding weights ({settings}), "
            f"above the limit; if it is genuine, raise the limit with the environment variable {MAX_MODULES_ENV}."
        ) from None
    except (RuntimeError, ConfigError) as err:  # e.g. a shape whose size overflows
        raise CheckpointError(f"{source} describes a '{name}' model that cannot be built: "
                              f"{str(err).strip().splitlines()[0]}") from None
    finally:
        for handle in handles:
            handle.remove()
    return sum(p.numel() for p in model.parameters())
