"""Model families composed from `archlab.nn`. Importing this package registers them."""

from . import cnn, mlp, rnn
from . import bert, gpt, transformer, vit  # noqa: F401  (registration: transformer family)
from . import autoencoder  # noqa: F401  (registration: ae, vae, aae)
from . import gae, gin, gnn, graph_tasks, sage  # noqa: F401  (registration: gcn, gat, sage, gin, gae, vgae, tasks)
from .cnn import ConvNet, ResNet
from .mlp import MLPClassifier
from .rnn import RNNClassifier

__all__ = ["ConvNet", "ResNet", "MLPClassifier", "RNNClassifier", "cnn", "mlp", "rnn"]
