"""The `archlab` command: argparse subcommands that call the public Python API.

Errors print one line on stderr: usage errors exit 2, data and runtime errors exit 1,
an interrupted (and saved) training run exits 130. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .._version import __version__
from ..errors import ConfigError, NonFiniteLossError, RunNote, TrainingInterrupted
from . import core
from . import generate
from . import anomaly
from . import explain
from . import meta
from . import export
from . import report

# Each family's module adds `add_*` functions here; every one takes the subparsers object.
COMMANDS = (*core.COMMANDS, *generate.COMMANDS, *anomaly.COMMANDS, *explain.COMMANDS, *meta.COMMANDS, *export.COMMANDS,
            *report.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archlab", description="Train, evaluate and explain neural architectures.")
    parser.add_argument("--version", action="version", version=f"archlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _without_nproc(argv: list[str]) -> list[str]:
    """`argv` less its ``--nproc N`` (``--nproc=N``): what each launched process runs."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("always", RunNote)
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            # A RunNote is one "archlab: note:" line on stderr; every other warning shows as usual.
            if issubclass(category, RunNote):
                print(f"archlab: note: {message}", file=sys.stderr)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from .. import jobs

    if getattr(args, "nproc", None) is not None and not jobs.under_launcher():
        return jobs.launch(_without_nproc(argv) + (["--debug"] if debug else []), args.nproc)
    # under torchrun, the errors every rank raises together are printed by rank 0 alone
    main_rank = jobs.main_process()
    try:
        return int(args.run(args) or 0)
    except ConfigError as err:
        if debug:
            raise
        if main_rank:
            print(f"archlab: error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:
        if main_rank:
            print(f"archlab: {err}", file=sys.stderr)
        return 130
    except NonFiniteLossError as err:
        if debug:
            raise
        if main_rank:
            print(f"archlab: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("archlab: interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError, KeyError, TypeError) as err:
        if debug:
            raise
        message = str(err) if not isinstance(err, KeyError) else f"missing key {err}"
        where = "" if main_rank else f"rank {jobs.rank()}: "  # a failure of one rank is named by it
        print(f"archlab: {where}error: {message}", file=sys.stderr)
        return 1
