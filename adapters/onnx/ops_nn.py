"""Convolution, pooling and normalization operators of ONNX, in torch.

Specifications: https://onnx.ai/onnx/operators/onnx__Conv.html, ``onnx__ConvTranspose``,
``onnx__MaxPool``, ``onnx__AveragePool``, ``onnx__GlobalAveragePool``, ``onnx__GlobalMaxPool``,
``onnx__BatchNormalization``, ``onnx__InstanceNormalization``, ``onnx__LayerNormalization``
and ``onnx__Dropout`` (same address pattern). Tensors are channel-first (``N, C, D1, ...``) as
ONNX defines them. ``pads`` lists every spatial axis's start, then every axis's end; padding
torch cannot express in the call itself (asymmetric, or wider than half a pooling window) is
applied explicitly first: zeros for convolutions, ``-inf`` for max pooling, and for average
pooling the window sums are divided by the window's count of counted cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F

from xaudit.adapters.onnx.node import Limit, Node, Op, Tensor, normalize_axis

CONV: Mapping[int, Callable[..., Tensor]] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T: Mapping[int, Callable[..., Tensor]] = {
    1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_POOL: Mapping[int, Callable[..., Tensor]] = {
    1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL: Mapping[int, Callable[..., Tensor]] = {
    1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def spatial_pads(node: Node, sizes: Sequence[int], kernel: Sequence[int],
                 strides: Sequence[int], dilations: Sequence[int]) -> tuple[list[int], list[int]]:
    """Start and end padding of each spatial axis from ``pads`` or ``auto_pad``.

    ``SAME_UPPER``/``SAME_LOWER`` pad so that the output has ``ceil(size / stride)`` cells,
    the odd cell going to the end (upper) or the start (lower); ``VALID`` pads nothing.
    """
    k = len(sizes)
    auto = str(node.attr("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        starts, ends = [], []
        for size, ker, stride, dil in zip(sizes, kernel, strides, dilations, strict=True):
            out = -(-size // stride)
            total = max(0, (out - 1) * stride + (ker - 1) * dil + 1 - size)
            small, large = total // 2, total - total // 2
            starts.append(small if auto == "SAME_UPPER" else large)
            ends.append(large if auto == "SAME_UPPER" else small)
        return starts, ends
    if auto == "VALID":
        return [0] * k, [0] * k
    pads = node.ints("pads", [0] * (2 * k))
    return pads[:k], pads[k:]


def torch_pad_order(starts: Sequence[int], ends: Sequence[int]) -> list[int]:
    """ONNX spatial padding as ``F.pad``'s list (last axis first, start then end)."""
    order: list[int] = []
    for start, end in zip(reversed(starts), reversed(ends), strict=True):
        order += [start, end]
    return order


def _geometry(node: Node, x: Tensor, kernel: Sequence[int]) -> tuple[
        list[int], list[int], list[int], list[int]]:
    k = x.ndim - 2
    strides = node.ints("strides", [1] * k)
    dilations = node.ints("dilations", [1] * k)
    starts, ends = spatial_pads(node, list(x.shape[2:]), kernel, strides, dilations)
    return strides, dilations, starts, ends


def conv(node: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """Conv: N-d convolution (1 to 3 spatial axes) with groups, dilations and padding."""
    kernel = list(w.shape[2:])
    strides, dilations, starts, ends = _geometry(node, x, kernel)
    padding: Any = starts
    if starts != ends:
        x, padding = F.pad(x, torch_pad_order(starts, ends)), 0
    return CONV[x.ndim - 2](x, w, b, strides, padding, dilations, int(node.attr("group", 1)))


def conv_transpose(node: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """ConvTranspose with explicit ``pads`` (cropped from the full output) and output padding."""
    k = x.ndim - 2
    strides = node.ints("strides", [1] * k)
    dilations = node.ints("dilations", [1] * k)
    extra = node.ints("output_padding", [0] * k)
    pads = node.ints("pads", [0] * (2 * k))
    y = CONV_T[k](x, w, b, strides, 0, extra, int(node.attr("group", 1)), dilations)
    index = [slice(None), slice(None)] + [
        slice(pads[i], y.shape[2 + i] - pads[k + i]) for i in range(k)]
    return y[tuple(index)]


def max_pool(node: Node, x: Tensor) -> Tensor:
    """MaxPool (values output only): ``-inf`` padding, dilations, ``ceil_mode``."""
    kernel = node.ints("kernel_shape", [])
    strides, dilations, starts, ends = _geometry(node, x, kernel)
    padding: Any = starts
    if starts != ends or any(p > ker // 2 for p, ker in zip(starts, kernel, strict=True)):
        x = F.pad(x, torch_pad_order(starts, ends), value=-math.inf)
        padding = 0
    return MAX_POOL[x.ndim - 2](x, kernel, strides, padding, dilations,
                                ceil_mode=bool(node.attr("ceil_mode", 0)))


def average_pool(node: Node, x: Tensor) -> Tensor:
    """AveragePool; ``count_include_pad`` decides whether padded cells count in the mean."""
    kernel = node.ints("kernel_shape", [])
    strides, _, starts, ends = _geometry(node, x, kernel)
    include = bool(node.attr("count_include_pad", 0))
    ceil = bool(node.attr("ceil_mode", 0))
    pool = AVG_POOL[x.ndim - 2]
    if starts == ends and all(p <= ker // 2 for p, ker in zip(starts, kernel, strict=True)):
        return pool(x, kernel, strides, starts, ceil_mode=ceil, count_include_pad=include)
    order = torch_pad_order(starts, ends)
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    total = pool(F.pad(x, order), kernel, strides, 0, ceil_mode=ceil, count_include_pad=True)
    count = pool(F.pad(ones, order, value=1.0 if include else 0.0), kernel, strides, 0,
                 ceil_mode=ceil, count_include_pad=True)
    return total / count


def global_average_pool(node: Node, x: Tensor) -> Tensor:
    """GlobalAveragePool: mean over every spatial axis, kept as size 1."""
    return torch.mean(x, dim=tuple(range(2, x.ndim)), keepdim=True)


def global_max_pool(node: Node, x: Tensor) -> Tensor:
    """GlobalMaxPool: maximum over every spatial axis, kept as size 1."""
    return torch.amax(x, dim=tuple(range(2, x.ndim)), keepdim=True)


def batch_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor,
                        var: Tensor) -> Tensor:
    """BatchNormalization in inference mode: running statistics, channel axis 1."""
    return F.batch_norm(x, mean, var, scale, bias, training=False,
                        eps=float(node.attr("epsilon", 1e-5)))


def instance_normalization(node: Node, x: Tensor, scale: Tensor, bias: Tensor) -> Tensor:
    """InstanceNormalization: per sample and channel over the spatial axes."""
    return F.instance_norm(x, weight=scale, bias=bias, eps=float(node.attr("epsilon", 1e-5)))


def layer_normalization(node: Node, x: Tensor, scale: Tensor,
                        bias: Tensor | None = None) -> Tensor:
    """LayerNormalization (opset 17): normalizes the axes from ``axis`` to the last."""
    axis = normalize_axis(int(node.attr("axis", -1)), x.ndim)
    eps = float(node.attr("epsilon", 1e-5))
    shape = tuple(x.shape[axis:])
    if tuple(scale.shape) == shape and (bias is None or tuple(bias.shape) == shape):
        return F.layer_norm(x, shape, scale, bias, eps)
    dims = tuple(range(axis, x.ndim))
    centred = x - x.mean(dim=dims, keepdim=True)
    var = (centred * centred).mean(dim=dims, keepdim=True)
    y = centred / torch.sqrt(var + eps) * scale
    return y if bias is None else y + bias


def dropout(node: Node, x: Tensor, *rest: Tensor | None) -> Any:
    """Dropout at inference: the identity (and an all-true mask when the mask is used)."""
    if node.wants(1):
        return x, torch.ones_like(x, dtype=torch.bool)
    return x


def _spatial_limit(node: Node) -> str | None:
    if node.attr("kernel_shape") is not None and not 1 <= len(node.attr("kernel_shape")) <= 3:
        return "only 1 to 3 spatial axes are converted"
    return None


def _max_pool_limit(node: Node) -> str | None:
    if node.wants(1):
        return "its Indices output is not converted"
    return _spatial_limit(node)


def _average_pool_limit(node: Node) -> str | None:
    if any(d != 1 for d in node.ints("dilations", [])):
        return "dilated average pooling is not converted"
    return _spatial_limit(node)


def _conv_transpose_limit(node: Node) -> str | None:
    if node.attr("output_shape") is not None:
        return "the output_shape attribute is not converted (give pads instead)"
    if str(node.attr("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        return f"auto_pad={node.attr('auto_pad')} is not converted"
    return _spatial_limit(node)


def _batch_norm_limit(node: Node) -> str | None:
    if node.attr("training_mode", 0) or any(node.wants(i) for i in range(1, 5)):
        return "training mode (batch statistics outputs) is not converted"
    if node.opset < 9 and not node.attr("spatial", 1):
        return "spatial=0 is not converted"
    return None


def _layer_norm_limit(node: Node) -> str | None:
    if node.wants(1) or node.wants(2):
        return "its Mean and InvStdDev outputs are not converted"
    return None


NN_OPS: Mapping[str, Op] = MappingProxyType({
    "Conv": conv, "ConvTranspose": conv_transpose, "MaxPool": max_pool,
    "AveragePool": average_pool, "GlobalAveragePool": global_average_pool,
    "GlobalMaxPool": global_max_pool, "BatchNormalization": batch_normalization,
    "InstanceNormalization": instance_normalization, "LayerNormalization": layer_normalization,
    "Dropout": dropout,
})
"""The operators this module implements, by ONNX ``op_type``."""

NN_LIMITS: Mapping[str, Limit] = MappingProxyType({
    "Conv": _spatial_limit, "ConvTranspose": _conv_transpose_limit, "MaxPool": _max_pool_limit,
    "AveragePool": _average_pool_limit, "BatchNormalization": _batch_norm_limit,
    "LayerNormalization": _layer_norm_limit,
})
"""Attribute combinations of these operators that are not converted, with the reason."""
