"""GPT-2's tanh GELU through a sigmoid, against torch's kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.nn.gelu import TanhGELU, gelu_tanh


def test_equals_torchs_tanh_gelu_in_float64():
    x = torch.linspace(-12, 12, 2001, dtype=torch.float64)
    torch.testing.assert_close(gelu_tanh(x), F.gelu(x, approximate="tanh"), rtol=0, atol=1e-14)


def test_float32_values_and_gradient_within_rounding():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(6, 50, 64, generator=g) * 4).requires_grad_()
    upstream = torch.randn(x.shape, generator=g)
    ours = gelu_tanh(x)
    (ours_grad,) = torch.autograd.grad(ours, x, upstream)
    theirs = F.gelu(x, approximate="tanh")
    (their_grad,) = torch.autograd.grad(theirs, x, upstream)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours_grad, their_grad, rtol=1e-5, atol=1e-5)


def test_first_and_second_derivatives_are_exact():
    x = torch.randn(40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gelu_tanh, (x,))
    assert torch.autograd.gradgradcheck(gelu_tanh, (x,))
    (ours,) = torch.autograd.grad(gelu_tanh(x).sum(), x, create_graph=True)
    (theirs,) = torch.autograd.grad(F.gelu(x, approximate="tanh").sum(), x, create_graph=True)
    torch.testing.assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(theirs.sum(), x)[0],
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_module_matches_nn_gelu_with_and_without_a_graph(requires_grad):
    x = torch.randn(3, 7, dtype=torch.float64, requires_grad=requires_grad)
    torch.testing.assert_close(TanhGELU()(x), torch.nn.GELU(approximate="tanh")(x), rtol=0, atol=1e-14)
    with torch.no_grad():
        torch.testing.assert_close(TanhGELU()(x), F.gelu(x, approximate="tanh"), rtol=0, atol=1e-14)
