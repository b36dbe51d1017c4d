"""Training tasks of graph models: node classification, link prediction and graph classification.

Both train full-batch on one graph: a batch is a `GraphSplit`'s dict (``x``, ``edge_index``,
``y``, ``mask``, link-prediction edges). Evaluation is one forward pass, cheap enough to
run every epoch. Node classification can instead train on sampled neighbourhoods
(``num_neighbors``, `archlab.data.neighbor_loader`), a mini-batch of seed nodes at a time,
and then evaluates in mini-batches too, with every neighbour (the full-batch result).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.neighbor_loader import CSRGraph, NeighborSplit, check_num_neighbors
from ..engine.metrics import accuracy, confusion_matrix, macro_f1
from ..engine.ranking import auroc, average_precision
from ..engine.tasks import Task, training_task
from ..errors import ConfigError, DataError
from ..nn.gaussian import gaussian_kl, reparameterize
from ..validation import check_int


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
    """Cross-entropy over the masked nodes of the graph: transductive and full batch, or, with
    `num_neighbors`, on sampled neighbourhoods of `batch_size` seed nodes (`NeighborSplit`, fed
    by `num_workers` DataLoader workers). A model with ``trims_to_layer`` then computes each
    layer only where the next one reads it, and returns the seeds' logits alone."""

    monitor = "val_accuracy"
    mode = "max"

    def __init__(self, num_classes: int, num_neighbors: list[int] | None = None, num_workers: int = 0):
        self.num_classes = num_classes
        self.num_neighbors = num_neighbors
        self.num_workers = num_workers
        self._csr: tuple[torch.Tensor, CSRGraph] | None = None  # (edge_index it was built from, CSR)
        self._eval_splits: dict[int, tuple[Any, NeighborSplit]] = {}

    @staticmethod
    def forward(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        _need(batch, ("x", "edge_index", "y", "mask"), "node classification")
        counts = batch.get("num_sampled_nodes")
        if (counts is not None and getattr(model, "trims_to_layer", False)
                and len(counts) == getattr(model, "num_layers", -1) + 1):
            return model(batch["x"], batch["edge_index"], batch.get("edge_weight"), num_sampled_nodes=counts,
                         num_sampled_edges=batch["num_sampled_edges"])
        return model(batch["x"], batch["edge_index"], batch.get("edge_weight"))

    @classmethod
    def masked(cls, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and labels of the batch's masked nodes (a trimmed output has the first rows)."""
        logits = cls.forward(model, batch)
        rows = logits.size(0)
        mask = batch["mask"][:rows]
        return logits[mask], batch["y"][:rows][mask]

    def configure_optimizers(self, model, make_optimizer):
        return [make_optimizer(_param_groups(model))]

    def _csr_of(self, graph) -> CSRGraph:
        if self._csr is None or self._csr[0] is not graph.edge_index:
            self._csr = (graph.edge_index, CSRGraph(graph.edge_index, graph.num_nodes))
        return self._csr[1]

    def train_split(self, split):
        if self.num_neighbors is None:
            return split
        return NeighborSplit(split, self.num_neighbors, num_workers=self.num_workers, csr=self._csr_of(split.graph))

    def training_step(self, model, batch):
        logits, y = self.masked(model, batch)
        return F.cross_entropy(logits, y)

    def _batches(self, split, batch_size: int):
        if self.num_neighbors is None:
            yield from split.batches(batch_size)
            return
        cached = self._eval_splits.get(id(split))
        if cached is None or cached[0] is not split:
            every = NeighborSplit(split, [-1] * len(self.num_neighbors), csr=self._csr_of(split.graph))
            cached = self._eval_splits[id(split)] = (split, every)
        yield from cached[1].batches(batch_size)

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        parts = [self.masked(model, batch) for batch in self._batches(split, batch_size)]
        logits = torch.cat([p[0] for p in parts]) if parts else torch.empty(0, self.num_classes)
        y = torch.cat([p[1] for p in parts]) if parts else torch.empty(0, dtype=torch.long)
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


class GraphClassificationTask(Task):
    """Cross-entropy of one label a graph, over batches of graphs (a `GraphCollection`'s disjoint
    unions: ``x``, ``edge_index``, ``batch``, ``y``); the model maps them to ``(num_graphs, C)``."""

    monitor = "val_accuracy"
    mode = "max"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    @staticmethod
    def forward(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        _need(batch, ("x", "edge_index", "batch", "y"), "graph classification")
        return model(batch["x"], batch["edge_index"], batch["batch"], num_graphs=len(batch["y"]))

    def training_step(self, model, batch):
        return F.cross_entropy(self.forward(model, batch), batch["y"])

    @torch.no_grad()
    def evaluate(self, model, split, batch_size):
        model.eval()
        logits, labels = [], []
        for batch in split.batches(batch_size):
            logits.append(self.forward(model, batch))
            labels.append(batch["y"])
        if not labels:
            return {}
        logits, y = torch.cat(logits), torch.cat(labels)
        confusion = confusion_matrix(logits.argmax(-1), y, self.num_classes)
        return {"loss": F.cross_entropy(logits, y).item(), "accuracy": accuracy(confusion),
                "macro_f1": macro_f1(confusion), "confusion_matrix": confusion.cpu().tolist()}


@training_task("graph-classification")
def graph_classification_task(model, spec) -> Task:
    return GraphClassificationTask(spec.num_classes)


@training_task("node-classification")
def node_classification_task(model, spec, num_neighbors: list[int] | None = None, num_workers: int = 0) -> Task:
    """Full batch, or with `num_neighbors` (one fan-out per hop, e.g. ``[25, 10]``; -1: every
    neighbour) mini-batches of sampled neighbourhoods, sampled by `num_workers` DataLoader workers."""
    check_int("node classification", "num_workers", num_workers, minimum=0)
    if num_neighbors is not None:
        num_neighbors = check_num_neighbors("node classification", num_neighbors)
        depth = getattr(model, "num_layers", None)
        if depth is None:
            raise ConfigError(f"sampled neighbourhoods (num_neighbors) need a model that says how many layers it "
                              f"has (num_layers); {type(model).__name__} does not.")
        if len(num_neighbors) > depth:
            raise ConfigError(f"The 'num_neighbors' parameter of node classification must have at most {depth} "
                              f"fan-outs, one per layer of the model ({type(model).__name__} has {depth} layers). "
                              f"Got {len(num_neighbors)} instead: {num_neighbors}.")
    return NodeClassificationTask(spec.num_classes, num_neighbors, num_workers)


@training_task("link-prediction")
def link_prediction_task(model, spec) -> Task:
    return LinkPredictionTask()
