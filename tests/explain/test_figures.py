"""The attribution figures: PNG files for images, tables, graphs and curves; HTML for tokens."""

from __future__ import annotations

import pytest
import torch

from archlab.errors import ConfigError, DataError
from archlab.explain import PerturbationCurve, RandomizationStep
from archlab.report.explain import (curves_figure, feature_importance_figure, image_attribution_figure,
                                    randomization_figure, subgraph_figure, token_html, write_token_html)

PNG = b"\x89PNG"


def test_image_overlay(tmp_path):
    g = torch.Generator().manual_seed(0)
    path = image_attribution_figure(torch.rand(1, 8, 8, generator=g), torch.randn(1, 8, 8, generator=g),
                                    tmp_path / "a" / "ig.png", title="ig")
    assert path.read_bytes()[:4] == PNG
    assert image_attribution_figure(torch.rand(3, 8, 8), torch.rand(1, 8, 8), tmp_path / "rgb.png").is_file()
    with pytest.raises(DataError, match="must match the image's height and width"):
        image_attribution_figure(torch.rand(1, 8, 8), torch.rand(1, 7, 8), tmp_path / "bad.png")
    with pytest.raises(ConfigError, match="must end in .png"):
        image_attribution_figure(torch.rand(1, 8, 8), torch.rand(1, 8, 8), tmp_path / "ig.jpg")


def test_feature_bars(tmp_path):
    path = feature_importance_figure(["a", "b", "c"], [0.3, -0.1, 0.2], tmp_path / "bars.png", errors=[0.1, 0, 0.05])
    assert path.read_bytes()[:4] == PNG
    with pytest.raises(DataError, match="3 feature names were given for 2 values"):
        feature_importance_figure(["a", "b", "c"], [0.3, 0.1], tmp_path / "bad.png")


def test_token_html_escapes_and_shades():
    page = token_html(["<b>", "good", "film"], [0.0, 1.0, -0.5], title="review")
    assert "&lt;b&gt;" in page and "<b>" not in page
    assert "rgba(220,40,40,1.000)" in page  # the strongest positive token
    assert "rgba(40,90,220,0.500)" in page  # a negative one at half strength
    with pytest.raises(DataError, match="2 tokens were given for 3 scores"):
        token_html(["a", "b"], [1, 2, 3])


def test_token_html_page(tmp_path):
    path = write_token_html(["a", "b"], [1.0, 0.5], tmp_path / "tokens.html")
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_subgraph(tmp_path):
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 4]])
    path = subgraph_figure(edge_index, torch.tensor([0.9, 0.8, 0.3, 0.0, 0.5]), tmp_path / "g.png", node=0,
                           labels=torch.tensor([0, 1, 0, 1, 1]), top_k=3)
    assert path.read_bytes()[:4] == PNG
    with pytest.raises(DataError, match="one mask value per edge"):
        subgraph_figure(edge_index, torch.ones(3), tmp_path / "bad.png")


def test_curves_and_randomization(tmp_path):
    fractions = torch.linspace(0, 1, 5, dtype=torch.float64)
    scores = torch.rand(3, 5, dtype=torch.float64)
    curve = PerturbationCurve(fractions, scores, torch.trapezoid(scores, fractions, dim=1))
    assert curves_figure({"ig": curve, "random": curve}, tmp_path / "c.png").read_bytes()[:4] == PNG
    steps = [RandomizationStep("head", 0.5, torch.rand(3)), RandomizationStep("conv", 0.1, torch.rand(3))]
    assert randomization_figure(steps, tmp_path / "r.png").read_bytes()[:4] == PNG
