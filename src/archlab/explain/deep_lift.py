"""DeepLIFT with the rescale rule (Shrikumar et al., 2017), per call of each nonlinearity."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import ConfigError
from ..validation import check_float
from .base import (Attribution, Baselines, Inputs, Target, as_tuple, check_baseline, format_inputs, format_output,
                   format_target, gradients, per_input, select_target)

# the elementwise nonlinearities given the rescale rule: each call form -> its out-of-place function
_IN_PLACE = {torch.relu_: F.relu, F.relu_: F.relu, torch.Tensor.relu_: F.relu, F.leaky_relu_: F.leaky_relu,
             F.elu_: F.elu, F.hardtanh_: F.hardtanh, torch.sigmoid_: torch.sigmoid,
             torch.Tensor.sigmoid_: torch.sigmoid, torch.tanh_: torch.tanh, torch.Tensor.tanh_: torch.tanh}
_OUT_OF_PLACE = {F.relu, torch.relu, torch.Tensor.relu, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
                 F.softplus, F.hardtanh, F.relu6, F.hardsigmoid, F.hardswish, F.logsigmoid, F.softsign, F.sigmoid,
                 F.tanh, torch.sigmoid, torch.tanh, torch.Tensor.sigmoid, torch.Tensor.tanh}
# max pooling, whatever the call form (the modules call the boolean-dispatch F.max_poolNd)
_POOLS = {F.max_pool1d: F.max_pool1d_with_indices, F.max_pool2d: F.max_pool2d_with_indices,
          F.max_pool3d: F.max_pool3d_with_indices, F.max_pool1d_with_indices: F.max_pool1d_with_indices,
          F.max_pool2d_with_indices: F.max_pool2d_with_indices, F.max_pool3d_with_indices: F.max_pool3d_with_indices}


@functools.cache
def _signature(func: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # a C builtin such as torch.relu: no keyword options
        return None


def _elementwise(func: Callable, args: tuple, kwargs: dict) -> tuple[torch.Tensor, Callable, bool]:
    """The input, the nonlinearity as an out-of-place function of one tensor, and whether the call is in place."""
    if func in _IN_PLACE:
        base, rest = _IN_PLACE[func], dict(kwargs)
        return args[0], lambda t: base(t, *args[1:], **rest), True
    signature = _signature(func)
    if signature is None or "inplace" not in signature.parameters:
        return args[0], lambda t: func(t, *args[1:], **kwargs), False
    bound = signature.bind(*args, **kwargs)
    inplace = bool(bound.arguments.get("inplace", False))
    bound.arguments["inplace"] = False
    options = dict(bound.arguments)
    first = options.pop(next(iter(signature.parameters)))
    return first, lambda t: func(t, **options), inplace


def _batched_pool(func: Callable, args: tuple, kwargs: dict) -> bool:
    """Whether a max pool call has a batch dimension (``(B, C, *spatial)``); others pass ordinary gradients."""
    if func not in _POOLS:
        return False
    z = args[0] if args else kwargs.get("input")
    return isinstance(z, torch.Tensor) and z.dim() == int(_POOLS[func].__name__[len("max_pool")]) + 2


def _pool_call(func: Callable, args: tuple, kwargs: dict) -> tuple[torch.Tensor, Callable, bool]:
    """The input, ``t -> (pooled, indices)`` for this call, and whether the caller asked for the indices."""
    with_indices = _POOLS[func]
    bound = _signature(with_indices).bind(*args, **kwargs)
    wanted = bool(bound.arguments.get("return_indices", with_indices is func))
    bound.arguments["return_indices"] = True
    options = dict(bound.arguments)
    first = options.pop(next(iter(_signature(with_indices).parameters)))
    return first, lambda t: with_indices(t, **options), wanted


def _derivative(fn: Callable, z: torch.Tensor) -> torch.Tensor:
    """``f'(z)`` elementwise, by autograd (used only where the input equals its reference)."""
    with torch.enable_grad():
        leaf = z.detach().requires_grad_(True)
        (d,) = torch.autograd.grad(fn(leaf).sum(), leaf)
    return d


class _Rescale(torch.autograd.Function):
    r"""``y = f(z)`` whose backward multiplies by the rescale multiplier
    :math:`m = (f(z) - f(z_0)) / (z - z_0)`, or by :math:`f'(z)` where :math:`|z - z_0| <` eps."""

    @staticmethod
    def forward(ctx, z, z0, y0, fn, eps):
        y = fn(z)
        dz = z - z0
        near = dz.abs() < eps
        m = (y - y0) / torch.where(near, torch.ones_like(dz), dz)
        if near.any():
            m = torch.where(near, _derivative(fn, z), m)
        ctx.save_for_backward(m)
        return y

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        return grad * m, None, None, None, None


class _RescalePool(torch.autograd.Function):
    r"""Max pooling whose backward is the rescale rule for a max (Captum's rule): the output's change
    :math:`p - p_0` is split at :math:`\max(p, p_0)` into the part reached from the reference's maximum
    and the part reached from the input's, each sent back to the position of that maximum, then divided
    by :math:`z - z_0` (the ordinary gradient where :math:`|z - z_0| <` eps)."""

    @staticmethod
    def forward(ctx, z, z0, p0, indices0, fn, eps):
        p, indices = fn(z)
        ctx.save_for_backward(z - z0, p, p0, indices, indices0)
        ctx.eps = eps
        ctx.mark_non_differentiable(indices)
        return p, indices

    @staticmethod
    def backward(ctx, grad, _):
        dz, p, p0, indices, indices0 = ctx.saved_tensors
        top = torch.maximum(p, p0)
        shape = dz.shape
        spread = dz.new_zeros(*shape[:2], dz[0, 0].numel())  # (B, C, H * W) for a 2-d pool

        def unpool(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
            flat = values.reshape(*values.shape[:2], -1)
            return spread.scatter_add(2, where.expand_as(values).reshape(flat.shape), flat)

        ordinary = unpool(grad, indices).view(shape)
        rescaled = (unpool(grad * (top - p0), indices) + unpool(grad * (p - top), indices0)).view(shape)
        near = dz.abs() < ctx.eps
        return (torch.where(near, ordinary, rescaled / torch.where(near, torch.ones_like(dz), dz)),
                None, None, None, None, None)


@dataclass
class _Record:
    func: Callable
    z0: torch.Tensor
    y0: Any  # the output, or (pooled, indices) for a max pool


class _Mismatch(Exception):
    """The forward of the inputs called the nonlinearities differently from the baselines' forward."""


class _RecordMode(TorchFunctionMode):
    """Runs the baselines' forward, keeping each nonlinearity call's input and output in call order."""

    def __init__(self):
        super().__init__()
        self.records: list[_Record] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _batched_pool(func, args, kwargs):
            z, fn, wanted = _pool_call(func, args, kwargs)
            out = fn(z)
            self.records.append(_Record(func, z.detach().clone(), tuple(t.detach().clone() for t in out)))
            return out if wanted else out[0]
        if func in _IN_PLACE or func in _OUT_OF_PLACE:
            z, fn, inplace = _elementwise(func, args, kwargs)
            z0 = z.detach().clone()
            out = fn(z)
            self.records.append(_Record(func, z0, out.detach().clone()))
            return z.copy_(out) if inplace else out
        return func(*args, **kwargs)


class _RescaleMode(TorchFunctionMode):
    """Runs the inputs' forward, giving each nonlinearity call the rescale rule against its recorded reference."""

    def __init__(self, records: list[_Record], eps: float):
        super().__init__()
        self.records, self.eps, self.position = records, eps, 0

    def _reference(self, func, z: torch.Tensor) -> _Record:
        if self.position >= len(self.records):
            raise _Mismatch(f"the inputs' forward calls more nonlinearities than the baselines' "
                            f"({len(self.records)})")
        record = self.records[self.position]
        self.position += 1
        if record.func is not func or record.z0.dim() != z.dim() or record.z0.shape[1:] != z.shape[1:] or \
                record.z0.shape[0] not in (1, z.shape[0]):
            raise _Mismatch(f"nonlinearity call {self.position} differs: {getattr(func, '__name__', func)} of "
                            f"{tuple(z.shape)} for the inputs, {getattr(record.func, '__name__', record.func)} of "
                            f"{tuple(record.z0.shape)} for the baselines")
        return record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _batched_pool(func, args, kwargs):
            z, fn, wanted = _pool_call(func, args, kwargs)
            record = self._reference(func, z)
            if not z.requires_grad:
                out = fn(z)
            else:
                p0, indices0 = record.y0
                out = _RescalePool.apply(z, record.z0, p0, indices0, fn, self.eps)
            return out if wanted else out[0]
        if func in _IN_PLACE or func in _OUT_OF_PLACE:
            z, fn, inplace = _elementwise(func, args, kwargs)
            record = self._reference(func, z)
            out = _Rescale.apply(z, record.z0, record.y0, fn, self.eps) if z.requires_grad else fn(z)
            return z.copy_(out) if inplace else out
        return func(*args, **kwargs)


class DeepLift(Attribution):
    r"""DeepLIFT with the rescale rule: the gradient of the explained output in which every
    nonlinearity :math:`y = f(z)` is replaced by its multiplier against the baseline's forward,

    .. math:: m = \frac{f(z) - f(z_0)}{z - z_0}, \qquad a_i = (x_i - x'_i)\, \frac{\partial^{m} f_c}{\partial x_i},

    so that summation-to-delta holds exactly for a network of linear maps and these nonlinearities:
    :math:`\sum_i a_i = f_c(x) - f_c(x')` (``return_convergence_delta=True`` reports the error).

    The multiplier belongs to each *call* of a nonlinearity, not to a module: a module applied twice
    in one forward and functional calls (``F.relu``, ``torch.sigmoid``, ``x.relu()``, in place or
    not) each get their own. The baselines' forward runs first (once for a baseline shared by every
    example), recording the input of every nonlinearity call in order; the inputs' forward then runs
    with each call's backward swapped for its multiplier, intercepted as PyTorch functions
    (``torch.overrides.TorchFunctionMode``), so any model or forward function works without hooks.
    Both forwards must make the same calls (no control flow that depends on the data).

    The rescale rule covers ReLU, leaky ReLU, ELU, SELU, CELU, GELU, SiLU, Mish, softplus,
    hardtanh, ReLU6, hard sigmoid and swish, log-sigmoid, softsign, sigmoid and tanh, and
    max pooling (1-3 d; the change of the maximum is split as Captum does). Other operations,
    softmax and products of activations included, pass their ordinary gradients. Where an input
    differs from its reference by less than `eps` the ordinary derivative is used (Captum's rule).
    Models in eval mode: batch statistics or dropout make the two forwards differ.

    Shapes:
        inputs ``(B, ...)`` or a tuple of them; baselines broadcastable to each input (``None``:
        zeros); returns attributions shaped like the inputs (and a delta ``(B,)``).
    """

    def __init__(self, forward_func, multiply_by_inputs: bool = True, eps: float = 1e-10):
        super().__init__(forward_func)
        check_float(type(self).__name__, "eps", eps, low=0.0)
        self.multiply_by_inputs = multiply_by_inputs
        self.eps = float(eps)

    def attribute(self, inputs: Inputs, target: Target = None, *, baselines: Baselines = None,
                  additional_forward_args=None, return_convergence_delta: bool = False):
        name = type(self).__name__
        tensors, is_tuple = format_inputs(inputs, name)
        tensors = tuple(x.detach() for x in tensors)
        batch = tensors[0].shape[0]
        target = format_target(target, batch, name)
        references = self._references(tensors, baselines, name)
        args = as_tuple(additional_forward_args)
        if any(isinstance(a, torch.Tensor) and a.dim() and a.shape[0] == batch for a in args):
            references = tuple(r.expand_as(x) for r, x in zip(references, tensors))  # rows paired with the args
        shared = batch > 1 and all(r.shape[0] == 1 for r in references)
        try:
            try:
                grads, output, reference_output = self._gradients(tensors, references, target, args, name)
            except _Mismatch:
                if not shared:
                    raise
                # the model folds the batch into another dimension: one reference row per example
                references = tuple(r.expand_as(x) for r, x in zip(references, tensors))
                grads, output, reference_output = self._gradients(tensors, references, target, args, name)
        except _Mismatch as mismatch:
            raise ConfigError(f"{name}: {mismatch}. DeepLift needs the same nonlinearity calls in the forward of the "
                              "inputs and of the baselines (no control flow that depends on the data, the model in "
                              "eval mode).") from None
        grads = grads if isinstance(grads, tuple) else (grads,)
        attributions = tuple(g * (x - r) if self.multiply_by_inputs else g
                             for g, x, r in zip(grads, tensors, references))
        result = format_output(attributions, is_tuple)
        if not return_convergence_delta:
            return result
        total = sum(a.reshape(batch, -1).sum(1) for a in attributions)
        return result, total - (output - reference_output).to(total.dtype)

    def _gradients(self, inputs, references, target, args, name):
        recorder = _RecordMode()
        with torch.no_grad(), recorder:
            reference_out = self.forward_func(*references, *args)
        if not isinstance(reference_out, torch.Tensor):
            raise ValueError(f"{name}: the model must return a tensor; got {type(reference_out).__name__}.")
        batch = inputs[0].shape[0]
        if reference_out.dim() and reference_out.shape[0] == 1 and batch > 1:
            reference_out = reference_out.expand(batch, *reference_out.shape[1:])
        reference_output = select_target(reference_out, target, name)
        mode = _RescaleMode(recorder.records, self.eps)
        with mode:
            grads, output = gradients(self.forward_func, inputs, target, args, name)
        if mode.position != len(recorder.records):
            raise _Mismatch(f"the inputs' forward made {mode.position} nonlinearity calls, the baselines' "
                            f"{len(recorder.records)}")
        return grads, output, reference_output

    @staticmethod
    def _references(inputs: tuple[torch.Tensor, ...], baselines: Baselines, name: str) -> tuple[torch.Tensor, ...]:
        """One baseline per input: ``(1, ...)`` when shared by every example, else ``(B, ...)``."""
        references = []
        for x, b in zip(inputs, per_input(baselines, inputs, "baselines", name)):
            if b is None or (isinstance(b, (int, float)) and not isinstance(b, bool)):
                references.append(torch.full_like(x[:1], 0.0 if b is None else float(b)))
                continue
            check_baseline(b, x, name)
            b = b.detach().to(x.device, x.dtype)
            shared = b.dim() < x.dim() or b.shape[0] == 1
            references.append(b.expand((1, *x.shape[1:]) if shared else x.shape).contiguous())
        return tuple(references)
