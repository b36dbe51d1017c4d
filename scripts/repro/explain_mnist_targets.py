"""Faithfulness and sanity of attributions on a trained MNIST CNN (100 test images).

- Integrated Gradients, 50 Gauss-Legendre steps, zero baseline: relative completeness error
  |sum a - (f(x) - f(0))| / |f(x) - f(0)| (targets: median <= 1%, max <= 5%), and the
  convergence delta against Captum's (target: equal).
- Model randomization (Adebayo et al., 2018): Spearman rank correlation between the gradient
  saliency maps (absolute) of the trained and the cascading-randomized CNN (target at full
  randomization: < 0.3; the paper's Fig. 2 shows it falling near 0).
- Deletion (Petsiuk et al., 2018): AUC of the target's probability as pixels are set to 0 in
  the order of IG's attributions vs a random order (target: IG's lower); insertion shown too.

    flock /tmp/archlab-heavy.lock .venv/bin/python scripts/repro/explain_mnist_targets.py --out runs/explain-mnist
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch
from captum.attr import IntegratedGradients as CaptumIG

import archlab
from archlab.explain import (IntegratedGradients, Saliency, completeness_error, deletion_curve, insertion_curve,
                             model_randomization_check)
from archlab.report.explain import curves_figure, image_attribution_figure, randomization_figure

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--checkpoint", default=None, help="explain this checkpoint instead of training one")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--out", default="runs/explain-mnist")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    out = Path(args.out)
    started = time.perf_counter()
    if args.checkpoint is None:
        run = archlab.train(args.model, "mnist", data_dir=args.data_dir, epochs=args.epochs, out=out / "model",
                            quiet=True)
        model, accuracy = run.model.eval(), run.metrics["test_accuracy"]
    else:
        model, accuracy = archlab.load_model(args.checkpoint).eval(), float("nan")
    train_seconds = time.perf_counter() - started
    test = archlab.load_dataset("mnist", args.data_dir)["test"]
    model = model.double()
    x, y = test["x"][:args.images].double(), test["y"][:args.images]

    # 1. completeness of IG and its convergence delta against Captum's
    attr, delta = IntegratedGradients(model).attribute(x, y, n_steps=50, method="gausslegendre",
                                                       return_convergence_delta=True)
    _, their_delta = CaptumIG(model).attribute(x, target=y, n_steps=50, method="gausslegendre",
                                               return_convergence_delta=True)
    relative = completeness_error(model, x, attr, y)

    # 2. cascading randomization of the saliency maps
    steps = model_randomization_check(model, lambda m: Saliency(m).attribute(x, y), seed=0)

    # 3. deletion and insertion: IG's order against a random one
    with torch.no_grad():
        predicted = model(x).argmax(1)
    ig_pred = IntegratedGradients(model).attribute(x, predicted, n_steps=50)
    random_order = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    curves = {
        "deletion": {"integrated gradients": deletion_curve(model, x, ig_pred, predicted),
                     "random": deletion_curve(model, x, random_order, predicted)},
        "insertion": {"integrated gradients": insertion_curve(model, x, ig_pred, predicted),
                      "random": insertion_curve(model, x, random_order, predicted)},
    }
    figures = [
        image_attribution_figure(x[7].float(), ig_pred[7], out / "ig_test7.png",
                                 title=f"integrated gradients, test image 7 (class {int(predicted[7])})"),
        curves_figure(curves["deletion"], out / "deletion.png", title="deletion (Petsiuk et al.)"),
        curves_figure(curves["insertion"], out / "insertion.png", title="insertion from a black image"),
        randomization_figure(steps, out / "randomization.png", title="saliency: cascading randomization"),
    ]
    report = {
        "model": args.model, "epochs": args.epochs, "test_accuracy": accuracy, "images": len(x),
        "train_seconds": round(train_seconds, 1),
        "ig_relative_completeness_error_median": float(relative.median()),
        "ig_relative_completeness_error_max": float(relative.max()),
        "ig_convergence_delta_max_abs": float(delta.abs().max()),
        "ig_convergence_delta_vs_captum_max_abs_diff": float((delta - their_delta).abs().max()),
        "randomization_spearman": {s.layer: round(s.spearman, 4) for s in steps},
        "randomization_spearman_full": steps[-1].spearman,
        "deletion_auc_ig": curves["deletion"]["integrated gradients"].mean_auc,
        "deletion_auc_random": curves["deletion"]["random"].mean_auc,
        "insertion_auc_ig": curves["insertion"]["integrated gradients"].mean_auc,
        "insertion_auc_random": curves["insertion"]["random"].mean_auc,
        "figures": [str(f) for f in figures],
    }
    print(json.dumps(report, indent=2))
    print(f"IG completeness: median {100 * report['ig_relative_completeness_error_median']:.3f}% (target <= 1%), "
          f"max {100 * report['ig_relative_completeness_error_max']:.3f}% (target <= 5%); delta vs Captum "
          f"{report['ig_convergence_delta_vs_captum_max_abs_diff']:.1e}")
    print(f"randomization: Spearman at full randomization {report['randomization_spearman_full']:.3f} (target < 0.3)")
    print(f"deletion AUC: IG {report['deletion_auc_ig']:.4f} vs random {report['deletion_auc_random']:.4f} "
          "(target: IG lower)")


if __name__ == "__main__":
    main()
