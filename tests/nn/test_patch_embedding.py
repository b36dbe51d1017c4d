"""Patch embedding: the shape arithmetic of the grid and the linear map of each flattened patch."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from archlab.errors import ConfigError
from archlab.nn import PatchEmbedding


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), columns=st.integers(1, 4), patch_h=st.integers(1, 4), patch_w=st.integers(1, 4),
       channels=st.integers(1, 3), embed_dim=st.integers(1, 6))
def test_each_token_is_a_linear_map_of_its_flattened_patch(rows, columns, patch_h, patch_w, channels, embed_dim):
    height, width = rows * patch_h, columns * patch_w
    torch.manual_seed(0)
    layer = PatchEmbedding((height, width), (patch_h, patch_w), channels, embed_dim).double()
    assert layer.grid_size == (rows, columns) and layer.num_patches == rows * columns
    x = torch.randn(2, channels, height, width, dtype=torch.float64)
    tokens = layer(x)
    assert tokens.shape == (2, rows * columns, embed_dim)
    # patch (i, j) is x[:, :, i*ph:(i+1)*ph, j*pw:(j+1)*pw]; tokens run over the grid row by row
    weight = layer.proj.weight.reshape(embed_dim, -1)  # (E, C * ph * pw)
    for i in range(rows):
        for j in range(columns):
            patch = x[:, :, i * patch_h:(i + 1) * patch_h, j * patch_w:(j + 1) * patch_w].reshape(2, -1)
            torch.testing.assert_close(tokens[:, i * columns + j], patch @ weight.T + layer.proj.bias)


def test_an_image_size_the_patch_does_not_divide_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        PatchEmbedding(28, 5)
    message = str(err.value)
    assert message == ("The 'patch_size' parameter of PatchEmbedding must be a divisor of the image size 28x28 "
                       "(cannot cut the height 28 by 5 and the width 28 by 5). Got 5 instead.")
    with pytest.raises(ConfigError, match=r"cannot cut the width 30 by 4\)"):
        PatchEmbedding((28, 30), 4)
    with pytest.raises(ConfigError, match="'patch_size' parameter of PatchEmbedding must be an int >= 1"):
        PatchEmbedding(28, 0)


def test_images_of_another_shape_are_refused():
    layer = PatchEmbedding(8, 4, in_channels=3)
    with pytest.raises(ValueError, match=r"images of shape \(batch, 3, 8, 8\); got \(2, 1, 8, 8\)"):
        layer(torch.zeros(2, 1, 8, 8))


def test_the_class_token_comes_first_and_re_initialises_like_a_layer():
    from archlab.nn import ClassToken

    torch.manual_seed(0)
    token = ClassToken(4)
    with torch.no_grad():
        token.token.fill_(3.0)
    x = torch.randn(2, 5, 4)
    out = token(x)
    assert out.shape == (2, 6, 4)
    torch.testing.assert_close(out[:, 1:], x)
    assert (out[:, 0] == 3.0).all()
    token.reset_parameters()
    assert 0 < token.token.abs().max() < 1e-4
