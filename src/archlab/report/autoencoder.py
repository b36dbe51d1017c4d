"""Figures of the autoencoder family, written as PNG: image grids of reconstructions and
samples, a 2-D scatter of the codes coloured by label, and anomaly-score histograms.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA

from ..errors import ConfigError, DataError
from .figures import save_png
from ..models.autoencoder.base import inference


def _numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    return save_png(fig, path)


def image_grid(images: Any, path: str | os.PathLike, nrow: int = 8, title: str | None = None,
               row_labels: list[str] | None = None) -> Path:
    """Write images ``(N, C, H, W)`` (C = 1 or 3, values in [0, 1]) as one PNG grid, `nrow` per row."""
    images = _numpy(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"image_grid expects images of shape (N, 1 or 3, H, W); got {images.shape}.")
    n, channels, height, width = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    canvas = np.ones((rows * (height + 1) + 1, cols * (width + 1) + 1, channels), np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, c = divmod(i, cols)
        canvas[1 + r * (height + 1):1 + r * (height + 1) + height,
               1 + c * (width + 1):1 + c * (width + 1) + width] = image.transpose(1, 2, 0)
    scale = max(0.3, 8.0 / max(cols * width, 1) * 4)
    fig = Figure(figsize=(max(2.0, cols * width * scale / 10), max(1.5, rows * height * scale / 10 + 0.4)))
    ax = fig.add_subplot()
    ax.imshow(canvas[..., 0] if channels == 1 else canvas, cmap="gray" if channels == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        ax.set_yticks([1 + r * (height + 1) + height / 2 for r in range(len(row_labels))], row_labels)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def _require_images(model) -> None:
    if len(model.input_shape) != 3:
        raise ConfigError(f"image figures need a model of images; this one takes inputs of shape {model.input_shape}.")


def reconstruction_grid(model, x: Any, path: str | os.PathLike, n: int = 8) -> Path:
    """Originals (top row) above their reconstructions (bottom row), for the first `n` inputs."""
    _require_images(model)
    x = model.as_input(x)[:n]
    with inference(model):
        recon = model.reconstruct(x)
    return image_grid(torch.cat([x, recon]), path, nrow=len(x), title="input / reconstruction",
                      row_labels=["input", "recon."])


def samples_grid(model, n: int, path: str | os.PathLike, generator: torch.Generator | None = None) -> Path:
    """`n` samples from a VAE's or AAE's prior, decoded, as a PNG grid."""
    _require_images(model)
    return image_grid(model.sample(n, generator), path, nrow=int(math.ceil(math.sqrt(n))), title=f"{n} samples")


def save_samples(model, n: int, path: str | os.PathLike, generator: torch.Generator | None = None) -> Path:
    """Samples written as a PNG grid (image models) or, for a path ending in ``.npy``, as an array."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, model.sample(n, generator).cpu().numpy())
        return path
    if len(model.input_shape) != 3:
        raise ConfigError(f"this model generates feature vectors of shape {model.input_shape}, not images; "
                          "write them with an --out path ending in .npy.")
    return samples_grid(model, n, path, generator)


def latent_scatter(codes: Any, labels: Any, path: str | os.PathLike, class_names: list[str] | None = None,
                   title: str = "codes") -> Path:
    """Codes ``(N, D)`` as a 2-D scatter coloured by label; the first two principal components when D > 2."""
    codes = _numpy(codes).astype(np.float64)
    labels = _numpy(labels).ravel()
    if codes.ndim != 2 or len(codes) != len(labels) or len(codes) == 0:
        raise DataError(f"latent_scatter expects codes (N, D) and N labels; got {codes.shape} and {labels.shape}.")
    axes = ("z1", "z2")
    if codes.shape[1] == 1:
        codes = np.concatenate([codes, np.zeros_like(codes)], 1)
    elif codes.shape[1] > 2:
        pca = PCA(n_components=2).fit(codes)
        codes = pca.transform(codes)
        axes = tuple(f"PC{i + 1} ({100 * r:.0f}% var.)" for i, r in enumerate(pca.explained_variance_ratio_))
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    classes = np.unique(labels)
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for i, c in enumerate(classes):
        mask = labels == c
        name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(c)
        ax.scatter(codes[mask, 0], codes[mask, 1], s=4, alpha=0.6, color=cmap(i % cmap.N), label=name)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title)
    ax.legend(markerscale=3, fontsize="small", loc="best")
    fig.tight_layout()
    return _save(fig, path)


def anomaly_histogram(normal_scores: Any, anomalous_scores: Any, path: str | os.PathLike,
                      threshold: float | None = None, bins: int = 50) -> Path:
    """Overlaid histograms of the anomaly scores of normal and anomalous examples, with the threshold."""
    normal, anomalous = _numpy(normal_scores).ravel(), _numpy(anomalous_scores).ravel()
    if normal.size == 0 or anomalous.size == 0:
        raise DataError("anomaly_histogram needs scores of both normal and anomalous examples.")
    edges = np.histogram_bin_edges(np.concatenate([normal, anomalous]), bins=bins)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.hist(normal, bins=edges, alpha=0.6, density=True, label=f"normal ({normal.size})")
    ax.hist(anomalous, bins=edges, alpha=0.6, density=True, label=f"anomalous ({anomalous.size})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)
