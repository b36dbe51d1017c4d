"""Classification metrics computed from a confusion matrix."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``C[i, j]`` counts examples of true class ``i`` predicted as ``j``."""
    index = target.long() * num_classes + pred.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(confusion: torch.Tensor) -> float:
    total = int(confusion.sum())
    return int(confusion.diagonal().sum()) / total if total > 0 else 0.0


def macro_f1(confusion: torch.Tensor) -> float:
    """Unweighted mean of per-class F1 over classes present in targets or predictions
    (scikit-learn's ``f1_score(average="macro")`` with ``zero_division=0``, over those labels)."""
    confusion = confusion.double()
    tp = confusion.diagonal()
    predicted = confusion.sum(0)
    actual = confusion.sum(1)
    present = (predicted + actual) > 0
    if not present.any():
        return 0.0
    f1 = 2 * tp / (predicted + actual).clamp_min(1e-12)  # F1 = 2TP / (2TP + FP + FN)
    return float(f1[present].mean())
