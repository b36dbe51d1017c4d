"""`archlab anomaly`: one-class anomaly detection with an autoencoder (train on one class,
report AUROC on the whole test set)."""

from __future__ import annotations

import argparse

from .common import (DATA_HELP, add_common, add_data_options, add_log, add_training_options, data_arguments,
                     data_label, duration, key_value, positive_float, positive_int, report, training_options)
from .report import add_report_option, print_report


def _rate(text: str) -> float:
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a rate in (0, 1); got {text}")
    return value


def add_anomaly(sub) -> None:
    p = sub.add_parser("anomaly", help="one-class anomaly detection: train an autoencoder on one class, "
                                       "score the whole test set (AUROC)")
    p.add_argument("--data", required=True, help=DATA_HELP)
    add_data_options(p)
    p.add_argument("--normal-class", required=True, help="the class (index or name) taken as normal")
    p.add_argument("--model", default="ae",
                   help="autoencoder to train, any of the autoencoder family (default: ae; convolutional on images, "
                        "an MLP on digits)")
    p.add_argument("--fpr", type=_rate, default=0.05,
                   help="false-positive rate at which the threshold is fitted on normal validation data")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--time-limit", type=duration, metavar="DURATION",
                   help="stop training (checkpointed) after this long, e.g. 90s, 10m, 2h; continue with --resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="checkpoint folder (default: runs/anomaly-MODEL-DATA-CLASS)")
    p.add_argument("--resume", action="store_true", help="continue the training checkpointed in --out")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    p.add_argument("--set", dest="overrides", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="model hyperparameter, VALUE read as JSON (repeatable)")
    add_log(p)
    add_report_option(p)
    add_training_options(p)
    add_common(p)
    p.set_defaults(run=run_anomaly)


def run_anomaly(args) -> int:
    from .. import jobs

    out = args.out or f"runs/anomaly-{args.model}-{data_label(args.data)}-{args.normal_class}"
    result = jobs.train_one_class(
        args.model, args.data, args.normal_class, false_positive_rate=args.fpr, model_kwargs=dict(args.overrides),
        out=out, data_dir=args.data_dir, resume=args.resume, overwrite=args.overwrite, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, time_limit=args.time_limit, seed=args.seed, device=args.device,
        quiet=args.quiet or args.json,
        log=args.log, report=args.report, **data_arguments(args), **training_options(args),
    )
    print_report(args, result)
    report(args, result, f"{args.model} on {args.data}, normal class {args.normal_class}")
    return 0


COMMANDS = (add_anomaly,)
