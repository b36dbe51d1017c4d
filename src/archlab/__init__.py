"""archlab: every major family of neural architecture in one place, verified against the
reference libraries."""

__version__ = "0.1.0"

from .api import Prediction, RunResult, evaluate_checkpoint, predict, train, train_seeds  # noqa: E402
from .data import list_datasets, load_dataset  # noqa: E402
from .engine import TrainConfig, evaluate, fit, load_model  # noqa: E402
from .registry import create_model, list_models, model_info, register_model  # noqa: E402

__all__ = [
    "__version__", "create_model", "list_models", "model_info", "register_model", "load_model",
    "load_dataset", "list_datasets", "fit", "evaluate", "TrainConfig", "train", "train_seeds", "evaluate_checkpoint",
    "predict", "RunResult", "Prediction",
]
