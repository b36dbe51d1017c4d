"""Meta-learning: MAML, first-order MAML, Meta-SGD, ANIL and Reptile on `torch.func`, and
prototypical networks.

`MAML.clone` gives learn2learn's interface (``learner.adapt(loss)`` on any loss).
Adaptation never mutates the model: it runs the module with new parameter tensors
through `torch.func.functional_call`. BatchNorm follows the MAML paper (batch
statistics everywhere, no running statistics).
"""

from .anil import ANIL
from .batchnorm import BatchStatisticsNorm, batch_statistics_norm
from .evaluate import evaluate_adaptation, mean_ci95
from .functional import AdaptationError, adapt, default_forward, split_state
from .maml import MAML, MAMLClone
from .protonet import ProtoNet, class_prototypes, squared_euclidean
from .reptile import Reptile
from .second_order_batchnorm import SecondOrderBatchNorm, second_order_batch_norm
from .strategy import STRATEGIES, choose_strategy

__all__ = ["MAML", "MAMLClone", "ANIL", "Reptile", "ProtoNet", "class_prototypes", "squared_euclidean",
           "BatchStatisticsNorm", "batch_statistics_norm", "SecondOrderBatchNorm",
           "second_order_batch_norm", "AdaptationError", "adapt", "default_forward", "split_state",
           "evaluate_adaptation", "mean_ci95", "STRATEGIES", "choose_strategy"]
