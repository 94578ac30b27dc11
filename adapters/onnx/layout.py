"""Which data layout an image input of an ONNX graph takes: NHWC or NCHW.

ONNX's spatial operators (https://onnx.ai/onnx/operators/onnx__Conv.html and the pooling and
normalization operators) are channel-first. A graph whose input is channel-last, as every Keras
export is, therefore transposes it with ``perm = [0, 3, 1, 2]`` before its first spatial
operator; a channel-first graph feeds the input to one directly. :func:`graph_layout` follows
each input through shape-preserving elementwise nodes (casts, scaling, activations) looking
for either; :func:`shape_layout` guesses from where a channel-sized axis (1, 3 or 4) sits.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from xaudit.adapters.onnx.model import Layout

ELEMENTWISE = frozenset({
    "Cast", "Identity", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Clip", "Neg", "Abs", "Pow", "Sqrt", "Exp", "Dropout", "Elu", "Selu", "HardSigmoid",
})
"""Operators that keep their first input's layout."""
SPATIAL = frozenset({
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "InstanceNormalization", "LpPool", "GlobalLpPool", "MaxUnpool",
})
"""Operators whose input is channel-first by definition."""
TO_CHANNELS_FIRST = [0, 3, 1, 2]
CHANNEL_SIZES = (1, 3, 4)
MAX_STEPS = 64


def graph_layout(graph: Any, input_name: str) -> Layout | None:
    """The layout the graph's own nodes show for ``input_name``, or ``None`` if they do not.

    Evidence that disagrees (one path transposes, another does not) gives ``None``.
    """
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    found: set[Layout] = set()
    frontier, seen = [input_name], {input_name}
    steps = 0
    while frontier and steps < MAX_STEPS:
        value = frontier.pop(0)
        for node in consumers[value]:
            steps += 1
            if node.op_type == "Transpose":
                perm = _perm(node)
                if perm == TO_CHANNELS_FIRST:
                    found.add("NHWC")
            elif node.op_type in SPATIAL and node.input[0] == value:
                found.add("NCHW")
            elif node.op_type in ELEMENTWISE and node.output and node.output[0] not in seen:
                seen.add(node.output[0])
                frontier.append(node.output[0])
    return found.pop() if len(found) == 1 else None


def shape_layout(row_shape: tuple[int, ...]) -> Layout | None:
    """A guess from a rank-3 row shape: channels are the small (1, 3 or 4) end axis."""
    if len(row_shape) != 3:
        return None
    first, last = row_shape[0] in CHANNEL_SIZES, row_shape[-1] in CHANNEL_SIZES
    if last and not first:
        return "NHWC"
    if first and not last:
        return "NCHW"
    return None


def _perm(node: Any) -> list[int] | None:
    for attribute in node.attribute:
        if attribute.name == "perm":
            return [int(v) for v in attribute.ints]
    return None
