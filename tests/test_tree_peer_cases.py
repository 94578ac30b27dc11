"""Peer test cases that failed (issue 13, defect 12), each against the peer library itself.

- TreeSHAP on pandas nullable ``Float64``/``Int64`` columns holding ``pd.NA``: the rows are read
  with NaN where pandas has NA, and the values equal shap's ``TreeExplainer`` on the same rows
  with NaN; the XGBoost and LightGBM adapters predict such frames as their libraries do on NaN.
- A LightGBM (or XGBoost) classifier trained on labels of one class: its output count comes
  from the booster, equal to the library's own ``predict_proba`` and raw output, and its
  TreeSHAP values equal LightGBM's ``pred_contrib``.
- Refusals say why: XGBoost with a non-NaN ``missing``, DART, Tweedie; LightGBM's log links; an
  ONNX graph whose operator has no torch conversion (no gradients).
- ``IsolationForest``: explained as shap explains it (the mean path length), to 1e-6.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import xaudit
from xaudit.errors import CapabilityError

pd = pytest.importorskip("pandas")
shap = pytest.importorskip("shap")
lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")
ensemble = pytest.importorskip("sklearn.ensemble")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    X[::9, 1] = np.nan
    y = X[:, 0] + np.nan_to_num(X[:, 1]) ** 2 + 0.5 * X[:, 2]
    return {"X": X, "y": y}


def nullable(X: np.ndarray) -> Any:
    """Float64 columns and one Int64 column, ``pd.NA`` wherever ``X`` has NaN."""
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).astype("Float64")
    frame["d"] = pd.array(np.round(X[:, 3] * 3), dtype="Int64")
    frame.loc[frame.index[::4], "d"] = pd.NA
    assert frame["b"].isna().any()
    assert frame["d"].isna().any()
    return frame


def with_nan(frame: Any) -> np.ndarray:
    """The same rows as a float array with NaN (what shap is given)."""
    return np.array([[np.nan if v is pd.NA else float(v) for v in row]
                     for row in frame.itertuples(index=False)])


# --------------------------------------------------------------- nullable pandas columns


def test_tree_shap_on_nullable_columns_equals_shap_on_nan(data: dict[str, np.ndarray]) -> None:
    rows = nullable(data["X"][:30])
    dense = with_nan(rows)
    forest = ensemble.RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0)
    forest.fit(with_nan(nullable(data["X"])), data["y"])
    ours = xaudit.explain(forest, rows, "shap.tree")
    theirs = shap.TreeExplainer(forest).shap_values(dense)
    np.testing.assert_allclose(ours.values[..., 0], theirs, rtol=1e-7, atol=1e-9)
    assert np.isnan(ours.inputs).sum() == np.isnan(dense).sum() > 0
    np.testing.assert_allclose(xaudit.adapt(forest).predict(rows)[:, 0],
                               forest.predict(dense), rtol=1e-12)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosters_fitted_on_frames_predict_nullable_rows_as_on_nan(
        data: dict[str, np.ndarray], library: str) -> None:
    train = pd.DataFrame(with_nan(nullable(data["X"])), columns=["a", "b", "c", "d"])
    if library == "xgboost":
        native: Any = xgb.XGBRegressor(n_estimators=10, max_depth=3).fit(train, data["y"])
    else:
        native = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(train, data["y"])
    rows = nullable(data["X"][:20])
    dense = pd.DataFrame(with_nan(rows), columns=["a", "b", "c", "d"])
    model = xaudit.adapt(native)
    np.testing.assert_allclose(model.predict(rows)[:, 0], native.predict(dense), rtol=1e-6)
    ours = xaudit.explain(model, rows, "shap.tree")
    theirs = shap.TreeExplainer(native).shap_values(dense)
    np.testing.assert_allclose(ours.values[..., 0], theirs, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------- classifiers of one class


@pytest.mark.parametrize("params", [{}, {"objective": "multiclass", "num_class": 3}])
def test_a_lightgbm_classifier_of_one_class_counts_outputs_from_its_booster(
        data: dict[str, np.ndarray], params: dict[str, Any]) -> None:
    X = np.nan_to_num(data["X"])
    native = lgb.LGBMClassifier(n_estimators=5, verbose=-1, **params).fit(
        X, np.full(X.shape[0], 7))
    proba = native.predict_proba(X[:6])
    model = xaudit.adapt(native)
    assert len(model.output_names) == proba.shape[1] > len(native.classes_) == 1
    assert model.output_names[0] == "7"
    np.testing.assert_allclose(model.predict(X[:6]), proba, rtol=1e-12)
    margin = xaudit.adapt(native, output="margin")
    raw = native.predict(X[:6], raw_score=True).reshape(6, -1)
    np.testing.assert_allclose(margin.predict(X[:6]), raw, rtol=1e-12)
    e = xaudit.explain(margin, X[:6], "shap.tree")
    contrib = native.predict(X[:6], pred_contrib=True).reshape(6, raw.shape[1], -1)
    np.testing.assert_allclose(np.moveaxis(e.values, -1, 1), contrib[..., :-1], rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(e.base_values, contrib[..., -1], rtol=1e-6, atol=1e-9)


def test_an_xgboost_classifier_of_one_class_counts_outputs_from_its_booster(
        data: dict[str, np.ndarray]) -> None:
    X = np.nan_to_num(data["X"])
    native = xgb.XGBClassifier(n_estimators=3).fit(X, np.zeros(X.shape[0], dtype=int))
    model = xaudit.adapt(native)
    assert model.output_names == ("0", "class_index_1")
    np.testing.assert_allclose(model.predict(X[:5]), native.predict_proba(X[:5]), rtol=1e-6)


def test_output_names_are_checked_against_the_boosters_count(
        data: dict[str, np.ndarray]) -> None:
    X = np.nan_to_num(data["X"])
    native = lgb.LGBMClassifier(n_estimators=3, verbose=-1, objective="multiclass",
                                num_class=3).fit(X, np.zeros(X.shape[0], dtype=int))
    assert xaudit.adapt(native, output_names=["x", "y", "z"]).output_names == ("x", "y", "z")
    with pytest.raises(xaudit.ModelLoadError, match="gives 3 output"):
        xaudit.adapt(native, output_names=["only"])


# --------------------------------------------------------------- refusals that say why


@pytest.mark.parametrize(("params", "reason"), [
    ({"missing": 1e-8}, "treats 1e-08 as missing"),
    ({"booster": "dart"}, "booster 'dart' is not supported: it scales each tree"),
    ({"objective": "reg:tweedie"}, "'reg:tweedie' is not supported: it predicts exp(margin)"),
])
def test_xgboost_refusals_say_why(data: dict[str, np.ndarray], params: dict[str, Any],
                                  reason: str) -> None:
    X = np.nan_to_num(data["X"])
    native = xgb.XGBRegressor(n_estimators=3, **params).fit(X, np.abs(data["y"]))
    with pytest.raises(CapabilityError) as info:
        xaudit.explain(native, X[:3], "shap.tree")
    message = str(info.value)
    assert "needs capability 'tree_ensemble' (not available: " in message
    assert reason in message
    assert "does not offer" in message


def test_lightgbm_log_links_say_why(data: dict[str, np.ndarray]) -> None:
    X = np.nan_to_num(data["X"])
    native = lgb.LGBMRegressor(n_estimators=3, objective="tweedie", verbose=-1).fit(
        X, np.abs(data["y"]))
    with pytest.raises(CapabilityError, match=r"'tweedie' is not supported: it predicts exp"):
        xaudit.explain(native, X[:3], "shap.tree")


def test_an_onnx_graph_without_gradients_says_which_operator() -> None:
    helper = pytest.importorskip("onnx.helper")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    graph = helper.make_graph(
        [helper.make_node("Det", ["m"], ["d"]), helper.make_node("Unsqueeze", ["d", "axes"],
                                                                 ["y"])],
        "g", [helper.make_tensor_value_info("m", 1, ["n", 2, 2])],
        [helper.make_tensor_value_info("y", 1, ["n", 1])],
        initializer=[helper.make_tensor("axes", 7, [1], [1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    model = xaudit.adapt(proto)
    rows = np.random.default_rng(0).standard_normal((3, 2, 2)).astype(np.float32)
    with pytest.raises(CapabilityError) as info:
        xaudit.explain(model, rows, "gradient.saliency", target=0)
    assert "capability 'gradients' (not available: " in str(info.value)
    assert "Det" in str(info.value)


# --------------------------------------------------------------- IsolationForest


@pytest.mark.slow  # shap's interventional TreeExplainer walks every background row
@pytest.mark.parametrize("params", [{}, {"max_features": 0.6},
                                    {"max_samples": 50, "n_estimators": 30}])
def test_isolation_forest_matches_shap(data: dict[str, np.ndarray],
                                       params: dict[str, Any]) -> None:
    X = np.nan_to_num(data["X"])
    forest = ensemble.IsolationForest(random_state=0, **params).fit(X[:300])
    rows, bg = X[300:330], X[:60]
    explainer = shap.TreeExplainer(forest)
    ours = xaudit.explain(forest, rows, "shap.tree")
    np.testing.assert_allclose(ours.values[..., 0], explainer.shap_values(rows), atol=1e-6)
    np.testing.assert_allclose(ours.base_values[:, 0],
                               np.ravel(explainer.expected_value)[0], atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        marginal = shap.TreeExplainer(forest, data=bg, feature_perturbation="interventional")
        expected = marginal.shap_values(rows)
    interventional = xaudit.explain(forest, rows, "shap.tree", background=bg)
    np.testing.assert_allclose(interventional.values[..., 0], expected, atol=1e-6)


def test_isolation_forest_output_is_the_mean_path_length(data: dict[str, np.ndarray]) -> None:
    """The closed form of Liu et al. 2008: score_samples = -2^(-E[h(x)] / c(psi))."""
    X = np.nan_to_num(data["X"])
    forest = ensemble.IsolationForest(n_estimators=20, random_state=1).fit(X)
    model = xaudit.adapt(forest)
    assert model.output_names == ("path_length",)
    assert model.task == "other"
    psi = forest.max_samples_
    c = 2.0 * (np.log(psi - 1.0) + np.euler_gamma) - 2.0 * (psi - 1.0) / psi
    path = model.predict(X[:10])[:, 0]
    np.testing.assert_allclose(-(2.0 ** (-path / c)), forest.score_samples(X[:10]), rtol=1e-12)
    e = xaudit.explain(model, X[:10], "shap.tree")
    np.testing.assert_allclose(e.values[..., 0].sum(axis=1) + e.base_values[:, 0], path,
                               rtol=1e-9)
    scores = xaudit.adapt(forest, output="decision_function")
    np.testing.assert_allclose(scores.predict(X[:4])[:, 0], forest.decision_function(X[:4]))
