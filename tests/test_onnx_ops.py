"""The ONNX-to-torch converter, operator by operator, against onnxruntime (the oracle).

Each case is a one-node graph built with ``onnx.helper``; the converted module's outputs must
equal onnxruntime's (1e-5 relative, 1e-6 absolute, shapes and integer values exactly). Every
operator the converter claims to support has at least one case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper, numpy_helper  # noqa: E402

from xaudit.adapters.onnx.to_torch import OPS, UnsupportedGraphError, convert  # noqa: E402

RNG = np.random.default_rng(7)


def normal(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def positive(*shape: int) -> np.ndarray:
    return (np.abs(RNG.standard_normal(shape)) + 0.5).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@dataclass
class Case:
    """One node: inputs (graph inputs, or initializers for names in ``consts``) and attributes."""

    op: str
    inputs: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 17
    consts: tuple[str, ...] = ()
    n_out: int = 1
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}-{self.label}" if self.label else self.op

    def model(self) -> Any:
        names = list(self.inputs)
        outputs = [f"y{i}" for i in range(self.n_out)]
        node = helper.make_node(self.op, names, outputs, **self.attrs)
        graph_inputs = [helper.make_tensor_value_info(
            n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in self.inputs.items() if n not in self.consts]
        inits = [numpy_helper.from_array(self.inputs[n], n) for n in self.consts]
        graph = helper.make_graph([node], "case", graph_inputs,
                                  [helper.make_empty_tensor_value_info(o) for o in outputs],
                                  initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        return model

    def feeds(self) -> dict[str, np.ndarray]:
        return {n: a for n, a in self.inputs.items() if n not in self.consts}


def c(op: str, *arrays: np.ndarray, consts: tuple[int, ...] = (), label: str = "",
      opset: int = 17, n_out: int = 1, names: tuple[str, ...] = (), **attrs: Any) -> Case:
    """A case whose inputs are named ``x0, x1, ...`` (or ``names``); ``consts`` by position."""
    keys = list(names) or [f"x{i}" for i in range(len(arrays))]
    inputs = dict(zip(keys, arrays, strict=True))
    return Case(op, inputs, attrs, opset, tuple(keys[i] for i in consts), n_out, label)


X = normal(2, 3, 4)
IMG = normal(2, 4, 7, 6)
BOOL_A, BOOL_B = RNG.random((2, 3)) < 0.5, RNG.random((2, 3)) < 0.5
INT_A, INT_B = ints(-7, 7, 9, -4, 12, 5), ints(2, -2, 4, 3, -5, 5)

UNARY = ["Abs", "Neg", "Exp", "Floor", "Ceil", "Round", "Sign", "Erf", "Sin", "Cos", "Tan",
         "Atan", "Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "HardSwish", "IsNaN"]
BINARY = ["Add", "Sub", "Mul", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"]
REDUCE = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceSumSquare", "ReduceLogSumExp"]

CASES: list[Case] = [
    *(c(op, X) for op in UNARY),
    *(c(op, positive(3, 4)) for op in ("Log", "Sqrt", "Reciprocal")),
    c("Mish", X, opset=18),
    c("Not", BOOL_A),
    *(c(op, X, normal(4)) for op in BINARY),
    *(c(op, BOOL_A, BOOL_B) for op in ("And", "Or", "Xor")),
    c("Div", X, positive(4)), c("Div", INT_A, INT_B, label="int"),
    c("Mod", INT_A, INT_B), c("Mod", X, positive(4), fmod=1, label="fmod"),
    c("Pow", positive(3, 4), normal(4)),
    c("MatMul", X, normal(4, 5)),
    c("Sum", X, normal(4), normal(3, 1)), c("Max", X, normal(4)), c("Min", X, normal(3, 4)),
    c("Mean", X, normal(4), normal(1)),
    c("Where", RNG.random((3, 4)) < 0.5, X, normal(4)),
    *(c(op, X, ints(1), consts=(1,), keepdims=0, opset=18) for op in REDUCE),
    c("ReduceMean", X, axes=[0, -1], opset=13, label="attr"),
    c("ReduceMax", X, opset=18, label="all"),
    c("ReduceSum", X, ints(-1), consts=(1,), opset=13),
    c("ReduceSum", X, ints(), consts=(1,), noop_with_empty_axes=1, opset=13, label="noop"),
    c("LeakyRelu", X, alpha=0.3), c("Elu", X, alpha=0.7), c("Selu", X), c("Celu", X),
    c("HardSigmoid", X, alpha=0.3, beta=0.4), c("ThresholdedRelu", X, alpha=0.2),
    c("Gelu", X, opset=20), c("Gelu", X, approximate="tanh", opset=20, label="tanh"),
    c("PRelu", X, normal(4)),
    c("Clip", X, np.float32(-0.5), np.float32(0.7), consts=(1, 2), opset=13),
    c("Clip", X, min=-0.2, opset=10, label="attrs"),
    c("Softmax", X, axis=1, opset=13), c("Softmax", X, axis=1, opset=11, label="opset11"),
    c("LogSoftmax", X, opset=13),
    c("Gemm", normal(4, 3), normal(5, 4), normal(5), transA=1, transB=1, alpha=0.5, beta=2.0),
    c("Gemm", normal(2, 3), normal(3, 4), label="no-bias"),
    c("Einsum", X, normal(2, 4, 5), equation="bij,bjk->bik"),
    # convolution and pooling
    c("Conv", IMG, normal(6, 2, 3, 3), normal(6), consts=(1, 2), strides=[2, 1],
      pads=[0, 1, 1, 0], group=2, dilations=[1, 2]),
    c("Conv", IMG, normal(3, 4, 3, 2), consts=(1,), auto_pad="SAME_UPPER", strides=[2, 2],
      label="same"),
    c("Conv", normal(2, 3, 9), normal(4, 3, 3), consts=(1,), pads=[1, 1], label="1d"),
    c("Conv", normal(1, 2, 4, 5, 4), normal(3, 2, 2, 2, 2), consts=(1,), label="3d"),
    c("ConvTranspose", IMG, normal(4, 3, 3, 3), normal(3), consts=(1, 2), strides=[2, 2],
      pads=[1, 0, 0, 1], output_padding=[1, 1]),
    c("ConvTranspose", IMG, normal(4, 6, 3, 3), consts=(1,), strides=[2, 1], group=2,
      dilations=[1, 2], label="grouped"),
    c("MaxPool", IMG, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    c("MaxPool", IMG, kernel_shape=[2, 3], pads=[0, 2, 1, 0], label="asymmetric"),
    c("MaxPool", IMG, kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, label="ceil"),
    c("MaxPool", IMG, kernel_shape=[2, 2], dilations=[2, 1], opset=12, label="dilated"),
    c("MaxPool", IMG, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 0, 0, 1],
      label="ceil-padded"),
    c("MaxPool", IMG, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER",
      label="same-lower"),
    c("AveragePool", IMG, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    c("AveragePool", IMG, kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1,
      label="include-pad"),
    c("AveragePool", IMG, kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0],
      label="asymmetric"),
    c("AveragePool", IMG, kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER",
      label="same"),
    c("AveragePool", IMG, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 0, 0, 1],
      count_include_pad=1, label="ceil-padded"),
    c("GlobalAveragePool", IMG), c("GlobalMaxPool", IMG),
    c("BatchNormalization", IMG, positive(4), normal(4), normal(4), positive(4),
      consts=(1, 2, 3, 4), epsilon=1e-3),
    c("InstanceNormalization", IMG, positive(4), normal(4), consts=(1, 2)),
    c("LayerNormalization", X, positive(4), normal(4), consts=(1, 2)),
    c("LayerNormalization", X, positive(4), consts=(1,), axis=1, label="broadcast-scale"),
    c("Dropout", X, opset=13),
    # shapes, indexing, types
    c("Identity", X), c("Cast", X, to=onnx.TensorProto.INT32),
    c("CastLike", X, ints(1), consts=(1,)),
    c("ConstantOfShape", ints(2, 3), consts=(0,),
      value=numpy_helper.from_array(np.array([1.5], np.float32))),
    c("Shape", X, start=1, opset=15), c("Size", X),
    c("Reshape", X, ints(0, -1), consts=(1,)),
    c("Flatten", IMG, axis=2), c("Transpose", IMG, perm=[0, 2, 3, 1]),
    c("Squeeze", normal(2, 1, 3, 1), ints(-1), consts=(1,), opset=13),
    c("Squeeze", normal(2, 1, 3, 1), opset=11, label="all"),
    c("Unsqueeze", X, ints(0, -1), consts=(1,), opset=13),
    c("Unsqueeze", X, axes=[1], opset=11, label="attr"),
    c("Concat", X, normal(2, 2, 4), axis=1),
    c("Split", X, ints(1, 3), consts=(1,), axis=2, n_out=2, opset=13),
    c("Split", normal(2, 7), axis=1, num_outputs=3, n_out=3, opset=18, label="uneven"),
    c("Slice", IMG, ints(-1, 1), ints(-100, 6), ints(3, 2), ints(-2, 2), consts=(1, 2, 3, 4)),
    c("Slice", IMG, ints(5, 0), ints(-100, 100), ints(2, 3), ints(-1, -2), consts=(1, 2, 3, 4),
      label="backwards"),
    c("Slice", IMG, starts=[1], ends=[3], axes=[2], opset=9, label="opset9"),
    c("Gather", X, ints(2, -1, 0), consts=(1,), axis=1),
    c("Gather", X, np.array(-1, np.int64), consts=(1,), axis=2, label="scalar"),
    c("GatherElements", X, RNG.integers(-3, 3, (2, 3, 2)), consts=(1,), axis=2),
    c("Expand", normal(3, 1), ints(2, 1, 4), consts=(1,)),
    c("Tile", X, ints(1, 2, 3), consts=(1,)),
    c("Range", np.array(1, np.int64), np.array(10, np.int64), np.array(3, np.int64),
      consts=(0, 1, 2)),
    c("Pad", IMG, ints(0, 0, 1, -1, 0, 0, 2, 1), np.float32(0.5), consts=(1, 2)),
    *(c("Pad", IMG, ints(0, 0, 2, 1, 0, 0, 1, 2), consts=(1,), mode=mode, label=mode)
      for mode in ("edge", "reflect")),
    c("Pad", IMG, ints(0, 0, 3, 1, 0, 0, 1, 2), consts=(1,), mode="wrap", opset=19,
      label="wrap"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_operator_matches_onnxruntime(case: Case) -> None:
    model = case.model()
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feeds = case.feeds()
    expected = session.run(None, feeds)
    module = convert(model)
    got = module(*(torch.as_tensor(feeds[name]) for name in module.input_names))
    assert len(got) == len(expected)
    for value, reference in zip(got, expected, strict=True):
        array = value.numpy()
        assert array.shape == reference.shape
        if reference.dtype.kind in "iub":
            assert array.dtype.kind == reference.dtype.kind
            np.testing.assert_array_equal(array, reference)
        else:
            np.testing.assert_allclose(array, reference, rtol=1e-5, atol=1e-6)


def test_every_supported_operator_has_a_case() -> None:
    tested = {case.op for case in CASES} | {"Constant"}
    assert set(OPS) - tested == set()


def test_constant_nodes_become_buffers() -> None:
    value = normal(3)
    nodes = [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(value)),
             helper.make_node("Constant", [], ["f"], value_floats=[1.0, 2.0, 3.0]),
             helper.make_node("Add", ["x", "k"], ["s"]), helper.make_node("Mul", ["s", "f"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [2, 3])],
                              [helper.make_tensor_value_info("y", 1, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = convert(model)
    assert [n.op_type for n in module.nodes] == ["Add", "Mul"]
    x = normal(2, 3)
    np.testing.assert_allclose(module(torch.as_tensor(x))[0].numpy(),
                               (x + value) * np.array([1, 2, 3], np.float32), rtol=1e-6)


@pytest.mark.parametrize(("node", "opset", "message"), [
    (helper.make_node("Det", ["x"], ["y"]), 17, "Det (1 node)"),
    (helper.make_node("FusedMatMul", ["x", "x"], ["y"], domain="com.microsoft"), 17,
     "com.microsoft::FusedMatMul"),
    (helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[1]), 17, "Indices output"),
    (helper.make_node("Relu", ["x"], ["y"]), 6, "opset 6 is older than 7"),
])
def test_unsupported_graphs_are_named(node: Any, opset: int, message: str) -> None:
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [2, 2, 2])],
                              [helper.make_tensor_value_info("y", 1, None)])
    imports = [helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    with pytest.raises(UnsupportedGraphError, match=message.replace("(", r"\(").replace(
            ")", r"\)")):
        convert(helper.make_model(graph, opset_imports=imports))
