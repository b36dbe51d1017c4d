"""Small trained models shared by the explainability and parity tests (trained once per session)."""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
from torch import nn

import archlab
from archlab.data.mnist import read_mnist

from ..conftest import require_dataset

MNIST_TRAIN = 3000  # images used to train the CNN: ~97% test accuracy in a couple of seconds


@functools.cache
def _mnist_arrays() -> dict[str, torch.Tensor]:
    raw = read_mnist(require_dataset("mnist"))
    g = np.random.default_rng(0)
    train = g.permutation(len(raw["train_images"]))[:MNIST_TRAIN]
    scale = np.float32(1 / 255)
    return {
        "x_train": torch.from_numpy(raw["train_images"][train].astype(np.float32) * scale)[:, None],
        "y_train": torch.from_numpy(raw["train_labels"][train].astype(np.int64)),
        "x_test": torch.from_numpy(raw["test_images"][:500].astype(np.float32) * scale)[:, None],
        "y_test": torch.from_numpy(raw["test_labels"][:500].astype(np.int64)),
    }


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@functools.cache
def _mnist_cnn() -> nn.Module:
    torch.manual_seed(0)
    data = _mnist_arrays()
    return _train(archlab.create_model("lenet5"), data["x_train"], data["y_train"], epochs=2, batch_size=32, lr=2e-3)


def mnist_cnn(dtype: torch.dtype = torch.float32) -> nn.Module:
    """A LeNet-5 trained briefly on MNIST (a fresh copy, in eval mode)."""
    return copy.deepcopy(_mnist_cnn()).to(dtype).eval()


def mnist_test(n: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    data = _mnist_arrays()
    return data["x_test"][:n].to(dtype), data["y_test"][:n]


@functools.cache
def _wine() -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    data = archlab.load_dataset("wine")
    model = archlab.create_model("mlp", in_features=13, num_classes=3, hidden_dims=[32, 32])
    train = data["train"]
    model = _train(model, train["x"], train["y"], epochs=60, batch_size=32, lr=3e-3)
    return model, {"x": data["test"]["x"], "y": data["test"]["y"], "x_train": train["x"], "y_train": train["y"]}


def wine_mlp(dtype: torch.dtype = torch.float32) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An MLP trained on scikit-learn's wine data, with its test features and labels."""
    model, data = _wine()
    return copy.deepcopy(model).to(dtype).eval(), data["x"].to(dtype), data["y"]
