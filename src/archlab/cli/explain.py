"""`archlab explain`: attributions for one example of a checkpoint, or permutation importance
of a tabular checkpoint's features."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..explain import checkpoint_permutation_importance, explain_checkpoint
from ..explain.checkpoint import METHODS
from .common import add_common, emit_json, positive_int


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="explain a checkpoint's prediction (attributions) or rank its features")
    p.add_argument("checkpoint")
    p.add_argument("--method", default="integrated-gradients", choices=sorted(METHODS),
                   help="attribution method (default: integrated-gradients); permutation ranks tabular features")
    p.add_argument("--data", default=None, help="dataset name (default: the one it was trained on)")
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=None, help="example (or graph node) to explain (default 0)")
    p.add_argument("--input", dest="input_file", default=None,
                   help="explain an input from a .npy, .csv or image file instead (with --index: its row)")
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the predicted class)")
    p.add_argument("--out", default=None, help="figure to write: .png (images, tables, graphs) or .html (text)")
    p.add_argument("--n-steps", type=positive_int, default=50, help="integration steps (integrated gradients)")
    p.add_argument("--layer", default=None, help="layer name for gradcam (default: the last convolution)")
    p.add_argument("--window", type=positive_int, default=None, help="occlusion window size")
    p.add_argument("--stride", type=positive_int, default=None, help="occlusion stride")
    p.add_argument("--samples", type=positive_int, default=20, help="noisy samples (smoothgrad)")
    p.add_argument("--repeats", type=positive_int, default=10, help="shuffles per feature (permutation)")
    p.add_argument("--scoring", default="accuracy", choices=("accuracy", "neg_log_loss"),
                   help="score whose drop ranks the features (permutation)")
    p.add_argument("--seed", type=int, default=0)
    add_common(p)
    p.set_defaults(run=run_explain)


def run_explain(args) -> int:
    started = time.perf_counter()
    if args.method == "permutation":
        if args.index is not None or args.input_file is not None:
            raise ConfigError("--method permutation ranks the features over a whole split; drop --index/--input.")
        result, names, figure = checkpoint_permutation_importance(
            args.checkpoint, data=args.data, split=args.split, n_repeats=args.repeats, seed=args.seed,
            scoring=args.scoring, out=args.out, data_dir=args.data_dir, device=args.device)
        ranking = [{"feature": names[i], "mean": float(result.importances_mean[i]),
                    "std": float(result.importances_std[i])} for i in result.ranking()]
        if args.json:
            emit_json({"metrics": {f"{args.split}_{args.scoring}": result.baseline_score}, "importances": ranking,
                       "figure": figure, "checkpoint": args.checkpoint,
                       "seconds": round(time.perf_counter() - started, 3)})
            return 0
        table = Table(title=f"permutation importance on {args.split} ({args.scoring} "
                            f"{result.baseline_score:.4f}, {args.repeats} repeats)")
        for column in ("rank", "feature", "importance", "std"):
            table.add_column(column, justify="left" if column == "feature" else "right")
        for rank, row in enumerate(ranking, 1):
            table.add_row(str(rank), row["feature"], f"{row['mean']:.4f}", f"{row['std']:.4f}")
        Console().print(table)
        if figure:
            print(f"figure: {figure}")
        return 0
    result = explain_checkpoint(
        args.checkpoint, args.method, data=args.data, split=args.split, index=args.index or 0,
        input_file=args.input_file, target=args.target, out=args.out, data_dir=args.data_dir, device=args.device,
        n_steps=args.n_steps, layer=args.layer, window=args.window, stride=args.stride, samples=args.samples,
        seed=args.seed)
    if args.json:
        emit_json({"metrics": result.metrics, "method": result.method, "index": result.index,
                   "target": result.target, "predicted": result.predicted,
                   "attributions": result.attributions.tolist(), "tokens": result.tokens, "figure": result.figure,
                   "checkpoint": args.checkpoint, "seconds": round(time.perf_counter() - started, 3)})
        return 0
    what = f"node {result.index}" if result.method == "gnn-explainer" else f"example {result.index}"
    print(f"{result.method} for {what}: predicted {result.predicted}, explained {result.target}")
    for key, value in result.metrics.items():
        print(f"  {key}: {value:.6g}")
    if result.figure:
        print(f"figure: {result.figure}")
    return 0


COMMANDS = (add_explain,)
