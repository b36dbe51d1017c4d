"""Ranking metrics of binary scores: the area under the ROC curve (`auroc`) and average precision, as
scikit-learn defines them. Scores and labels may be tensors or arrays."""

from __future__ import annotations

import torch

from ..errors import DataError


def _check(scores, labels) -> tuple[torch.Tensor, torch.Tensor]:
    scores = torch.as_tensor(scores).detach().cpu().flatten().double()
    labels = torch.as_tensor(labels).detach().cpu().flatten().bool()
    if scores.shape != labels.shape:
        raise DataError(f"scores and labels must have the same length; got {len(scores)} and {len(labels)}.")
    if not labels.any() or labels.all():
        raise DataError("labels must contain both positives and negatives to rank them (an AUROC needs both "
                        "normal and anomalous examples); they hold only one kind.")
    return scores, labels


def auroc(scores, labels) -> float:
    """Area under the ROC curve: the probability that a random positive outranks a random
    negative, ties counting one half (the Mann-Whitney U statistic, with average ranks).

    .. math::
        \\mathrm{AUC} = \\frac{\\sum_{i \\in P} r_i - |P|(|P|+1)/2}{|P|\\,|N|}

    Shapes:
        scores ``(n,)``, labels ``(n,)`` (0/1 or bool) -> float.
    """
    scores, labels = _check(scores, labels)
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    average_rank = ends - (counts.double() - 1) / 2  # 1-based rank, ties share the average
    ranks = average_rank[inverse]
    positives = labels.sum().double()
    negatives = (~labels).sum().double()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(scores, labels) -> float:
    """Average precision: precision at each distinct score threshold, weighted by the
    recall it adds (scikit-learn's ``average_precision_score``).

    .. math::
        \\mathrm{AP} = \\sum_k (R_k - R_{k-1})\\, P_k

    Shapes:
        scores ``(n,)``, labels ``(n,)`` (0/1 or bool) -> float.
    """
    scores, labels = _check(scores, labels)
    order = torch.argsort(scores, descending=True, stable=True)
    scores, hits = scores[order], labels[order].double()
    true_pos = hits.cumsum(0)
    seen = torch.arange(1, len(hits) + 1, dtype=torch.float64)
    last_of_tie = torch.ones_like(hits, dtype=torch.bool)  # thresholds sit at the last item of each tie
    last_of_tie[:-1] = scores[1:] != scores[:-1]
    true_pos, seen = true_pos[last_of_tie], seen[last_of_tie]
    precision = true_pos / seen
    recall = true_pos / true_pos[-1]
    gained = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gained * precision).sum())
