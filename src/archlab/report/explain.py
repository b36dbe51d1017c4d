"""Figures of attributions: heat-map overlays for images, bar charts for tabular features,
highlighted tokens (HTML) for text, the explanatory subgraph of a GNN prediction, and
deletion/insertion curves.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend switch).
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..errors import DataError
from .figures import save_png


def _numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().double().numpy() if torch.is_tensor(a) else np.asarray(a, dtype=np.float64)


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    return save_png(fig, path, tight=True)


def _as_image(a: np.ndarray, what: str) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` as ``(H, W)`` (one channel) or ``(H, W, 3)``."""
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[0] == 1:
        return a[0]
    if a.ndim == 3 and a.shape[0] == 3:
        return a.transpose(1, 2, 0)
    raise DataError(f"{what} must be one image (H, W), (1, H, W) or (3, H, W); got shape {a.shape}.")


def image_attribution_figure(image: Any, attribution: Any, path: str | os.PathLike, *, title: str | None = None,
                             signed: bool | None = None, alpha: float = 0.55) -> Path:
    """Write the image, the attribution map, and the map over the image as one PNG.

    Channels of the map are summed. A signed map (the default when it has negative values)
    is drawn on a diverging scale centred on zero (red positive, blue negative); an
    unsigned one on a sequential scale.

    Shapes:
        image ``(C, H, W)`` or ``(H, W)`` with values in [0, 1]; attribution ``(C', H, W)`` or ``(H, W)``.
    """
    img = _as_image(_numpy(image), "image")
    attr = _numpy(attribution)
    attr = attr.sum(0) if attr.ndim == 3 else attr
    if attr.shape != img.shape[:2]:
        raise DataError(f"the attribution map {attr.shape} must match the image's height and width {img.shape[:2]}.")
    signed = bool((attr < 0).any()) if signed is None else signed
    limit = float(np.abs(attr).max()) or 1.0
    cmap, vmin = ("bwr", -limit) if signed else ("inferno", 0.0)
    gray = img if img.ndim == 2 else img.mean(2)
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 3)
    axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    axes[0].set_title("input")
    shown = axes[1].imshow(attr, cmap=cmap, vmin=vmin, vmax=limit)
    axes[1].set_title("attribution")
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(gray, cmap="gray", vmin=0, vmax=1)
    axes[2].imshow(attr, cmap=cmap, vmin=vmin, vmax=limit, alpha=alpha)
    axes[2].set_title("overlay")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def feature_importance_figure(names: Sequence[str], values: Any, path: str | os.PathLike, *,
                              errors: Any = None, title: str | None = None, xlabel: str = "importance") -> Path:
    """Horizontal bars of one value per feature, the largest on top (with error bars if given)."""
    values = _numpy(values).reshape(-1)
    if len(names) != len(values):
        raise DataError(f"{len(names)} feature names were given for {len(values)} values.")
    order = np.argsort(values, kind="stable")
    fig = Figure(figsize=(7, 0.35 * len(values) + 1.2))
    ax = fig.subplots()
    err = None if errors is None else _numpy(errors).reshape(-1)[order]
    colors = ["tab:red" if v >= 0 else "tab:blue" for v in values[order]]
    ax.barh(np.arange(len(values)), values[order], xerr=err, color=colors)
    ax.set_yticks(np.arange(len(values)), [names[i] for i in order])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def token_html(tokens: Sequence[str], scores: Any, *, title: str | None = None) -> str:
    """Tokens as HTML spans shaded by their score: red for positive, blue for negative,
    opacity proportional to ``|score| / max |score|``; the score is in each span's title."""
    scores = _numpy(scores).reshape(-1)
    if len(tokens) != len(scores):
        raise DataError(f"{len(tokens)} tokens were given for {len(scores)} scores.")
    limit = float(np.abs(scores).max()) or 1.0
    spans = []
    for token, score in zip(tokens, scores):
        strength = abs(score) / limit
        rgb = "220,40,40" if score >= 0 else "40,90,220"
        spans.append(f'<span title="{score:.4g}" style="background-color: rgba({rgb},{strength:.3f}); '
                     f'padding: 1px 2px; border-radius: 3px">{html.escape(token)}</span>')
    head = f"<h3>{html.escape(title)}</h3>\n" if title else ""
    return f'{head}<p style="font-family: monospace; line-height: 1.8">{" ".join(spans)}</p>\n'


def write_token_html(tokens: Sequence[str], scores: Any, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """`token_html` as a standalone HTML page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = token_html(tokens, scores, title=title)
    path.write_text(f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title or "tokens")}'
                    f"</title></head>\n<body>\n{body}</body></html>\n")
    return path


def subgraph_figure(edge_index: Any, edge_mask: Any, path: str | os.PathLike, *, node: int | None = None,
                    node_mask: Any = None, labels: Any = None, top_k: int | None = 20,
                    title: str | None = None) -> Path:
    """The explanatory subgraph: the `top_k` edges of highest mask value (width and darkness
    by value), their nodes coloured by `labels`, and the explained `node` outlined in red.

    Shapes:
        edge_index ``(2, E)``; edge_mask ``(E,)``; node_mask ``(N,)`` optional; labels ``(N,)`` optional.
    """
    import networkx as nx

    edge_index = np.asarray(_numpy(edge_index), dtype=np.int64)
    mask = _numpy(edge_mask).reshape(-1)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2 or edge_index.shape[1] != len(mask):
        raise DataError(f"edge_index must be (2, E) with one mask value per edge; got {edge_index.shape} and "
                        f"{mask.shape}.")
    keep = np.argsort(-mask, kind="stable")[: top_k or len(mask)]
    keep = keep[mask[keep] > 0]
    graph = nx.Graph()
    for e in keep:
        u, v = int(edge_index[0, e]), int(edge_index[1, e])
        if not graph.has_edge(u, v) or graph[u][v]["weight"] < mask[e]:
            graph.add_edge(u, v, weight=float(mask[e]))
    if node is not None:
        graph.add_node(int(node))
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ax.axis("off")
    if graph.number_of_nodes():
        pos = nx.spring_layout(graph, seed=0)
        weights = np.array([graph[u][v]["weight"] for u, v in graph.edges()])
        top = weights.max() if len(weights) else 1.0
        nodes = list(graph.nodes())
        label_values = None if labels is None else _numpy(labels)
        node_values = None if node_mask is None else _numpy(node_mask)
        colors = "lightgray" if label_values is None else [int(label_values[n]) for n in nodes]
        sizes = 300 if node_values is None else [100 + 400 * float(node_values[n]) for n in nodes]
        nx.draw_networkx_edges(graph, pos, ax=ax, width=1 + 4 * weights / top, edge_color=weights / top,
                               edge_cmap=_cmap("Greys"), edge_vmin=-0.2, edge_vmax=1.0)
        nx.draw_networkx_nodes(graph, pos, ax=ax, nodelist=nodes, node_color=colors, node_size=sizes,
                               cmap=_cmap("tab10"), edgecolors=["red" if n == node else "black" for n in nodes],
                               linewidths=[3 if n == node else 0.5 for n in nodes])
        nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def curves_figure(curves: Mapping[str, Any], path: str | os.PathLike, *, title: str | None = None,
                  ylabel: str = "probability of the target") -> Path:
    """Mean deletion or insertion curves (`archlab.explain.PerturbationCurve`), one line each,
    labelled with their mean AUC."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(_numpy(curve.fractions), _numpy(curve.scores).mean(0), label=f"{name} (AUC {curve.mean_auc:.3f})")
    ax.set_xlabel("fraction of the input changed")
    ax.set_ylabel(ylabel)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def randomization_figure(steps: Sequence[Any], path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Spearman rank correlation with the trained model's maps as layers are randomized
    from the top down (`archlab.explain.RandomizationStep`)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(range(len(steps)), [s.spearman for s in steps], marker="o")
    ax.set_xticks(range(len(steps)), [s.layer for s in steps], rotation=45, ha="right")
    ax.set_ylim(-0.1, 1.05)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("randomized down to layer")
    ax.set_ylabel("Spearman rank correlation")
    if title:
        ax.set_title(title)
    return _save(fig, path)
