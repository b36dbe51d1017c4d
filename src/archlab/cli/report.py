"""`archlab report RUN [RUN ...]`: one self-contained HTML page about one or more runs, and the
``--report`` option of the training commands, which writes one into the run's folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_common, add_verify, emit_json, positive_int


def add_report(sub) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML report of one or more runs (curves, metrics, "
                                      "confusion matrix, mistakes, the family's figures, the environment)")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a checkpoint folder, or the folder of a `train --seeds` run; several are overlaid")
    p.add_argument("--out", default="report.html", help="the HTML file to write (default: report.html)")
    p.add_argument("--examples", type=positive_int, default=8,
                   help="confidently wrong test examples shown for a classifier (default: 8)")
    add_common(p)
    add_verify(p)
    p.set_defaults(run=run_report)


def run_report(args) -> int:
    from .. import jobs

    result = jobs.write_report(args.runs, args.out, data_dir=args.data_dir, device=args.device,
                               examples=args.examples, verify=args.verify)
    if args.json:
        emit_json(result.summary())
    else:
        print(f"report: {args.out}  ({result.metrics['figures']} figures, {result.metrics['bytes'] / 1e6:.2f} MB, "
              f"{result.seconds:.1f} s)")
    return 0


def add_report_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", action="store_true",
                        help="at the end, write report.html (self-contained) into the run's folder")


def print_report(args, result) -> None:
    """Where ``--report`` wrote the run's report (the last of the result's figures)."""
    if getattr(args, "report", False) and not args.json and result.figures:
        print(f"report: {result.figures[-1]}  ({result.details.get('report_seconds', 0.0):.1f} s)")


def write_meta_report(args, result) -> None:
    """``meta-train --report``: the report of the meta-trained checkpoint, written beside it."""
    from .. import jobs

    if not args.report or not jobs.main_process():  # under torchrun rank 0 writes it
        return
    written = jobs.write_report([result.checkpoint], Path(result.checkpoint) / "report.html",
                                data_dir=args.data_dir, device=args.device)
    result.figures.append(written.figures[0])
    result.details["report_seconds"] = written.seconds


COMMANDS = (add_report,)
