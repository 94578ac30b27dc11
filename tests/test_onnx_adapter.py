"""The onnx adapter on real Keras 3 models (torch backend) exported to ONNX.

Oracles: onnxruntime run directly, the Keras model's own ``predict``, and gradients of the
Keras model computed by torch autograd through Keras' torch backend. The models are trained
for a few seconds on scikit-learn data sets: a tabular MLP (wine), a small CNN on the 8x8
digits (NHWC), and a two-input model like the seeds' (one dense branch, one convolutional
branch). Small graphs built with ``onnx.helper`` cover the cases Keras does not produce.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
datasets = pytest.importorskip("sklearn.datasets")

from onnx import helper, numpy_helper  # noqa: E402

import xaudit  # noqa: E402
from xaudit.errors import CapabilityError, InputError, ModelLoadError  # noqa: E402
from xaudit.model import DifferentiableModel, describe_model  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
"""Keras' torch backend converts tensors in a way numpy 2 flags; not xaudit's doing."""

KERAS_F32 = 1e-5
"""Model.predict against Keras' own predict (different float32 kernels)."""
GRAD_TOL = 1e-4


@dataclass
class Exported:
    """A trained Keras model, its ONNX export and held-out rows (one array per input)."""

    keras_model: Any
    path: Path
    rows: tuple[np.ndarray, ...]
    input_names: tuple[str, ...]

    def keras_input(self, arrays: tuple[Any, ...]) -> Any:
        return list(arrays) if len(arrays) > 1 else arrays[0]


@pytest.fixture(scope="session")
def keras() -> Any:
    """Keras 3 on its torch backend (the variable must be set before the first import)."""
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        module = pytest.importorskip("keras")
    finally:
        if previous is None:
            os.environ.pop("KERAS_BACKEND", None)
        else:
            os.environ["KERAS_BACKEND"] = previous
    if module.backend.backend() != "torch":
        pytest.skip(f"keras was already imported with the {module.backend.backend()} backend")
    return module


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = datasets.load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    return images, data.target.astype(np.int64)


def _train_and_export(keras: Any, model: Any, X: Any, y: np.ndarray, folder: Path, name: str,
                      rows: tuple[np.ndarray, ...], epochs: int) -> Exported:
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():  # Keras' tracing and numpy 2 notices, not ours
        warnings.simplefilter("ignore")
        model.fit(X, y, epochs=epochs, batch_size=64, verbose=0)
        model(rows[0][:2] if len(rows) == 1 else [r[:2] for r in rows])
        model.export(str(path), format="onnx", verbose=False)
    names = tuple(t.name for t in model.inputs)
    return Exported(model, path, rows, names)


@pytest.fixture(scope="session")
def mlp(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    keras.utils.set_random_seed(0)
    data = datasets.load_wine()
    X = ((data.data - data.data.mean(0)) / data.data.std(0)).astype(np.float32)
    inputs = keras.Input((13,), name="wine")
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h = keras.layers.Dense(8, activation="tanh")(h)
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    return _train_and_export(keras, model, X, data.target, tmp_path_factory.mktemp("mlp"),
                             "mlp", (X[::7],), epochs=20)


@pytest.fixture(scope="session")
def cnn(keras: Any, digits: tuple[np.ndarray, np.ndarray],
        tmp_path_factory: pytest.TempPathFactory) -> Exported:
    keras.utils.set_random_seed(0)
    images, labels = digits
    inputs = keras.Input((8, 8, 1), name="digit")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Conv2D(16, 3, activation="relu")(h)
    h = keras.layers.Dropout(0.2)(keras.layers.Flatten()(h))
    outputs = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    return _train_and_export(keras, model, images[:1500], labels[:1500],
                             tmp_path_factory.mktemp("cnn"), "cnn", (images[1500:1540],),
                             epochs=3)


@pytest.fixture(scope="session")
def two_input(keras: Any, digits: tuple[np.ndarray, np.ndarray],
              tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The seeds' two-input model, scaled to 8x8 digits: a dense and a convolutional branch."""
    keras.utils.set_random_seed(0)
    images, labels = digits
    first = keras.Input((8, 8, 1), name="dense_branch")
    second = keras.Input((8, 8, 1), name="conv_branch")
    conv = keras.layers.Conv2D(8, (3, 3), activation="relu")(second)
    joint = keras.layers.concatenate([keras.layers.Flatten()(first),
                                      keras.layers.Flatten()(conv)])
    hidden = keras.layers.Dropout(0.2)(keras.layers.Dense(32, activation="relu")(joint))
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs=[first, second], outputs=outputs)
    train, test = images[:1500], images[1500:1540]
    return _train_and_export(keras, model, [train, train[:, ::-1]], labels[:1500],
                             tmp_path_factory.mktemp("two"), "two_input",
                             (test, test[:, ::-1].copy()), epochs=2)


@pytest.fixture(params=["mlp", "cnn", "two_input"])
def exported(request: pytest.FixtureRequest) -> Exported:
    result: Exported = request.getfixturevalue(request.param)
    return result


def _ort(path: Path, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return np.asarray(session.run(None, dict(zip(names, arrays, strict=True)))[0])


# -------------------------------------------------------------------- Keras models


def test_inputs_are_read_from_the_graph(exported: Exported) -> None:
    model = xaudit.adapt(exported.path)
    assert model.adapter == "onnx"
    assert model.input_names == exported.input_names
    shapes = tuple(tuple(t.shape[1:]) for t in exported.keras_model.inputs)
    assert tuple(s.feature_shape for s in model.input_specs) == shapes
    assert {s.dtype for s in model.input_specs} == {"float32"}
    assert model.input_spec is model.input_specs[0]
    assert model.fixed_batch is None
    assert model.output_names == tuple(f"output_{i}" for i in range(
        exported.keras_model.outputs[0].shape[-1]))
    assert model.task == "classification"


def test_predict_equals_onnxruntime_and_keras(exported: Exported) -> None:
    model = xaudit.adapt(exported.path)
    rows = exported.rows
    got = model.predict(rows if len(rows) > 1 else rows[0])
    reference = _ort(exported.path, rows)
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-6)
    native = exported.keras_model.predict(exported.keras_input(rows), verbose=0)
    np.testing.assert_allclose(got, native, rtol=0, atol=KERAS_F32)


def test_gradients_equal_keras_torch_backend(exported: Exported) -> None:
    model = xaudit.adapt(exported.path)
    assert "gradients" in model.capabilities, model.gradient_status
    assert isinstance(model, DifferentiableModel)
    assert model.conversion_check is not None
    assert model.conversion_check["passed"]
    rows = exported.rows
    tensors = [t.requires_grad_() for t in model.to_tensors(rows)]
    out = model.torch_forward(*tensors)
    np.testing.assert_allclose(out.detach().numpy(), model.predict(rows), rtol=0, atol=1e-5)
    leaves = [torch.tensor(r, requires_grad=True) for r in rows]
    keras_out = exported.keras_model(exported.keras_input(tuple(leaves)), training=False)
    for k in (0, 2):
        ours = torch.autograd.grad(out[:, k].sum(), tensors, retain_graph=True)
        theirs = torch.autograd.grad(keras_out[:, k].sum(), leaves, retain_graph=True)
        for a, b in zip(ours, theirs, strict=True):
            assert float(b.abs().max()) > 0
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=GRAD_TOL)


def test_batches_of_any_size(cnn: Exported) -> None:
    model = xaudit.adapt(cnn.path, max_batch=16)
    images = np.concatenate([cnn.rows[0]] * 3)
    reference = _ort(cnn.path, (images,))
    for n in (1, 5, 16, 17, 120):
        np.testing.assert_allclose(model.predict(images[:n]), reference[:n], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.predict(images[0]), reference[:1], rtol=0, atol=1e-6)
    for n in (1, 9):
        out = model.torch_forward(*model.to_tensors(images[:n]))
        np.testing.assert_allclose(out.detach().numpy(), reference[:n], rtol=0, atol=1e-5)


def test_layout_is_recorded_not_applied(cnn: Exported, two_input: Exported,
                                        mlp: Exported) -> None:
    model = xaudit.adapt(cnn.path)
    assert (model.input_spec.layout, model.input_spec.layout_source) == ("NHWC", "graph")
    assert describe_model(model)["input_spec"]["layout"] == "NHWC"
    with pytest.raises(InputError, match=r"NHWC.*does not transpose"):
        model.predict(np.moveaxis(cnn.rows[0], -1, 1))
    two = xaudit.adapt(two_input.path)
    assert [(s.layout, s.layout_source) for s in two.input_specs] == [
        ("NHWC", "shape"), ("NHWC", "graph")]
    assert xaudit.adapt(mlp.path).input_spec.layout is None
    stated = xaudit.adapt(cnn.path, layout="NHWC")
    assert stated.input_spec.layout_source == "option"
    with pytest.raises(ModelLoadError, match=r"layout 'NCHW' was given.*takes input 'digit' "
                                             r"as NHWC"):
        xaudit.adapt(cnn.path, layout="NCHW")
    with pytest.raises(ModelLoadError, match="applies to image inputs"):
        xaudit.adapt(mlp.path, layout="NHWC")


def test_multi_input_calls(two_input: Exported) -> None:
    model = xaudit.adapt(two_input.path)
    first, second = two_input.rows
    expected = model.predict((first, second))
    np.testing.assert_array_equal(model.predict([first, second]), expected)
    np.testing.assert_array_equal(
        model.predict({"conv_branch": second, "dense_branch": first}), expected)
    with pytest.raises(InputError, match=r"takes 2 inputs \(dense_branch, conv_branch\)"):
        model.predict(first)
    with pytest.raises(InputError, match="different row counts"):
        model.predict((first, second[:3]))
    with pytest.raises(InputError, match="missing"):
        model.predict({"dense_branch": first})


def test_output_transform_and_double_softmax(cnn: Exported) -> None:
    with pytest.raises(ModelLoadError, match="already ends in Softmax"):
        xaudit.adapt(cnn.path, output="softmax")
    named = xaudit.adapt(cnn.path, output_key=0, output_names=[f"digit {i}" for i in range(10)])
    assert named.output_names[3] == "digit 3"
    with pytest.raises(ModelLoadError, match="output_names has 2"):
        xaudit.adapt(cnn.path, output_names=["a", "b"])


def test_fingerprints(cnn: Exported) -> None:
    model = xaudit.adapt(cnn.path)
    assert model.fingerprint() == hashlib.sha256(cnn.path.read_bytes()).hexdigest()
    assert xaudit.adapt(str(cnn.path)).fingerprint() == model.fingerprint()
    proto = onnx.load(str(cnn.path))
    from_proto = xaudit.adapt(proto)
    assert from_proto.adapter == "onnx"
    assert from_proto.fingerprint() == hashlib.sha256(
        proto.SerializeToString(deterministic=True)).hexdigest()
    np.testing.assert_array_equal(from_proto.predict(cnn.rows[0]), model.predict(cnn.rows[0]))


def test_mismatching_conversion_is_not_offered(mlp: Exported,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from xaudit.adapters.onnx import to_torch as onnx_to_torch

    broken = dict(onnx_to_torch.OPS, Relu=lambda node, x: x)
    monkeypatch.setattr(onnx_to_torch, "OPS", broken)
    model = xaudit.adapt(mlp.path)
    assert model.capabilities == frozenset({"predict"})
    assert "does not reproduce onnxruntime" in model.gradient_status
    assert model.conversion_check is not None
    assert not model.conversion_check["passed"]
    with pytest.raises(CapabilityError, match="does not reproduce onnxruntime"):
        model.torch_forward(*model.to_tensors(mlp.rows[0]))
    np.testing.assert_allclose(model.predict(mlp.rows[0]), _ort(mlp.path, mlp.rows), atol=1e-6)


def test_gradients_can_be_switched_off(mlp: Exported) -> None:
    model = xaudit.adapt(mlp.path, gradients=False)
    assert model.capabilities == frozenset({"predict"})
    assert "switched off" in model.gradient_status


def test_not_onnx_files_are_refused(mlp: Exported, tmp_path: Path) -> None:
    keras_file = tmp_path / "model.keras"
    mlp.keras_model.save(keras_file)
    real = mlp.path.read_bytes()
    contents = {
        "zip archive (a Keras .keras file": keras_file.read_bytes(),
        "HDF5 file": b"\x89HDF\r\n\x1a\n" + bytes(64),
        "Python pickle": pickle.dumps({"weights": [1, 2]}),
        "text file": b"name: not a model\n",
        "empty file": b"",
        "does not parse as an ONNX protobuf": real[: len(real) // 2],
        "holds no graph": b"\x08\x07",
    }
    for what, data in contents.items():
        path = tmp_path / "model.onnx"
        path.write_bytes(data)
        with pytest.raises(ModelLoadError, match="is not an ONNX model") as info:
            xaudit.adapt(path)
        assert what in str(info.value)
    with pytest.raises(ModelLoadError, match="does not exist"):
        xaudit.adapt(tmp_path / "missing.onnx")


# -------------------------------------------------------------------- hand-built graphs


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any],
           inits: list[Any] | None = None, opset: int = 17) -> Any:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _tensor(name: str, shape: list[Any], elem: int = 1) -> Any:
    return helper.make_tensor_value_info(name, elem, shape)


def test_unsupported_operator_refuses_gradients_by_name() -> None:
    proto = _model([helper.make_node("Det", ["m"], ["d"])], [_tensor("m", ["n", 2, 2])],
                   [_tensor("d", ["n"])])
    model = xaudit.adapt(proto)
    assert model.capabilities == frozenset({"predict"})
    assert "Det (1 node)" in model.gradient_status
    matrices = np.random.default_rng(0).standard_normal((4, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(model.predict(matrices)[:, 0], np.linalg.det(matrices),
                               rtol=1e-5)
    with pytest.raises(CapabilityError, match="not support: Det"):
        model.torch_forward(*model.to_tensors(matrices))
    # the refusal of a gradient method quotes the converter's reason
    with pytest.raises(CapabilityError, match=r"capability 'gradients' \(not available: .*Det"):
        xaudit.explain(model, matrices, method="gradient.saliency")


def test_channel_first_graph_and_fixed_batch() -> None:
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    dense = rng.standard_normal((4, 2)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "d"], ["y"])]
    inits = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(dense, "d")]
    proto = _model(nodes, [_tensor("x", [2, 3, 6, 6])], [_tensor("y", [2, 2])], inits)
    model = xaudit.adapt(proto)
    assert (model.input_spec.layout, model.input_spec.layout_source) == ("NCHW", "graph")
    assert model.fixed_batch == 2
    images = rng.standard_normal((5, 3, 6, 6)).astype(np.float32)
    x = torch.as_tensor(images)
    reference = (torch.nn.functional.conv2d(x, torch.as_tensor(weights), padding=1).relu()
                 .mean(dim=(2, 3)) @ torch.as_tensor(dense)).numpy()
    np.testing.assert_allclose(model.predict(images), reference, rtol=1e-5, atol=1e-6)
    assert "gradients" in model.capabilities


def test_output_selection_by_name_and_index() -> None:
    weights = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"])]
    proto = _model(nodes, [_tensor("x", ["n", 3])], [_tensor("logits", ["n", 4]),
                                                     _tensor("probs", ["n", 4])],
                   [numpy_helper.from_array(weights, "w")])
    with pytest.raises(ModelLoadError, match=r"2 outputs \(logits, probs\).*output_key"):
        xaudit.adapt(proto)
    with pytest.raises(ModelLoadError, match="did you mean 'probs'"):
        xaudit.adapt(proto, output_key="prob")
    rows = np.random.default_rng(3).standard_normal((6, 3)).astype(np.float32)
    logits = rows.astype(np.float64) @ weights.astype(np.float64)
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    by_name = xaudit.adapt(proto, output_key="logits")
    np.testing.assert_allclose(by_name.predict(rows), logits, rtol=1e-5, atol=1e-6)
    assert by_name.task == "other"
    np.testing.assert_allclose(xaudit.adapt(proto, output_key=1).predict(rows), softmax,
                               rtol=1e-5, atol=1e-7)
    soft = xaudit.adapt(proto, output_key="logits", output="softmax")
    np.testing.assert_allclose(soft.predict(rows), softmax, rtol=1e-5, atol=1e-7)
    out = soft.torch_forward(*soft.to_tensors(rows))
    np.testing.assert_allclose(out.detach().numpy(), softmax, rtol=1e-5, atol=1e-7)
    sig = xaudit.adapt(proto, output_key="logits", output="sigmoid")
    np.testing.assert_allclose(sig.predict(rows), 1 / (1 + np.exp(-logits)), rtol=1e-5)
    assert sig.task == "classification"


def test_symbolic_feature_axes_need_feature_shape() -> None:
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    proto = _model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
                   [_tensor("x", ["n", "length"])], [_tensor("y", ["n", 1])], [axes], opset=13)
    with pytest.raises(ModelLoadError, match=r"rows shaped \(\?\); give their shape"):
        xaudit.adapt(proto)
    with pytest.raises(ModelLoadError, match="does not fit"):
        xaudit.adapt(proto, feature_shape=[4, 2])
    model = xaudit.adapt(proto, feature_shape=[5], feature_names=list("abcde"))
    assert model.input_spec.feature_names == tuple("abcde")
    np.testing.assert_allclose(model.predict(np.ones((3, 5))), np.full((3, 1), 5.0))


def test_outputs_must_have_one_row_per_input_row() -> None:
    proto = _model([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=1)],
                   [_tensor("x", ["n", 4])], [_tensor("y", [1, 1])], opset=13)
    with pytest.raises(ModelLoadError, match=r"shaped \(1, 1\) for 3 input rows"):
        xaudit.adapt(proto)


def test_importing_xaudit_imports_no_framework() -> None:
    code = ("import sys, xaudit, xaudit.adapters.onnx.adapter; "
            "from xaudit.host import create_host; create_host(); "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
