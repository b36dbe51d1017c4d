"""The report job: one self-contained HTML page about one or more runs (`archlab report`, and
``train --report``), assembled from the figures of `archlab.report`.

A run is a checkpoint folder, or the folder of a ``train --seeds`` run (its ``seed-N``
checkpoints). The page holds the run's settings and data, the learning curves of every run
overlaid, the final metrics (mean ± std over seeds), for a classifier its confusion matrix,
per-class scores and most confident mistakes, the family's own figures, and the environment.
What cannot be shown (no test split, data that cannot be read again, a history with NaN) is
said in a note where it would have been.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..data import Dataset, DataSpec
from ..data.registry import dataset_info
from ..data.paths import resolve_data_dir
from ..data.sources import source_options
from ..engine.checkpoint import is_checkpoint, read_config
from ..errors import CheckpointError, ConfigError, DataError
from ..models.registry import load_model, model_info, saved_kwargs
from ..utils import resolve_device
from ..validation import check_int
from .data import open_data, reopen_data
from .result import JobResult
from .runs import seed_runs

if TYPE_CHECKING:  # matplotlib and scikit-learn are imported when a report is drawn, not with the jobs
    from ..report.html import Document, Section

#: examples whose attributions are drawn, and the integration steps of each
ATTRIBUTED_EXAMPLES = 3
ATTRIBUTION_STEPS = 32
#: meta-test tasks behind the adaptation curve
ADAPTATION_TASKS = 20
GENERATED_TOKENS = 200
#: a file written by `archlab anomaly` beside its checkpoint: the normal class and the threshold
ANOMALY_FILE = "anomaly.json"


@dataclass
class Run:
    """One run of the report: its label, its folder, and its checkpoints (``(seed, folder)``;
    seed None for a single checkpoint)."""

    label: str
    path: Path
    members: list[tuple[int | None, Path]]
    config: dict[str, Any]


def open_run(path: str | os.PathLike) -> Run:
    """The run in `path`, refused with one line when it is neither a checkpoint nor a seed-run folder."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a run folder: expected a checkpoint folder written by archlab, "
                              f"or a folder of seed-N checkpoints from `train --seeds`; "
                              f"{'it is a file' if path.exists() else 'it does not exist'}.")
    members: list[tuple[int | None, Path]] = list(seed_runs(path))
    if not members:
        if not is_checkpoint(path):
            raise CheckpointError(f"{path} is not a run folder: expected a checkpoint folder written by archlab "
                                  "(config.json, model.safetensors, history.csv), or a folder of seed-N "
                                  "checkpoints from `train --seeds`; found neither.")
        members = [(None, path)]
    return Run(path.resolve().name or str(path), path, members, read_config(members[0][1]))


def run_data(run: Run, data: str | os.PathLike | Dataset | None, data_dir) -> Dataset:
    """The data of `run`: `data` when given, else the dataset it was trained on, read again."""
    config = run.config
    if data is not None:
        dataset = open_data(data, data_dir)
    elif not config.get("data"):
        raise ConfigError("the checkpoint records no dataset")
    else:
        dataset = reopen_data(DataSpec.from_dict(config["data"]),
                              data_dir if data_dir is not None else config.get("data_dir"))
    kinds = model_info(config["model"]["name"]).data_kinds
    if dataset.spec.kind not in kinds:
        raise ConfigError(f"the model takes {' or '.join(kinds)} data; '{dataset.spec.name}' is {dataset.spec.kind}")
    return dataset


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def _kind(config: dict[str, Any]) -> str:
    if isinstance(config.get("meta"), dict):
        return "meta"
    return config.get("task") or model_info(config["model"]["name"]).task


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


# ---- the parts of the page --------------------------------------------------------------------


def run_section(doc: Document, run: Run, dataset: Dataset | None, data_error: str | None) -> None:
    config = run.config
    s = doc.section(f"Run {run.label}")
    seeds = [seed for seed, _ in run.members if seed is not None]
    s.paragraph(f"Folder {run.path}" + (f": {len(seeds)} seed runs (seeds {', '.join(map(str, seeds))})"
                                        if seeds else ": one checkpoint."))
    rows = [["model", config["model"]["name"]], ["hyperparameters", _format(saved_kwargs(config["model"]))]]
    if _kind(config) == "meta":
        rows += [[f"meta {k}", _format(v)] for k, v in config["meta"].items() if k != "model_kwargs"]
    else:
        rows += [["task", _format(config.get("task"))], ["task options", _format(config.get("task_options", {}))]]
    rows += [[f"train {k}", _format(v)] for k, v in (config.get("train") or {}).items() if v is not None]
    s.heading("configuration")
    s.table(["setting", "value"], rows)
    s.heading("data")
    if _kind(config) == "meta":
        meta = config["meta"]
        s.table(["what", "value"], [["tasks from", meta["data"]], ["ways", meta["ways"]], ["shots", meta["shots"]],
                                    ["query", meta["query"]], ["kind", meta.get("kind", "classification")]])
        return
    spec = dataset.spec if dataset is not None else (DataSpec.from_dict(config["data"]) if config.get("data")
                                                     else None)
    if spec is None:
        s.note("The checkpoint records no dataset.")
        return
    rows = [["name", spec.name], ["kind", spec.kind], ["input shape", _format(list(spec.input_shape))],
            ["classes", spec.num_classes or "a numeric target"]]
    if spec.class_names:
        names = spec.class_names[:20]
        rows.append(["class names", ", ".join(map(str, names)) + (", ..." if len(spec.class_names) > 20 else "")])
    if dataset is not None:
        for name, split in dataset.splits.items():
            rows.append([f"{name} split", _split_size(split)])
    s.table(["what", "value"], rows)
    if data_error:
        s.note(f"The data could not be read again ({data_error}); the sections that need its examples are "
               "omitted.")


def _split_size(split: Any) -> str:
    if hasattr(split, "tensors") and "mask" in split.tensors:  # a transductive graph split
        return f"{int(split['mask'].sum())} nodes"
    try:
        return f"{len(split)} examples"
    except TypeError:
        return "?"


def curves_section(doc: Document, runs: list[Run]) -> None:
    from ..report.curves import learning_curves_figure, non_finite, read_history
    s = doc.section("Learning curves")
    histories: dict[str, list[dict[str, float]]] = {}
    for run in runs:
        for seed, folder in run.members:
            label = run.label if seed is None else f"{run.label} seed {seed}"
            file = folder / "history.csv"
            if not file.is_file():
                s.note(f"{label} has no history.csv; it is left out of the curves.")
                continue
            rows = read_history(file)
            if rows:
                histories[label] = rows
    for note in non_finite(histories):
        s.note(note)
    if not histories:
        s.note("No run has a history to plot.")
        return
    s.paragraph("Train curves are dashed (the means over the steps since the previous row), val curves solid.")
    s.figure(learning_curves_figure(histories), "learning-curves", "every metric of the history against the step")


def metrics_section(doc: Document, runs: list[Run]) -> None:
    s = doc.section("Final metrics")
    columns: list[dict[str, str]] = []
    keys: list[str] = []
    for run in runs:
        per_member = []
        for seed, folder in run.members:
            saved = _read_json(folder / "metrics.json")
            metrics = saved.get("metrics", {}) if isinstance(saved, dict) else {}
            if not metrics:
                s.note(f"{folder} has no final metrics (metrics.json), as after a run stopped by its time limit.")
            per_member.append({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        found = [m for m in per_member if m]
        names = [k for k in (found[0] if found else {}) if all(k in m for m in found)]
        keys += [k for k in names if k not in keys]
        cell = {}
        for key in names:
            values = np.array([m[key] if m[key] is not None else math.nan for m in found], dtype=np.float64)
            cell[key] = (f"{values.mean():.4g} ± {values.std():.2g} ({len(values)} seeds)" if len(values) > 1
                         else f"{values[0]:.4g}")
        columns.append(cell)
    if not keys:
        s.note("No run has final metrics.")
        return
    if any(len(r.members) > 1 for r in runs):
        s.paragraph("Over seeds: mean ± standard deviation (population, as `train --seeds` reports it).")
    s.table(["metric", *(r.label for r in runs)], [[k, *(c.get(k, "") for c in columns)] for k in keys])


def environment_section(doc: Document, runs: list[Run], device: torch.device, data_dir) -> None:
    from ..report.environment import environment, file_hashes
    s = doc.section("Environment")
    s.table(["what", "value"], [list(row) for row in environment(device)])
    s.heading("data files")
    rows, described = [], set()
    for run in runs:
        for where in data_locations(run.config, data_dir):
            if isinstance(where, str):
                if where not in described:
                    s.paragraph(where)
                    described.add(where)
                continue
            if str(where) in described:
                continue
            described.add(str(where))
            hashed, more = file_hashes([where])
            rows += [[path, size, digest] for path, size, digest in hashed]
            if more:
                s.note(f"{where}: {more} more files are not hashed.")
            if not hashed:
                s.note(f"{where}: no data file is there to hash.")
    if rows:
        s.table(["file", "bytes", "sha256"], rows)
    s.heading("checkpoint files")
    s.table(["file", "sha256"], [[str(folder / name), digest] for run in runs for _, folder in run.members
                                 for name, digest in (read_config(folder).get("sha256") or {}).items()])


def data_locations(config: dict[str, Any], data_dir) -> list[Path | str]:
    """The files a run read its data from, or a sentence saying why there are none."""
    data_dir = data_dir if data_dir is not None else config.get("data_dir")
    if isinstance(config.get("meta"), dict):
        name = config["meta"]["data"]
        if name == "sinusoid":
            return ["sinusoid: tasks generated from the seed; no data file."]
        folder = "omniglot" if name == "omniglot" else _registered_folder(name)
        return [resolve_data_dir(data_dir) / folder] if folder else [f"{name}: embedded data; no data file."]
    if not config.get("data"):
        return []
    spec = DataSpec.from_dict(config["data"])
    recorded = source_options(Dataset(spec, {}))
    if recorded is not None:
        return [Path(recorded["source"])]
    folder = _registered_folder(spec.name)
    return [resolve_data_dir(data_dir) / folder] if folder else [f"{spec.name}: embedded in archlab; no data file."]


def _registered_folder(name: str) -> str | None:
    try:
        return dataset_info(name).folder
    except ConfigError:
        return None


# ---- a run's examples: classification, families -------------------------------------------------


def _forward(model, batch: dict[str, Any]) -> torch.Tensor:
    return model(batch["x"], lengths=batch["lengths"]) if "lengths" in batch else model(batch["x"])


def _tokens(folder: Path, ids: torch.Tensor) -> list[str]:
    from ..data.tokenizer import load_tokenizer

    try:
        tokenizer = load_tokenizer(folder)
    except (FileNotFoundError, DataError):
        return [str(int(i)) for i in ids]
    return [tokenizer.decode([int(i)]) for i in ids]


def _class_name(spec: DataSpec, index: int) -> str:
    names = spec.class_names or []
    return str(names[index]) if index < len(names) else str(index)


def classification_section(s: Section, model, spec: DataSpec, test: Any, folder: Path, kind: str,
                           examples: int, device: torch.device, tmp: Path) -> None:
    """Confusion matrix, per-class scores and the most confident mistakes of a classifier on its
    test split; then the attributions of a few test examples (images, text, sequences)."""
    from ..report.classification import confident_mistakes, confusion_figure, examples_figure, per_class_scores
    model.eval()
    with torch.no_grad():
        if kind == "node-classification":
            batch = next(iter(test.batches(len(test) if hasattr(test, "__len__") else 1)))
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            logits = model(batch["x"], batch["edge_index"], batch.get("edge_weight"))
            nodes = torch.nonzero(batch["mask"]).squeeze(1)
            probabilities = torch.softmax(logits[nodes], -1).cpu().numpy()
            labels = batch["y"][nodes].cpu().numpy()
        else:
            parts, ys = [], []
            for batch in test.batches(512):
                batch = {k: v.to(device) for k, v in batch.items()}
                parts.append(torch.softmax(_forward(model, batch), -1).cpu())
                ys.append(batch["y"].cpu())
            probabilities, labels = torch.cat(parts).numpy(), torch.cat(ys).numpy()
    k = probabilities.shape[1]
    predicted = probabilities.argmax(1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predicted), 1)
    names = [_class_name(spec, i) for i in range(k)]
    s.heading("confusion matrix (test split)")
    s.figure(confusion_figure(confusion, names), "confusion-matrix",
             f"{len(labels)} test examples; accuracy {np.trace(confusion) / max(1, len(labels)):.4f}")
    s.heading("per-class scores (test split)")
    s.table(["class", "precision", "recall", "F1", "support"],
            [[n, r["precision"], r["recall"], r["f1"], r["support"]]
             for n, r in zip(names, per_class_scores(confusion))])
    s.heading("most confidently wrong test examples")
    wrong = confident_mistakes(probabilities, labels, examples)
    if not wrong:
        s.paragraph("The model classifies every test example correctly.")
    else:
        def said(i: int) -> tuple[str, str, float]:
            return names[int(labels[i])], names[int(predicted[i])], float(probabilities[i, predicted[i]])

        if kind == "node-classification":
            s.table(["node", "true", "predicted", "probability"],
                    [[int(nodes[i]), *said(i)] for i in wrong])
        elif spec.kind in ("image", "sequence"):
            x = test["x"][torch.as_tensor(wrong)].cpu().numpy()
            s.figure(examples_figure(x, [f"true {t}, predicted {p}\n(p = {q:.2f})" for t, p, q in map(said, wrong)]),
                     "confident-mistakes", "test examples the model got wrong with the highest confidence")
        elif spec.kind == "text":
            rows = []
            for i in wrong:
                ids = test["x"][i][: int(test["lengths"][i])] if "lengths" in test.tensors else test["x"][i]
                rows.append([i, _text_of(folder, ids), *said(i)])
            s.table(["test index", "text", "true", "predicted", "probability"], rows)
        else:
            x = test["x"][torch.as_tensor(wrong)].cpu().numpy().reshape(len(wrong), -1)
            features = _feature_names(spec, x.shape[1])[:12]
            s.table(["test index", *features, "true", "predicted", "probability"],
                    [[i, *map(float, row[:12]), *said(i)] for i, row in zip(wrong, x)])
    attribution_section(s, model, spec, test, folder, kind, device, tmp)


def _text_of(folder: Path, ids: torch.Tensor) -> str:
    from ..data.tokenizer import load_tokenizer

    try:
        return load_tokenizer(folder).decode([int(i) for i in ids])
    except (FileNotFoundError, DataError):
        return " ".join(str(int(i)) for i in ids)


def _feature_names(spec: DataSpec, count: int) -> list[str]:
    names = spec.preprocess.get("feature_names") if isinstance(spec.preprocess, dict) else None
    return list(names) if names and len(names) == count else [f"x{i}" for i in range(count)]


def attribution_section(s: Section, model, spec: DataSpec, test: Any, folder: Path, kind: str,
                        device: torch.device, tmp: Path) -> None:
    from ..explain.integrated_gradients import IntegratedGradients
    from ..explain.layer_integrated_gradients import TokenAttribution
    from ..report import explain as drawn

    if kind == "node-classification":
        gnn_section(s, model, test, device, tmp)
        return
    if spec.kind not in ("image", "text", "sequence"):
        return
    s.heading(f"integrated gradients of {ATTRIBUTED_EXAMPLES} test examples")
    count = min(ATTRIBUTED_EXAMPLES, len(test))
    for i in range(count):
        row = {k: v[i:i + 1].to(device) for k, v in test.tensors.items()}
        if "lengths" in row:
            row["x"] = row["x"][:, :int(row["lengths"].max())]
        with torch.no_grad():
            target = int(_forward(model, row)[0].argmax())
        title = f"test example {i}: true {_class_name(spec, int(row['y'][0]))}, explained class " \
                f"{_class_name(spec, target)}"
        if spec.kind == "text":
            args = (row["lengths"],) if "lengths" in row else ()
            attr = TokenAttribution(model).attribute(row["x"], target=target, additional_forward_args=args,
                                                     n_steps=ATTRIBUTION_STEPS)
            s.fragment(drawn.token_html(_tokens(folder, row["x"][0]), attr[0].detach().cpu(), title=title))
        else:
            attr = IntegratedGradients(model).attribute(row["x"], target=target, n_steps=ATTRIBUTION_STEPS)
            path = drawn.image_attribution_figure(row["x"][0].cpu(), attr[0].detach().cpu(), tmp / f"ig-{i}.png",
                                                  title=title)
            s.figure(path, f"attribution-{i}", title)


def receptive_field(model, node: int, x: torch.Tensor, edge_index: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The subgraph that decides `node`'s output: the nodes within one hop more than the model has
    message-passing layers (so every degree the layers normalize by is whole), as their features, the
    edges among them (original ids, and relabelled from 0), and the node's new index. The whole graph
    when the model's output for the node differs on it (a model that is not local)."""
    from ..nn.message_passing import MessagePassing

    hops = sum(isinstance(m, MessagePassing) for m in model.modules()) + 1
    reached = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    reached[node] = True
    for _ in range(hops):  # one hop along the edges either way, from the nodes reached before it
        source, target = reached[edge_index[0]], reached[edge_index[1]]
        reached[edge_index[1][source]] = True
        reached[edge_index[0][target]] = True
    kept = edge_index[:, reached[edge_index[0]] & reached[edge_index[1]]]
    relabel = torch.cumsum(reached.long(), 0) - 1
    sub_x, sub_edges, center = x[reached], relabel[kept], int(relabel[node])
    with torch.no_grad():
        whole, part = model(x, edge_index)[node], model(sub_x, sub_edges)[center]
    if not torch.allclose(whole, part, rtol=1e-4, atol=1e-5):
        return x, edge_index, edge_index, node
    return sub_x, kept, sub_edges, center


def gnn_section(s: Section, model, test: Any, device: torch.device, tmp: Path) -> None:
    from ..explain.gnn_explainer import GNNExplainer
    from ..report import explain as drawn

    (batch,) = test.batches(1)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    x = batch["x"].to_dense() if batch["x"].is_sparse else batch["x"]
    node = int(torch.nonzero(batch["mask"])[0, 0])
    model.eval()
    sub_x, edges, sub_edges, center = receptive_field(model, node, x, batch["edge_index"])
    explanation = GNNExplainer(model).explain_node(center, sub_x, sub_edges, seed=0)
    s.heading(f"explanatory subgraph of test node {node} (GNNExplainer)")
    path = drawn.subgraph_figure(edges, explanation.edge_mask, tmp / "subgraph.png", node=node,
                                 labels=batch.get("y"), title=f"node {node}: class {explanation.target}")
    s.figure(path, "gnn-subgraph", "the 20 edges of highest mask value, learned on the node's receptive field; "
                                   "the explained node outlined in red")


def attention_section(s: Section, model, spec: DataSpec, test: Any, folder: Path, device: torch.device) -> None:
    """The attention maps of the first test example, for a model whose forward can return them."""
    from ..report.families import attention_figure
    if "return_attention" not in inspect.signature(model.forward).parameters:
        return
    if hasattr(test, "tensors"):
        row = {k: v[:1].to(device) for k, v in test.tensors.items()}
        if "lengths" in row:
            row["x"] = row["x"][:, :int(row["lengths"].max())]
    else:  # a language model's token stream
        row = {k: v.to(device) for k, v in next(iter(test.batches(1))).items()}
        row["x"] = row["x"][:, :32]
    model.eval()
    with torch.no_grad():
        args = {"lengths": row["lengths"]} if "lengths" in row else {}
        _, attentions = model(row["x"], **args, return_attention=True)
    maps = [a[0].cpu() for a in attentions if a is not None]
    if not maps:
        return
    size = maps[0].shape[-1]
    tokens = _tokens(folder, row["x"][0]) if spec.kind == "text" else None
    if tokens is not None and size == len(tokens) + 1:
        tokens = ["[pooled]", *tokens]
    s.heading("attention maps of the first test example (mean over heads)")
    s.figure(attention_figure(maps, tokens), "attention-maps", f"{len(maps)} layers shown")


def language_model_section(s: Section, model, test: Any, folder: Path, device: torch.device) -> None:
    from ..data.tokenizer import load_tokenizer

    try:
        tokenizer = load_tokenizer(folder)
    except (FileNotFoundError, DataError) as err:
        s.note(f"No generated text: the checkpoint's tokenizer cannot be read ({err}).")
        return
    if test is not None:
        prompt, said = next(iter(test.batches(1)))["x"][0, :16].to(device), "the first 16 tokens of the test split"
    else:
        prompt, said = torch.tensor(tokenizer.encode("\n"), dtype=torch.long, device=device), "a new line"
    generator = torch.Generator(device=device).manual_seed(0)
    model.eval()
    out = model.generate(prompt, GENERATED_TOKENS, 1.0, None, None, generator=generator)
    s.heading(f"generated text ({GENERATED_TOKENS} tokens, temperature 1, seed 0)")
    s.paragraph(f"Prompt: {said}.")
    s.preformatted(tokenizer.decode(out.tolist()))


def autoencoder_section(s: Section, model, spec: DataSpec, test: Any, folder: Path, device: torch.device,
                        tmp: Path) -> None:
    from ..report.families import roc_figure
    from ..models.autoencoder.anomaly import anomaly_scores
    from ..report import autoencoder as drawn

    from ..models.autoencoder.base import inference

    image = len(model.input_shape) == 3
    if image:
        s.heading("reconstructions (test split)")
        x = model.as_input(test["x"][:8])
        with inference(model):
            recon = model.reconstruct(x)
        s.figure(drawn.image_grid(_enlarged(torch.cat([x, recon])), tmp / "recon.png", nrow=len(x),
                                  title="input / reconstruction", row_labels=["input", "recon."]),
                 "reconstructions", "test inputs above their reconstructions")
        if hasattr(model, "sample"):
            samples_section(s, model, device, tmp)
    else:
        s.note("Reconstructions and samples are drawn for image data; this model's inputs are feature vectors.")
    if "y" in test.tensors and spec.num_classes:
        s.heading("codes of the test split")
        codes = model.transform(test["x"][:2000])
        s.figure(drawn.latent_scatter(codes, test["y"][:2000], tmp / "latent.png", class_names=spec.class_names),
                 "latent-scatter", "codes coloured by label (principal components when the code has more than 2 "
                                   "dimensions)")
    setting = _read_json(folder / ANOMALY_FILE)
    if isinstance(setting, dict) and "normal_class" in setting:
        normal = int(setting["normal_class"])
        scores = anomaly_scores(model, test["x"])
        is_anomaly = (test["y"].cpu().numpy() != normal)
        threshold = setting.get("threshold")
        s.heading(f"anomaly detection (normal class {_class_name(spec, normal)})")
        s.figure(drawn.anomaly_histogram(scores[~is_anomaly], scores[is_anomaly], tmp / "scores.png",
                                         threshold=threshold), "anomaly-histogram",
                 "anomaly scores of the normal and the anomalous test examples")
        s.figure(roc_figure(scores, is_anomaly, threshold), "anomaly-roc", "ROC curve on the whole test split")


def _enlarged(images: torch.Tensor, size: int = 28) -> torch.Tensor:
    """Small images ``(N, C, H, W)`` repeated up to about `size` pixels a side, so a grid of them is legible."""
    factor = max(1, size // max(images.shape[-2:]))
    return images.detach().cpu().repeat_interleave(factor, -2).repeat_interleave(factor, -1)


def samples_section(s: Section, model, device: torch.device, tmp: Path) -> None:
    from ..report import autoencoder as drawn

    s.heading("samples from the prior")
    samples = model.sample(16, torch.Generator(device=device).manual_seed(0))
    s.figure(drawn.image_grid(_enlarged(samples), tmp / "samples.png", nrow=4, title="16 samples"), "samples",
             "decoded draws from the prior (seed 0)")


def meta_section(s: Section, folder: Path, config: dict[str, Any], data_dir, device: torch.device) -> None:
    from ..report.families import adaptation_figure
    from ..data import task_sampler
    from .meta import load_learner, reading

    learner, settings, kind = load_learner(folder, device)
    query = 15 if kind == "classification" else 100
    sampler = task_sampler(settings.data, split="test", ways=settings.ways, shots=settings.shots, query=query,
                           data_dir=data_dir, seed=settings.seed, **reading(settings))
    steps = sorted({0, 1, settings.inner_steps, 2 * settings.inner_steps, max(5, settings.inner_steps)})
    scores = learner.evaluate(sampler, ADAPTATION_TASKS, steps, seed=settings.seed)
    metric = "accuracy" if kind == "classification" else "mse"
    curve = {k: (scores[f"{metric}_step{k}"], scores[f"{metric}_step{k}_ci95"]) for k in steps}
    s.heading(f"meta-test {metric} against adaptation steps")
    s.figure(adaptation_figure(curve, metric), "adaptation-curve",
             f"{ADAPTATION_TASKS} meta-test tasks of {settings.data}; meta-trained with {settings.inner_steps} "
             f"inner steps; bars are 95% intervals")


def examples_section(doc: Document, run: Run, dataset: Dataset | None, data_dir, device: torch.device,
                     examples: int, verify: bool, tmp: Path) -> None:
    seed, folder = run.members[0]
    config = run.config
    kind = _kind(config)
    title = f"Examples and figures of {run.label}" + (f" (seed {seed})" if seed is not None else "")
    s = doc.section(title)
    if len(run.members) > 1:
        s.paragraph(f"Drawn from the run of the lowest seed, {folder}.")
    if kind == "meta":
        meta_section(s, folder, config, data_dir if data_dir is not None else config.get("data_dir"), device)
        return
    if dataset is None:
        s.note("The data could not be read again; no example is shown.")
        return
    model = load_model(folder, device, verify=verify)
    family = model_info(config["model"]["name"]).family
    test = dataset.splits.get("test")
    if test is None:
        s.note(f"The data '{dataset.spec.name}' has no test split: the confusion matrix, per-class scores, "
               "mistakes, attributions, attention maps and reconstructions, which are drawn on test examples, "
               "are omitted.")
    if kind == "language-modeling":
        language_model_section(s, model, test, folder, device)
    elif test is None:
        if family == "autoencoder" and hasattr(model, "sample") and len(model.input_shape) == 3:
            samples_section(s, model, device, tmp)
        return
    elif kind in ("classification", "node-classification") and dataset.spec.num_classes:
        classification_section(s, model, dataset.spec, test, folder, kind, examples, device, tmp)
    elif family == "autoencoder":
        autoencoder_section(s, model, dataset.spec, test.to(device), folder, device, tmp)
    else:
        s.paragraph(f"The {kind} task has no figure beyond its curves and metrics.")
    if family == "transformer" and test is not None:
        attention_section(s, model, dataset.spec, test, folder, device)


def write_report(runs: list[str | os.PathLike], out: str | os.PathLike = "report.html", *,
           data: str | os.PathLike | Dataset | None = None, data_dir: str | os.PathLike | None = None,
           device: str = "auto", examples: int = 8, verify: bool = True, title: str | None = None) -> JobResult:
    """Write one self-contained HTML report of `runs` (checkpoint folders, or folders of
    ``train --seeds`` runs) to `out`, and return its figures (``details["figures"]``: name and
    pixel size of each) and its size in bytes.

    `data` replaces the data the runs were trained on (as in `evaluate_checkpoint`); `examples` is
    how many confidently wrong test examples a classifier shows. ``details["cpu_seconds"]`` is the
    processor time it took (on a busy machine, less than the wall-clock `seconds`).
    """
    from ..report.html import Document

    started, cpu = time.perf_counter(), time.process_time()
    check_int("report", "examples", examples, minimum=1)
    if not runs:
        raise ConfigError("report needs at least one run folder.")
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"the report is an HTML page; --out must end in .html, got '{out}'.")
    opened = [open_run(r) for r in runs]
    labels = [r.label for r in opened]
    for r in opened:
        if labels.count(r.label) > 1:
            r.label = str(r.path)
    dev = resolve_device(device)
    doc = Document(title or f"archlab report: {', '.join(r.label for r in opened)}")
    datasets: dict[str, tuple[Dataset | None, str | None]] = {}
    for run in opened:
        loaded, error = None, None
        if _kind(run.config) != "meta":
            try:
                loaded = run_data(run, data, data_dir)
            except (DataError, ConfigError, FileNotFoundError, OSError) as err:
                error = str(err)
        datasets[run.label] = (loaded, error)
        run_section(doc, run, loaded, error)
    curves_section(doc, opened)
    metrics_section(doc, opened)
    with tempfile.TemporaryDirectory(prefix="archlab-report-") as tmp:
        for run in opened:
            examples_section(doc, run, datasets[run.label][0], data_dir, dev, examples, verify, Path(tmp))
    environment_section(doc, opened, dev, data_dir)
    path = doc.write(out)
    size = path.stat().st_size
    return JobResult({"figures": len(doc.figures), "bytes": size}, None, time.perf_counter() - started,
                     figures=[str(path)], details={"figures": doc.figures, "report": str(path),
                                                   "cpu_seconds": time.process_time() - cpu})
