"""`archlab explain`: attributions for one example of a checkpoint, or permutation importance
of a tabular checkpoint's features."""

from __future__ import annotations

from .common import DATA_HELP, add_common, add_data_options, add_verify, emit_json, positive_int, print_rows


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="explain a checkpoint's prediction (attributions) or rank its features")
    p.add_argument("checkpoint")
    p.add_argument("--method", default=None,
                   help="attribution method: integrated-gradients, saliency, input-x-gradient, smoothgrad, gradcam, "
                        "occlusion, feature-ablation, deeplift, gradient-shap, kernel-shap, lime, attention-rollout, "
                        "gnn-explainer, anomaly; permutation ranks "
                        "tabular features (default: the one the model's family names)")
    p.add_argument("--data", default=None, help=DATA_HELP + " of the training schema (default: the data it was "
                                                            "trained on)")
    add_data_options(p)
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=None, help="example (or graph node) to explain (default 0)")
    p.add_argument("--input", dest="input_file", default=None,
                   help="explain an input from a .npy, .csv or image file instead (with --index: its row)")
    p.add_argument("--class", dest="explained_class", type=int, default=None,
                   help="class to explain (default: the predicted class; the attribution methods call it target)")
    p.add_argument("--out", default=None, help="figure to write: .png (images, tables, graphs) or .html (text)")
    p.add_argument("--n-steps", type=positive_int, default=50, help="integration steps (integrated gradients)")
    p.add_argument("--layer", default=None, help="layer name for gradcam (default: the last convolution)")
    p.add_argument("--window", type=positive_int, default=None,
                   help="occlusion window size; patch size of the features of lime and kernel-shap")
    p.add_argument("--stride", type=positive_int, default=None, help="occlusion stride")
    p.add_argument("--samples", type=positive_int, default=None,
                   help="noisy samples (smoothgrad, gradient-shap; default 20) or perturbations (lime, kernel-shap; "
                        "default 200)")
    p.add_argument("--repeats", type=positive_int, default=10, help="shuffles per feature (permutation)")
    p.add_argument("--scoring", default="accuracy", choices=("accuracy", "neg_log_loss"),
                   help="score whose drop ranks the features (permutation)")
    p.add_argument("--seed", type=int, default=0)
    add_common(p)
    add_verify(p)
    p.set_defaults(run=run_explain)


def run_explain(args) -> int:
    from .. import jobs

    result = jobs.explain(
        args.checkpoint, args.method, data=args.data, split=args.split, index=args.index, input_file=args.input_file,
        target=args.explained_class, out=args.out, data_dir=args.data_dir, device=args.device, n_steps=args.n_steps,
        layer=args.layer, window=args.window, stride=args.stride, samples=args.samples, n_repeats=args.repeats,
        scoring=args.scoring, seed=args.seed, target_column=args.target, data_format=args.data_format,
        data_options=dict(args.data_options) or None, verify=args.verify)
    details = result.details
    figure = result.figures[0] if result.figures else None
    if details["method"] == "permutation":
        if args.json:
            emit_json({"metrics": result.metrics, "importances": details["importances"], "figure": figure,
                       "checkpoint": result.checkpoint, "seconds": round(result.seconds, 3)})
            return 0
        (score,) = result.metrics.values()
        rows = [{"rank": rank, "feature": row["feature"], "importance": f"{row['mean']:.4f}",
                 "std": f"{row['std']:.4f}"} for rank, row in enumerate(details["importances"], 1)]
        print_rows(f"permutation importance on {args.split} ({args.scoring} {score:.4f}, {args.repeats} repeats)",
                   rows)
        if figure:
            print(f"figure: {figure}")
        return 0
    if args.json:
        emit_json({"metrics": result.metrics, "method": details["method"], "index": details["index"],
                   "target": details["target"], "predicted": details["predicted"],
                   "attributions": details["attributions"].tolist(), "tokens": details["tokens"], "figure": figure,
                   "checkpoint": result.checkpoint, "seconds": round(result.seconds, 3)})
        return 0
    what = f"node {details['index']}" if details["method"] == "gnn-explainer" else f"example {details['index']}"
    print(f"{details['method']} for {what}: predicted {details['predicted']}, explained {details['target']}")
    for key, value in result.metrics.items():
        print(f"  {key}: {value:.6g}")
    if figure:
        print(f"figure: {figure}")
    return 0


COMMANDS = (add_explain,)
