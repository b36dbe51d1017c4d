"""How a batch of tasks is executed: a per-task loop, or `torch.vmap` over the tasks.

Neither wins everywhere. `vmap` turns the 32 small per-task forward/backward passes
into batched kernels, which pays when the model and its tasks are small (the sinusoid MLP:
a sixth of the loop's time); for a conv net on CPU, batched (grouped) convolutions and the
per-task graphs held at once make it hardly faster (and not reliably) but far larger than
the loop, and slower with many examples a task (see ``benchmarks/maml_speed.py``).
The loop is also the correctness reference: `vmap` is only chosen where its
meta-gradients match the loop's (tests/meta/test_strategies.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

STRATEGIES = ("auto", "loop", "vmap")

#: On CPU, vmap is chosen while (support + query examples a task) x (trainable parameters) is
#: at most this. Measured with benchmarks/maml_speed.py (meta-batch 32, one second-order step, 2
#: threads, rounds alternating between strategies) and a sinusoid timing: the sinusoid MLP 40-40
#: (1.8k parameters, 20 examples a task) takes 4.7 ms under vmap against 27 ms in the loop, while the
#: paper's 4x64 conv net (112k parameters) gains little and unreliably from vmap at 10 examples a
#: task (0.75x to 1.07x the reference loop's time over five runs, against the loop's steady 0.95x to
#: 1.06x) for 620 MB against 10 MB (the loop frees each task's graph after its backward), and at 80
#: examples vmap takes 4x the loop's time and 3.9 GB.
VMAP_MAX_WORK_CPU = 200_000


def vmap_unsupported(model: nn.Module) -> str | None:
    """Why `vmap` over tasks cannot run this model, or None.

    torch's fused recurrent kernels (`nn.RNN`/`nn.LSTM`/`nn.GRU`) have no batching rule
    for per-task weights, so recurrent models run in the loop.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            return f"'{name}' is a {type(module).__name__}, whose fused kernel vmap cannot batch over per-task weights"
    return None


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ConfigError(f"The 'strategy' parameter must be one of {STRATEGIES}. Got {strategy!r}.")
    return strategy


def choose_strategy(model: nn.Module, device: torch.device, examples_per_task: int, requested: str = "auto") -> str:
    """`requested` unless it is ``auto``: then vmap on a GPU, or on a CPU for small models and
    tasks (see `VMAP_MAX_WORK_CPU`), when the model supports it; else the loop."""
    check_strategy(requested)
    reason = vmap_unsupported(model)
    if requested == "vmap":
        if reason:
            raise ConfigError(f"strategy='vmap' cannot run this model: {reason}. Use strategy='loop'.")
        return "vmap"
    if requested == "loop" or reason:
        return "loop"
    if device.type != "cpu":
        return "vmap"
    work = examples_per_task * sum(p.numel() for p in model.parameters() if p.requires_grad)
    return "vmap" if work <= VMAP_MAX_WORK_CPU else "loop"
