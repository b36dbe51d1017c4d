"""How a batch of tasks is executed: a per-task loop, the loop spread over CPU threads, or
`torch.vmap` over the tasks.

None wins everywhere. `vmap` turns the 32 small per-task forward/backward passes
into batched kernels, which pays when the model and its tasks are small (the sinusoid MLP:
a sixth of the loop's time); for a conv net on CPU, batched (grouped) convolutions and the
per-task graphs held at once make it hardly faster (and not reliably) but far larger than
the loop, and slower with many examples a task (see ``benchmarks/maml_speed.py``).
``threads`` (`archlab.meta.parallel`) runs the loop on one worker thread per core, each
task single-threaded: a small task's kernels are too small to split across cores, so
spreading whole tasks uses the cores better, for one task graph a worker in memory.
The loop is also the correctness reference: `vmap` is only chosen where its
meta-gradients match the loop's, and ``threads`` equals the loop up to the order in
which the tasks' gradients are added (tests/meta/test_strategies.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..validation import check_choice

STRATEGIES = ("auto", "loop", "threads", "vmap")

#: On CPU, vmap is chosen while (support + query examples a task) x (trainable parameters) is at
#: most this: below it vmap is several times faster than the loop; above it vmap gains little for many
#: times the memory (the loop frees each task's graph after its backward). Measurements: benchmarks/NOTES.md.
VMAP_MAX_WORK_CPU = 200_000

#: Above that, on a CPU with several intra-op threads, the threaded loop (`archlab.meta.parallel`) is
#: chosen while the work is at most this, and the plain loop beyond. It holds one task's graph a worker:
#: small tasks cost little memory and gain time, large ones cost about twice the memory for little gain.
THREADS_MAX_WORK_CPU = 4_000_000


def vmap_unsupported(model: nn.Module) -> str | None:
    """Why `vmap` over tasks cannot run this model, or None.

    torch's fused recurrent kernels (`nn.RNN`/`nn.LSTM`/`nn.GRU`) have no batching rule
    for per-task weights, so recurrent models run in the loop.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.RNNBase):
            return f"'{name}' is a {type(module).__name__}, whose fused kernel vmap cannot batch over per-task weights"
    return None


def check_strategy(owner: str, strategy: str) -> str:
    check_choice(owner, "strategy", strategy, STRATEGIES)
    return strategy


def choose_strategy(model: nn.Module, device: torch.device, examples_per_task: int, requested: str = "auto", *,
                    n_tasks: int = 2) -> str:
    """`requested` unless it is ``auto``. Then: vmap on a GPU, or on a CPU for small models
    and tasks (`VMAP_MAX_WORK_CPU`), when the model supports it; else, on a CPU with more
    than one intra-op thread, the threaded loop for a batch of small tasks
    (`THREADS_MAX_WORK_CPU`); else the loop."""
    check_strategy("choose_strategy", requested)
    reason = vmap_unsupported(model)
    if requested == "vmap":
        if reason:
            raise ConfigError(f"strategy='vmap' cannot run this model: {reason}. Use strategy='loop'.")
        return "vmap"
    if requested in ("loop", "threads"):
        return requested
    if device.type != "cpu":
        return "loop" if reason else "vmap"
    work = examples_per_task * sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not reason and work <= VMAP_MAX_WORK_CPU:
        return "vmap"
    if n_tasks > 1 and torch.get_num_threads() > 1 and work <= THREADS_MAX_WORK_CPU:
        return "threads"
    return "loop"
