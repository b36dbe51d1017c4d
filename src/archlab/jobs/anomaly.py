"""One-class anomaly detection, the job behind `archlab anomaly`: train an autoencoder on one
class, fit the threshold on that class's validation data, and score the whole test set."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..data import Dataset
from ..engine.loggers import check_outside, closing, make_loggers
from ..errors import ConfigError
from ..models.autoencoder.anomaly import anomaly_scores, auroc, check_rate, fit_threshold, one_class_data
from ..models.registry import list_models, model_info
from .data import open_data
from .result import JobResult
from .train import check_report, run_report, train

# One-class training defaults (about 40 s a digit of MNIST on one CPU core), used where not given.
ONE_CLASS_TRAINING = {"epochs": 8, "batch_size": 128, "lr": 2e-3, "schedule": "cosine"}
ONE_CLASS_IMAGE_MODEL = {"architecture": "conv", "channels": [16, 32]}
#: the training options of a one-class run that are logged as its hyperparameters
TRAINING_HPARAMS = ("epochs", "steps", "batch_size", "lr", "schedule", "optimizer", "weight_decay", "seed")
# Per-dataset defaults over those: (model hyperparameters, training options). A digit of `digits` has about
# 125 training images of 8x8, one batch an epoch, so 8 epochs were 8 steps (test AUROC 0.88 for digit 0,
# where PCA(8) reconstruction error gets 1.00); two conv-pool stages leave 2x2 of an 8x8 image, so an MLP;
# a Gaussian decoder trains on squared error, the score itself (a Bernoulli decoder fits gray pixels worse).
ONE_CLASS_DATASET_DEFAULTS = {
    "digits": ({"architecture": "mlp", "hidden_dims": [128], "latent_dim": 16, "decoder": "gaussian"},
               {"steps": 500}),
}


def train_one_class(model: str = "ae", data: str | Dataset = "mnist", normal_class: int | str = 0, *,
                    false_positive_rate: float = 0.05, model_kwargs: dict[str, Any] | None = None,
                    out: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
                    target: str | None = None, data_format: str | None = None,
                    data_options: dict[str, Any] | None = None, log: Any = None, callbacks: tuple = (),
                    report: bool = False, **options: Any) -> JobResult:
    """One-class anomaly detection: train `model` on the normal class's training images, fit the
    threshold at `false_positive_rate` on its validation images, and score the whole test set
    (every other class is an anomaly). `options` are training options of `archlab.train` (epochs,
    lr, seed, ...); those not given come from `ONE_CLASS_DATASET_DEFAULTS` for the dataset, then from
    `ONE_CLASS_TRAINING`, and an image model defaults to `ONE_CLASS_IMAGE_MODEL` (the convolutional
    variant). A run stopped by its `time_limit` returns its validation metrics only
    (``stopped="time_limit"``); `resume=True` continues it. `log` (``"tensorboard:DIR"``, see
    `archlab.engine.loggers`) also writes the curves, the hyperparameters, the final metrics, the test
    scores' histograms and their precision-recall curve. With `out`, the normal class, threshold and
    test metrics are written to ``out/anomaly.json``; `report` writes ``out/report.html``."""
    started = time.perf_counter()
    check_report(report, out)
    loggers = make_loggers(log, overwrite=bool(options.get("overwrite")))
    check_outside(loggers, out)
    able = list_models("autoencoder")  # their anomaly_score is what the detector thresholds
    if model not in able:
        model_info(model)  # an unknown name is refused as such first
        raise ConfigError(f"anomaly detection trains an autoencoder; '{model}' is not one. Autoencoders: "
                          f"{', '.join(able)}.")
    rate = check_rate("train_one_class", false_positive_rate)
    dataset = open_data(data, data_dir, target=target, data_format=data_format, data_options=data_options)
    one_class, index = one_class_data(dataset, normal_class)
    dataset_model, dataset_training = ONE_CLASS_DATASET_DEFAULTS.get(dataset.spec.name, ({}, {}))
    kwargs = {**(ONE_CLASS_IMAGE_MODEL if dataset.spec.kind == "image" else {}), **dataset_model,
              **(model_kwargs or {})}
    length_given = options.get("epochs") is not None or options.get("steps") is not None
    for key, value in {**ONE_CLASS_TRAINING, **dataset_training}.items():
        if options.get(key) is None and not (key in ("epochs", "steps") and length_given):
            options[key] = value
    with closing(loggers):
        run = train(model, one_class, model_kwargs=kwargs, out=out, callbacks=(*callbacks, *loggers), **options)
        hparams = {"model": model, "data": dataset.spec.name, "normal_class": str(normal_class),
                   "false_positive_rate": rate, **{k: v for k, v in options.items() if k in TRAINING_HPARAMS},
                   **{f"model.{k}": v for k, v in run.model.archlab_config["kwargs"].items()}}
        if run.stopped == "time_limit":  # not trained to the end: nothing to score yet
            for logger in loggers:
                logger.log_final(run.metrics, hparams)
            job = JobResult(run.metrics, run.checkpoint, time.perf_counter() - started, model=run.model,
                            history=run.history, stopped=run.stopped)
            if report:
                run_report(job, dataset, data_dir, options.get("device") or "auto")
            return job
        net = run.model
        test = dataset["test"]
        scores = anomaly_scores(net, test["x"])
        is_anomaly = (test["y"] != index).cpu().numpy()
        threshold = fit_threshold(anomaly_scores(net, one_class["val"]["x"]), rate)
        flagged = scores > threshold
        metrics = {**{k: v for k, v in run.metrics.items() if k.startswith("val_")},
                   "test_auroc": auroc(scores, is_anomaly), "threshold": threshold,
                   "test_detection_rate": float(flagged[is_anomaly].mean()),
                   "test_false_positive_rate": float(flagged[~is_anomaly].mean())}
        for logger in loggers:
            logger.log_histogram("test_scores/normal", scores[~is_anomaly])
            logger.log_histogram("test_scores/anomalous", scores[is_anomaly])
            logger.log_pr_curve("test_anomaly", is_anomaly, scores)
            logger.log_final(metrics, hparams)
    if run.checkpoint is not None:  # what a report needs to score the checkpoint again (written whole, then renamed)
        target = Path(run.checkpoint) / "anomaly.json"
        partial = target.with_name(".anomaly.json.partial")
        partial.write_text(json.dumps({"normal_class": index, "false_positive_rate": rate, "threshold": threshold,
                                       "metrics": metrics}, indent=2))
        os.replace(partial, target)
    job = JobResult(metrics, run.checkpoint, time.perf_counter() - started, model=net, history=run.history,
                    details={"test_scores": scores, "test_is_anomaly": is_anomaly}, stopped=run.stopped)
    if report:
        run_report(job, dataset, data_dir, options.get("device") or "auto")
    return job
