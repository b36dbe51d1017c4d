"""Autoencoders: deterministic (`AE`, denoising / sparse), variational (`VAE`) and
adversarial (`AAE`), for dimensionality reduction, generation and anomaly detection.
Importing this package registers the models ``ae``, ``vae`` and ``aae``."""

from . import losses, priors
from .aae import AAE
from .ae import AE, AEOutput
from .anomaly import AnomalyDetector, anomaly_scores, auroc, fit_threshold
from .base import Autoencoder
from .tasks import AAETask, AETask, VAETask
from .vae import VAE, VAEOutput

__all__ = [
    "AE", "VAE", "AAE", "Autoencoder", "AEOutput", "VAEOutput", "AETask", "VAETask", "AAETask", "AnomalyDetector",
    "anomaly_scores", "auroc", "fit_threshold", "losses", "priors",
]
