"""`predict`: class predictions of a classifier checkpoint for inputs in a file or an array."""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..data import DataSpec, read_inputs
from ..data.files import check_values
from ..engine.checkpoint import read_config
from ..errors import ConfigError
from ..models.registry import load_model, model_info
from ..utils import resolve_device
from .result import JobResult
from .runs import single_run


def predict(checkpoint: str | os.PathLike, inputs: str | os.PathLike | np.ndarray, *, device: str = "auto"
            ) -> JobResult:
    """Class predictions for inputs in a file (.npy, .csv, image) or an array of model inputs:
    ``details["predictions"]`` (class indices), ``details["probabilities"]`` and ``details["labels"]``
    (class names, when the data has them). Inputs must be real and finite; the first value that is not
    is named by its row. Given the folder of a ``train --seeds`` run, the lowest seed's run predicts
    (a `RunNote` says so; the result's checkpoint names it)."""
    started = time.perf_counter()
    checkpoint = single_run(checkpoint, "predict")
    config = read_config(checkpoint)
    spec = DataSpec.from_dict(config["data"])
    task = model_info(config["model"]["name"]).task
    if spec.kind not in ("image", "sequence", "tabular") or task != "classification":
        raise ConfigError(f"predict reads image, sequence or tabular inputs for classifiers; {checkpoint} holds a "
                          f"{config['model']['name']} trained on {spec.kind} data ({task} task). "
                          "Use `archlab evaluate` (or `generate`) for it.")
    x = read_inputs(inputs, spec) if not isinstance(inputs, np.ndarray) else check_values(inputs, "the inputs array")
    device = resolve_device(device)
    net = load_model(checkpoint, device)
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(x).to(device)), -1).cpu()
    classes = probs.argmax(-1).tolist()
    names = spec.class_names
    return JobResult({}, str(checkpoint), time.perf_counter() - started,
                     details={"predictions": classes, "probabilities": probs.tolist(),
                              "labels": [names[c] for c in classes] if names else None})

