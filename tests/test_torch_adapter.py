"""The torch adapter against the modules' own outputs and torch.autograd (the oracles)."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from seed_models import SimpleCNN, SimpleNN  # noqa: E402

import xaudit  # noqa: E402
from xaudit.errors import InputError, ModelLoadError  # noqa: E402
from xaudit.model import DifferentiableModel, LayeredModel  # noqa: E402

F32, F64 = 1e-6, 1e-9


# -------------------------------------------------------------------- the seeds' models


class TwoInput(nn.Module):
    """One dense branch (6 tabular features), one conv branch (1x12x12 image)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(6, 16)
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(16 + 4 * 10 * 10, 3)

    def forward(self, tabular: Any, image: Any) -> Any:
        joint = torch.cat([F.relu(self.dense(tabular)), F.relu(self.conv(image)).flatten(1)], 1)
        return self.head(joint)


class TupleNet(SimpleNN):
    def forward(self, x: Any) -> Any:
        return self.network(x), self.network[0](x)


class DictNet(SimpleNN):
    def forward(self, x: Any) -> Any:
        return {"hidden": self.network[0](x), "logits": self.network(x)}


@dataclass
class Output:
    logits: Any
    hidden: Any


class ObjectNet(SimpleNN):
    def forward(self, x: Any) -> Any:
        return Output(self.network(x), self.network[0](x))


class TokenNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, ids: Any) -> Any:
        return self.head(self.embed(ids).mean(1))


def built(cls: type[nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls().eval()


def rows(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


def native(module: Any, *arrays: np.ndarray, dtype: Any = None, device: Any = "cpu"
           ) -> np.ndarray:
    """The module's own output on ``arrays`` (the oracle for ``predict``)."""
    dtype = dtype or torch.float32
    with torch.no_grad():
        out = module(*(torch.as_tensor(a, dtype=dtype, device=device) for a in arrays))
    return np.asarray(out.double().cpu().numpy())


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# -------------------------------------------------------------------- predict vs the module


def test_mlp_logits_softmax_and_float64_equal_the_module() -> None:
    net = built(SimpleNN)
    X = rows(64, 10)
    model = xaudit.adapt(net)
    assert model.adapter == "torch"
    assert model.input_spec.feature_shape == (10,)  # inferred from the first Linear
    assert model.output_names == ("output_0", "output_1")
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    reference = native(copy.deepcopy(net).to(model.device), X, device=model.device)
    assert max_diff(model.predict(X), reference) <= F32
    soft = xaudit.adapt(net, output="softmax", device="cpu")
    assert max_diff(soft.predict(X), torch.softmax(torch.as_tensor(reference), 1).numpy()) <= F32
    double = xaudit.adapt(net, dtype="float64", device="cpu")
    assert next(net.parameters()).dtype == torch.float32  # the user's module is not converted
    assert max_diff(double.predict(X), native(copy.deepcopy(net).double(), X,
                                              dtype=torch.float64)) <= F64


def test_cnn_takes_its_row_shape_from_the_first_rows_and_equals_the_module() -> None:
    net = built(SimpleCNN)
    X = rows(8, 3, 32, 32)
    unbound = xaudit.adapt(net, device="cpu")
    assert unbound.input_spec.feature_shape == ()
    assert unbound.output_names == ()
    assert max_diff(unbound.predict(X), native(net, X)) <= F32
    assert unbound.input_spec.feature_shape == (3, 32, 32)
    assert unbound.input_spec.modality == "image"
    with pytest.raises(ModelLoadError, match=r"rows shaped \(32, 32\) were taken as the row "
                                             r"shape.*Conv2d with 3 input channels.*"
                                             r"feature_shape=\[3, H, W\]"):
        xaudit.adapt(net, device="cpu").predict(X[:, 0])
    model = xaudit.adapt(net, feature_shape=[3, 32, 32], device="cpu")
    assert model.input_spec.modality == "image"
    assert max_diff(model.predict(X), native(net, X)) <= F32
    double = xaudit.adapt(net, feature_shape=[3, 32, 32], dtype="float64", device="cpu")
    assert max_diff(double.predict(X), native(copy.deepcopy(net).double(), X,
                                              dtype=torch.float64)) <= F64


@pytest.mark.parametrize(("cls", "key"), [(TupleNet, 0), (DictNet, "logits"),
                                          (ObjectNet, "logits")])
def test_container_outputs_need_and_take_an_output_key(cls: type[nn.Module], key: Any) -> None:
    net = built(cls)
    listed = {TupleNet: "0 (tensor (8, 2)), 1 (tensor (8, 64))",
              DictNet: "'hidden' (tensor (8, 64)), 'logits' (tensor (8, 2))",
              ObjectNet: "'logits' (tensor (8, 2)), 'hidden' (tensor (8, 64))"}[cls]
    with pytest.raises(ModelLoadError, match=r"set output_key to one of: " + re_escape(listed)):
        xaudit.adapt(net)
    wrong = 5 if cls is TupleNet else "logit"
    with pytest.raises(ModelLoadError, match=f"has no element {wrong!r}; available: "
                                             + re_escape(listed)):
        xaudit.adapt(net, output_key=wrong)
    X = rows(8, 10)
    model = xaudit.adapt(net, output_key=key, output="softmax", device="cpu")
    expected = torch.softmax(torch.as_tensor(native(SimpleNN.forward.__get__(net), X)), 1)
    assert max_diff(model.predict(X), expected.numpy()) <= F32


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_two_input_model_has_per_input_specs_and_gradients() -> None:
    net = built(TwoInput)
    with pytest.raises(ModelLoadError, match=r"takes 2 inputs \(tabular, image\); give one"):
        xaudit.adapt(net)
    model = xaudit.adapt(net, feature_shape=[[6], [1, 12, 12]], device="cpu")
    assert model.input_names == ("tabular", "image")
    assert [s.feature_shape for s in model.input_specs] == [(6,), (1, 12, 12)]
    assert [s.modality for s in model.input_specs] == ["tabular", "image"]
    assert model.input_spec == model.input_specs[0]
    A, B = rows(9, 6), rows(9, 1, 12, 12, seed=2)
    assert max_diff(model.predict((A, B)), native(net, A, B)) <= F32
    assert max_diff(model.predict({"image": B, "tabular": A}), native(net, A, B)) <= F32
    with pytest.raises(InputError, match="takes 2 inputs"):
        model.predict(A)
    with pytest.raises(InputError, match=r"input 'image' expects rows shaped \(1, 12, 12\)"):
        model.predict((A, B[:, :, :10]))
    with pytest.raises(InputError, match="different row counts"):
        model.predict((A, B[:5]))
    ta, tb = (t.requires_grad_() for t in model.to_tensors((A, B)))
    ga, gb = torch.autograd.grad(model.torch_forward(ta, tb)[:, 2].sum(), (ta, tb))
    ra, rb = (torch.as_tensor(a, dtype=torch.float32).requires_grad_() for a in (A, B))
    oa, ob = torch.autograd.grad(net(ra, rb)[:, 2].sum(), (ra, rb))
    assert max_diff(ga.numpy(), oa.numpy()) == 0.0
    assert max_diff(gb.numpy(), ob.numpy()) == 0.0


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", F32), ("float64", F64)])
def test_max_batch_splitting_gives_the_one_batch_result(dtype: str, tolerance: float) -> None:
    # CPU kernels pick their blocking by batch size, so the module itself differs by a few ulp
    # between one call on 11 rows and calls on 5: bitwise equality holds against the module
    # called on the same chunks, the one-batch result agrees to the dtype's tolerance.
    net = built(SimpleCNN)
    X = rows(11, 3, 32, 32)
    whole = xaudit.adapt(net, feature_shape=[3, 32, 32], device="cpu", max_batch=1000,
                         dtype=dtype).predict(X)
    split = xaudit.adapt(net, feature_shape=[3, 32, 32], device="cpu", max_batch=5,
                         dtype=dtype).predict(X)
    reference = copy.deepcopy(net).to(getattr(torch, dtype))
    chunks = [native(reference, X[i:i + 5], dtype=getattr(torch, dtype)) for i in range(0, 11, 5)]
    np.testing.assert_array_equal(split, np.concatenate(chunks))
    assert max_diff(split, whole) <= tolerance


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", ["logits", "softmax"])
def test_torch_forward_gradients_equal_autograd_on_the_module(dtype: str, output: str) -> None:
    net = built(SimpleCNN)
    model = xaudit.adapt(net, feature_shape=[3, 32, 32], dtype=dtype, output=output,
                         device="cpu")
    assert isinstance(model, DifferentiableModel)
    X = rows(4, 3, 32, 32)
    (x,) = model.to_tensors(X)
    assert x.dtype == getattr(torch, dtype)
    x.requires_grad_()
    grad = torch.autograd.grad(model.torch_forward(x)[:, 3].sum(), x)[0]
    reference = copy.deepcopy(net).to(getattr(torch, dtype))
    raw = torch.as_tensor(X, dtype=getattr(torch, dtype)).requires_grad_()
    out = reference(raw)
    out = torch.softmax(out, 1) if output == "softmax" else out
    expected = torch.autograd.grad(out[:, 3].sum(), raw)[0]
    tolerance = F32 if dtype == "float32" else F64
    assert max_diff(grad.numpy(), expected.numpy()) <= tolerance * max(1.0, float(
        expected.abs().max()))


def test_named_layers_are_the_modules_own_submodules() -> None:
    net = built(SimpleCNN)
    model = xaudit.adapt(net, feature_shape=[3, 32, 32], device="cpu")
    assert isinstance(model, LayeredModel)
    assert model.capabilities == {"predict", "gradients", "layers", "randomization"}
    assert model.layer_names() == ["conv1", "conv2", "conv3", "pool", "fc1", "fc2"]
    assert model.layer("conv3") is net.conv3
    with pytest.raises(InputError, match=r"has no layer 'conv4'; did you mean .*'conv1'"):
        model.layer("conv4")


def test_integer_inputs_stay_integer_and_are_not_differentiable() -> None:
    net = built(TokenNet)
    model = xaudit.adapt(net, device="cpu")
    model.predict(np.zeros((2, 5), dtype=np.int64))  # the row shape comes from the first rows
    assert model.input_spec.dtype == "int64"
    assert model.input_spec.modality == "text"
    assert model.differentiable_inputs == (False,)
    assert "gradients" in model.capabilities
    ids = np.random.default_rng(0).integers(0, 20, size=(7, 5))
    with torch.no_grad():
        expected = net(torch.as_tensor(ids)).double().numpy()
    assert max_diff(model.predict(ids), expected) <= F32
    assert max_diff(model.predict(ids.astype(float)), expected) <= F32
    assert model.to_tensors(ids)[0].dtype == torch.int64
    with pytest.raises(InputError, match="takes integer ids, got non-integer values"):
        model.predict(ids + 0.5)


# -------------------------------------------------------------------- errors


def test_shape_mismatch_nonfinite_and_random_outputs_are_named() -> None:
    with pytest.raises(ModelLoadError, match=r"probe batch shaped \(8, 3, 28, 28\) \(row shape "
                                             r"given as feature_shape\).*expected"):
        xaudit.adapt(built(SimpleCNN), feature_shape=[3, 28, 28])
    model = xaudit.adapt(built(SimpleNN), device="cpu")
    with pytest.raises(InputError, match=r"expects rows shaped \(10,\), got \(9,\)"):
        model.predict(rows(3, 9))

    class Log(SimpleNN):
        def forward(self, x: Any) -> Any:
            return torch.log(self.network(x))

    with pytest.raises(InputError, match="non-finite output"):
        xaudit.adapt(built(Log), device="cpu").predict(rows(6, 10))

    class AlwaysDropout(SimpleNN):
        def forward(self, x: Any) -> Any:
            return F.dropout(self.network(x), 0.5, training=True)

    with pytest.raises(ModelLoadError, match=r"different outputs when called twice.*dropout"):
        xaudit.adapt(built(AlwaysDropout))
    with pytest.raises(ModelLoadError, match="output_names has 3 name"):
        xaudit.adapt(built(SimpleNN), output_names=["a", "b", "c"])
    with pytest.raises(ModelLoadError, match="single output, whose softmax"):
        xaudit.adapt(nn.Linear(4, 1), output="softmax")


def test_fingerprint_covers_state_and_class_and_ignores_dtype() -> None:
    a = xaudit.adapt(built(SimpleNN), device="cpu").fingerprint()
    assert a == xaudit.adapt(built(SimpleNN), dtype="float64", device="cpu").fingerprint()
    assert a != xaudit.adapt(built(SimpleNN, seed=1), device="cpu").fingerprint()
    assert a != xaudit.adapt(built(TupleNet), output_key=0, device="cpu").fingerprint()
    assert len(a) == 64


# -------------------------------------------------------------------- loading routes


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_factory_and_state_dict_load_with_weights_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = built(SimpleNN)
    weights = tmp_path / "weights.pt"
    torch.save(net.state_dict(), weights)
    (tmp_path / "arch_for_xaudit_test.py").write_text(
        "from test_torch_adapter import SimpleNN\n\ndef build(width=10):\n"
        "    return SimpleNN(width)\n")
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = xaudit.adapt(weights, factory="arch_for_xaudit_test:build", device="cpu")
    assert calls
    assert all(c.get("weights_only") is True for c in calls)
    X = rows(10, 10)
    assert max_diff(model.predict(X), native(net, X)) <= F32
    assert model.fingerprint() == sha256(weights)
    with pytest.raises(ModelLoadError, match=r"holds a state dict.*factory='module:function'"):
        xaudit.adapt(weights)
    with pytest.raises(ModelLoadError, match=r"(?s)does not fit the SimpleNN built by .*size "
                                             "mismatch for network.0.weight"):
        xaudit.adapt(weights, factory="arch_for_xaudit_test:build", factory_kwargs={"width": 9})
    with pytest.raises(ModelLoadError, match="cannot be imported"):
        xaudit.adapt(weights, factory="no_such_module_xaudit:build")
    other = xaudit.adapt(built(SimpleNN, seed=3), weights=str(weights), device="cpu")
    assert max_diff(other.predict(X), native(net, X)) <= F32


def test_pickled_module_is_refused_without_trust(tmp_path: Path) -> None:
    net = built(SimpleNN)
    path = tmp_path / "full.pth"
    torch.save(net, path)
    with pytest.raises(ModelLoadError, match=r"refusing to load full.pth: it holds pickled "
                                             r"Python objects .*arbitrary code.*state_dict\(\)"
                                             r".*trust: true"):
        xaudit.adapt(path)
    trusted = xaudit.adapt(path, trust=True, device="cpu")
    X = rows(5, 10)
    assert max_diff(trusted.predict(X), native(net, X)) <= F32
    assert trusted.fingerprint() == sha256(path)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_torchscript_loads_with_layers_and_gradients(tmp_path: Path) -> None:
    net = built(SimpleNN)
    path = tmp_path / "scripted.ts"
    torch.jit.script(net).save(str(path))
    model = xaudit.adapt(path, device="cpu")
    assert model.input_spec.feature_shape == (10,)
    assert model.input_names == ("x",)
    assert "network.0" in model.layer_names()
    X = rows(6, 10)
    assert max_diff(model.predict(X), native(net, X)) <= F32
    (x,) = model.to_tensors(X)
    x.requires_grad_()
    grad = torch.autograd.grad(model.torch_forward(x)[:, 1].sum(), x)[0]
    raw = torch.as_tensor(X, dtype=torch.float32).requires_grad_()
    expected = torch.autograd.grad(net(raw)[:, 1].sum(), raw)[0]
    assert max_diff(grad.numpy(), expected.numpy()) <= F32
    assert model.fingerprint() == sha256(path)
    with pytest.raises(ModelLoadError, match="holds its own architecture; drop the 'factory'"):
        xaudit.adapt(path.rename(tmp_path / "scripted.pt"), factory="m:f")


def test_torch_export_archive_has_gradients_but_no_layers(tmp_path: Path) -> None:
    net = built(SimpleNN)
    example = (torch.randn(4, 10),)
    batch = torch.export.Dim("batch")
    path = tmp_path / "exported.pt2"
    torch.export.save(torch.export.export(net, example, dynamic_shapes={"x": {0: batch}}), path)
    model = xaudit.adapt(path, device="cpu")
    assert model.capabilities == {"predict", "gradients", "randomization"}
    assert model.layer_names() == []
    with pytest.raises(InputError, match="no named layers"):
        model.layer("network.0")
    assert model.input_spec.feature_shape == (10,)
    X = rows(9, 10)
    assert max_diff(model.predict(X), native(net, X)) <= F32
    (x,) = model.to_tensors(X)
    x.requires_grad_()
    grad = torch.autograd.grad(model.torch_forward(x)[:, 0].sum(), x)[0]
    raw = torch.as_tensor(X, dtype=torch.float32).requires_grad_()
    expected = torch.autograd.grad(net(raw)[:, 0].sum(), raw)[0]
    assert max_diff(grad.numpy(), expected.numpy()) <= F32
    assert model.fingerprint() == sha256(path)
    # a batch size fixed at export: rows go through in padded chunks of that size
    static = xaudit.adapt(torch.export.export(net, example), device="cpu")
    assert max_diff(static.predict(X), native(net, X)) <= F32


def test_export_in_train_mode_and_pickling_archives_are_refused(tmp_path: Path) -> None:
    class WithDropout(SimpleNN):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, x: Any) -> Any:
            return self.network[1:](self.drop(self.network[0](x)))

    torch.manual_seed(0)
    training = WithDropout().train()
    program = torch.export.export(training, (torch.randn(4, 10),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    with pytest.raises(ModelLoadError, match="exported in train mode"):
        xaudit.adapt(program)
    good = tmp_path / "good.pt2"
    torch.export.save(torch.export.export(built(SimpleNN), (torch.randn(4, 10),)), good)
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if "/sample_inputs/" in item.filename:
                buffer = __import__("io").BytesIO()
                torch.save(Output(1, 2), buffer)  # a pickled object weights_only rejects
                data = buffer.getvalue()
            dst.writestr(item, data)
    with pytest.raises(ModelLoadError, match=r"refusing to load bad.pt2: torch.export.load would "
                                             r"unpickle parts of it .*sample_inputs"):
        xaudit.adapt(bad)


def test_wrong_file_types_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"notes\.pt is not a file torch\.load can read"):
        xaudit.adapt(text)
    state = tmp_path / "state.pt2"
    torch.save(built(SimpleNN).state_dict(), state)
    with pytest.raises(ModelLoadError,
                       match=r"state\.pt2 is not a torch\.export archive.*torch\.save"):
        xaudit.adapt(state)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07")
    with pytest.raises(ModelLoadError, match=r"torch adapter reads .*got 'model.onnx'"):
        xaudit.adapt(onnx, adapter="torch")
    with pytest.raises(ModelLoadError, match="does not exist"):
        xaudit.adapt(tmp_path / "missing.pth")
    with pytest.raises(ModelLoadError, match="not a torch device"):
        xaudit.adapt(built(SimpleNN), device="tpu9")


def test_importing_xaudit_and_the_host_does_not_import_torch() -> None:
    code = (
        "import json, sys, xaudit\n"
        "host = xaudit.create_host(autoload=False)\n"
        "claimed = host.adapters.get('torch').claims(lambda X: X)\n"
        "print(json.dumps(['torch' in sys.modules, 'torch' in host.adapters, claimed]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, True, False]
