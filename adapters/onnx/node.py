"""One ONNX node as the torch interpreter sees it: operator, wiring, decoded attributes, opset.

Attributes are decoded once, when the graph is converted: strings to ``str``, tensors to numpy
arrays, lists to lists (see https://onnx.ai/onnx/api/helper.html#getting-attributes). Element
types map onto torch dtypes following the ``TensorProto.DataType`` table of
https://onnx.ai/onnx/intro/concepts.html#element-type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor
Op = Callable[..., Any]
"""An operator: ``op(node, *inputs)`` returns one tensor or a tuple (one per node output);
absent optional inputs arrive as ``None``."""
Limit = Callable[["Node"], str | None]
"""Checks a node's attributes before conversion; returns why it cannot be converted."""

TORCH_DTYPES: Mapping[int, torch.dtype] = {
    1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32,
    7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16,
}
"""ONNX ``TensorProto`` element types the interpreter computes with."""


@dataclass(frozen=True)
class Node:
    """An ONNX ``NodeProto`` with its attributes decoded and its operator set version."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    opset: int = 17
    domain: str = ""

    def attr(self, key: str, default: Any = None) -> Any:
        """The attribute ``key``, or ``default`` when the node does not set it."""
        return self.attrs.get(key, default)

    def ints(self, key: str, default: Sequence[int]) -> list[int]:
        """An integer-list attribute as a list (``default`` when absent)."""
        value = self.attrs.get(key)
        return [int(v) for v in (default if value is None else value)]

    def wants(self, index: int) -> bool:
        """Whether the graph uses the node's output ``index`` (optional outputs may be unset)."""
        return index < len(self.outputs) and bool(self.outputs[index])

    def describe(self) -> str:
        """``OpType 'name'`` for messages."""
        return f"{self.op_type} {self.name!r}" if self.name else self.op_type


def decode_attribute(attribute: Any) -> Any:
    """A Python value for an ``AttributeProto``; graph-valued attributes raise ``ValueError``."""
    from onnx import AttributeProto, helper, numpy_helper

    if attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
        raise ValueError(f"attribute {attribute.name!r} holds a subgraph")
    if attribute.type in (AttributeProto.SPARSE_TENSOR, AttributeProto.SPARSE_TENSORS):
        raise ValueError(f"attribute {attribute.name!r} holds a sparse tensor")
    value = helper.get_attribute_value(attribute)
    if attribute.type == AttributeProto.TENSOR:
        return numpy_helper.to_array(value)
    if attribute.type == AttributeProto.TENSORS:
        return [numpy_helper.to_array(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def to_tensor(array: np.ndarray, like: Tensor | None = None) -> Tensor:
    """A numpy array as a tensor (on ``like``'s device when given)."""
    tensor = torch.from_numpy(np.array(array, copy=True))
    return tensor if like is None else tensor.to(like.device)


def as_ints(tensor: Tensor | None) -> list[int] | None:
    """An integer tensor (axes, shapes, pads) as a list of ints; ``None`` stays ``None``."""
    if tensor is None:
        return None
    return [int(v) for v in tensor.reshape(-1).tolist()]


def normalize_axis(axis: int, rank: int) -> int:
    """A possibly negative axis as a non-negative one (ONNX axes count from the end when < 0)."""
    return axis + rank if axis < 0 else axis
