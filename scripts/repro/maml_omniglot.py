"""Omniglot 5-way few-shot: MAML with the paper's 4x64 conv net, first-order MAML, ANIL and Reptile.

Targets (the issue): MAML 5-way 1-shot >= 95% meta-test accuracy over 600 tasks (95% CI) within
a 60-minute training budget on 2 CPU cores; 5-way 5-shot >= 98%. The paper's 98.7% took 60,000
iterations. Budgets count the training process's CPU time (`cpu_budget.py`; run with
OMP_NUM_THREADS=1, so a CPU minute is a minute of one idle core), not wall time, which on a shared
machine measures the other jobs. Training is checkpointed and resumable, so the budget can be spent
in chunks:

    flock /tmp/archlab-heavy.lock .venv/bin/python scripts/repro/maml_omniglot.py --minutes 9 [--resume]
    ... repeat with --resume until --budget-minutes of training are spent, then it evaluates:
    .venv/bin/python scripts/repro/maml_omniglot.py --evaluate-only

`--algorithm fomaml` / `anil` / `reptile` trains the others the same way (their own --out). ANIL's
target (the issue): 5-way 1-shot within 1.5 points of archlab's MAML at the same CPU budget; its
evaluation also scores the MAML run of the same shots (`--maml-out`, default MAML's run folder), if
there is one, on the same 600 tasks and prints the gap:

    ... maml_omniglot.py --algorithm maml --minutes 13 --budget-minutes 13   (then --evaluate-only)
    ... maml_omniglot.py --algorithm anil --minutes 13 --budget-minutes 13   (then --evaluate-only)

Measured here with wall-clock budgets (before CPU time was counted; CPU shared with two other
1-thread jobs): 5-way 5-shot with `--shots 5 --meta-batch 8 --minutes 40 --budget-minutes 40` ran
803 iterations in 40 minutes and reached 97.9 / 97.5 / 99.05% after 1 / 3 / 10 steps (600 tasks);
1-shot, meta-batch 32, 608 iterations in 13 minutes: 95.1% (3 steps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from archlab.data import Omniglot
from archlab.jobs.meta import MetaConfig, load_learner
from cpu_budget import read_clock, train_chunk

TARGET = {1: 0.95, 5: 0.98}  # MAML's; ANIL's target is a gap to archlab's MAML, GAP_POINTS
GAP_POINTS = 1.5
# Finn et al. (2017), Table 1, Omniglot 5-way: MAML and its first-order approximation. Raghu et al.
# (2020) report ANIL on 20-way Omniglot only; Reptile's own figures use another protocol. Neither is printed.
PAPER = {("maml", 1): 0.987, ("maml", 5): 0.999, ("fomaml", 1): 0.983, ("fomaml", 5): 0.992}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", choices=("maml", "fomaml", "anil", "reptile"), default="maml")
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=60000)
    parser.add_argument("--meta-batch", type=int, default=None,
                        help="tasks per meta-update (default: 32 for MAML as the paper, 5 for Reptile)")
    parser.add_argument("--budget-minutes", type=float, default=60.0, help="training budget in all, in CPU minutes "
                        "of the training process (1 thread)")
    parser.add_argument("--minutes", type=float, default=9.0, help="training CPU minutes of this chunk")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", default=None)
    parser.add_argument("--maml-out", default=None,
                        help="with --algorithm anil: the MAML run to score on the same tasks "
                             "(default: MAML's --out default)")
    args = parser.parse_args()
    out = Path(args.out or run_folder(args.algorithm, args.shots))
    clock = out.parent / f"{out.name}.minutes.json"  # CPU and wall minutes spent so far, across chunks
    spent = read_clock(clock if args.resume or args.evaluate_only else None)
    if not args.evaluate_only:
        reptile = args.algorithm == "reptile"
        config = MetaConfig(
            algorithm={"fomaml": "maml"}.get(args.algorithm, args.algorithm), data="omniglot", ways=5, shots=args.shots,
            query=args.shots if not reptile else 10, meta_batch=args.meta_batch or (5 if reptile else 32),
            inner_steps=5 if reptile else 1, inner_lr=1e-3 if reptile else 0.4, iterations=args.iterations,
            first_order=args.algorithm == "fomaml", inner_optimizer="adam" if reptile else None,
        )
        spent = train_chunk(config, out=out, clock=clock, spent=spent, args=args, every=25, unit="iterations")
        if spent is None:
            return
    learner, config, _ = load_learner(out)
    test = Omniglot(5, config.shots, 15, split="test", data_dir=args.data_dir)
    steps = [1, 3, 10] if config.algorithm in ("maml", "anil") else [5, 10, 50]
    scores = learner.evaluate(test, args.tasks, steps, seed=0)
    iteration, cpu = spent["iteration"], spent["cpu_minutes"]
    paper = PAPER.get((args.algorithm, config.shots))
    if args.algorithm == "anil":
        target = f"target: within {GAP_POINTS} points of archlab's MAML at the same budget"
    else:
        target = f"target >= {TARGET.get(config.shots, float('nan')):.1%}"
    print(f"\nOmniglot 5-way {config.shots}-shot, {args.algorithm}, {iteration} iterations in {cpu:.1f} training "
          f"CPU minutes (1 thread; {spent['minutes']:.1f} wall); {args.tasks} meta-test tasks, 15 query images a "
          f"class ({target}; paper: {'not reported' if paper is None else f'{paper:.1%}'})")
    for k in steps:
        print(f"  {k:3d} steps: {scores[f'accuracy_step{k}']:.4f} ± {scores[f'accuracy_step{k}_ci95']:.4f}")
    maml_run = Path(args.maml_out or run_folder("maml", config.shots))
    if args.algorithm == "anil" and maml_run.is_dir():
        maml, _, _ = load_learner(maml_run)
        reference = maml.evaluate(test, args.tasks, steps, seed=0)
        maml_clock = maml_run.parent / f"{maml_run.name}.minutes.json"
        spent_maml = read_clock(maml_clock)
        print(f"MAML ({maml_run}, {spent_maml['iteration']} iterations in {spent_maml['cpu_minutes']:.1f} CPU "
              f"minutes) on the same tasks; target: ANIL within {GAP_POINTS} points")
        for k in steps:
            gap = 100 * (scores[f"accuracy_step{k}"] - reference[f"accuracy_step{k}"])
            # an upper bound on the gap's CI: the two are scored on the same tasks, so the paired CI is narrower
            spread = 100 * (scores[f"accuracy_step{k}_ci95"] ** 2 + reference[f"accuracy_step{k}_ci95"] ** 2) ** 0.5
            verdict = "met" if gap >= -GAP_POINTS else "missed"
            print(f"  {k:3d} steps: MAML {reference[f'accuracy_step{k}']:.4f} ± "
                  f"{reference[f'accuracy_step{k}_ci95']:.4f}, ANIL - MAML {gap:+.2f} ± {spread:.2f} points "
                  f"({verdict})")
    elif args.algorithm == "anil":
        print(f"no MAML run at {maml_run} to compare with; train one with --algorithm maml (or pass --maml-out)")

def run_folder(algorithm: str, shots: int) -> str:
    return f"runs/omniglot-{algorithm}-5w{shots}s"


if __name__ == "__main__":
    main()
