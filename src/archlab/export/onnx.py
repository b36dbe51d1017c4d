"""ONNX export with torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``),
and `OnnxModel`, an exported file run in onnxruntime.

Why not ``dynamo=True`` (torch's default since 2.9, which marks this exporter deprecated): on torch
2.13 it needs the ``onnxscript`` package besides ``onnx``, and it traces through `torch.export`, which
refuses the data-dependent checks archlab's forwards make on their inputs (``int(x.min())`` for token
ids in range: ``GuardOnDataDependentSymNode``). The TorchScript-based tracer records the ops one
example runs; the checks run on that example, and each export is checked against torch on test inputs
of another batch size and length before it is kept, so a change in the exporter cannot pass unseen.

What archlab needs to read an export again (the model, its task and its data spec: input kind,
preprocessing, class names, tokenizer) is stored as JSON in the file's ``metadata_props`` under
``archlab``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, DataError
from .graphs import ExportGraph

OPSET = 18
METADATA_KEY = "archlab"


class _RNNOutputs(nn.Module):
    """`graph.module` returning also the unpacked outputs of each packed RNN it runs.

    The exporter fails (``vector::_M_range_check``) on a packed sequence whose RNN output is never
    unpacked, which is what "last" pooling does (it reads only the final states). The unpacked
    outputs become extra graph outputs here, and are cut away again after export."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.packed: list = []
        self.hooks = [layer.register_forward_hook(lambda _, __, out: self.packed.append(out[0]))
                      for layer in module.modules() if isinstance(layer, nn.RNNBase)]

    def remove_hooks(self) -> None:
        for hook in self.hooks:
            hook.remove()

    def forward(self, *inputs: torch.Tensor):
        from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

        self.packed.clear()
        outputs = self.module(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        extra = tuple(pad_packed_sequence(p, batch_first=True)[0] for p in self.packed
                      if isinstance(p, PackedSequence))
        return (*outputs, *extra)


def _index_add(g, self, dim, index, source, alpha):
    """``aten::index_add`` as ScatterElements with ``reduction="add"``: the TorchScript exporter's own
    form scatters without a reduction, so of the rows sent to one index only the last survives."""
    from torch.onnx import symbolic_helper

    axis = symbolic_helper._get_const(dim, "i", "dim")
    rank = symbolic_helper._get_tensor_rank(source)
    shape = [1] * rank
    shape[axis] = -1
    index = g.op("Reshape", index, g.op("Constant", value_t=torch.tensor(shape)))
    index = g.op("Expand", index, g.op("Shape", source))
    scale = symbolic_helper._maybe_get_const(alpha, "f")
    if not (isinstance(scale, (int, float)) and scale == 1):
        source = g.op("Mul", source, alpha)
    return g.op("ScatterElements", self, index, source, axis_i=axis, reduction_s="add")


def _scatter_reduce(g, self, dim, index, src, reduce, include_self):
    """``aten::scatter_reduce`` for amax / amin / mean without the initial values (``include_self=False``),
    as the message-passing layers reduce: the max (min) scatter starts from -inf (+inf), and the rows no
    index reaches keep their initial values (so would a row whose every value is -inf: the export's
    check against torch would catch it); the mean is a sum scattered over a count."""
    from torch.onnx import symbolic_helper

    reduce = symbolic_helper._maybe_get_const(reduce, "s")
    keep = symbolic_helper._maybe_get_const(include_self, "b")
    axis = symbolic_helper._get_const(dim, "i", "dim")
    if reduce == "mean" and not keep:
        zeros = g.op("ConstantOfShape", g.op("Shape", self), value_t=torch.tensor([0.0]))
        sums = g.op("ScatterElements", zeros, index, src, axis_i=axis, reduction_s="add")
        ones = g.op("ConstantOfShape", g.op("Shape", src), value_t=torch.tensor([1.0]))
        counts = g.op("ScatterElements", zeros, index, ones, axis_i=axis, reduction_s="add")
        one = g.op("Constant", value_t=torch.tensor(1.0))
        mean = g.op("Div", sums, g.op("Max", counts, one))
        return g.op("Where", g.op("Equal", counts, g.op("Constant", value_t=torch.tensor(0.0))), self, mean)
    if reduce not in ("amax", "amin"):
        raise RuntimeError(f"scatter_reduce with reduce={reduce!r} has no ONNX form here")
    onnx_reduce = "max" if reduce == "amax" else "min"
    if keep:
        return g.op("ScatterElements", self, index, src, axis_i=axis, reduction_s=onnx_reduce)
    start = float("-inf") if reduce == "amax" else float("inf")
    filled = g.op("ConstantOfShape", g.op("Shape", self), value_t=torch.tensor([start]))
    reduced = g.op("ScatterElements", filled, index, src, axis_i=axis, reduction_s=onnx_reduce)
    untouched = g.op("IsInf", reduced, detect_negative_i=int(reduce == "amax"), detect_positive_i=int(reduce == "amin"))
    return g.op("Where", untouched, self, reduced)


_SYMBOLICS = {"aten::index_add": _index_add, "aten::scatter_reduce": _scatter_reduce}


def write_onnx(graph: ExportGraph, path: Path, metadata: dict[str, Any]) -> None:
    """Trace `graph` into an ONNX file at `path`, with `metadata` in its ``metadata_props``."""
    import onnx

    module = graph.module
    wrapped = _RNNOutputs(module) if any(isinstance(m, nn.RNNBase) for m in module.modules()) else module
    for name, symbolic in _SYMBOLICS.items():
        torch.onnx.register_custom_op_symbolic(name, symbolic, OPSET)
    try:
        with torch.no_grad():
            extra = len(_as_tuple(wrapped(*graph.example))) - len(graph.output_names)
        output_names = [*graph.output_names, *(f"unpacked_{i}" for i in range(extra))]
        with warnings.catch_warnings(), torch.no_grad():
            # the tracer's notes (a Python bool of a traced value) concern the checks on the example input
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, graph.example, str(path), dynamo=False, opset_version=OPSET,
                              input_names=list(graph.input_names), output_names=output_names,
                              dynamic_axes=graph.dynamic_axes)
    finally:
        for name in _SYMBOLICS:
            torch.onnx.unregister_custom_op_symbolic(name, OPSET)
        if wrapped is not module:
            wrapped.remove_hooks()
    proto = onnx.load(str(path))
    if extra:
        proto = onnx.utils.Extractor(proto).extract_model(list(graph.input_names), list(graph.output_names))
    proto.doc_string = graph.doc
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(proto, str(path))


def _as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


class OnnxModel:
    """An exported ``.onnx`` file in an onnxruntime CPU session, with the metadata archlab wrote."""

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        import onnxruntime

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"exported model not found: {self.path}")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:  # intra-op threads (default: onnxruntime's, one per core)
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for a corrupt file
            raise CheckpointError(f"{self.path} is not a readable ONNX model: {str(err).splitlines()[0]}") from err
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        self.metadata: dict[str, Any] | None = json.loads(raw) if raw else None
        self.inputs = [(i.name, i.type) for i in self.session.get_inputs()]

    @property
    def input_names(self) -> list[str]:
        return [name for name, _ in self.inputs]

    def run(self, *inputs: np.ndarray | torch.Tensor) -> list[np.ndarray]:
        """The graph's outputs for positional inputs, cast to the dtypes the graph declares."""
        if len(inputs) != len(self.inputs):
            raise DataError(f"{self.path} takes {len(self.inputs)} inputs ({', '.join(n for n, _ in self.inputs)}); "
                            f"got {len(inputs)}.")
        feed = {}
        for (name, kind), value in zip(self.inputs, inputs):
            array = value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
            feed[name] = array.astype(np.int64 if "int64" in kind else np.float32, copy=False)
        return self.session.run(None, feed)
