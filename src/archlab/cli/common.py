"""Argument types and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table


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


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as a JSON literal (a bare word stays a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got '{text}'")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def add_common(parser: argparse.ArgumentParser, *, data_dir: bool = True, device: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    if device:
        parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default: auto)")
    if data_dir:
        parser.add_argument("--data-dir", default=None,
                            help="root holding one folder per dataset (default: $ARCHLAB_DATA, "
                                 "else ~/.cache/archlab/data)")


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def print_metrics(metrics: dict[str, Any], title: str = "metrics") -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)
