"""Inference time of exported models in onnxruntime (CPU) against eager torch, side by side in one process.

Each model is built at its default size (untrained: the weights do not change the time), exported
with `archlab.export.export_model` (which checks the file against torch first), and timed at batch
1 and 64: the median of `--repeats` calls, torch under ``no_grad`` in eval mode, onnxruntime one
``session.run``, both with `--threads` intra-op threads. The ratio is onnxruntime / torch (below 1:
onnxruntime is faster).

    python benchmarks/export.py [--repeats 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import archlab
from archlab.data import Dataset, DataSpec, TensorSplit
from archlab.export import export_model
from archlab.export.graphs import export_graphs
from archlab.export.onnx import OnnxModel

STEPS = 28  # MNIST rows as a sequence, and the text length


def cases():
    """(model name, registration kwargs, task, data spec, test inputs) at realistic sizes."""
    g = torch.Generator().manual_seed(0)
    n = 256
    image = DataSpec("bench-image", "image", (1, 28, 28), 10)
    yield "cnn", {"in_channels": 1, "input_size": 28}, "classification", image, {"x": torch.rand(n, 1, 28, 28, generator=g)}
    sequence = DataSpec("bench-sequence", "sequence", (STEPS, 28), 10)
    yield ("lstm", {"input_dim": 28, "num_classes": 10}, "classification", sequence,
           {"x": torch.rand(n, STEPS, 28, generator=g), "lengths": torch.randint(1, STEPS + 1, (n,), generator=g)})
    text = DataSpec("bench-text", "text", (64,), 2, preprocess={"vocab_size": 2000, "pad_id": 0})
    yield ("transformer", {"vocab_size": 2000, "num_classes": 2, "context_length": 64}, "classification", text,
           {"x": torch.randint(1, 2000, (n, 64), generator=g), "lengths": torch.randint(1, 65, (n,), generator=g)})
    lm = DataSpec("bench-lm", "text", (64,), 65, preprocess={"vocab_size": 65})
    yield "gpt", {}, "language-modeling", lm, {"x": torch.randint(0, 65, (n, 64), generator=g)}


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'model':12s} {'batch':>5s} {'torch ms':>10s} {'onnxruntime ms':>15s} {'ratio':>7s}")
    with tempfile.TemporaryDirectory() as folder:
        for name, kwargs, task, spec, test in cases():
            model = archlab.create_model(name, **kwargs).eval()
            dataset = Dataset(spec, {"test": TensorSplit(**test)})
            path = Path(folder) / f"{name}.onnx"
            export_model(name, task, model, dataset, "onnx", path)
            session = OnnxModel(path, threads=args.threads)
            graph = export_graphs(name, task, model, dataset)[0]
            for batch in (1, 64):
                inputs = tuple(t[:batch] for t in graph.check)
                with torch.no_grad():
                    eager = median_seconds(lambda: graph.module(*inputs), args.repeats)
                arrays = tuple(t.numpy() for t in inputs)
                ort = median_seconds(lambda: session.run(*arrays), args.repeats)
                print(f"{name:12s} {batch:5d} {eager * 1e3:10.3f} {ort * 1e3:15.3f} {ort / eager:7.2f}")


if __name__ == "__main__":
    main()
