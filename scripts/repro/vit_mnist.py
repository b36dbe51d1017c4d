"""ViT on MNIST: test accuracy after `archlab train vit --data mnist` (target >= 98.0% in <= 5 epochs)
and the model-randomization sanity check of its attention-rollout maps (Adebayo et al., 2018):
Spearman rank correlation between the rollout maps (patch grid) of the trained and of the
cascading-randomized ViT on 100 test images (target at full randomization: < 0.3).

    flock /tmp/archlab-heavy.lock .venv/bin/python scripts/repro/vit_mnist.py --out runs/vit-mnist
    .venv/bin/python scripts/repro/vit_mnist.py --checkpoint runs/vit-mnist/model   # only the checks
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

import archlab
from archlab.explain import AttentionRollout, model_randomization_check
from archlab.report.explain import randomization_figure

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=None, help="default: the registration's (5)")
    parser.add_argument("--checkpoint", default=None, help="check this checkpoint instead of training one")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--out", default="runs/vit-mnist")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out)
    started = time.perf_counter()
    if args.checkpoint is None:
        run = archlab.train("vit", "mnist", data_dir=args.data_dir, epochs=args.epochs, out=out / "model")
        model, accuracy = run.model, run.metrics["test_accuracy"]
    else:
        model = archlab.load_model(args.checkpoint)
        accuracy = archlab.evaluate_checkpoint(args.checkpoint, data="mnist",
                                              data_dir=args.data_dir).metrics["test_accuracy"]
    train_seconds = time.perf_counter() - started
    model = model.eval()
    test = archlab.load_dataset("mnist", args.data_dir)["test"]
    x = test["x"][:args.images]

    steps = model_randomization_check(model, lambda m: AttentionRollout(m).attribute(x, upsample=False), seed=0)
    out.mkdir(parents=True, exist_ok=True)
    randomization_figure(steps, out / "rollout_randomization.png")
    report = {
        "test_accuracy": accuracy,
        "train_seconds": round(train_seconds, 1),
        "rollout_randomization_spearman": {s.layer: round(s.spearman, 4) for s in steps},
        "rollout_randomization_spearman_full": steps[-1].spearman,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"vit on mnist: test accuracy {accuracy:.4f} (target >= 0.98), {train_seconds:.0f} s")
    print(f"attention rollout: Spearman at full randomization {steps[-1].spearman:.3f} (target < 0.3)")


if __name__ == "__main__":
    main()
