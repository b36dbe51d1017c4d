"""Training tasks of graph models: node classification and link prediction.

Both train full-batch on one graph: a batch is a `GraphSplit`'s dict (``x``, ``edge_index``,
``y``, ``mask``, link-prediction edges). Evaluation is one forward pass, cheap enough to
run every epoch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.metrics import accuracy, confusion_matrix, macro_f1
from ..engine.ranking import auroc, average_precision
from ..engine.tasks import Task, training_task
from ..errors import DataError
from ..nn.gaussian import gaussian_kl, reparameterize


def inner_product_logits(z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The graph autoencoder's decoder: logits :math:`\\mathbf{z}_i^\\top \\mathbf{z}_j` of the node pairs ``(i, j)``.

    Shapes:
        z ``(N, D)``, pairs ``(2, P)`` -> ``(P,)``.
    """
    return (z.index_select(0, pairs[0]) * z.index_select(0, pairs[1])).sum(-1)


def _param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """One group with weight decay and one without, for the names in ``model.no_weight_decay()``."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if n not in skip]},
              {"params": [p for n, p in named if n in skip], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def _need(batch: dict[str, Any], keys: tuple[str, ...], task: str) -> None:
    missing = [k for k in keys if k not in batch]
    if missing:
        raise DataError(f"{task} needs a graph batch with {', '.join(keys)}; this one lacks {', '.join(missing)}.")


class NodeClassificationTask(Task):
    """Cross-entropy over the masked nodes of the graph (transductive, full batch)."""

    monitor = "val_accuracy"
    mode = "max"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    @staticmethod
    def forward(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        _need(batch, ("x", "edge_index", "y", "mask"), "node classification")
        return model(batch["x"], batch["edge_index"], batch.get("edge_weight"))

    def configure_optimizers(self, model, make_optimizer):
        return [make_optimizer(_param_groups(model))]

    def training_step(self, model, batch):
        logits = self.forward(model, batch)
        mask = batch["mask"]
        return F.cross_entropy(logits[mask], batch["y"][mask])

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        (batch,) = split.batches(batch_size)
        mask = batch["mask"]
        logits, y = self.forward(model, batch)[mask], batch["y"][mask]
        if len(y) == 0:
            return {}
        confusion = confusion_matrix(logits.argmax(-1), y, self.num_classes)
        return {"loss": F.cross_entropy(logits, y).item(), "accuracy": accuracy(confusion),
                "macro_f1": macro_f1(confusion), "confusion_matrix": confusion.cpu().tolist()}


def reconstruction_loss(z: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """The reference GAE loss: weighted cross-entropy over all N^2 node pairs of
    :math:`\\sigma(ZZ^\\top)` against :math:`A + I`, with positives up-weighted by
    :math:`w = (N^2 - |E|)/|E|` and the mean scaled by :math:`N^2 / (2(N^2 - |E|))`.

    Computed on logits :math:`l = ZZ^\\top` without materializing a target matrix:

    .. math::
        \\sum_{ij} \\mathrm{softplus}(l_{ij})
        + \\sum_{(i,j) \\in A+I} \\big(w\\,\\mathrm{softplus}(-l_{ij}) - \\mathrm{softplus}(l_{ij})\\big)

    Shapes:
        z ``(N, D)``, edge_index ``(2, |E|)`` (both directions, no self-loops) -> scalar.
    """
    n = z.size(0)
    pairs = float(n * n)
    num_edges = float(edge_index.size(1))
    pos_weight = (pairs - num_edges) / num_edges
    norm = pairs / (2.0 * (pairs - num_edges))
    everything = F.softplus(z @ z.t()).sum()  # every pair as a negative
    positive = torch.cat([(z.index_select(0, edge_index[0]) * z.index_select(0, edge_index[1])).sum(-1),
                          (z * z).sum(-1)])  # the edges and the self-pairs of A + I
    correction = (pos_weight * F.softplus(-positive) - F.softplus(positive)).sum()
    return norm * (everything + correction) / pairs


class LinkPredictionTask(Task):
    """Link prediction with a graph autoencoder (`GAE`, or `VGAE` with its KL term).

    The encoder sees only the training edges (``link_edge_index``) and the batch's ``link_x``
    features when it has them (Planetoid: the raw bag-of-words, as the reference code), else
    ``x``; validation and test score held-out edges against as many sampled non-edges, by ROC
    AUC and average precision.
    """

    monitor = "val_auroc"
    mode = "max"

    def training_step(self, model, batch):
        _need(batch, ("x", "link_edge_index"), "link prediction")
        x, edges = batch.get("link_x", batch["x"]), batch["link_edge_index"]
        if getattr(model, "variational", False):
            mu, log_std = model.encode(x, edges)
            logvar = 2 * log_std
            z = reparameterize(mu, logvar)
            # the reference code divides the node-averaged KL by N, weighing it against the per-pair mean
            return reconstruction_loss(z, edges) + gaussian_kl(mu, logvar).mean() / x.size(0)
        return reconstruction_loss(model.encode(x, edges), edges)

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        (batch,) = split.batches(batch_size)
        if "neg_edge_index" not in batch:
            raise DataError("this split has no sampled non-edges to score; link prediction evaluates the val and "
                            "test splits.")
        _need(batch, ("x", "link_edge_index", "pos_edge_index"), "link prediction")
        z = model(batch.get("link_x", batch["x"]), batch["link_edge_index"])
        pos = inner_product_logits(z, batch["pos_edge_index"])
        neg = inner_product_logits(z, batch["neg_edge_index"])
        scores = torch.cat([pos, neg])
        labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        return {"loss": F.binary_cross_entropy_with_logits(scores, labels).item(),
                "auroc": auroc(scores, labels), "ap": average_precision(scores, labels)}


@training_task("node-classification")
def node_classification_task(model, spec) -> Task:
    return NodeClassificationTask(spec.num_classes)


@training_task("link-prediction")
def link_prediction_task(model, spec) -> Task:
    return LinkPredictionTask()
