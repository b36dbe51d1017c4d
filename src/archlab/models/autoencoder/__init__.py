"""Autoencoders: deterministic (`AE`, denoising / sparse), variational (`VAE`) and
adversarial (`AAE`), for dimensionality reduction, generation and anomaly detection.
Importing this package registers the models ``ae``, ``vae``, ``aae`` and their tasks."""

from . import losses, priors, tasks  # noqa: F401  (tasks registers the training tasks)
from .aae import AAE
from .ae import AE, AEOutput
from .anomaly import AnomalyDetector, anomaly_scores, auroc, fit_threshold, train_one_class
from .base import Autoencoder
from .tasks import AAETask, AETask, VAETask
from .vae import VAE, VAEOutput

__all__ = [
    "AE", "VAE", "AAE", "Autoencoder", "AEOutput", "VAEOutput", "AETask", "VAETask", "AAETask", "AnomalyDetector",
    "anomaly_scores", "auroc", "fit_threshold", "train_one_class", "losses", "priors",
]
