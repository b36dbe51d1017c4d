"""A self-contained HTML document: sections of text, tables, notes and figures, every figure
embedded as a base64 PNG, so the file opens offline and requests nothing.

The page carries a Content-Security-Policy that allows images from ``data:`` URIs and inline
styles only: a browser refuses (and reports on its console) any request the page would make.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import DataError

#: What the page may load: images from data: URIs and its own inline style; nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1180px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 12px 0 20px; } figcaption { font-size: 0.85em; color: #555; }
img.figure { display: block; max-width: none; }
p.note { background: #fff6d6; border-left: 4px solid #e0b000; padding: 6px 10px; }
pre { background: #f7f7f7; padding: 8px; white-space: pre-wrap; font-size: 0.85em; }
nav a { margin-right: 12px; }
"""


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of a PNG, read from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise DataError("an embedded figure must be a PNG image.")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """`fig` drawn on the Agg canvas as PNG bytes, at its own size (``figsize * dpi`` pixels)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = "nan" if value != value else f"{value:.4g}"
        return f'<td class="num">{text}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


@dataclass
class Section:
    """One titled part of the document; its parts are HTML fragments, in order."""

    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def note(self, text: str) -> None:
        """A remark the reader must not miss: what is missing, and why."""
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')

    def heading(self, text: str) -> None:
        self.parts.append(f"<h3>{html.escape(text)}</h3>")

    def preformatted(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def fragment(self, markup: str) -> None:
        """HTML made by archlab's own figure code (highlighted tokens), inserted as is."""
        self.parts.append(markup)

    def figure(self, figure: Figure | bytes | str | os.PathLike, name: str, caption: str = "") -> None:
        """Embed a matplotlib figure, PNG bytes or a PNG file, at its own pixel size. `name` is a
        stable key (``data-figure``) by which tests and readers find it."""
        if isinstance(figure, Figure):
            data = figure_png(figure)
        elif isinstance(figure, bytes):
            data = figure
        else:
            data = Path(figure).read_bytes()
        width, height = png_size(data)
        encoded = base64.b64encode(data).decode("ascii")
        self.figures.append({"name": name, "width": width, "height": height})
        alt = html.escape(caption or name)
        self.parts.append(f'<figure><img class="figure" data-figure="{html.escape(name)}" width="{width}" '
                          f'height="{height}" alt="{alt}" src="data:image/png;base64,{encoded}">'
                          + (f"<figcaption>{html.escape(caption)}</figcaption>" if caption else "") + "</figure>")


class Document:
    """The report: a title, sections in order, rendered as one HTML page."""

    def __init__(self, title: str):
        self.title = title
        self.sections: list[Section] = []

    def section(self, title: str) -> Section:
        anchor = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        taken = {s.anchor for s in self.sections}
        base, i = anchor, 2
        while anchor in taken:
            anchor, i = f"{base}-{i}", i + 1
        section = Section(title, anchor)
        self.sections.append(section)
        return section

    @property
    def figures(self) -> list[dict[str, Any]]:
        """Every embedded figure's name and pixel size, in page order."""
        return [f for s in self.sections for f in s.figures]

    def render(self) -> str:
        nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in self.sections)
        body = "\n".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>\n' + "\n".join(s.parts)
                         + "</section>" for s in self.sections)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
                f"<title>{html.escape(self.title)}</title>\n<style>{STYLE}</style></head>\n"
                f"<body>\n<h1>{html.escape(self.title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body></html>\n")

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(path)
        return path
