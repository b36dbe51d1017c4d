"""Batch norm with a hand-written second derivative, against torch's in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.meta.second_order_batchnorm import SecondOrderBatchNorm, second_order_batch_norm


def native(x, weight, bias):
    return F.batch_norm(x, None, None, weight, bias, True, 0.1, 1e-5)


def ours(x, weight, bias):
    return second_order_batch_norm(x, weight, bias, 1e-5)


def inputs(shape, affine=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, generator=g, dtype=torch.float64) * 3 + 1).requires_grad_()
    if not affine:
        return x, None, None
    weight = torch.randn(shape[1], generator=g, dtype=torch.float64).requires_grad_()
    bias = torch.randn(shape[1], generator=g, dtype=torch.float64).requires_grad_()
    return x, weight, bias


def second_derivatives(fn, x, weight, bias):
    """Differentiate a weighted sum of the first derivatives (as MAML's outer step does)."""
    wrt = [t for t in (x, weight, bias) if t is not None]
    y = fn(x, weight, bias)
    upstream = torch.linspace(-1, 2, y.numel(), dtype=y.dtype).reshape(y.shape)
    first = torch.autograd.grad((y * upstream).sum(), wrt, create_graph=True)
    mix = sum((g * torch.cos(torch.arange(g.numel(), dtype=g.dtype)).reshape(g.shape)).sum() for g in first)
    return [g if g is not None else torch.zeros_like(t)
            for g, t in zip(torch.autograd.grad(mix, wrt, allow_unused=True), wrt)]


SHAPES = [(6, 3), (5, 2, 7), (4, 3, 5, 5), (2, 2, 3, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_values_and_both_derivatives_equal_torchs(shape, affine):
    x, weight, bias = inputs(shape, affine)
    torch.testing.assert_close(ours(x, weight, bias), native(x, weight, bias), rtol=0, atol=1e-12)
    for got, expected in zip(second_derivatives(ours, x, weight, bias), second_derivatives(native, x, weight, bias)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 4, 4)], ids=str)
def test_gradcheck_and_gradgradcheck(shape):
    x, weight, bias = inputs(shape)
    assert torch.autograd.gradcheck(ours, (x, weight, bias))
    assert torch.autograd.gradgradcheck(ours, (x, weight, bias))


def test_weight_without_bias():
    x, weight, _ = inputs((5, 3, 4))
    torch.testing.assert_close(second_derivatives(ours, x, weight, None),
                               second_derivatives(native, x, weight, None), rtol=0, atol=1e-10)


def test_third_order_is_refused_not_wrong():
    x, weight, bias = inputs((4, 3, 2, 2))
    upstream = torch.linspace(-1, 2, x.numel(), dtype=x.dtype).reshape(x.shape)
    (gx,) = torch.autograd.grad((ours(x, weight, bias) * upstream).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="not three times"):
        torch.autograd.grad((gx * upstream.cos()).sum(), x, create_graph=True)
    (ggx,) = torch.autograd.grad((gx * upstream.cos()).sum(), x)  # the second derivative itself is fine
    assert torch.isfinite(ggx).all()


def test_mode_replaces_only_batch_statistics_calls():
    x, weight, bias = inputs((4, 3, 2, 2))
    running_mean, running_var = torch.zeros(3, dtype=x.dtype), torch.ones(3, dtype=x.dtype)
    with SecondOrderBatchNorm():
        y = F.batch_norm(x, None, None, weight, bias, True)
        y_running = F.batch_norm(x, running_mean, running_var, weight, bias, False)
    assert type(y.grad_fn).__name__ == "_BatchNormBackward"
    assert "_BatchNorm" not in type(y_running.grad_fn).__name__
    torch.testing.assert_close(y_running, F.batch_norm(x, running_mean, running_var, weight, bias, False))
