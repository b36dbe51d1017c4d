"""`ConvBlock.output_size` is the shape torch's own forward gives, or a ValueError where torch fails."""

from __future__ import annotations

import itertools

import pytest
import torch

from archlab.nn import ConvBlock


@pytest.mark.parametrize("kernel_size, padding, pool", itertools.product((1, 2, 3, 5), (None, 0, 1, 2), (1, 2, 3)))
def test_output_size_is_the_forward_pass_shape(kernel_size, padding, pool):
    block = ConvBlock(1, 2, kernel_size, padding=padding, pool=pool)
    for h in range(1, 12):
        try:
            expected = tuple(block(torch.zeros(1, 1, h, h + 1)).shape[2:])
        except RuntimeError:
            with pytest.raises(ValueError, match="leaves no output"):
                block.output_size((h, h + 1))
        else:
            assert block.output_size((h, h + 1)) == expected
