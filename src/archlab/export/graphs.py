"""What a checkpoint exports: the graphs of its forward, their inputs and outputs, and the test
inputs that check them.

The choice follows the registration's task and the data kind, never a model's name:

- classifiers and regressors: ``x -> logits``; on sequences and text ``(x, lengths) -> logits``,
  batch and steps dynamic (the lengths mask the padding, as in training);
- language models: token ids ``x -> logits (B, T, vocab_size)``, batch and steps dynamic;
- autoencoders: two graphs, the encoder ``x -> code`` and the decoder ``z -> mean`` (the mean of
  the decoder's distribution: pixels in [0, 1] for a Bernoulli decoder);
- node classifiers: node features ``x -> logits`` on the fixed graph of the checkpoint's data,
  the edges held inside the exported graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Dataset
from ..errors import ConfigError, DataError
from ..models.autoencoder import Autoencoder

#: Rows of the test split each export is checked on.
CHECK_ROWS = 256

#: Why a task's models are not exported (the registration's task name -> the reason).
UNEXPORTABLE = {
    "link-prediction": "a link predictor scores node pairs of its training graph by inner products of node "
                       "embeddings; its inputs are pairs of node ids, not model inputs, so there is no forward "
                       "to export (use `archlab evaluate` on the checkpoint)",
    "graph-classification": "a graph classifier's input is a batch of graphs (node features, edges and each node's "
                            "graph, all of varying sizes), which the exporter's fixed-graph form does not cover; "
                            "predict with the checkpoint",
}
AUTOENCODER_TASKS = ("autoencoder", "vae", "aae")
EXPORTED_TASKS = ("classification", "language-modeling", *AUTOENCODER_TASKS, "node-classification")


@dataclass
class ExportGraph:
    """One graph to export: a module over positional tensors, the names of its inputs and outputs,
    the axes of each that may change size, a small input to trace and the test inputs to check."""

    name: str  # "model", or "encoder" / "decoder"
    module: nn.Module
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    example: tuple[torch.Tensor, ...]
    check: tuple[torch.Tensor, ...]
    doc: str = ""
    reference: nn.Module | None = None  # the forward the check compares with (default: `module`)

    def __post_init__(self) -> None:
        # a wrapper is made in training mode, and the exporter restores a module's mode after tracing:
        # the whole tree must be in eval mode for the check to compare like with like
        self.module.eval()
        self.reference = (self.reference or self.module).eval()


class _Call(nn.Module):
    """`model(x, lengths=lengths)` over positional tensors."""

    def __init__(self, model: nn.Module, lengths: bool):
        super().__init__()
        self.model = model
        self.lengths = lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, lengths=lengths) if self.lengths else self.model(x)


class _Encoder(nn.Module):
    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x)  # (B, latent_dim)


class _Decoder(nn.Module):
    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.output_mean(self.model.decode(z))  # (B, *input_shape)


class _OnGraph(nn.Module):
    """A node classifier on one fixed graph: the edges (and weights) are buffers of the export.

    With `propagate`, layers that multiply by a cached sparse adjacency (`GCNConv`'s ``cached``)
    aggregate over the edges instead while this runs: sparse tensors have no ONNX form. The check
    compares that with the cached forward (``propagate=False``)."""

    def __init__(self, model: nn.Module, edge_index: torch.Tensor, edge_weight: torch.Tensor | None,
                 propagate: bool = True):
        super().__init__()
        self.model = model
        self.propagate = propagate
        self.register_buffer("edge_index", edge_index)
        self.register_buffer("edge_weight", edge_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cached = [m for m in self.model.modules() if getattr(m, "cached", False) is True] if self.propagate else []
        for layer in cached:
            layer.cached = False
        try:
            return self.model(x, self.edge_index, self.edge_weight)  # (N, num_classes)
        finally:
            for layer in cached:
                layer.cached = True


def refuse_unexportable(model_name: str, task: str) -> None:
    """`ConfigError` naming why a model of `task` cannot be exported, when it cannot."""
    if task in UNEXPORTABLE:
        raise ConfigError(f"model '{model_name}' ({task} task) cannot be exported: {UNEXPORTABLE[task]}.")
    if task not in EXPORTED_TASKS:
        raise ConfigError(f"model '{model_name}' ({task} task) cannot be exported: export knows the forward of "
                          f"the tasks {', '.join(EXPORTED_TASKS)}.")


def _shorter(x: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """Two rows, one step shorter than the test inputs when they have more than one: traced on
    these, an export whose steps axis is not truly dynamic fails its check on the full length."""
    steps = max(1, x.shape[1] - 1)
    if lengths is None:
        return (x[:2, :steps],)
    return x[:2, :steps], lengths[:2].clamp(max=steps)


def export_graphs(model_name: str, task: str, model: nn.Module, dataset: Dataset) -> list[ExportGraph]:
    """The graphs that export `model` (in eval mode), checked on `dataset`'s test split."""
    refuse_unexportable(model_name, task)
    spec = dataset.spec
    if "test" not in dataset.splits or not len(dataset["test"]):
        raise DataError(f"an export is checked on the test inputs of its model's data, and dataset '{spec.name}' "
                        f"has no test split (it has {', '.join(sorted(dataset.splits)) or 'none'}).")
    batch = next(dataset["test"].batches(CHECK_ROWS))  # the first test inputs (the whole graph of a graph)
    x = batch["x"]
    if task == "node-classification":
        x = x.to_dense() if x.layout != torch.strided else x
        edges = (batch["edge_index"], batch.get("edge_weight"))
        return [ExportGraph("model", _OnGraph(model, *edges), ("x",), ("logits",), {}, (x,), (x,),
                            doc=f"node logits on the fixed graph of {spec.name} ({x.shape[0]} nodes)",
                            reference=_OnGraph(model, *edges, propagate=False))]
    if task in AUTOENCODER_TASKS:
        if not isinstance(model, Autoencoder):
            raise ConfigError(f"model '{model_name}' ({task} task) is not an autoencoder (encode/decode); "
                              "it cannot be exported as one.")
        with torch.no_grad():
            z = model.encode(x)
        batch_axis = {0: "batch"}
        return [ExportGraph("encoder", _Encoder(model), ("x",), ("code",),
                            {"x": batch_axis, "code": batch_axis}, (x[:2],), (x,), doc="the code of each input"),
                ExportGraph("decoder", _Decoder(model), ("z",), ("mean",),
                            {"z": batch_axis, "mean": batch_axis}, (z[:2],), (z,),
                            doc="the mean of the decoder's distribution for each code")]
    if task == "language-modeling":
        axes = {0: "batch", 1: "steps"}
        return [ExportGraph("model", _Call(model, lengths=False), ("x",), ("logits",),
                            {"x": axes, "logits": axes}, _shorter(x, None), (x,),
                            doc="next-token logits (batch, steps, vocab_size) for token ids (batch, steps)")]
    if spec.kind in ("sequence", "text"):
        lengths = batch["lengths"] if "lengths" in batch else torch.full((len(x),), x.shape[1], dtype=torch.long)
        axes = {0: "batch", 1: "steps"}
        return [ExportGraph("model", _Call(model, lengths=True), ("x", "lengths"), ("logits",),
                            {"x": axes, "lengths": {0: "batch"}, "logits": {0: "batch"}},
                            _shorter(x, lengths), (x, lengths),
                            doc="logits (batch, outputs) for inputs (batch, steps, ...) of valid lengths (batch,)")]
    return [ExportGraph("model", _Call(model, lengths=False), ("x",), ("logits",),
                        {"x": {0: "batch"}, "logits": {0: "batch"}}, (x[:2],), (x,),
                        doc="logits (batch, outputs) for inputs (batch, ...)")]
