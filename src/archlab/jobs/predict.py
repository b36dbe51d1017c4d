"""`predict`: predictions of a classifier (or regressor) checkpoint for inputs in a file or an array."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from ..data import DataSpec, read_inputs
from ..data.files import check_values
from ..data.sources import format_info
from ..engine.checkpoint import read_config
from ..errors import CheckpointError, ConfigError
from ..export import check_format
from ..export.onnx import OnnxModel
from ..models.autoencoder.anomaly import anomaly_scores
from ..models.registry import create_task, load_model, model_info
from ..utils import resolve_device
from .result import JobResult
from .runs import single_run


def predict(checkpoint: str | os.PathLike, inputs: str | os.PathLike | np.ndarray, *, device: str = "auto",
            verify: bool = True) -> JobResult:
    """Class predictions for inputs in a file (.npy, .csv, image) or an array of model inputs:
    ``details["predictions"]`` (class indices), ``details["probabilities"]`` and ``details["labels"]``
    (class names, when the data has them). A regressor predicts values in the target's units, an
    autoencoder each input's anomaly score (its `anomaly_score`: reconstruction error, or a VAE's
    negative ELBO; compare it with the ``threshold`` that `archlab anomaly` reports), a node
    classifier the class of every node of a new graph. Inputs must be real and finite; the first value that is not
    is named by its row. Given the folder of a ``train --seeds`` run, the lowest seed's run predicts
    (a `RunNote` says so; the result's checkpoint names it). Given an ``.onnx`` file written by
    `archlab export`, onnxruntime runs it on the CPU, reading inputs as its checkpoint did."""
    started = time.perf_counter()
    exported = Path(checkpoint).suffix.lower() == ".onnx" and not Path(checkpoint).is_dir()
    if exported:
        check_format("onnx")
        session = OnnxModel(checkpoint)
        config = session.metadata
        if config is None or "data" not in config:
            raise CheckpointError(f"{checkpoint} was not written by `archlab export` (it carries no archlab "
                                  "metadata); predict reads only such ONNX files.")
        config = {"model": {"name": config["model"]}, "data": config["data"], "task": config["task"],
                  "task_options": config.get("task_options", {})}
    else:
        checkpoint = single_run(checkpoint, "predict")
        config = read_config(checkpoint)
    spec = DataSpec.from_dict(config["data"])
    info = model_info(config["model"]["name"])
    task = config.get("task") or info.task
    reader = format_inputs(spec)
    scores = info.family == "autoencoder"  # an autoencoder's prediction is each input's anomaly score
    if exported and (task == "node-classification" or scores):
        raise ConfigError(f"predict runs exported classifiers and regressors; {checkpoint} is a "
                          f"{config['model']['name']} export. Predict with its checkpoint folder instead.")
    if task == "node-classification":
        return predict_nodes(checkpoint, config, spec, reader, inputs, device=device, verify=verify, started=started)
    readable = reader is not None or spec.kind in ("image", "sequence", "tabular")
    if not (task == "classification" or scores) or not readable:
        raise ConfigError(f"predict reads inputs for classifiers, regressors and autoencoders; {checkpoint} holds a "
                          f"{config['model']['name']} trained on {spec.kind} data ({task} task). "
                          "Use `archlab evaluate` (or `generate`) for it.")
    if isinstance(inputs, np.ndarray):
        x = check_values(inputs, "the inputs array")
    elif reader is not None:
        x = reader(Path(inputs), spec)
    else:
        x = read_inputs(inputs, spec)
    device = torch.device("cpu") if exported else resolve_device(device)
    net = session if exported else load_model(checkpoint, device, verify=verify)
    if scores:
        return JobResult({}, str(checkpoint), time.perf_counter() - started,
                         details={"predictions": anomaly_scores(net, np.asarray(x)).tolist(), "probabilities": None,
                                  "labels": None, "target": "anomaly_score"})
    batch = torch.from_numpy(np.asarray(x)).to(device)
    lengths = None
    if spec.kind == "text":  # token ids padded like training: each row's length is up to its first pad
        pad = int(spec.preprocess.get("pad_id", 0))
        lengths = (batch != pad).long().cumprod(1).sum(1).clamp_min(1)
    if exported:
        if session.input_names == ["x", "lengths"] and lengths is None:  # a sequence: every step is valid
            lengths = torch.full((len(batch),), batch.shape[1], dtype=torch.long)
        outputs = torch.from_numpy(session.run(batch, *([lengths] if lengths is not None else []))[0])
    else:
        with torch.no_grad():
            outputs = net(batch, lengths=lengths) if lengths is not None else net(batch)
    if spec.preprocess.get("target_kind") == "regression":  # the task maps outputs to the target's units
        model = net if not exported else _Outputs(outputs)
        task = create_task(config.get("task") or task, model, spec, **config.get("task_options", {}))
        with torch.no_grad():
            values = task.predict(model, {"x": batch}).cpu()
        return JobResult({}, str(checkpoint), time.perf_counter() - started,
                         details={"predictions": values.tolist(), "probabilities": None, "labels": None,
                                  "target": spec.options.get("target")})
    probs = torch.softmax(outputs, -1).cpu()
    classes = probs.argmax(-1).tolist()
    names = spec.class_names
    return JobResult({}, str(checkpoint), time.perf_counter() - started,
                     details={"predictions": classes, "probabilities": probs.tolist(),
                              "labels": [names[c] for c in classes] if names else None,
                              "class_names": names or [str(c) for c in range(probs.shape[-1])]})


def predict_nodes(checkpoint: Path, config: dict, spec: DataSpec, reader, inputs, *, device: str, verify: bool,
                  started: float) -> JobResult:
    """The class of every node of a new graph in the training graph's format and schema;
    ``details["ids"]`` names the nodes."""
    if reader is None or isinstance(inputs, np.ndarray):
        where = f"the built-in '{spec.name}' graph" if reader is None else "a graph"
        raise ConfigError(f"predict on a node classifier reads a new graph in the format of the training graph's files "
                          f"(a folder of nodes.csv and edges.csv, GraphML, ...); {checkpoint} was trained on {where}"
                          f"{'' if reader is None else ', and an array was given'}. Use `archlab evaluate` for the "
                          "training graph.")
    graph = reader(Path(inputs), spec)
    device = resolve_device(device)
    net = load_model(checkpoint, device, verify=verify)
    weight = graph["edge_weight"]
    with torch.no_grad():
        outputs = net(graph["x"].to(device), graph["edge_index"].to(device),
                      None if weight is None else weight.to(device))
    probs = torch.softmax(outputs, -1).cpu()
    classes = probs.argmax(-1).tolist()
    names = spec.class_names or [str(c) for c in range(probs.shape[-1])]
    return JobResult({}, str(checkpoint), time.perf_counter() - started,
                     details={"predictions": classes, "probabilities": probs.tolist(),
                              "labels": [names[c] for c in classes], "class_names": names, "ids": graph["ids"]})


class _Outputs(torch.nn.Module):
    """The outputs an exported model computed, as a module the task can ask for them."""

    def __init__(self, outputs: torch.Tensor):
        super().__init__()
        self.outputs = outputs

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.outputs


def format_inputs(spec: DataSpec):
    """The reader of new inputs that the data's format registered, when it was read from a file."""
    fmt = spec.options.get("format") if "source" in spec.options else None
    return format_info(fmt).inputs if fmt is not None else None

