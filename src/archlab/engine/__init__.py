"""Training engine: `fit`, `evaluate`, tasks, metrics and checkpoints."""

from .checkpoint import load_model, read_config, save_checkpoint
from .fit import FitResult, FitState, TrainConfig, evaluate, fit
from .metrics import accuracy, confusion_matrix, macro_f1
from .optim import build_optimizer, build_scheduler
from .tasks import ClassificationTask, Task, create_task, register_task

__all__ = [
    "fit", "evaluate", "TrainConfig", "FitResult", "FitState", "Task", "ClassificationTask", "register_task",
    "create_task", "save_checkpoint", "load_model", "read_config", "accuracy", "confusion_matrix", "macro_f1",
    "build_optimizer", "build_scheduler",
]
