"""The HTML document: figures embedded at their pixel size, text escaped, the page's policy."""

from __future__ import annotations

import base64
import re

import pytest
from matplotlib.figure import Figure

from archlab.errors import DataError
from archlab.report.html import CONTENT_SECURITY_POLICY, Document, figure_png, png_size


def test_figure_is_embedded_at_its_own_pixel_size(tmp_path):
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [1, 0])
    doc = Document("t")
    doc.section("figures").figure(fig, "line", "a line")
    page = doc.write(tmp_path / "r.html").read_text()
    width, height, data = re.search(r'width="(\d+)" height="(\d+)" alt="a line" src="data:image/png;base64,([^"]+)"',
                                    page).groups()
    assert (int(width), int(height)) == (300, 200) == png_size(base64.b64decode(data))
    assert doc.figures == [{"name": "line", "width": 300, "height": 200}]


def test_text_is_escaped_and_the_policy_allows_only_data_images(tmp_path):
    doc = Document("<b>title</b>")
    s = doc.section("a & b")
    s.paragraph("<script>alert(1)</script>")
    s.table(["k"], [["<i>"], [0.5], [float("nan")]])
    page = doc.render()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;title" in page
    assert f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">' in page
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none'")
    assert '<td class="num">0.5</td>' in page and '<td class="num">nan</td>' in page


def test_section_anchors_are_unique():
    doc = Document("t")
    assert [doc.section("Run x").anchor, doc.section("Run x").anchor] == ["run-x", "run-x-2"]


def test_only_png_is_embedded():
    with pytest.raises(DataError, match="PNG"):
        png_size(b"GIF89a" + bytes(30))
    assert png_size(figure_png(Figure(figsize=(1, 1)))) == (100, 100)
