"""Explainability: attribution methods with one contract, faithfulness metrics and sanity checks.

Every method takes any `torch.nn.Module` or forward function and returns attributions
shaped like the inputs::

    IntegratedGradients(model).attribute(inputs, target=None, *, baselines=None, n_steps=50, ...)

`inputs` is a tensor, or a tuple of tensors passed to the model as separate arguments (then
the attributions are a tuple too). The argument names are Captum's; results agree with
Captum 0.9 (tests/parity/test_explain_*.py), and docs/porting/captum.md lists the differences.
"""

from .anomaly import AnomalyAttribution
from .attention_rollout import AttentionRollout, attention_rollout
from .base import Attribution
from .deep_lift import DeepLift
from .faithfulness import PerturbationCurve, completeness_error, deletion_curve, insertion_curve
from .feature_ablation import FeatureAblation
from .gnn_explainer import GNNExplainer, NodeExplanation
from .gradcam import GradCAM
from .gradient_shap import GradientShap
from .input_x_gradient import InputXGradient
from .integrated_gradients import IntegratedGradients
from .kernel_shap import KernelShap
from .layer_integrated_gradients import LayerIntegratedGradients, TokenAttribution
from .lime import Lime
from .occlusion import Occlusion
from .permutation import PermutationImportance, permutation_importance
from .quadrature import quadrature
from .saliency import Saliency
from .sanity import RandomizationStep, model_randomization_check, spearman
from .smoothgrad import SmoothGrad

__all__ = [
    "Attribution", "Saliency", "InputXGradient", "IntegratedGradients", "SmoothGrad", "GradCAM", "Occlusion",
    "FeatureAblation", "permutation_importance", "PermutationImportance", "quadrature", "completeness_error",
    "deletion_curve", "insertion_curve", "PerturbationCurve", "model_randomization_check", "RandomizationStep",
    "spearman", "LayerIntegratedGradients", "TokenAttribution", "AttentionRollout", "attention_rollout", "GNNExplainer",
    "NodeExplanation", "AnomalyAttribution", "GradientShap", "DeepLift", "KernelShap", "Lime",
]
