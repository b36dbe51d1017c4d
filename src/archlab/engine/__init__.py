"""Training engine: `fit`, `evaluate`, callbacks, tasks, metrics and checkpoints."""

from .callbacks import Callback, TimeLimit
from .checkpoint import read_config, save_checkpoint
from .fit import FitResult, FitState, TrainConfig, evaluate, fit
from .metrics import accuracy, confusion_matrix, macro_f1
from .optim import build_optimizer, build_scheduler
from .tasks import ClassificationTask, Task, classification_task, training_task
from .regression import RegressionTask  # registers the task of numeric targets

__all__ = [
    "fit", "evaluate", "TrainConfig", "FitResult", "FitState", "Callback", "TimeLimit", "Task", "ClassificationTask",
    "training_task", "classification_task", "save_checkpoint", "read_config", "accuracy", "confusion_matrix", "macro_f1",
    "build_optimizer", "build_scheduler", "RegressionTask",
]
