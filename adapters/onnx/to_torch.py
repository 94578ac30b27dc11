"""ONNX graphs as torch modules, interpreted node by node with torch operators.

:func:`convert` turns an ``onnx.ModelProto`` into an :class:`OnnxGraphModule`: initializers and
``Constant`` nodes become buffers, and ``forward`` runs the graph's nodes in their (topological,
as https://onnx.ai/onnx/repo-docs/IR.html#graphs requires) order, each with the torch
implementation of its operator from :mod:`~xaudit.adapters.onnx.ops_math`,
:mod:`~xaudit.adapters.onnx.ops_nn` or :mod:`~xaudit.adapters.onnx.ops_shape`. The result is
differentiable wherever the operators are, so gradients of an ONNX model come from autograd.

Conversion is all or nothing: an operator outside :data:`OPS`, a node from another domain
(``com.microsoft``), a subgraph (``If``, ``Loop``), an attribute combination a limit rejects,
or a default-domain opset older than 7 raises :class:`UnsupportedGraphError` naming each of
them. A converted module must still be checked against onnxruntime (:func:`verify`) before
anyone relies on it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from xaudit.adapters.onnx.node import Node, Op, Tensor, decode_attribute, to_tensor
from xaudit.adapters.onnx.ops_math import MATH_LIMITS, MATH_OPS
from xaudit.adapters.onnx.ops_nn import NN_LIMITS, NN_OPS
from xaudit.adapters.onnx.ops_shape import SHAPE_LIMITS, SHAPE_OPS, constant

MIN_OPSET = 7
"""Oldest default-domain opset converted (``Add`` and friends broadcast implicitly from 7)."""
DEFAULT_DOMAINS = ("", "ai.onnx")
OPS: Mapping[str, Op] = MappingProxyType({**MATH_OPS, **NN_OPS, **SHAPE_OPS})
"""Every operator the converter implements, by ``op_type``."""
LIMITS = MappingProxyType({**MATH_LIMITS, **NN_LIMITS, **SHAPE_LIMITS})


class UnsupportedGraphError(Exception):
    """The graph uses something the converter does not implement; ``ops`` names the operators."""

    def __init__(self, ops: Mapping[str, int], problems: Sequence[str]) -> None:
        self.ops = dict(ops)
        self.problems = tuple(problems)
        parts = []
        if self.ops:
            listed = ", ".join(f"{op} ({n} node{'s' if n > 1 else ''})"
                               for op, n in sorted(self.ops.items()))
            parts.append(f"operator(s) the torch converter does not support: {listed}")
        parts += self.problems
        super().__init__("; ".join(parts))


class OnnxGraphModule(torch.nn.Module):
    """An ONNX graph run node by node; ``forward`` returns every graph output, in order."""

    def __init__(self, nodes: Sequence[Node], input_names: Sequence[str],
                 output_names: Sequence[str], constants: Mapping[str, Tensor]) -> None:
        super().__init__()
        self.nodes = tuple(nodes)
        self.input_names = tuple(input_names)
        self.output_names = tuple(output_names)
        self._ops = tuple(OPS[node.op_type] for node in self.nodes)
        self._slots: dict[str, str] = {}
        for i, (name, tensor) in enumerate(constants.items()):
            self.register_buffer(f"c{i}", tensor)
            self._slots[name] = f"c{i}"
        self._release = _release_plan(self.nodes, self.output_names)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """Run the graph on one tensor per graph input; returns the graph's outputs."""
        if len(inputs) != len(self.input_names):
            raise ValueError(f"the graph takes {len(self.input_names)} input(s) "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        env: dict[str, Tensor] = {name: getattr(self, slot) for name, slot in self._slots.items()}
        env.update(zip(self.input_names, inputs, strict=True))
        for node, op, done in zip(self.nodes, self._ops, self._release, strict=True):
            try:
                result = op(node, *(env[name] if name else None for name in node.inputs))
            except Exception as exc:
                raise RuntimeError(f"{node.describe()} failed: {exc}") from exc
            values = result if isinstance(result, tuple) else (result,)
            for name, value in zip(node.outputs, values, strict=False):
                if name:
                    env[name] = value
            for name in done:
                env.pop(name, None)
        return tuple(env[name] for name in self.output_names)


def _release_plan(nodes: Sequence[Node], keep: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """For each node, the values no later node reads (dropped to bound memory in ``forward``)."""
    last: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.inputs:
            if name:
                last[name] = index
    plan: list[list[str]] = [[] for _ in nodes]
    for name, index in last.items():
        if name not in keep:
            plan[index].append(name)
    return tuple(tuple(names) for names in plan)


def default_opset(model: Any) -> int:
    """The model's default-domain (``ai.onnx``) opset version."""
    for entry in model.opset_import:
        if entry.domain in DEFAULT_DOMAINS:
            return int(entry.version)
    return 1


def convert(model: Any) -> OnnxGraphModule:
    """An :class:`OnnxGraphModule` computing ``model``'s graph; raises UnsupportedGraphError."""
    from onnx import numpy_helper

    graph = model.graph
    opset = default_opset(model)
    unsupported: Counter[str] = Counter()
    problems = [f"opset {opset} is older than {MIN_OPSET}"] if opset < MIN_OPSET else []
    if len(graph.sparse_initializer):
        problems.append("sparse initializers are not converted")
    nodes = []
    for proto in graph.node:
        if proto.domain not in DEFAULT_DOMAINS:
            unsupported[f"{proto.domain}::{proto.op_type}"] += 1
            continue
        if proto.op_type not in OPS:
            unsupported[proto.op_type] += 1
            continue
        try:
            attrs = {a.name: decode_attribute(a) for a in proto.attribute}
        except ValueError as exc:
            problems.append(f"{proto.op_type} {proto.name!r}: {exc}")
            continue
        node = Node(proto.op_type, proto.name, tuple(proto.input), tuple(proto.output),
                    MappingProxyType(attrs), opset)
        limit = LIMITS.get(node.op_type)
        reason = limit(node) if limit else None
        if reason:
            problems.append(f"{node.describe()}: {reason}")
            continue
        nodes.append(node)
    if unsupported or problems:
        raise UnsupportedGraphError(unsupported, problems)
    constants = {init.name: to_tensor(numpy_helper.to_array(init)) for init in graph.initializer}
    computed = []
    for node in nodes:
        if node.op_type == "Constant":
            constants[node.outputs[0]] = constant(node)
        else:
            computed.append(node)
    inputs = [value.name for value in graph.input if value.name not in constants]
    outputs = [value.name for value in graph.output]
    return OnnxGraphModule(computed, inputs, outputs, constants)


# -------------------------------------------------------------------- checking a conversion


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Switch off TF32 convolutions on CUDA (other cuDNN settings kept) for the block.

    onnxruntime computes float32 convolutions in float32; TF32 would differ by about 1e-3.
    """
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                     deterministic=cudnn.deterministic, allow_tf32=False):
        yield


@dataclass(frozen=True)
class ConversionCheck:
    """How the converted module's outputs compare with onnxruntime's on a probe batch."""

    passed: bool
    max_abs_diff: float
    rtol: float
    atol: float
    rows: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {"passed": self.passed, "max_abs_diff": self.max_abs_diff, "rtol": self.rtol,
                "atol": self.atol, "rows": self.rows, "detail": self.detail}


def verify(module: OnnxGraphModule, inputs: Sequence[Tensor],
           expected: Sequence[np.ndarray], *, rtol: float = 1e-5,
           atol: float = 1e-5) -> ConversionCheck:
    """Compare ``module(*inputs)`` with onnxruntime's outputs, element by element.

    Passes when every element satisfies ``|torch - ort| <= atol + rtol * |ort|`` (integer and
    boolean outputs must be equal) and shapes agree; ``detail`` names the first output that
    does not, and why.
    """
    rows = int(inputs[0].shape[0]) if inputs and inputs[0].ndim else 0
    try:
        with torch.no_grad():
            got = module(*inputs)
    except Exception as exc:
        return ConversionCheck(False, float("inf"), rtol, atol, rows,
                               f"the converted module failed on the probe batch: {exc}")
    worst = 0.0
    for name, value, reference in zip(module.output_names, got, expected, strict=True):
        array = value.detach().to("cpu").numpy()
        if array.shape != reference.shape:
            return ConversionCheck(False, float("inf"), rtol, atol, rows,
                                   f"output {name!r} is shaped {array.shape} in torch but "
                                   f"{reference.shape} in onnxruntime")
        a, b = array.astype(np.float64), np.asarray(reference, dtype=np.float64)
        gap = np.abs(a - b)
        bad = ~(gap <= atol + rtol * np.abs(b))
        bad &= ~(np.isnan(a) & np.isnan(b))
        if array.size:
            worst = max(worst, float(np.nanmax(np.where(np.isnan(gap), 0.0, gap))))
        if np.any(bad):
            return ConversionCheck(False, worst, rtol, atol, rows,
                                   f"output {name!r} differs from onnxruntime's by up to "
                                   f"{float(np.max(np.where(bad, gap, 0.0))):.3g} "
                                   f"({int(np.count_nonzero(bad))} of {array.size} values "
                                   f"beyond {atol:g} + {rtol:g}*|value|)")
    return ConversionCheck(True, worst, rtol, atol, rows)
