"""The autoencoder figures are written as PNG files, and refuse what they cannot draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import archlab
from archlab.errors import ConfigError, DataError
from archlab.report import autoencoder as figures

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return archlab.create_model("vae", input_size=[8, 8], hidden_dims=[16], latent_dim=3)


def test_every_figure_is_a_png(vae, tmp_path):
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = np.arange(10) % 3
    paths = [
        figures.reconstruction_grid(vae, x, tmp_path / "recon.png", n=6),
        figures.samples_grid(vae, 16, tmp_path / "samples.png", torch.Generator().manual_seed(0)),
        figures.latent_scatter(vae.transform(x), labels, tmp_path / "latent.png"),  # 3-D codes: PCA
        figures.latent_scatter(np.random.default_rng(0).normal(size=(10, 2)), labels, tmp_path / "latent2.png",
                               class_names=["a", "b", "c"]),
        figures.anomaly_histogram(np.random.default_rng(0).normal(size=50), np.random.default_rng(1).normal(3, 1, 40),
                                  tmp_path / "hist.png", threshold=1.5),
        figures.save_samples(vae, 4, tmp_path / "grid" / "samples.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG, path
    array = figures.save_samples(vae, 5, tmp_path / "samples.npy")
    assert np.load(array).shape == (5, 1, 8, 8)


def test_figures_refuse_what_they_cannot_draw(tmp_path):
    tabular = archlab.create_model("vae", in_features=4, hidden_dims=[8], latent_dim=2)
    with pytest.raises(ConfigError, match="ending in .npy"):
        figures.save_samples(tabular, 4, tmp_path / "s.png")
    with pytest.raises(ConfigError, match="must end in .png"):
        figures.anomaly_histogram([1.0], [2.0], tmp_path / "h.jpg")
    with pytest.raises(DataError, match=r"codes \(N, D\) and N labels"):
        figures.latent_scatter(np.zeros((4, 2)), np.zeros(3), tmp_path / "l.png")
    with pytest.raises(DataError, match=r"shape \(N, 1 or 3, H, W\)"):
        figures.image_grid(np.zeros((4, 2, 5, 5)), tmp_path / "g.png")
