"""Subcommands of the foundation: list, train, evaluate, predict."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from .. import api
from ..errors import ConfigError
from ..data import dataset_info, list_datasets
from ..registry import list_models, model_info
from .common import add_common, emit_json, key_value, non_negative_float, positive_float, positive_int, print_metrics


def add_list(sub) -> None:
    p = sub.add_parser("list", help="list the registered models or datasets")
    p.add_argument("what", nargs="?", choices=("models", "datasets"), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_list)


def run_list(args) -> int:
    what = (args.what,) if args.what else ("models", "datasets")
    payload = {}
    if "models" in what:
        payload["models"] = [
            {"name": n, "family": (i := model_info(n)).family, "data_kinds": list(i.data_kinds),
             "description": i.description} for n in list_models()
        ]
    if "datasets" in what:
        payload["datasets"] = [
            {"name": n, "kind": (i := dataset_info(n)).kind, "source": "embedded" if i.embedded else f"<data-dir>/{i.folder}",
             "description": i.description} for n in list_datasets()
        ]
    if args.json:
        emit_json(payload)
        return 0
    console = Console()
    for key, rows in payload.items():
        table = Table(title=key)
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(", ".join(v) if isinstance(v, list) else str(v) for v in row.values()))
        console.print(table)
    return 0


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset and score it on the test split")
    p.add_argument("model", help="registered model name (see `archlab list models`)")
    p.add_argument("--data", required=True, help="dataset name (see `archlab list datasets`)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_int)
    length.add_argument("--steps", type=positive_int)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--optimizer", choices=("adamw", "adam", "sgd"))
    p.add_argument("--weight-decay", type=non_negative_float)
    p.add_argument("--schedule", choices=("constant", "cosine", "linear"))
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--grad-clip", type=positive_float)
    p.add_argument("--patience", type=positive_int, help="early stopping after N evaluations without improvement")
    p.add_argument("--eval-every", type=positive_int, help="evaluate every N steps (default: every epoch)")
    p.add_argument("--checkpoint-every", type=positive_int, help="also checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--from-hf", default=None, metavar="DIR",
                   help="bert: start from a Hugging Face BERT folder (config.json, weights, vocab.txt)")
    add_common(p)
    p.set_defaults(run=run_train)


def run_train(args) -> int:
    out = args.out or f"runs/{args.model}-{args.data}"
    options = dict(
        model_kwargs=dict(args.overrides), task_options=dict(args.task_options) or None, out=out,
        overwrite=args.overwrite,
        data_dir=args.data_dir, epochs=args.epochs, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay,
        schedule=args.schedule, warmup_steps=args.warmup_steps, grad_clip=args.grad_clip, patience=args.patience,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, device=args.device,
        quiet=args.quiet or args.json,
    )
    data = args.data
    if args.from_hf is not None:
        from .text import from_hf_setup

        data = from_hf_setup(args.model, args.data, args.from_hf, options)
    if args.seeds is not None:
        if args.resume:
            raise ConfigError("--resume continues one run; it cannot be combined with --seeds.")
        result = api.train_seeds(args.model, data, list(range(args.seed, args.seed + args.seeds)), **options)
    else:
        result = api.train(args.model, data, resume=args.resume, seed=args.seed, **options)
    if args.json:
        emit_json({"metrics": result.metrics, "checkpoint": result.checkpoint, "seconds": round(result.seconds, 3)})
    else:
        print_metrics(result.metrics, f"{args.model} on {args.data}")
        print(f"checkpoint: {result.checkpoint}  ({result.seconds:.1f} s)")
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on a dataset split")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None, help="dataset name (default: the one it was trained on)")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=positive_int, default=512)
    p.add_argument("--iw-samples", type=positive_int, default=None,
                   help="VAE: importance samples for the log-likelihood estimate (reports NLL)")
    add_common(p)
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> int:
    started = time.perf_counter()
    options = {"iw_samples": args.iw_samples} if args.iw_samples is not None else None
    metrics = api.evaluate_checkpoint(args.checkpoint, args.data, split=args.split, data_dir=args.data_dir,
                                      batch_size=args.batch_size, device=args.device, task_options=options)
    scalar = {k: v for k, v in metrics.items() if isinstance(v, float)}
    if args.json:
        emit_json({"metrics": scalar, "checkpoint": args.checkpoint, "seconds": round(time.perf_counter() - started, 3)})
    else:
        print_metrics(scalar, f"{args.checkpoint} ({args.split})")
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict classes for inputs in a .npy, .csv or image file")
    p.add_argument("checkpoint")
    p.add_argument("file")
    add_common(p, data_dir=False)
    p.set_defaults(run=run_predict)


def run_predict(args) -> int:
    started = time.perf_counter()
    pred = api.predict(args.checkpoint, args.file, device=args.device)
    names = pred.class_names
    if args.json:
        emit_json({"predictions": pred.classes, "probabilities": pred.probabilities,
                   "labels": [names[c] for c in pred.classes] if names else None,
                   "checkpoint": args.checkpoint, "seconds": round(time.perf_counter() - started, 3)})
    else:
        for i, (c, p) in enumerate(zip(pred.classes, pred.probabilities)):
            label = names[c] if names else c
            print(f"{i}\t{label}\t{p[c]:.4f}")
    return 0


COMMANDS = (add_list, add_train, add_evaluate, add_predict)
