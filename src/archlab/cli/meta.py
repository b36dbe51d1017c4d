"""Subcommands of meta-learning: ``meta-train {maml,anil,reptile,protonet}`` and ``meta-eval``."""

from __future__ import annotations

import argparse

from .common import (add_common, add_data_options, add_log, add_training_options, data_arguments, duration, key_value,
                     positive_float, positive_int, report, training_options)
from .report import add_report_option, print_report, write_meta_report


def step_list(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints >= 0, e.g. 1,3,10; got '{text}'") from None
    if not steps or min(steps) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints >= 0, e.g. 1,3,10; got '{text}'")
    return steps


def add_meta_train(sub) -> None:
    p = sub.add_parser("meta-train", help="meta-train a model with MAML / first-order MAML / ANIL / Reptile / "
                                          "prototypical networks",
                       description="Meta-train on few-shot tasks (omniglot, sinusoid, or any labeled dataset "
                                   "such as digits), checkpoint, and score the meta-test tasks.")
    p.add_argument("algorithm", help="maml | anil | reptile | protonet")
    p.add_argument("--data", default="omniglot",
                   help="omniglot | sinusoid | a labeled dataset, or a labeled file or folder of your own "
                        "(default: omniglot)")
    add_data_options(p)
    p.add_argument("--ways", type=positive_int, default=5, help="classes a task (N-way)")
    p.add_argument("--shots", type=positive_int, default=None,
                   help="support examples a class (K-shot; default 1, sinusoid 10 points)")
    p.add_argument("--query", type=positive_int, default=None,
                   help="query examples a class at meta-train time (default: --shots; sinusoid: 10; protonet: 5)")
    p.add_argument("--meta-batch", type=positive_int, default=None, help="tasks an outer step")
    p.add_argument("--inner-steps", type=int, default=None)
    p.add_argument("--inner-lr", type=positive_float, default=None,
                   help="default: by algorithm and data (MAML: sinusoid 0.001, as Finn's code; digits 0.1; images 0.4)")
    p.add_argument("--iterations", type=positive_int, default=None,
                   help="outer steps (default 1000; MAML: sinusoid 30,000, omniglot the paper's 60,000, digits 60)")
    p.add_argument("--first-order", action="store_true", help="first-order MAML (FOMAML) or ANIL")
    p.add_argument("--learn-inner-lr", action="store_true", help="learn per-parameter inner step sizes (Meta-SGD)")
    p.add_argument("--strategy", default="auto",
                   help="task-batch execution: auto | loop | threads | vmap (default: auto; Reptile: no vmap)")
    p.add_argument("--meta-lr", type=positive_float, default=None,
                   help="the Adam learning rate of MAML, ANIL and ProtoNet (default 1e-3; MAML on sinusoid 2e-3)")
    p.add_argument("--schedule", default=None,
                   help="of --meta-lr over the iterations: constant | cosine | linear (default constant; MAML on "
                        "sinusoid cosine)")
    p.add_argument("--meta-step-size", type=positive_float, default=1.0, help="Reptile's initial meta step")
    p.add_argument("--meta-step-size-final", type=float, default=0.0, help="Reptile's meta step at the end")
    p.add_argument("--inner-optimizer", default=None, help="Reptile's inner optimizer: sgd | adam")
    p.add_argument("--model", default=None, help="registered model (default: the paper's network for the data)")
    p.add_argument("--set", dest="overrides", action="append", type=key_value, default=[], metavar="KEY=VALUE",
                   help="model hyperparameter, VALUE read as JSON (repeatable)")
    p.add_argument("--eval-tasks", type=int, default=100, help="meta-test tasks scored at the end (0: none)")
    p.add_argument("--eval-steps", type=step_list, default=None, help="inner steps scored, e.g. 1,5,10")
    p.add_argument("--checkpoint-every", type=positive_int, default=None,
                   help="also checkpoint every N iterations (default: at the first log row every 10 s, and at the end)")
    p.add_argument("--time-limit", type=duration, default=None, metavar="DURATION",
                   help="stop (checkpointed) after this long, e.g. 90s, 10m, 2h; continue with --resume")
    p.add_argument("--log-every", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="checkpoint folder (default: runs/ALGORITHM-DATA)")
    p.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    add_log(p)
    add_report_option(p)
    add_training_options(p)
    add_common(p)
    p.set_defaults(run=run_meta_train)


def run_meta_train(args) -> int:
    from .. import jobs

    config = jobs.MetaConfig(
        algorithm=args.algorithm, data=args.data, ways=args.ways, shots=args.shots, query=args.query,
        meta_batch=args.meta_batch, inner_steps=args.inner_steps, inner_lr=args.inner_lr,
        iterations=args.iterations, first_order=args.first_order, learn_inner_lr=args.learn_inner_lr,
        strategy=args.strategy, meta_lr=args.meta_lr, schedule=args.schedule, meta_step_size=args.meta_step_size,
        meta_step_size_final=args.meta_step_size_final, inner_optimizer=args.inner_optimizer, seed=args.seed,
        model=args.model, model_kwargs=dict(args.overrides), **data_arguments(args),
    )
    out = args.out or f"runs/{args.algorithm}-{args.data}"
    result = jobs.meta_train(config, out=out, resume=args.resume, overwrite=args.overwrite, data_dir=args.data_dir,
                             device=args.device, eval_tasks=args.eval_tasks, eval_steps=args.eval_steps,
                             checkpoint_every=args.checkpoint_every, time_limit=args.time_limit,
                             log_every=args.log_every, quiet=args.quiet or args.json, log=args.log,
                             **training_options(args))
    write_meta_report(args, result)
    print_report(args, result)
    report(args, result, f"{args.algorithm} on {args.data}")
    return 0


def add_meta_eval(sub) -> None:
    p = sub.add_parser("meta-eval", help="score a meta-trained checkpoint on new few-shot tasks")
    p.add_argument("checkpoint")
    p.add_argument("--data", default=None,
                   help="task data (default: the one it was meta-trained on, read as it was)")
    add_data_options(p)
    p.add_argument("--ways", type=positive_int, default=None,
                   help="default: as meta-trained (a prototypical network takes any number)")
    p.add_argument("--shots", type=positive_int, default=None, help="default: as meta-trained")
    p.add_argument("--query", type=positive_int, default=None, help="query examples a class (default 15; sinusoid 100)")
    p.add_argument("--tasks", type=positive_int, default=600)
    p.add_argument("--inner-steps", "--steps", dest="steps", type=step_list, default=None,
                   help="inner steps after which the query sets are scored, e.g. 1,3,10")
    p.add_argument("--inner-lr", type=positive_float, default=None, help="default: as meta-trained")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--seed", type=int, default=0)
    add_common(p)
    p.set_defaults(run=run_meta_eval)


def run_meta_eval(args) -> int:
    from .. import jobs

    result = jobs.meta_evaluate(args.checkpoint, data=args.data, ways=args.ways, shots=args.shots, query=args.query,
                            tasks=args.tasks, steps=args.steps, split=args.split, inner_lr=args.inner_lr,
                            data_dir=args.data_dir, device=args.device, seed=args.seed, **data_arguments(args))
    report(args, result, f"{args.checkpoint} ({args.split})", checkpoint_line=False)
    return 0


COMMANDS = (add_meta_train, add_meta_eval)
