"""Shape, indexing and type operators of ONNX, in torch.

Specifications at ``https://onnx.ai/onnx/operators/onnx__<Op>.html`` (for example
https://onnx.ai/onnx/operators/onnx__Slice.html), with the opset changes that moved attributes
to inputs: ``Slice`` starts/ends/axes/steps (opset 10), ``Pad`` pads and value (11),
``Squeeze``/``Unsqueeze`` axes and ``Split`` sizes (13), ``Split`` ``num_outputs`` (18). Shapes
flow as int64 tensors, as in ONNX; values that decide a shape (``Reshape``'s target, ``Slice``
bounds, pads) are read as Python ints when the node runs, so one module serves every batch size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F

from xaudit.adapters.onnx.node import (
    TORCH_DTYPES,
    Limit,
    Node,
    Op,
    Tensor,
    as_ints,
    normalize_axis,
    to_tensor,
)


def identity(node: Node, x: Tensor) -> Tensor:
    """Identity."""
    return x


def cast(node: Node, x: Tensor) -> Tensor:
    """Cast to the element type ``to`` (float to integer truncates toward zero)."""
    return x.to(TORCH_DTYPES[int(node.attr("to"))])


def cast_like(node: Node, x: Tensor, target: Tensor) -> Tensor:
    """CastLike: cast to the element type of the second input."""
    return x.to(target.dtype)


def constant(node: Node) -> Tensor:
    """Constant: a ``value`` tensor or one of the ``value_float(s)``/``value_int(s)`` forms."""
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if node.attr(key) is not None:
            return to_tensor(np.asarray(node.attr(key), dtype=dtype))
    raise ValueError(f"{node.describe()} has no supported value attribute")


def constant_of_shape(node: Node, shape: Tensor) -> Tensor:
    """ConstantOfShape: ``value`` (one element, float32 zero by default) repeated."""
    value = node.attr("value")
    fill = to_tensor(np.zeros(1, np.float32) if value is None else np.asarray(value), shape)
    return fill.reshape(()).expand(as_ints(shape) or []).clone()


def shape_of(node: Node, x: Tensor) -> Tensor:
    """Shape, optionally sliced by ``start``/``end`` (opset 15)."""
    dims = list(x.shape)[slice(node.attr("start", 0), node.attr("end"))]
    return torch.tensor(dims, dtype=torch.int64, device=x.device)


def size(node: Node, x: Tensor) -> Tensor:
    """Size: the number of elements, as an int64 scalar."""
    return torch.tensor(x.numel(), dtype=torch.int64, device=x.device)


def reshape(node: Node, x: Tensor, shape: Tensor) -> Tensor:
    """Reshape: 0 copies the input's dimension (unless ``allowzero``), -1 is inferred."""
    dims = as_ints(shape) or []
    if not node.attr("allowzero", 0):
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return x.reshape(dims)


def flatten(node: Node, x: Tensor) -> Tensor:
    """Flatten to 2-D at ``axis`` (default 1)."""
    axis = normalize_axis(int(node.attr("axis", 1)), x.ndim)
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def transpose(node: Node, x: Tensor) -> Tensor:
    """Transpose by ``perm`` (default: reverse the axes)."""
    return x.permute(node.ints("perm", list(reversed(range(x.ndim)))))


def _axes(node: Node, given: Tensor | None) -> list[int] | None:
    return node.attr("axes") if node.opset < 13 else as_ints(given)


def squeeze(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    """Squeeze the given axes, or every axis of size 1."""
    chosen = _axes(node, axes)
    if not chosen:
        return x.reshape([d for d in x.shape if d != 1])
    return torch.squeeze(x, dim=tuple(normalize_axis(int(a), x.ndim) for a in chosen))


def unsqueeze(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    """Unsqueeze: insert size-1 axes at positions of the output."""
    chosen = _axes(node, axes) or []
    rank = x.ndim + len(chosen)
    for axis in sorted(normalize_axis(int(a), rank) for a in chosen):
        x = x.unsqueeze(axis)
    return x


def concat(node: Node, *xs: Tensor) -> Tensor:
    """Concat along ``axis``."""
    return torch.cat(xs, dim=int(node.attr("axis")))


def split(node: Node, x: Tensor, sizes: Tensor | None = None) -> tuple[Tensor, ...]:
    """Split into the given sizes, or into equal parts (the last smaller, opset 18)."""
    axis = normalize_axis(int(node.attr("axis", 0)), x.ndim)
    parts = node.attr("split") if node.opset < 13 else as_ints(sizes)
    if not parts:
        count = int(node.attr("num_outputs", len(node.outputs)))
        chunk = -(-x.shape[axis] // count)
        return tuple(torch.split(x, chunk, dim=axis))
    return tuple(torch.split(x, [int(p) for p in parts], dim=axis))


def slice_(node: Node, x: Tensor, starts: Tensor | None = None, ends: Tensor | None = None,
           axes: Tensor | None = None, steps: Tensor | None = None) -> Tensor:
    """Slice with clamped bounds; negative steps walk backwards."""
    if node.opset < 10:
        first, last = node.ints("starts", []), node.ints("ends", [])
        chosen = node.ints("axes", list(range(len(first))))
        strides = [1] * len(first)
    else:
        first, last = as_ints(starts) or [], as_ints(ends) or []
        chosen = as_ints(axes) or list(range(len(first)))
        strides = as_ints(steps) or [1] * len(first)
    for start, end, axis, step in zip(first, last, chosen, strides, strict=True):
        axis = normalize_axis(axis, x.ndim)
        dim = x.shape[axis]
        start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
        if step > 0:
            index = [slice(None)] * x.ndim
            index[axis] = slice(min(max(start, 0), dim), min(max(end, 0), dim), step)
            x = x[tuple(index)]
        else:
            picks = range(min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step)
            x = x.index_select(axis, torch.tensor(list(picks), dtype=torch.long,
                                                  device=x.device))
    return x


def gather(node: Node, x: Tensor, indices: Tensor) -> Tensor:
    """Gather along ``axis``; negative indices count from the end."""
    axis = normalize_axis(int(node.attr("axis", 0)), x.ndim)
    indices = indices.long()
    indices = torch.where(indices < 0, indices + x.shape[axis], indices)
    picked = x.index_select(axis, indices.reshape(-1))
    return picked.reshape((*x.shape[:axis], *indices.shape, *x.shape[axis + 1:]))


def gather_elements(node: Node, x: Tensor, indices: Tensor) -> Tensor:
    """GatherElements: ``torch.gather`` with negative indices allowed."""
    axis = normalize_axis(int(node.attr("axis", 0)), x.ndim)
    indices = indices.long()
    return torch.gather(x, axis, torch.where(indices < 0, indices + x.shape[axis], indices))


def expand(node: Node, x: Tensor, shape: Tensor) -> Tensor:
    """Expand with bidirectional broadcasting (the target may have 1 where the input has n)."""
    return x.expand(np.broadcast_shapes(tuple(x.shape), tuple(as_ints(shape) or [])))


def tile(node: Node, x: Tensor, repeats: Tensor) -> Tensor:
    """Tile: repeat the input ``repeats[i]`` times along axis i."""
    return x.repeat(as_ints(repeats) or [])


def range_(node: Node, start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    """Range: ``start, start + delta, ...`` up to ``limit`` (exclusive)."""
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype,
                        device=start.device)


def pad(node: Node, x: Tensor, pads: Tensor | None = None, value: Tensor | None = None,
        axes: Tensor | None = None) -> Tensor:
    """Pad (modes constant, edge, reflect, wrap); negative pads crop."""
    if node.opset < 11:
        amounts, fill = node.ints("pads", []), float(node.attr("value", 0.0))
    else:
        amounts = as_ints(pads) or []
        fill = float(value.item()) if value is not None and value.numel() else 0.0
    chosen = [normalize_axis(a, x.ndim) for a in (as_ints(axes) or range(x.ndim))]
    starts, ends = [0] * x.ndim, [0] * x.ndim
    for i, axis in enumerate(chosen):
        starts[axis], ends[axis] = amounts[i], amounts[len(chosen) + i]
    mode = str(node.attr("mode", "constant"))
    if mode == "constant":
        order: list[int] = []
        for start, end in zip(reversed(starts), reversed(ends), strict=True):
            order += [start, end]
        return F.pad(x, order, value=fill if x.dtype.is_floating_point else int(fill))
    for axis in range(x.ndim):
        if starts[axis] or ends[axis]:
            positions = torch.arange(-starts[axis], x.shape[axis] + ends[axis], device=x.device)
            x = x.index_select(axis, _source_index(mode, positions, x.shape[axis]))
    return x


def _source_index(mode: str, positions: Tensor, dim: int) -> Tensor:
    if mode == "edge":
        return positions.clamp(0, dim - 1)
    if mode == "wrap":
        return torch.remainder(positions, dim)
    period = max(2 * (dim - 1), 1)
    folded = torch.remainder(positions, period)
    return torch.where(folded < dim, folded, period - folded)


def _cast_limit(node: Node) -> str | None:
    to = int(node.attr("to", 0))
    return None if to in TORCH_DTYPES else f"element type {to} is not converted"


def _pad_limit(node: Node) -> str | None:
    mode = str(node.attr("mode", "constant"))
    return None if mode in ("constant", "edge", "reflect", "wrap") else f"mode {mode!r}"


SHAPE_OPS: Mapping[str, Op] = MappingProxyType({
    "Identity": identity, "Cast": cast, "CastLike": cast_like, "Constant": constant,
    "ConstantOfShape": constant_of_shape, "Shape": shape_of, "Size": size, "Reshape": reshape,
    "Flatten": flatten, "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Concat": concat, "Split": split, "Slice": slice_, "Gather": gather,
    "GatherElements": gather_elements, "Expand": expand, "Tile": tile, "Range": range_,
    "Pad": pad,
})
"""The operators this module implements, by ONNX ``op_type``."""

SHAPE_LIMITS: Mapping[str, Limit] = MappingProxyType({"Cast": _cast_limit, "Pad": _pad_limit})
"""Attribute combinations of these operators that are not converted, with the reason."""

