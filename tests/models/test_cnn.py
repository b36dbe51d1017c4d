"""ConvNet derives its flatten size from the input it is built for; LeNet-5 and ResNet shapes."""

from __future__ import annotations

import pytest
import torch

import archlab
from archlab.errors import DataError


@pytest.mark.parametrize("size", [8, 12, 28, 32, (28, 20)])
@pytest.mark.parametrize("name", ["cnn", "lenet5", "resnet"])
def test_any_input_size_builds_and_runs(name, size):
    model = archlab.create_model(name, in_channels=3, num_classes=7, input_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    assert model(torch.randn(2, 3, h, w)).shape == (2, 7)


def test_flatten_size_matches_features():
    model = archlab.create_model("cnn", input_size=28, channels=[8, 16, 32])
    assert model.num_features == 32 * 3 * 3
    assert model.head[0].in_features == model.num_features


def test_wrong_input_shape_says_expected_shape():
    model = archlab.create_model("lenet5", input_size=28)
    with pytest.raises(DataError, match=r"\(batch, 1, 28, 28\); got \(2, 1, 32, 32\)"):
        model(torch.randn(2, 1, 32, 32))


def test_too_many_blocks_for_input_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        archlab.create_model("cnn", input_size=4, channels=[4, 4, 4, 4])


def test_maml_style_batch_norm_keeps_no_running_stats():
    model = archlab.create_model("cnn", batch_norm=True, track_running_stats=False, channels=[4, 4])
    assert not any("running" in name for name, _ in model.named_buffers())


def test_zero_classes_gives_the_flattened_features():
    model = archlab.create_model("cnn", input_size=28, channels=[64] * 4, hidden_dims=[], dropout=0.0,
                                 num_classes=0)
    x = torch.randn(3, 1, 28, 28)
    assert model.num_features == 64
    torch.testing.assert_close(model(x), model.forward_features(x).flatten(1))
    assert not any(name.startswith("head") for name, _ in model.named_parameters())
