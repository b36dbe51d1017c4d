"""Writing matplotlib figures as PNG files through the Agg canvas (no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import ConfigError


def save_png(fig: Figure, path: str | os.PathLike, *, tight: bool = False) -> Path:
    """Write `fig` to `path`, which must end in ``.png``; parent folders are created."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"figures are written as PNG; the path must end in .png, got '{path}'.")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight" if tight else None)
    return path
