"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from ..validation import Text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1; got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1; got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got '{text}'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got {text}")
    return value


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float:
    """A length of time in seconds: ``90s``, ``10m``, ``1.5h``, or a bare number of seconds."""
    raw = text.strip().lower()
    scale = DURATION_UNITS.get(raw[-1:])
    number = raw[:-1] if scale is not None else raw
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 10m or 2h; got '{text}'") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a duration > 0 such as 90s, 10m or 2h; got '{text}'")
    return value


def key_value(text: str) -> tuple[str, Text]:
    """``KEY=VALUE``; VALUE stays text here and is read against the type of the parameter it sets
    (``false`` for a bool, ``[16, 32]`` or ``16,32`` for a list), where that parameter is known."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got '{text}'")
    return key.strip(), Text(raw)


DATA_HELP = "a registered dataset (see `archlab list datasets`), or a file or folder of your own"


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read `--data` when it is a file or folder (the same in every command)."""
    parser.add_argument("--target", default=None, metavar="COLUMN", help="the label (or value) column of a table")
    parser.add_argument("--data-format", default=None, metavar="FORMAT",
                        help="read --data in this format instead of guessing from its suffix or layout")
    parser.add_argument("--data-set", dest="data_options", action="append", type=key_value, default=[],
                        metavar="KEY=VALUE", help="option of the data's reader, VALUE read as its type (repeatable), "
                        "e.g. drop='[\"id\"]', split_column=split")


def data_label(data: str) -> str:
    """A short name for `--data` in a default output folder: a file or folder's stem, else the name."""
    path = Path(data)
    return path.stem if path.suffix or len(path.parts) > 1 else data


def data_arguments(args) -> dict:
    """The data options of a parsed command line, as the jobs take them."""
    return {"target": args.target, "data_format": args.data_format, "data_options": dict(args.data_options) or None}


def add_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the check of the weights against the SHA-256 recorded in config.json")


def add_log(parser: argparse.ArgumentParser) -> None:
    """``--log KIND:DIR`` (repeatable); the job checks the kind and the folder."""
    parser.add_argument("--log", action="append", default=None, metavar="KIND:DIR",
                        help="also log the run for a viewer: tensorboard:DIR writes TensorBoard event files "
                             "(curves, hyperparameters, final metrics) into DIR (repeatable)")


PRECISIONS = ("32", "64", "bf16", "16-mixed")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Precision, compilation and data parallelism: the same in every training command."""
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="32 (default) | 64 (weights and data in float64) | bf16 (autocast, CPU or CUDA) | "
                             "16-mixed (float16 with a gradient scaler, CUDA)")
    parser.add_argument("--compile", action="store_true", default=None,
                        help="torch.compile the model (eager, after one warning, where it cannot compile)")
    parser.add_argument("--nproc", type=positive_int, default=None, metavar="N",
                        help="train in N data-parallel processes (torch's elastic launcher, as torchrun "
                             "--nproc-per-node N); --batch-size stays the global batch")
    parser.add_argument("--backend", choices=("auto", "gloo", "nccl"), default=None,
                        help="torch.distributed backend with several processes (default auto: nccl on CUDA, "
                             "gloo on CPU)")
    parser.add_argument("--sync-batchnorm", action="store_true", default=None,
                        help="with several processes, BatchNorm statistics over every process's examples (CUDA)")


def training_options(args) -> dict:
    """The options `add_training_options` adds, as training options (None: the run's default)."""
    return {"precision": args.precision, "compile": args.compile, "backend": args.backend,
            "sync_batchnorm": args.sync_batchnorm}


def add_common(parser: argparse.ArgumentParser, *, data_dir: bool = True, device: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    if device:
        parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    if data_dir:
        parser.add_argument("--data-dir", default=None,
                            help="root holding one folder per dataset (default: $ARCHLAB_DATA, "
                                 "else ~/.cache/archlab/data)")


def _strict(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: strict JSON, which `JSON.parse` and jq read."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(_strict(payload), allow_nan=False) + "\n")
    sys.stdout.flush()


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in rows[0] if rows else ():
        table.add_column(column)
    for row in rows:
        table.add_row(*(", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in row.values()))
    Console().print(table)


def print_metrics(metrics: dict[str, Any], title: str = "metrics") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


def report(args, result, title: str, *, checkpoint_line: bool = True) -> None:
    """A job's result: one JSON object with ``--json``, else a table and where the checkpoint is
    (under torchrun, from rank 0 only)."""
    from .. import jobs

    if not jobs.main_process():
        return
    if args.json:
        emit_json(result.summary())
        return
    print_metrics(result.metrics, title)
    if result.stopped == "time_limit":
        print(f"stopped at the time limit; continue with --resume --out {result.checkpoint}")
    if checkpoint_line and result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}  ({result.seconds:.1f} s)")
