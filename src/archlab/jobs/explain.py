"""The explain job: pick the example, the target and the method for a checkpoint's kind of data,
attribute, and draw the figure. `archlab explain` is a thin layer over `explain`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import DataSpec, read_inputs
from ..engine.checkpoint import read_config
from ..errors import ConfigError, DataError, unknown_name
from ..models.registry import load_model, model_info
from ..utils import resolve_device
from .evaluate import load_checkpoint_data
from .predict import format_inputs
from .result import JobResult
from .runs import single_run
from ..explain.anomaly import AnomalyAttribution
from ..explain.attention_rollout import AttentionRollout
from ..explain.deep_lift import DeepLift
from ..explain.feature_ablation import FeatureAblation
from ..explain.gnn_explainer import GNNExplainer
from ..explain.gradcam import GradCAM
from ..explain.gradient_shap import GradientShap
from ..explain.input_x_gradient import InputXGradient
from ..explain.integrated_gradients import IntegratedGradients
from ..explain.kernel_shap import KernelShap
from ..explain.layer_integrated_gradients import TokenAttribution
from ..explain.lime import Lime
from ..explain.occlusion import Occlusion
from ..explain.permutation import PermutationImportance, permutation_importance
from ..explain.saliency import Saliency
from ..explain.smoothgrad import SmoothGrad

# method name -> the data kinds it explains ("anomaly": autoencoders on image or tabular data; deeplift's
# rescale rule does not reach inside the fused recurrent ops)
METHODS = {
    "saliency": ("image", "tabular", "sequence"),
    "input-x-gradient": ("image", "tabular", "sequence"),
    "integrated-gradients": ("image", "tabular", "sequence", "text"),
    "smoothgrad": ("image", "tabular", "sequence"),
    "gradcam": ("image",),
    "occlusion": ("image", "tabular", "sequence"),
    "feature-ablation": ("image", "tabular", "sequence"),
    "deeplift": ("image", "tabular"),
    "gradient-shap": ("image", "tabular", "sequence"),
    "kernel-shap": ("image", "tabular", "sequence"),
    "lime": ("image", "tabular", "sequence"),
    "attention-rollout": ("text", "sequence", "image"),
    "gnn-explainer": ("graph",),
    "anomaly": ("image", "tabular"),
    "permutation": ("tabular",),
}


@dataclass
class Explanation:
    method: str
    index: int
    target: int | None  # the explained class (None for an anomaly score or rollout)
    predicted: int | None
    attributions: torch.Tensor  # shaped like the example (without batch), or (E,) edges for a graph
    figure: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    tokens: list[str] | None = None


def _check_method(method: str, kind: str, model_name: str) -> None:
    if method not in METHODS:
        raise unknown_name("explanation method", method, METHODS)
    if kind not in METHODS[method]:
        raise ConfigError(f"--method {method} explains {' or '.join(METHODS[method])} data; the checkpoint's "
                          f"model '{model_name}' takes {kind} data. Methods for it: "
                          f"{', '.join(m for m, kinds in METHODS.items() if kind in kinds)}.")


def _last_conv(model: nn.Module) -> str:
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not names:
        raise ConfigError("gradcam needs a convolution layer; the model has none (name one with --layer).")
    return names[-1]


def _gradcam(model: nn.Module, layer: str | None) -> GradCAM:
    """Grad-CAM on `layer`, by default the last convolution; a vision transformer's tokens are laid
    out on its patch grid (`tokens_to_grid`), its default layer the one it names (`gradcam_layer`)."""
    if not hasattr(model, "tokens_to_grid"):
        return GradCAM(model, layer or _last_conv(model))
    layer = layer or model.gradcam_layer
    conv = isinstance(dict(model.named_modules()).get(layer), nn.Conv2d)  # already (B, C, rows, columns)
    return GradCAM(model, layer, reshape_transform=None if conv else model.tokens_to_grid)


def _example(checkpoint, data, split, index, input_file, data_dir, device, source=None
             ) -> tuple[DataSpec, dict[str, Any], Any]:
    """The spec, one example as a batch of one (``x`` and, for text, ``lengths``), and the dataset split."""
    if input_file is not None:
        spec = DataSpec.from_dict(read_config(checkpoint)["data"])
        reader = format_inputs(spec)  # a file of the training schema, read as the model was trained
        x = torch.from_numpy(reader(Path(input_file), spec) if reader is not None else read_inputs(input_file, spec))
        if not 0 <= index < len(x):
            raise ConfigError(f"--index {index} is out of range: {input_file} holds {len(x)} inputs.")
        return spec, {"x": x[index:index + 1].to(device)}, None
    _, dataset = load_checkpoint_data(checkpoint, data, data_dir, **(source or {}))
    part = dataset[split]
    if dataset.spec.kind == "graph":
        return dataset.spec, {k: v.to(device) if torch.is_tensor(v) else v for k, v in part.batch().items()}, part
    if not 0 <= index < len(part):
        raise ConfigError(f"--index {index} is out of range: the {split} split of '{dataset.spec.name}' has "
                          f"{len(part)} examples.")
    row = {k: v[index:index + 1].to(device) for k, v in part.tensors.items()}
    if "lengths" in row:
        row["x"] = row["x"][:, :int(row["lengths"].max())]
    return dataset.spec, row, part


def explain_checkpoint(checkpoint: str | os.PathLike, method: str = "integrated-gradients", *,
                       data: str | None = None, split: str = "test", index: int = 0,
                       input_file: str | os.PathLike | None = None, target: int | None = None,
                       out: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
                       device: str = "auto", n_steps: int = 50, layer: str | None = None,
                       window: int | None = None, stride: int | None = None, samples: int | None = None,
                       seed: int = 0, source: dict[str, Any] | None = None, verify: bool = True) -> Explanation:
    """Explain one example (``--index`` of a split, or of an input file) of a checkpoint's model.

    The target defaults to the predicted class. `out` writes the figure: PNG for images,
    tabular features and graphs, HTML (highlighted tokens) for text.
    """
    from ..report import explain as figures

    config = read_config(checkpoint)
    model_name = config["model"]["name"]
    device = resolve_device(device)
    model = load_model(checkpoint, device, verify=verify)
    spec, batch, part = _example(checkpoint, data, split, index, input_file, data_dir, device, source)
    _check_method(method, "graph" if spec.kind == "graph" else spec.kind, model_name)
    if method == "permutation":
        raise ConfigError("--method permutation ranks the features over a whole split; it has no single "
                          "example (it takes no --index or --input).")
    if method == "anomaly" or hasattr(model, "anomaly_score"):
        if method != "anomaly":
            raise ConfigError(f"'{model_name}' is an autoencoder; explain its anomaly score with --method anomaly.")
        x = batch["x"]
        attr = AnomalyAttribution(model).attribute(x, n_steps=n_steps)
        with torch.no_grad():
            score = float(model.anomaly_score(x)[0])
        result = Explanation(method, index, None, None, attr[0].cpu(), metrics={"anomaly_score": score})
        return _draw(result, spec, x[0], out, figures)
    if spec.kind == "graph":
        x = batch["x"].to_dense() if batch["x"].is_sparse else batch["x"]
        num_nodes = x.shape[0]
        if not 0 <= index < num_nodes:
            raise ConfigError(f"--index {index} is out of range: the graph has {num_nodes} nodes.")
        explanation = GNNExplainer(model).explain_node(index, x, batch["edge_index"], target, seed=seed)
        with torch.no_grad():
            predicted = int(model(x, batch["edge_index"])[index].argmax())
        result = Explanation(method, index, explanation.target, predicted, explanation.edge_mask.cpu(),
                             metrics={"loss": explanation.losses[-1]})
        if out is not None:
            result.figure = str(figures.subgraph_figure(batch["edge_index"], explanation.edge_mask, out, node=index,
                                                        labels=batch.get("y"), title=f"node {index}: class "
                                                        f"{explanation.target}"))
        return result
    x = batch["x"]
    args = (batch["lengths"],) if "lengths" in batch else ()
    with torch.no_grad():
        logits = model(x, *args)
    predicted = int(logits[0].argmax())
    classes = logits.shape[-1]
    if target is None:
        target = predicted
    elif not 0 <= target < classes:
        raise ConfigError(f"--target {target} is out of range: the model has {classes} classes (0..{classes - 1}).")
    metrics = {"probability": float(torch.softmax(logits[0], -1)[target])}
    options = {"n_steps": n_steps, "layer": layer, "window": window, "stride": stride, "samples": samples,
               "seed": seed, "lengths": batch.get("lengths"), "kind": spec.kind}
    attribute = _token_attribution if spec.kind == "text" and method == "integrated-gradients" else ATTRIBUTIONS[method]
    attr, extra = attribute(model, x, target, args, options)
    metrics.update(extra)
    result = Explanation(method, index, None if method == "attention-rollout" else target, predicted,
                         attr[0].detach().cpu(), metrics=metrics)
    if spec.kind == "text":
        result.tokens = _tokens(checkpoint, x[0])
    return _draw(result, spec, x[0], out, figures)


# method -> ``attribute(model, x, target, forward_args, options) -> (attributions, metrics)`` for one
# example of a classifier; the anomaly score and graphs have their own paths above.
def _integrated_gradients(model, x, target, args, options):
    attr, delta = IntegratedGradients(model).attribute(x, target=target, n_steps=options["n_steps"],
                                                       return_convergence_delta=True)
    return attr, {"convergence_delta": float(delta[0])}


def _token_attribution(model, x, target, args, options):
    attr, delta = TokenAttribution(model).attribute(x, target=target, additional_forward_args=args,
                                                    n_steps=options["n_steps"], return_convergence_delta=True)
    return attr, {"convergence_delta": float(delta[0])}


def _window(x, options) -> int:
    """Occlusion's window and the patch size of lime and kernel-shap: about 7 across an image, else 1."""
    return options["window"] or (max(2, x.shape[-1] // 7) if options["kind"] == "image" else 1)


def _occlusion(model, x, target, args, options):
    dims, image = x.shape[1:], options["kind"] == "image"
    size = _window(x, options)
    shape = (dims[0], size, size) if image else (1,) * (len(dims) - 1) + (size,)
    step = options["stride"] or max(1, size // 2)
    strides = (dims[0], step, step) if image else (1,) * (len(dims) - 1) + (step,)
    return Occlusion(model).attribute(x, target=target, sliding_window_shapes=shape, strides=strides), {}


def _deep_lift(model, x, target, args, options):
    attr, delta = DeepLift(model).attribute(x, target=target, return_convergence_delta=True)
    return attr, {"convergence_delta": float(delta[0])}


def _gradient_shap(model, x, target, args, options):
    """Draws around a zero baseline, as many as --samples (default 20)."""
    attr, delta = GradientShap(model).attribute(x, target=target, n_samples=options["samples"] or 20,
                                                seed=options["seed"], return_convergence_delta=True)
    return attr, {"convergence_delta_mean": float(delta.mean())}


def _feature_mask(x, options) -> torch.Tensor:
    """Interpretable features of one example: square patches of --window for an image (all channels
    together), windows of time steps for a sequence, each feature of a table."""
    size = _window(x, options)
    if options["kind"] == "image":
        height, width = x.shape[-2:]
        across = -(-width // size)
        return (torch.arange(height)[:, None] // size * across + torch.arange(width)[None] // size)[None, None]
    if options["kind"] == "sequence":  # (B, T, D): one feature per window of time steps
        return (torch.arange(x.shape[1]) // size)[None, :, None]
    return torch.arange(x[0].numel()).view(1, *x.shape[1:])


def _surrogate(method):
    def attribute(model, x, target, args, options):
        mask = _feature_mask(x, options).to(x.device)
        features = int(mask.max()) + 1
        samples = options["samples"] or 200
        if method is KernelShap and samples <= features:
            raise ConfigError(f"--samples {samples} is too few for kernel-shap: the example has {features} features "
                              f"(--window {_window(x, options)}); give --samples > {features} or a larger --window.")
        return method(model).attribute(x, target=target, feature_mask=mask, n_samples=samples,
                                       seed=options["seed"]), {"features": features}
    return attribute


ATTRIBUTIONS = {
    "integrated-gradients": _integrated_gradients,
    "saliency": lambda model, x, target, args, options: (Saliency(model).attribute(x, target=target), {}),
    "input-x-gradient": lambda model, x, target, args, options: (InputXGradient(model).attribute(x, target=target),
                                                                 {}),
    "smoothgrad": lambda model, x, target, args, options: (
        SmoothGrad(model).attribute(x, target=target, nt_samples=options["samples"] or 20, seed=options["seed"]), {}),
    "gradcam": lambda model, x, target, args, options: (_gradcam(model, options["layer"]).attribute(x, target=target),
                                                        {}),
    "occlusion": _occlusion,
    "feature-ablation": lambda model, x, target, args, options: (FeatureAblation(model).attribute(x, target=target),
                                                                 {}),
    "deeplift": _deep_lift,
    "gradient-shap": _gradient_shap,
    "kernel-shap": _surrogate(KernelShap),
    "lime": _surrogate(Lime),
    "attention-rollout": lambda model, x, target, args, options: (
        AttentionRollout(model).attribute(x, lengths=options["lengths"]), {}),
}


def _tokens(checkpoint, ids: torch.Tensor) -> list[str]:
    from ..data.tokenizer import load_tokenizer

    try:
        tokenizer = load_tokenizer(checkpoint)
    except (FileNotFoundError, DataError):
        return [str(int(i)) for i in ids]
    return [tokenizer.decode([int(i)]) for i in ids]


def _draw(result: Explanation, spec: DataSpec, x: torch.Tensor, out, figures) -> Explanation:
    if out is None:
        return result
    title = f"{result.method}" + (f", class {result.target}" if result.target is not None else "")
    if spec.kind == "text":
        if Path(out).suffix.lower() != ".html":
            raise ConfigError(f"token attributions are written as HTML; --out must end in .html, got '{out}'.")
        result.figure = str(figures.write_token_html(result.tokens, result.attributions, out, title=title))
    elif spec.kind in ("image", "sequence"):  # a sequence (T, D) is drawn as a T x D map
        result.figure = str(figures.image_attribution_figure(x.cpu(), result.attributions, out, title=title))
    else:
        names = feature_names(spec, result.attributions.numel())
        result.figure = str(figures.feature_importance_figure(names, result.attributions.reshape(-1), out,
                                                              title=title, xlabel="attribution"))
    return result


def feature_names(spec: DataSpec, count: int) -> list[str]:
    names = spec.preprocess.get("feature_names") if isinstance(spec.preprocess, dict) else None
    return list(names) if names and len(names) == count else [f"x{i}" for i in range(count)]


def checkpoint_permutation_importance(checkpoint: str | os.PathLike, *, data: str | None = None, split: str = "test",
                                      n_repeats: int = 10, seed: int = 0, scoring: str = "accuracy",
                                      out: str | os.PathLike | None = None,
                                      data_dir: str | os.PathLike | None = None,
                                      device: str = "auto", source: dict[str, Any] | None = None,
                                      verify: bool = True) -> tuple[PermutationImportance, list[str], str | None]:
    """Permutation importance of each feature of a tabular checkpoint on a split; the feature
    names; and the bar chart written to `out` (PNG), if asked."""
    from ..report import explain as figures

    config = read_config(checkpoint)
    device = resolve_device(device)
    _, dataset = load_checkpoint_data(checkpoint, data, data_dir, **(source or {}))
    _check_method("permutation", dataset.spec.kind, config["model"]["name"])
    model = load_model(checkpoint, device, verify=verify)
    part = dataset[split]
    result = permutation_importance(model, part["x"].to(device), part["y"].to(device), n_repeats=n_repeats,
                                    random_state=seed, scoring=scoring)
    names = feature_names(dataset.spec, len(result.importances_mean))
    figure = None
    if out is not None:
        figure = str(figures.feature_importance_figure(names, np.asarray(result.importances_mean), out,
                                                       errors=result.importances_std,
                                                       title=f"permutation importance ({scoring})",
                                                       xlabel=f"drop in {scoring}"))
    return result, names, figure


def explain(checkpoint: str | os.PathLike, method: str | None = None, *, data: str | None = None,
            split: str = "test", index: int | None = None, input_file: str | os.PathLike | None = None,
            target: int | None = None, out: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None, device: str = "auto", n_steps: int = 50,
            layer: str | None = None, window: int | None = None, stride: int | None = None, samples: int | None = None,
            n_repeats: int = 10, scoring: str = "accuracy", seed: int = 0, target_column: str | None = None,
            data_format: str | None = None, data_options: dict[str, Any] | None = None,
            verify: bool = True) -> JobResult:
    """Explain a checkpoint: attributions for one example (``details["attributions"]``, shaped like it),
    or, with ``method="permutation"``, the permutation importance of a tabular model's features over
    a split (``details["importances"]``, most important first). `method` defaults to the one its
    model's registration names. `target` is the class explained (the attribution methods' name for
    it); `target_column`, `data_format` and `data_options` read `data` when it is a file or folder.
    Given the folder of a ``train --seeds`` run, the lowest seed's run is explained (a `RunNote` says
    so; the result's checkpoint names it)."""
    source = {"target": target_column, "data_format": data_format, "data_options": data_options}
    started = time.perf_counter()
    checkpoint = single_run(checkpoint, "explain")
    if method is None:
        name = read_config(checkpoint)["model"]["name"]
        method = model_info(name).explanation
        if method is None:
            raise ConfigError(f"model '{name}' has no default explanation; name a method with --method "
                              f"({', '.join(sorted(METHODS))}).")
    if method == "permutation":
        if index is not None or input_file is not None:
            raise ConfigError("--method permutation ranks the features over a whole split; drop --index/--input.")
        result, names, figure = checkpoint_permutation_importance(
            checkpoint, data=data, split=split, n_repeats=n_repeats, seed=seed, scoring=scoring, out=out,
            data_dir=data_dir, device=device, source=source, verify=verify)
        ranking = [{"feature": names[i], "mean": float(result.importances_mean[i]),
                    "std": float(result.importances_std[i])} for i in result.ranking()]
        return JobResult({f"{split}_{scoring}": result.baseline_score}, str(checkpoint),
                         time.perf_counter() - started, figures=[figure] if figure else [],
                         details={"method": method, "importances": ranking, "n_repeats": n_repeats,
                                  "scoring": scoring, "split": split})
    found = explain_checkpoint(checkpoint, method, data=data, split=split, index=index or 0, input_file=input_file,
                               target=target, out=out, data_dir=data_dir, device=device, n_steps=n_steps,
                               layer=layer, window=window, stride=stride, samples=samples, seed=seed,
                               source=source, verify=verify)
    return JobResult(found.metrics, str(checkpoint), time.perf_counter() - started,
                     figures=[found.figure] if found.figure else [],
                     details={"method": found.method, "index": found.index, "target": found.target,
                              "predicted": found.predicted, "attributions": found.attributions,
                              "tokens": found.tokens})
