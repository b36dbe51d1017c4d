"""``archlab COMMAND --nproc N``: the same command in N processes, started by torch's own elastic
launcher (what ``torchrun --standalone --nproc-per-node N -m archlab COMMAND ...`` runs).

The launcher starts the workers, sets their ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, stops every
worker when one fails, and forwards Ctrl-C (SIGINT) to them; `fit` does the rest
(`archlab.engine.distributed`).
"""

from __future__ import annotations

import os
import sys
import uuid

from ..engine.distributed import env_world
from ..validation import check_int

#: what the launcher's exit means when a worker failed: the first failure's exit code, if it is one
#: of the CLI's (2 a bad argument, 130 interrupted and saved), else 1
EXIT_CODES = (1, 2, 130)


def main_process() -> bool:
    """Whether this process prints results: the only one, or rank 0 under torchrun."""
    return env_world().main


def rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    return env_world().rank


def under_launcher() -> bool:
    """Whether torchrun (or `launch`) started this process."""
    return "TORCHELASTIC_RUN_ID" in os.environ or env_world().distributed


def launch(argv: list[str], nproc: int) -> int:
    """Run ``archlab *argv`` in `nproc` local processes under torch's elastic launcher; the exit code
    of the run (0 when every worker succeeded). More processes than CPUs is allowed, with a warning."""
    check_int("launch", "nproc", nproc, minimum=1)
    cpus = os.cpu_count() or 1
    if nproc > cpus:
        print(f"archlab: warning: --nproc {nproc} is more than the {cpus} CPUs of this machine; the processes "
              "will share them and each step will be slower than with fewer processes.", file=sys.stderr)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, get_args_parser

    # what torchrun's --standalone sets: a local c10d rendezvous on a free port
    args = get_args_parser().parse_args(["--rdzv-backend=c10d", "--rdzv-endpoint=localhost:0",
                                         f"--rdzv-id={uuid.uuid4()}", f"--nproc-per-node={nproc}",
                                         "--monitor-interval=0.1", "--module", "archlab", *argv])
    if "OMP_NUM_THREADS" not in os.environ:  # torchrun's default for several workers, without its notice
        os.environ["OMP_NUM_THREADS"] = "1"
    config, command, command_args = config_from_args(args)
    try:
        elastic_launch(config, command)(*command_args)
    except ChildFailedError as err:
        _, failure = err.get_first_failure()
        return failure.exitcode if failure.exitcode in EXIT_CODES else 1
    except SignalException:  # Ctrl-C: the launcher forwarded it and waited for the workers to save
        return 130
    return 0
