"""Jobs: every end-to-end run — train, evaluate, predict, generate, explain, anomaly, meta-train,
meta-eval, export, report — above the libraries, each returning a `JobResult`. The command line calls only these."""

from .anomaly import train_one_class
from .catalog import dataset_summaries, format_summaries, model_summaries
from .evaluate import evaluate_checkpoint
from .explain import explain
from .export import export_checkpoint
from .generate import generate
from .launch import launch, main_process, rank, under_launcher
from .meta import MetaConfig, meta_evaluate, meta_train
from .predict import predict
from .report import write_report
from .result import JobResult
from .train import train, train_seeds

__all__ = ["JobResult", "train", "train_seeds", "evaluate_checkpoint", "predict", "generate", "explain",
           "train_one_class", "meta_train", "meta_evaluate", "MetaConfig", "model_summaries", "dataset_summaries",
           "format_summaries", "export_checkpoint", "write_report", "launch", "main_process", "rank",
           "under_launcher"]
