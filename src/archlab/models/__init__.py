"""Model families composed from `archlab.nn`. Importing this package registers them."""

from . import cnn, mlp, rnn
from .cnn import ConvNet, ResNet
from .mlp import MLPClassifier
from .rnn import RNNClassifier

__all__ = ["ConvNet", "ResNet", "MLPClassifier", "RNNClassifier", "cnn", "mlp", "rnn"]
