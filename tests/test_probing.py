"""probing: per-layer cross-validated probe scores against scikit-learn run in the test.

Oracle: the activations are read here with our own forward hooks (not the plugin's), and
``cross_val_score`` of a standardised ``LogisticRegression`` (or ``Ridge``) on them, with the
folds the explanation reports, must give the same fold scores. Planted structure (a layer that
copies the input against one of input-independent noise) checks the scores mean something.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import xaudit
from xaudit.errors import CapabilityError, InputError
from xaudit.host import BLOCK_ENV, BUILTIN_PLUGINS, Host, create_host

torch = pytest.importorskip("torch")
MISSING = [m for m in BUILTIN_PLUGINS if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def host() -> Host:
    return create_host(autoload=False, block=MISSING)


class Net(torch.nn.Module):  # type: ignore[misc]
    """``encode`` copies the input; ``noise`` sees only noise; ``hidden`` is a ReLU MLP layer."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = torch.nn.Linear(6, 6)
        self.noise = torch.nn.Linear(6, 16)
        self.hidden = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU())
        self.head = torch.nn.Linear(12, 2)

    def forward(self, x: Any) -> Any:
        generator = torch.Generator().manual_seed(int(x.shape[0]))
        self.noise(torch.randn(x.shape, generator=generator))
        return self.head(self.hidden(self.encode(x)))


def make_net() -> Net:
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.encode.weight.copy_(torch.eye(6))
        net.encode.bias.zero_()
    return net


def activations(net: Net, X: np.ndarray, layer: str) -> np.ndarray:
    """The oracle's own hook: ``layer``'s output on ``X`` as float64 ``(n, width)``."""
    seen: list[Any] = []
    handle = dict(net.named_modules())[layer].register_forward_hook(
        lambda _m, _i, out: seen.append(out.detach()))
    with torch.no_grad():
        net(torch.as_tensor(X, dtype=torch.float32))
    handle.remove()
    return np.asarray(seen[0].reshape(len(X), -1).double().numpy())


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6)).astype(np.float32)
    return X, (X[:, 0] - X[:, 3] > 0).astype(int)


def test_fold_scores_equal_cross_val_score_on_the_activations(host: Host, data: Any) -> None:
    X, y = data
    net = make_net()
    model = xaudit.adapt(net, feature_shape=[6], device="cpu", host=host)
    layers = ["encode", "noise", "hidden"]
    e = xaudit.explain(model, X, "probing", y=y, host=host, layers=layers, cv=4,
                       regularization=0.5, seed=3)
    assert e.values.shape == (4, 3, 1)
    assert e.feature_names == tuple(layers)
    assert e.output_names == ("cv accuracy",)
    assert e.handoff.kind == "global"
    folds = StratifiedKFold(4, shuffle=True, random_state=e.metadata["random_state"])
    for column, layer in enumerate(layers):
        acts = activations(net, X, layer)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
        ref = cross_val_score(probe, acts, y, cv=folds, scoring="accuracy")
        np.testing.assert_allclose(e.values[:, column, 0], ref, rtol=0, atol=1e-12)
        assert e.metadata["widths"][column] == acts.shape[1]
    mean = dict(zip(e.feature_names, e.values[..., 0].mean(axis=0), strict=True))
    chance = np.bincount(y).max() / y.size
    assert e.metadata["chance"] == pytest.approx(chance)
    assert mean["encode"] > 0.9
    assert abs(mean["noise"] - chance) < 0.15


def test_numeric_labels_use_ridge_r2(host: Host, data: Any) -> None:
    X, _ = data
    target = X[:, 1] * 2.0 - X[:, 2]
    net = make_net()
    model = xaudit.adapt(net, feature_shape=[6], device="cpu", host=host)
    e = xaudit.explain(model, X, "probing", y=target, host=host, layers=["encode"], cv=3)
    assert e.output_names == ("cv r2",)
    assert e.metadata["probe"] == "ridge"
    folds = KFold(3, shuffle=True, random_state=e.metadata["random_state"])
    ref = cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
                          activations(net, X, "encode"), target, cv=folds, scoring="r2")
    np.testing.assert_allclose(e.values[:, 0, 0], ref, atol=1e-12)


def test_refusals(host: Host, data: Any) -> None:
    X, y = data
    model = xaudit.adapt(make_net(), feature_shape=[6], device="cpu", host=host)
    with pytest.raises(InputError, match="needs the labels"):
        xaudit.explain(model, X, "probing", host=host)
    with pytest.raises(InputError, match="rarest class"):
        xaudit.explain(model, X[:6], "probing", y=np.r_[0, 0, 0, 0, 0, 1], host=host)
    linear = LinearRegression().fit(X, y)
    with pytest.raises(CapabilityError):  # a scikit-learn model has no layers
        xaudit.explain(linear, X, "probing", y=y, host=host)


def test_layers_that_do_not_run_are_left_out_unless_named(host: Host, data: Any) -> None:
    X, y = data
    net = make_net()
    net.spare = torch.nn.Linear(6, 2)  # registered, never called by the forward
    model = xaudit.adapt(net, feature_shape=[6], device="cpu", host=host)
    e = xaudit.explain(model, X[:40], "probing", y=y[:40], host=host, cv=2)
    assert "spare" not in e.feature_names
    assert "encode" in e.feature_names
    with pytest.raises(InputError, match="spare did not run"):
        xaudit.explain(model, X[:40], "probing", y=y[:40], host=host, layers=["spare"], cv=2)


MODELS = '''\
import torch


def net(data):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    X = torch.as_tensor(data.X_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train, dtype=torch.long)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model.eval()
'''


def test_probing_from_a_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xaudit.cli import main

    monkeypatch.setenv(BLOCK_ENV, ",".join(MISSING))
    name = f"xaudit_probe_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = {
        "name": "probe", "seed": 4,
        "model": {"factory": f"{name}:net", "options": {"feature_shape": [4], "device": "cpu"}},
        "data": {"source": "sklearn:iris", "explain": {"n": 90}},
        "explainers": [{"id": "probe", "method": "probing",
                        "params": {"layers": ["0", "1", "2"], "cv": 3}}],
        "report": {"formats": ["json"]},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    out = tmp_path / "out"
    assert main(["run", "-q", str(path), "--out", str(out)]) in (0, 5)
    result = xaudit.AuditResult.load(out)
    assert not result.explainer_errors, result.explainer_errors
    e = result.explanations["probe"]
    assert e.values.shape == (3, 3, 1)
    assert e.feature_names == ("0", "1", "2")
    assert e.values[:, 2, 0].mean() > 0.8  # the logits separate iris
    sys.modules.pop(name, None)
