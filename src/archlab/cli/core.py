"""Subcommands of the foundation: list, train, evaluate, predict."""

from __future__ import annotations

from ..errors import ConfigError
from .common import (DATA_HELP, add_common, add_data_options, add_log, add_training_options, add_verify,
                     data_arguments, data_label, duration, emit_json, key_value, non_negative_float,
                     positive_float, positive_int, print_rows, report, training_options)
from .report import add_report_option, print_report


def add_list(sub) -> None:
    p = sub.add_parser("list", help="list the registered models, datasets or data formats")
    p.add_argument("what", nargs="?", choices=("models", "datasets", "formats"), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_list)


def run_list(args) -> int:
    from .. import jobs

    what = (args.what,) if args.what else ("models", "datasets", "formats")
    payload = {}
    if "models" in what:
        payload["models"] = jobs.model_summaries()
    if "datasets" in what:
        payload["datasets"] = jobs.dataset_summaries()
    if "formats" in what:
        payload["formats"] = jobs.format_summaries()
    if args.json:
        emit_json(payload)
        return 0
    shown = {"models": ("name", "family", "data_kinds", "task", "description"),
             "datasets": ("name", "kind", "source", "description"),
             "formats": ("name", "reads", "description")}
    for key, rows in payload.items():
        print_rows(key, [{c: row[c] for c in shown[key]} for row in rows])
    return 0


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset and score it on the test split")
    p.add_argument("model", help="registered model name (see `archlab list models`)")
    p.add_argument("--data", required=True, help=DATA_HELP)
    add_data_options(p)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int)
    length.add_argument("--steps", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--optimizer", help="adamw | adam | sgd (default: the model's)")
    p.add_argument("--weight-decay", type=non_negative_float)
    p.add_argument("--schedule", help="constant | cosine | linear (default: the model's)")
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--min-lr-ratio", type=non_negative_float,
                   help="cosine/linear decay ends at this fraction of --lr (default: the model's; nanoGPT 0.1)")
    p.add_argument("--grad-clip", type=positive_float)
    p.add_argument("--patience", type=positive_int, help="early stopping after N evaluations without improvement")
    p.add_argument("--eval-every", type=positive_int, help="evaluate every N steps (default: every epoch)")
    p.add_argument("--checkpoint-every", type=positive_int, help="also checkpoint every N steps")
    p.add_argument("--time-limit", type=duration, metavar="DURATION",
                   help="stop (checkpointed) after this long, e.g. 90s, 10m, 2h; continue with --resume")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0, or the resumed run's)")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="train with seeds SEED..SEED+N-1 and report mean and std (_mean, _std)")
    p.add_argument("--out", default=None, help="checkpoint folder (default: runs/MODEL-DATA)")
    p.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out")
    p.add_argument("--overwrite", action="store_true", help="replace the checkpoint already in --out")
    p.add_argument("--set", dest="overrides", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="model hyperparameter, VALUE read as JSON (repeatable)")
    p.add_argument("--task-set", dest="task_options", action="append", type=key_value, default=[],
                   metavar="KEY=VALUE", help="option of the training task, VALUE read as JSON (repeatable), "
                   "e.g. label_smoothing=0.1, aae's adversarial_lr_scale=0.05")
    p.add_argument("--pretrained", default=None, metavar="DIR",
                   help="start from pretrained weights in DIR, for models that can load them "
                        "(bert: a Hugging Face folder with config.json, weights and vocab.txt)")
    add_log(p)
    add_report_option(p)
    add_training_options(p)
    add_common(p)
    p.set_defaults(run=run_train)


def run_train(args) -> int:
    from .. import jobs

    out = args.out or f"runs/{args.model}-{data_label(args.data)}"
    options = dict(
        model_kwargs=dict(args.overrides), task_options=dict(args.task_options) or None, out=out,
        **data_arguments(args),
        overwrite=args.overwrite,
        data_dir=args.data_dir, epochs=args.epochs, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay,
        schedule=args.schedule, warmup_steps=args.warmup_steps,
        min_lr_ratio=args.min_lr_ratio, grad_clip=args.grad_clip, patience=args.patience,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, time_limit=args.time_limit,
        device=args.device, log=args.log,
        quiet=args.quiet or args.json, report=args.report,
        **training_options(args),
    )
    if args.seeds is not None:
        if args.resume:
            raise ConfigError("--resume continues one run; it cannot be combined with --seeds.")
        result = jobs.train_seeds(args.model, args.data, list(range(args.seed or 0, (args.seed or 0) + args.seeds)),
                                  pretrained=args.pretrained, **options)
    else:
        result = jobs.train(args.model, args.data, resume=args.resume, seed=args.seed, pretrained=args.pretrained,
                            **options)
    print_report(args, result)
    report(args, result, f"{args.model} on {args.data}")
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on a dataset split")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help=DATA_HELP + " of the training schema, every example of it scored "
                   "with the training preprocessing (default: the data it was trained on, its --split)")
    add_data_options(p)
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument("--task-set", dest="task_options", action="append", type=key_value, default=[],
                   metavar="KEY=VALUE", help="option of the model's task for this evaluation, VALUE read as JSON "
                   "(repeatable), e.g. a VAE's iw_samples=1000 (importance-sampled NLL)")
    add_common(p)
    add_verify(p)
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> int:
    from .. import jobs

    result = jobs.evaluate_checkpoint(args.checkpoint, args.data, split=args.split, data_dir=args.data_dir,
                                      batch_size=args.batch_size, device=args.device,
                                      task_options=dict(args.task_options) or None, verify=args.verify,
                                      **data_arguments(args))
    report(args, result, f"{args.checkpoint} ({args.split})", checkpoint_line=False)
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict for the inputs in a file or folder (.npy, a table of the training "
                                       "schema, an image or a folder of images, ...); writes a CSV")
    p.add_argument("checkpoint")
    p.add_argument("file")
    p.add_argument("--out", default=None, help="write the CSV to this file instead of standard output")
    add_common(p, data_dir=False)
    add_verify(p)
    p.set_defaults(run=run_predict)


def run_predict(args) -> int:
    from .. import jobs

    result = jobs.predict(args.checkpoint, args.file, device=args.device, verify=args.verify)
    details = result.details
    if args.json:
        emit_json({"predictions": details["predictions"], "probabilities": details["probabilities"],
                   "labels": details["labels"], **({"ids": details["ids"]} if "ids" in details else {}),
                   "checkpoint": result.checkpoint, "seconds": round(result.seconds, 3)})
        return 0
    write_predictions(details, args.out)
    return 0


def write_predictions(details: dict, out: str | None) -> None:
    """One CSV row per input: its index (a graph's node id), the prediction (the class name for a
    classifier) and, for a classifier, each class's probability."""
    import csv
    import sys

    stream = open(out, "w", newline="") if out is not None else sys.stdout
    try:
        writer = csv.writer(stream)
        if details["probabilities"] is None:  # a regressor
            writer.writerow(["row", details.get("target") or "prediction"])
            writer.writerows([i, value] for i, value in enumerate(details["predictions"]))
            return
        names = details["class_names"]
        rows = details.get("ids") or range(len(details["probabilities"]))
        writer.writerow(["node" if "ids" in details else "row", "prediction", *(f"p_{name}" for name in names)])
        labels = details["labels"] or details["predictions"]
        for i, (row, probabilities) in enumerate(zip(rows, details["probabilities"])):
            writer.writerow([row, labels[i], *(f"{p:.6g}" for p in probabilities)])
    finally:
        if out is not None:
            stream.close()


COMMANDS = (add_list, add_train, add_evaluate, add_predict)
