"""The vision transformer: token counts, pooling, what positions do, the patch grid and bad input."""

from __future__ import annotations

import pytest
import torch

from archlab import create_model
from archlab.errors import ConfigError, DataError


def small(**kwargs):
    torch.manual_seed(0)
    options = dict(in_channels=2, num_classes=5, input_size=(8, 12), patch_size=4, embed_dim=16, num_layers=2,
                   num_heads=2)
    return create_model("vit", **{**options, **kwargs}).double().eval()


def shuffle_patches(x: torch.Tensor, order: torch.Tensor, patch: int) -> torch.Tensor:
    """`x` ``(B, C, H, W)`` with its ``patch x patch`` tiles rearranged: tile ``order[k]`` goes to place ``k``."""
    b, c, h, w = x.shape
    rows, columns = h // patch, w // patch
    tiles = x.reshape(b, c, rows, patch, columns, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, rows * columns, -1)
    tiles = tiles[:, order].reshape(b, rows, columns, c, patch, patch)
    return tiles.permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


@pytest.mark.parametrize("pooling, prefix", [("cls", 1), ("mean", 0)])
def test_tokens_and_attention_maps(pooling, prefix):
    model = small(pooling=pooling)
    x = torch.randn(3, 2, 8, 12, dtype=torch.float64)
    logits, attentions = model(x, return_attention=True)
    assert logits.shape == (3, 5)
    assert model.grid_size == (2, 3) and model.num_prefix_tokens == prefix
    assert (model.cls_token is not None) == (pooling == "cls")
    assert len(attentions) == 2 and all(a.shape == (3, 2, prefix + 6, prefix + 6) for a in attentions)
    torch.testing.assert_close(logits, model(x))


def test_mean_pooling_without_positions_is_blind_to_where_the_patches_are():
    model = small(pooling="mean", positional="none")
    x = torch.randn(4, 2, 8, 12, dtype=torch.float64)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(shuffle_patches(x, order, 4)), model(x), rtol=0, atol=1e-12)
    # the shuffle moves whole patches: the same tokens, in a new order
    torch.testing.assert_close(model.patch_embed(shuffle_patches(x, order, 4)), model.patch_embed(x)[:, order])


def test_learned_positions_make_the_order_matter():
    model = small(pooling="mean")
    torch.nn.init.normal_(model.positional.embedding.weight)  # well away from the near-zero init
    x = torch.randn(4, 2, 8, 12, dtype=torch.float64)
    order = torch.tensor([5, 4, 3, 2, 1, 0])
    assert (model(shuffle_patches(x, order, 4)) - model(x)).abs().max() > 1e-3


def test_tokens_to_grid_lays_the_patch_tokens_out_row_by_row():
    model = small()
    tokens = torch.arange(2 * 7 * 16, dtype=torch.float64).reshape(2, 7, 16)  # [CLS] + 2x3 patches
    grid = model.tokens_to_grid(tokens)
    assert grid.shape == (2, 16, 2, 3)
    torch.testing.assert_close(grid[:, :, 1, 2], tokens[:, 1 + 5])
    with pytest.raises(ValueError, match=r"tokens of shape \(batch, 7, embed_dim\)"):
        model.tokens_to_grid(tokens[:, 1:])


@pytest.mark.parametrize("size, patch", [(28, (7, 7)), ((8, 12), (2, 3)), (32, (8, 8))])
def test_the_default_patch_cuts_a_4x4_grid(size, patch):
    model = create_model("vit", input_size=size, embed_dim=16, num_heads=2)
    assert model.grid_size == (4, 4) and model.patch_embed.patch_size == patch


def test_bad_configuration_and_input():
    with pytest.raises(ConfigError, match=r"'patch_size' parameter of VisionTransformer must be given for a 10x12 "
                                          r"image \(None cuts the image into a 4x4 grid.*Got None instead"):
        create_model("vit", input_size=(10, 12))
    with pytest.raises(ConfigError, match="'patch_size' parameter of PatchEmbedding must be a divisor of the "
                                          "image size 28x28"):
        create_model("vit", patch_size=3)
    with pytest.raises(ConfigError, match="'pooling' parameter of VisionTransformer"):
        create_model("vit", pooling="max")
    with pytest.raises(ConfigError, match="'num_heads' parameter of MultiHeadAttention must be a divisor"):
        create_model("vit", embed_dim=30, num_heads=4)
    model = small()
    with pytest.raises(DataError, match=r"expects input of shape \(batch, 2, 8, 12\); got \(1, 2, 12, 8\)"):
        model(torch.zeros(1, 2, 12, 8, dtype=torch.float64))


def test_the_cli_refuses_a_patch_size_that_does_not_divide_the_images(capsys, tmp_path):
    from archlab.cli import main

    assert main(["train", "vit", "--data", "digits", "--set", "patch_size=3", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must be a divisor of the image size 8x8 (cannot cut the height 8 by 3" in err[0]
