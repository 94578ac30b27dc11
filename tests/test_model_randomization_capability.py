"""Model randomization is a capability the adapters offer and ``model_randomization`` asks for.

Adebayo et al. 2018 randomize the model an explanation explains: layers re-initialised (model
parameter randomization), labels permuted before retraining (data randomization), and for tree
ensembles the leaves permuted. Each adapter's randomized model is compared with an independent
oracle: torch's own ``reset_parameters`` under the same seed on a deep copy, scikit-learn's
``apply`` routing rows to leaves and its ``clone`` fitted on the same permuted labels, a
brute-force Spearman correlation for a third-party adapter written here. Models without the
capability are refused with a message naming them and what they offer.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

import xaudit
from xaudit import CapabilityError, InputError
from xaudit.api import CountingModel
from xaudit.data import Dataset
from xaudit.hookspecs import hookimpl
from xaudit.model import InputSpec, ModelBase, sha256_of_arrays
from xaudit.multi_input import pack_inputs, pack_rows
from xaudit.plugin import Adapter, AdapterOptions
from xaudit.plugins.checks.randomization import ModelRandomization
from xaudit.randomization import (
    RandomizableModel,
    Randomization,
    RandomizedStage,
    offered,
    randomize,
)
from xaudit.registry import Registry

torch = pytest.importorskip("torch")
sklearn_base = pytest.importorskip("sklearn.base")

SEED = 17


@pytest.fixture(scope="module")
def diabetes() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return {"X_train": X[:300], "y_train": y[:300], "rows": X[300:316], "bg": X[:40]}


# ------------------------------------------------------------------ torch: layers


class Scaled(torch.nn.Module):
    """A layer without ``reset_parameters``: its parameters get normal draws of their spread."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(0.5, 2.0, 4))

    def forward(self, x: Any) -> Any:
        return x * self.scale


def _net() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4),
                               Scaled(), torch.nn.Linear(4, 3)).eval()


def _oracle_layers(net: Any, names: list[str], seed: int) -> Any:
    """A deep copy of ``net`` with ``names`` re-initialised in turn, each under ``seed``."""
    oracle = copy.deepcopy(net)
    for name in names:
        layer = dict(oracle.named_modules())[name]
        torch.manual_seed(seed)
        with torch.no_grad():
            if isinstance(layer, Scaled):
                std = float(layer.scale.std())
                layer.scale.copy_(torch.randn(4) * std)
            else:
                layer.reset_parameters()
    return oracle


def _same_parameters(a: Any, b: Any) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("mode", ["cascading", "independent"])
def test_torch_layers_equal_reset_parameters_under_the_same_seed(mode: str) -> None:
    net = _net()
    before = copy.deepcopy(net.state_dict())
    model = xaudit.adapt(net, feature_shape=[6], device="cpu")
    fingerprint = model.fingerprint()
    assert "randomization" in model.capabilities
    assert isinstance(model, RandomizableModel)
    assert offered(model) == ("layers",)

    stages = randomize(model, Randomization("layers", mode=mode, reinit_seed=SEED),
                       np.random.default_rng(0))
    top_down = ["4", "3", "2", "0"]  # modules owning parameters, from the output
    assert [s.name for s in stages] == top_down
    X = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    for i, stage in enumerate(stages):
        names = top_down[:i + 1] if mode == "cascading" else [top_down[i]]
        oracle = _oracle_layers(net, names, SEED)
        for name in top_down:
            assert _same_parameters(stage.model.layer(name), dict(oracle.named_modules())[name])
        with torch.no_grad():
            expected = oracle(torch.as_tensor(X)).double().numpy()
        np.testing.assert_array_equal(stage.model.predict(X), expected)
        assert stage.model.fingerprint() != fingerprint
    # the model itself is untouched
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert model.fingerprint() == fingerprint == xaudit.adapt(
        net, feature_shape=[6], device="cpu").fingerprint()


def test_torch_max_layers_bounds_the_stages() -> None:
    model = xaudit.adapt(_net(), feature_shape=[6], device="cpu")
    stages = randomize(model, Randomization("layers", max_layers=2, reinit_seed=3),
                       np.random.default_rng(0))
    assert [s.name for s in stages] == ["4", "3"]


def test_torch_models_offer_only_layers() -> None:
    model = xaudit.adapt(_net(), feature_shape=[6], device="cpu")
    with pytest.raises(CapabilityError, match=r"cannot randomize 'labels': it offers layers"):
        randomize(model, Randomization("labels"), np.random.default_rng(0))


def test_proxies_forward_the_capability() -> None:
    net = _net()
    model = xaudit.adapt(net, feature_shape=[6], device="cpu")
    counted = CountingModel(model)
    assert isinstance(counted, RandomizableModel)
    assert offered(counted) == ("layers",)
    stages = randomize(counted, Randomization("layers", reinit_seed=SEED),
                       np.random.default_rng(0))
    oracle = _oracle_layers(net, ["4", "3", "2", "0"], SEED)
    assert _same_parameters(stages[-1].model.layer("0"), oracle[0])
    assert counted.calls == 0


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, 2), torch.nn.Linear(4, 2)

    def forward(self, x: Any, z: Any) -> Any:
        return self.a(x) + self.b(z)


def test_packed_models_forward_the_capability_and_stay_packed() -> None:
    torch.manual_seed(0)
    net = TwoInputs().eval()
    packed = pack_inputs(xaudit.adapt(net, feature_shape=[[3], [4]], device="cpu"))
    assert offered(packed) == ("layers",)
    stages = randomize(packed, Randomization("layers", reinit_seed=SEED),
                       np.random.default_rng(0))
    assert [s.name for s in stages] == ["b", "a"]
    rng = np.random.default_rng(2)
    x, z = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 4)).astype(np.float32)
    oracle = _oracle_layers(net, ["b", "a"], SEED)
    with torch.no_grad():
        expected = oracle(torch.as_tensor(x), torch.as_tensor(z)).double().numpy()
    rows = pack_rows(packed.slots, (x, z), "TwoInputs")  # type: ignore[attr-defined]
    np.testing.assert_allclose(stages[-1].model.predict(rows), expected, rtol=1e-6)
    assert type(stages[-1].model) is type(packed)


# ------------------------------------------------------------------ trees: leaves


def _leaf_values(tree: Any) -> np.ndarray:
    leaves = tree.left == -1
    return np.asarray(tree.value[leaves])


def _check_permuted(original: Any, randomized: Any) -> None:
    """Per tree: same splits, leaf values a permutation of the original's, not all unchanged;
    internal values the cover-weighted means of the leaves below (root: of all leaves)."""
    assert len(original.trees) == len(randomized.trees)
    moved = 0
    for old, new in zip(original.trees, randomized.trees, strict=True):
        for field in ("left", "right", "feature", "threshold", "missing_left", "cover"):
            np.testing.assert_array_equal(getattr(old, field), getattr(new, field))
        a, b = _leaf_values(old), _leaf_values(new)
        np.testing.assert_array_equal(np.sort(a, axis=0), np.sort(b, axis=0))
        moved += int(not np.array_equal(a, b))
        leaves = new.left == -1
        if not leaves[0]:
            cover = new.cover[leaves]
            np.testing.assert_allclose(new.value[0], cover @ new.value[leaves] / cover.sum(),
                                       rtol=1e-9, atol=1e-12)
    assert moved > len(original.trees) // 2


def test_sklearn_forest_leaves_are_permuted_and_predict_through_the_forests_routing(
        diabetes: dict[str, np.ndarray]) -> None:
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0)
    forest.fit(diabetes["X_train"], diabetes["y_train"])
    model = xaudit.adapt(forest)
    assert offered(model) == ("leaves", "labels")
    rows = diabetes["rows"]
    (stage,) = randomize(model, Randomization("leaves", probe_rows=rows),
                         np.random.default_rng(SEED))
    assert stage.name == "leaves"
    randomized = stage.model.tree_ensemble()  # type: ignore[attr-defined]
    _check_permuted(model.tree_ensemble(), randomized)  # type: ignore[attr-defined]
    # scikit-learn routes the rows to its leaves; the forest averages the new leaf values
    leaves = forest.apply(rows.astype(np.float32))
    expected = np.mean([tree.value[leaves[:, t], 0]
                        for t, tree in enumerate(randomized.trees)], axis=0)
    np.testing.assert_allclose(stage.model.predict(rows)[:, 0], expected, rtol=1e-12)
    assert stage.model.fingerprint() != model.fingerprint()
    np.testing.assert_array_equal(model.predict(rows)[:, 0], forest.predict(rows))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosted_leaves_are_permuted_per_tree(library: str,
                                              diabetes: dict[str, np.ndarray]) -> None:
    lib = pytest.importorskip(library)
    estimator = (lib.XGBRegressor(n_estimators=12, max_depth=3, random_state=0)
                 if library == "xgboost" else
                 lib.LGBMRegressor(n_estimators=12, num_leaves=8, random_state=0, verbose=-1))
    estimator.fit(diabetes["X_train"], diabetes["y_train"])
    model = xaudit.adapt(estimator)
    assert offered(model) == ("leaves", "labels")
    rows = diabetes["rows"]
    for how in ("permute", "resample"):
        (stage,) = randomize(model, Randomization("leaves", leaves=how, probe_rows=rows),
                             np.random.default_rng(SEED))
        randomized = stage.model.tree_ensemble()  # type: ignore[attr-defined]
        if how == "permute":
            _check_permuted(model.tree_ensemble(), randomized)  # type: ignore[attr-defined]
        raw = randomized.base_score + sum(
            w * tree.value[tree.leaves(randomized.cast(rows))]
            for w, tree in zip(randomized.weights, randomized.trees, strict=True))
        np.testing.assert_allclose(stage.model.predict(rows), raw, rtol=1e-6)
        assert stage.model.fingerprint() != model.fingerprint()
    np.testing.assert_allclose(model.predict(rows)[:, 0], estimator.predict(rows), rtol=1e-6)


def test_leaves_are_refused_when_the_structure_is_not_the_models_output(
        diabetes: dict[str, np.ndarray]) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    y = (diabetes["y_train"] > 140).astype(int)
    model = xaudit.adapt(lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(
        diabetes["X_train"], y))  # two probability columns, one raw score
    with pytest.raises(InputError, match="does not reproduce the model's outputs"):
        randomize(model, Randomization("leaves", probe_rows=diabetes["rows"]),
                  np.random.default_rng(0))


# ------------------------------------------------------------------ labels


def _estimators() -> list[Any]:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    found = [GradientBoostingRegressor(n_estimators=20, max_depth=2, random_state=0),
             make_pipeline(StandardScaler(), Ridge(alpha=0.5))]
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    return [*found, xgboost.XGBRegressor(n_estimators=10, max_depth=2, random_state=0),
            lightgbm.LGBMRegressor(n_estimators=10, num_leaves=6, random_state=0, verbose=-1)]


@pytest.mark.parametrize("index", range(4))
def test_labels_refit_equals_a_clone_fitted_on_the_same_permutation(
        index: int, diabetes: dict[str, np.ndarray]) -> None:
    estimator = _estimators()[index]
    X_train, y_train, rows = diabetes["X_train"], diabetes["y_train"], diabetes["rows"]
    estimator.fit(X_train, y_train)
    original = estimator.predict(rows)
    model = xaudit.adapt(estimator)
    assert "labels" in offered(model)
    (stage,) = randomize(model, Randomization("labels", X_train=X_train, y_train=y_train),
                         np.random.default_rng(SEED))
    assert stage.name == "labels"
    oracle = sklearn_base.clone(estimator).fit(
        X_train, np.random.default_rng(SEED).permutation(y_train))
    np.testing.assert_allclose(stage.model.predict(rows)[:, 0], oracle.predict(rows),
                               rtol=1e-6, atol=1e-9)
    assert not np.allclose(oracle.predict(rows), original)
    np.testing.assert_array_equal(estimator.predict(rows), original)  # the original is kept
    assert stage.model.fingerprint() != model.fingerprint()


def test_labels_keep_the_columns_a_frame_fitted_estimator_expects(
        diabetes: dict[str, np.ndarray]) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import RandomForestRegressor

    names = [f"f{i}" for i in range(10)]
    frame = pd.DataFrame(diabetes["X_train"], columns=names)
    forest = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0)
    model = xaudit.adapt(forest.fit(frame, diabetes["y_train"]))
    (stage,) = randomize(model, Randomization("labels", X_train=diabetes["X_train"],
                                              y_train=diabetes["y_train"]),
                         np.random.default_rng(SEED))
    oracle = sklearn_base.clone(forest).fit(
        frame, np.random.default_rng(SEED).permutation(diabetes["y_train"]))
    rows = pd.DataFrame(diabetes["rows"], columns=names)
    np.testing.assert_allclose(stage.model.predict(diabetes["rows"])[:, 0],
                               oracle.predict(rows), rtol=1e-12)


def test_labels_need_training_rows(diabetes: dict[str, np.ndarray]) -> None:
    from sklearn.linear_model import Ridge

    model = xaudit.adapt(Ridge().fit(diabetes["X_train"], diabetes["y_train"]))
    with pytest.raises(InputError, match="needs the training rows and labels"):
        randomize(model, Randomization("labels"), np.random.default_rng(0))


def test_a_bare_booster_offers_leaves_only(diabetes: dict[str, np.ndarray]) -> None:
    xgboost = pytest.importorskip("xgboost")
    booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(diabetes["X_train"],
                                                              label=diabetes["y_train"]), 5)
    model = xaudit.adapt(booster)
    assert offered(model) == ("leaves",)
    with pytest.raises(CapabilityError, match="cannot randomize 'labels': it offers leaves"):
        randomize(model, Randomization("labels", X_train=diabetes["X_train"],
                                       y_train=diabetes["y_train"]), np.random.default_rng(0))


# ------------------------------------------------------------------ a third-party adapter


@dataclasses.dataclass(eq=False)
class LeastSquaresModel(ModelBase):
    """A third party's linear model ``X @ w``, fitted by least squares; offers ``labels``.

    ``handed_out`` records each request and the permuted labels its randomized model was fitted
    on, so a test can refit independently.
    """

    weights: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    handed_out: list[tuple[Randomization, np.ndarray]] = dataclasses.field(default_factory=list)

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X @ self.weights)

    def fingerprint(self) -> str:
        return sha256_of_arrays(self.weights)

    def randomizations(self) -> tuple[str, ...]:
        return ("labels",)

    def randomized(self, request: Randomization,
                   rng: np.random.Generator) -> tuple[RandomizedStage, ...]:
        X, y = request.training(self)
        permuted = rng.permutation(y)
        self.handed_out.append((request, permuted))
        weights = np.linalg.lstsq(X, permuted, rcond=None)[0]
        return (RandomizedStage("labels", dataclasses.replace(self, weights=weights,
                                                              handed_out=[])),)


class LeastSquaresAdapter(Adapter):
    name = "test.lstsq"
    summary = "(X, y) pairs fitted by least squares."

    @classmethod
    def claims(cls, obj: object) -> bool:
        return isinstance(obj, tuple) and len(obj) == 2

    @classmethod
    def load(cls, obj: object, options: AdapterOptions) -> LeastSquaresModel:
        assert isinstance(obj, tuple)
        X, y = obj
        return LeastSquaresModel(
            name="lstsq", adapter=cls.name, task="regression",
            input_spec=InputSpec((X.shape[1],)), output_names=("y",),
            capabilities=frozenset({"predict", "randomization"}),
            weights=np.linalg.lstsq(X, y, rcond=None)[0])


class ThirdParty:
    @hookimpl
    def xaudit_register_adapters(self, registry: Registry[Adapter]) -> None:
        registry.add(LeastSquaresAdapter)


def test_a_third_party_adapter_offers_randomization_and_the_check_uses_it(
        diabetes: dict[str, np.ndarray]) -> None:
    host = xaudit.create_host(plugins=[ThirdParty()], autoload=False)
    X_train, y_train, rows, bg = (diabetes[k] for k in ("X_train", "y_train", "rows", "bg"))
    model = host.adapt((X_train, y_train), adapter="test.lstsq")
    assert isinstance(model, LeastSquaresModel)
    explanation = xaudit.explain(model, rows, "ablation", background=bg, host=host,
                                 baseline="mean")
    data = Dataset.from_arrays(X_train, y_train, background=bg)
    result = xaudit.check("model_randomization", model, explanation, data=data, host=host,
                          seed=4)
    assert result.details["randomization"] == "labels"
    assert result.details["stages"] == ["labels"]
    ((request, permuted),) = model.handed_out
    np.testing.assert_array_equal(request.X_train, X_train)
    np.testing.assert_array_equal(np.sort(permuted), np.sort(y_train))
    assert not np.array_equal(permuted, y_train)
    # oracle: mean ablation of a linear model gives w * (x - mean background); the check's
    # value is the Spearman correlation of those with the refit weights' ones, row by row
    refit = np.linalg.lstsq(X_train, permuted, rcond=None)[0]
    centred = rows - bg.mean(axis=0)
    expected = [spearmanr(model.weights * c, refit * c)[0] for c in centred]
    np.testing.assert_allclose(result.values, expected, rtol=1e-9)
    assert result.value == pytest.approx(np.mean(expected))


def test_the_host_refuses_a_kind_the_model_lacks_before_any_work(
        diabetes: dict[str, np.ndarray]) -> None:
    host = xaudit.create_host(plugins=[ThirdParty()], autoload=False)
    model = host.adapt((diabetes["X_train"], diabetes["y_train"]), adapter="test.lstsq")
    host.negotiate_check("model_randomization", model, {"randomization": "labels"})
    with pytest.raises(CapabilityError) as info:
        host.negotiate_check("model_randomization", model, {"randomization": "layers"})
    assert str(info.value) == (
        "check 'model_randomization' needs randomization 'layers' (the model offers labels), "
        "which model 'lstsq' (adapter 'test.lstsq', tabular input, capabilities: predict, "
        "randomization) does not offer")
    assert not model.handed_out


def test_a_suite_naming_a_kind_the_model_lacks_is_refused_before_it_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from xaudit.cli import main

    module = f"xaudit_randomization_models_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(
        "from sklearn.linear_model import Ridge\n\n\n"
        "def ridge(data):\n    return Ridge().fit(data.X_train, data.y_train)\n")
    suite = {
        "name": "randomize-leaves-of-ridge", "seed": 0,
        "model": {"factory": f"{module}:ridge", "task": "regression"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 3}, "background": {"n": 5}},
        "explainers": [{"id": "abl", "method": "ablation"}],
        "checks": [{"check": "model_randomization", "explainer": "abl",
                    "params": {"randomization": "leaves"}, "gate": {"threshold": 0.5}}],
        "report": {"formats": ["json"]},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    try:
        code = main(["run", "-q", str(path), "--out", str(tmp_path / "out")])
    finally:
        sys.modules.pop(module, None)
    assert code == 4
    assert ("check 'model_randomization' needs randomization 'leaves' (the model offers "
            "labels), which model 'Ridge'") in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


# ------------------------------------------------------------------ models without it


def test_a_model_without_the_capability_is_refused_naming_it(
        diabetes: dict[str, np.ndarray]) -> None:
    rows, bg = diabetes["rows"], diabetes["bg"]
    model = xaudit.adapt(lambda A: A.sum(axis=1), feature_shape=[10], output_names=["s"],
                         name="summed")
    explanation = xaudit.explain(model, rows, "ablation", background=bg)
    assert offered(model) == ()
    with pytest.raises(CapabilityError) as info:
        xaudit.check("model_randomization", model, explanation, background=bg)
    assert str(info.value) == (
        "check 'model_randomization' needs capability 'randomization', which model 'summed' "
        "(adapter 'callable', tabular input, capabilities: predict) does not offer")
    check = ModelRandomization(ModelRandomization.Params())
    with pytest.raises(CapabilityError, match=r"^model_randomization: model 'summed' \(adapter "
                                              r"'callable'\) cannot randomize anything: it "
                                              r"offers no randomization"):
        check.run(model, explanation, Dataset.from_arrays(rows), np.random.default_rng(0))


def test_the_check_names_the_kinds_a_model_offers(diabetes: dict[str, np.ndarray]) -> None:
    from sklearn.linear_model import Ridge

    model = xaudit.adapt(Ridge().fit(diabetes["X_train"], diabetes["y_train"]))
    explanation = xaudit.explain(model, diabetes["rows"], "ablation", background=diabetes["bg"])
    check = ModelRandomization(ModelRandomization.Params(randomization="leaves"))
    assert check.unmet(model) == ["randomization 'leaves' (the model offers labels)"]
    with pytest.raises(CapabilityError, match=r"model 'Ridge' \(adapter 'sklearn'\) cannot "
                                              r"randomize 'leaves': it offers labels"):
        check.run(model, explanation, Dataset.from_arrays(diabetes["rows"]),
                  np.random.default_rng(0))


def test_onnx_models_declare_no_randomization() -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 1), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])], [weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(proto)
    model = xaudit.adapt(proto, device="cpu")
    assert "randomization" not in model.capabilities
    with pytest.raises(CapabilityError, match="it offers no randomization"):
        randomize(model, Randomization("layers"), np.random.default_rng(0))
