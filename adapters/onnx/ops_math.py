"""Elementwise, activation, matrix and reduction operators of ONNX, in torch.

Each operator follows its specification at ``https://onnx.ai/onnx/operators/onnx__<Op>.html``
(for example https://onnx.ai/onnx/operators/onnx__Gemm.html) for opset 7 onwards, including
the changes that moved attributes to inputs (``Clip`` min/max at opset 11, reduction ``axes``
at opset 13 for ``ReduceSum`` and 18 for the others) and the opset-13 change of ``Softmax``
from "flatten to 2-D at ``axis``" to "along ``axis``". Broadcasting is numpy's, as in ONNX's
multidirectional broadcasting (https://onnx.ai/onnx/repo-docs/Broadcasting.html).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import reduce
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F

from xaudit.adapters.onnx.node import Limit, Node, Op, Tensor, as_ints, normalize_axis


def _unary(fn: Callable[[Tensor], Tensor]) -> Op:
    def op(node: Node, x: Tensor) -> Tensor:
        return fn(x)

    return op


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Op:
    def op(node: Node, a: Tensor, b: Tensor) -> Tensor:
        return fn(a, b)

    return op


def _variadic(fn: Callable[[Tensor, Tensor], Tensor]) -> Op:
    def op(node: Node, *xs: Tensor) -> Tensor:
        return reduce(fn, xs)

    return op


def div(node: Node, a: Tensor, b: Tensor) -> Tensor:
    """Div (onnx__Div): integer division truncates toward zero, as onnxruntime does."""
    if a.dtype.is_floating_point:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def mod(node: Node, a: Tensor, b: Tensor) -> Tensor:
    """Mod (onnx__Mod): ``fmod=1`` takes the dividend's sign, else the divisor's."""
    return torch.fmod(a, b) if node.attr("fmod", 0) else torch.remainder(a, b)


def power(node: Node, a: Tensor, b: Tensor) -> Tensor:
    """Pow (onnx__Pow): the result has the base's type."""
    return torch.pow(a, b).to(a.dtype)


def mean(node: Node, *xs: Tensor) -> Tensor:
    """Mean (onnx__Mean): elementwise mean of broadcast inputs."""
    return reduce(torch.add, xs) / len(xs)


def where(node: Node, cond: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Where (onnx__Where)."""
    return torch.where(cond.bool(), a, b)


# ------------------------------------------------------------------ activations


def leaky_relu(node: Node, x: Tensor) -> Tensor:
    """LeakyRelu (onnx__LeakyRelu), ``alpha`` = 0.01 by default."""
    return F.leaky_relu(x, float(node.attr("alpha", 0.01)))


def elu(node: Node, x: Tensor) -> Tensor:
    """Elu (onnx__Elu): ``alpha * (exp(x) - 1)`` for x < 0."""
    return F.elu(x, float(node.attr("alpha", 1.0)))


def selu(node: Node, x: Tensor) -> Tensor:
    """Selu (onnx__Selu) with the specification's default alpha and gamma."""
    alpha = float(node.attr("alpha", 1.67326319217681884765625))
    gamma = float(node.attr("gamma", 1.05070102214813232421875))
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x.clamp(max=0)))


def celu(node: Node, x: Tensor) -> Tensor:
    """Celu (onnx__Celu)."""
    return F.celu(x, float(node.attr("alpha", 1.0)))


def hard_sigmoid(node: Node, x: Tensor) -> Tensor:
    """HardSigmoid (onnx__HardSigmoid): ``max(0, min(1, alpha * x + beta))``."""
    return torch.clamp(float(node.attr("alpha", 0.2)) * x + float(node.attr("beta", 0.5)), 0, 1)


def thresholded_relu(node: Node, x: Tensor) -> Tensor:
    """ThresholdedRelu (onnx__ThresholdedRelu): x where x > alpha, else 0."""
    return torch.where(x > float(node.attr("alpha", 1.0)), x, torch.zeros_like(x))


def gelu(node: Node, x: Tensor) -> Tensor:
    """Gelu (onnx__Gelu, opset 20): exact, or the tanh approximation."""
    return F.gelu(x, approximate=str(node.attr("approximate", "none")))


def prelu(node: Node, x: Tensor, slope: Tensor) -> Tensor:
    """PRelu (onnx__PRelu): ``slope * x`` for x < 0, slope broadcast to x."""
    return torch.where(x < 0, x * slope, x)


def clip(node: Node, x: Tensor, low: Tensor | None = None, high: Tensor | None = None) -> Any:
    """Clip (onnx__Clip): bounds are attributes before opset 11, optional inputs after."""
    bounds: tuple[Any, Any] = (node.attr("min"), node.attr("max")) if node.opset < 11 else (
        low, high)
    if bounds[0] is None and bounds[1] is None:
        return x
    return torch.clamp(x, min=bounds[0], max=bounds[1])


def softmax(node: Node, x: Tensor) -> Tensor:
    """Softmax (onnx__Softmax); before opset 13 it normalizes the input flattened at ``axis``."""
    return _softmax_like(node, x, torch.softmax)


def log_softmax(node: Node, x: Tensor) -> Tensor:
    """LogSoftmax (onnx__LogSoftmax), with the same opset-13 change as Softmax."""
    return _softmax_like(node, x, torch.log_softmax)


def _softmax_like(node: Node, x: Tensor, fn: Callable[[Tensor, int], Tensor]) -> Tensor:
    if node.opset >= 13:
        return fn(x, int(node.attr("axis", -1)))
    axis = normalize_axis(int(node.attr("axis", 1)), x.ndim)
    outer = math.prod(x.shape[:axis])
    return fn(x.reshape(outer, -1), 1).reshape(x.shape)


# ------------------------------------------------------------------ matrices


def gemm(node: Node, a: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    """Gemm (onnx__Gemm): ``alpha * A' B' + beta * C`` with optional transposes."""
    if node.attr("transA", 0):
        a = a.transpose(0, 1)
    if node.attr("transB", 0):
        b = b.transpose(0, 1)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    y = a @ b
    if alpha != 1.0:
        y = alpha * y
    if c is not None:
        y = y + (c if beta == 1.0 else beta * c)
    return y


def einsum(node: Node, *xs: Tensor) -> Tensor:
    """Einsum (onnx__Einsum)."""
    return torch.einsum(str(node.attr("equation")), *xs)


# ------------------------------------------------------------------ reductions

AXES_INPUT_SINCE = {"ReduceSum": 13}
"""Opset from which ``axes`` is an input rather than an attribute (18 for the others)."""


def _reduction(fn: Callable[[Tensor, tuple[int, ...], bool], Tensor]) -> Op:
    def op(node: Node, x: Tensor, axes_input: Tensor | None = None) -> Tensor:
        if node.opset >= AXES_INPUT_SINCE.get(node.op_type, 18):
            axes = as_ints(axes_input)
        else:
            axes = node.attr("axes")
        keep = bool(node.attr("keepdims", 1))
        if not axes:
            if node.attr("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        dims = tuple(sorted(normalize_axis(int(a), x.ndim) for a in axes))
        return fn(x, dims, keep)

    return op


def _prod(x: Tensor, dims: tuple[int, ...], keep: bool) -> Tensor:
    for dim in reversed(dims):
        x = torch.prod(x, dim=dim, keepdim=keep)
    return x


REDUCTIONS: Mapping[str, Callable[[Tensor, tuple[int, ...], bool], Tensor]] = {
    "ReduceMean": lambda x, d, k: torch.mean(x, dim=d, keepdim=k),
    "ReduceSum": lambda x, d, k: torch.sum(x, dim=d, keepdim=k),
    "ReduceMax": lambda x, d, k: torch.amax(x, dim=d, keepdim=k),
    "ReduceMin": lambda x, d, k: torch.amin(x, dim=d, keepdim=k),
    "ReduceProd": _prod,
    "ReduceL1": lambda x, d, k: torch.sum(torch.abs(x), dim=d, keepdim=k),
    "ReduceL2": lambda x, d, k: torch.linalg.vector_norm(x, ord=2, dim=d, keepdim=k),
    "ReduceSumSquare": lambda x, d, k: torch.sum(x * x, dim=d, keepdim=k),
    "ReduceLogSumExp": lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k),
}


UNARY: Mapping[str, Callable[[Tensor], Tensor]] = {
    "Abs": torch.abs, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log,
    "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal, "Floor": torch.floor,
    "Ceil": torch.ceil, "Round": torch.round, "Sign": torch.sign, "Erf": torch.erf,
    "Sin": torch.sin, "Cos": torch.cos, "Tan": torch.tan, "Atan": torch.atan,
    "Relu": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
    "Softplus": F.softplus, "Softsign": F.softsign, "Mish": F.mish,
    "HardSwish": F.hardswish, "Not": torch.logical_not, "IsNaN": torch.isnan,
}
BINARY: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = {
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "MatMul": torch.matmul,
    "Equal": torch.eq, "Less": torch.lt, "LessOrEqual": torch.le, "Greater": torch.gt,
    "GreaterOrEqual": torch.ge, "And": torch.logical_and, "Or": torch.logical_or,
    "Xor": torch.logical_xor,
}
VARIADIC: Mapping[str, Callable[[Tensor, Tensor], Tensor]] = {
    "Sum": torch.add, "Max": torch.maximum, "Min": torch.minimum,
}

MATH_OPS: Mapping[str, Op] = MappingProxyType({
    **{name: _unary(fn) for name, fn in UNARY.items()},
    **{name: _binary(fn) for name, fn in BINARY.items()},
    **{name: _variadic(fn) for name, fn in VARIADIC.items()},
    **{name: _reduction(fn) for name, fn in REDUCTIONS.items()},
    "Div": div, "Mod": mod, "Pow": power, "Mean": mean, "Where": where,
    "LeakyRelu": leaky_relu, "Elu": elu, "Selu": selu, "Celu": celu,
    "HardSigmoid": hard_sigmoid, "ThresholdedRelu": thresholded_relu, "Gelu": gelu,
    "PRelu": prelu, "Clip": clip, "Softmax": softmax, "LogSoftmax": log_softmax,
    "Gemm": gemm, "Einsum": einsum,
})
"""The operators this module implements, by ONNX ``op_type``."""

MATH_LIMITS: Mapping[str, Limit] = MappingProxyType({})
"""Attribute combinations of these operators that are not converted (none)."""
