"""Tree-ensemble extraction against the libraries' own raw outputs and node statistics.

Oracle: each library's prediction (``predict``, ``predict_proba``, ``decision_function``,
``output_margin=True``, ``raw_score=True``) on held-out rows, NaNs included for the models that
accept them, plus rows placed exactly on (and one float step either side of) split thresholds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import xaudit
from xaudit.adapters.trees.extract import extract_tree_ensemble
from xaudit.errors import CapabilityError
from xaudit.trees import TreeEnsemble

TOL = 1e-9
FLOAT32_PROBABILITY_TOL = 2.0**-23
"""XGBoost computes sigmoid/softmax in float32 and returns float32 probabilities, so the
float64 transform of its (exactly reproduced) margin can differ from them by float32 rounding."""
N_TRAIN = 300


def _data(task: str, nan: str = "none", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """500 rows, 6 features; ``nan``: 'none', 'both' (train and test) or 'test' (unseen)."""
    if task == "regression":
        X, y = make_regression(500, 6, n_informative=4, noise=5.0, random_state=seed)
        y = y * 37.0 + 1000.0  # large values make float32 accumulation visible
    else:
        X, y = make_classification(500, 6, n_informative=4, n_redundant=1,
                                   n_classes=2 if task == "binary" else 3, random_state=seed)
    rng = np.random.default_rng(seed)
    mask = rng.random(X.shape) < 0.12
    if nan == "test":
        mask[:N_TRAIN] = False
    if nan != "none":
        X = X.copy()
        X[mask] = np.nan
    return X, y


def _2d(values: Any, n: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(n, -1)


def _path(tree: Any, row: np.ndarray) -> list[int]:
    """Internal nodes a row passes through (float64 comparisons; close enough for choosing)."""
    node, path = 0, []
    while tree.left[node] != -1:
        path.append(node)
        x = row[tree.feature[node]]
        left = tree.missing_left[node] if np.isnan(x) else x <= tree.threshold[node]
        node = int(tree.left[node] if left else tree.right[node])
    return path


def _boundary_rows(ensemble: TreeEnsemble, X: np.ndarray, n: int = 60) -> np.ndarray:
    """Rows put on a split threshold they reach, or one float32/float64 step from it.

    For each of the first ``n`` trees, a random row's path is followed and one of its splits
    chosen; the row is copied with that feature on the threshold and its neighbours. Infinite
    thresholds (scikit-learn's "all non-missing values go left" splits) are skipped.
    """
    rng = np.random.default_rng(1)
    rows = []
    for tree in ensemble.trees[:n]:
        row = X[rng.integers(len(X))]
        path = [node for node in _path(tree, row) if abs(tree.threshold[node]) < 1e30]
        if not path:
            continue
        node = path[rng.integers(len(path))]
        t = tree.threshold[node]
        t32 = np.float32(t)
        for value in (t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), float(t32),
                      float(np.nextafter(t32, np.float32(np.inf))),
                      float(np.nextafter(t32, np.float32(-np.inf)))):
            copy = row.copy()
            copy[tree.feature[node]] = value
            rows.append(copy)
    return np.vstack([X, *rows]) if rows else X


@dataclass(frozen=True)
class Case:
    """A model to fit and how to read its raw output and (transformed) output."""

    id: str
    task: str
    fit: Callable[[np.ndarray, np.ndarray], Any]
    raw: Callable[[Any, np.ndarray], Any]
    output: Callable[[Any, np.ndarray], Any] | None = None
    nan: str = "none"
    output_tol: float = TOL

    def build(self) -> tuple[Any, np.ndarray]:
        X, y = _data(self.task, self.nan)
        return self.fit(X[:N_TRAIN], y[:N_TRAIN]), X[N_TRAIN:]


def _proba(model: Any, X: np.ndarray) -> Any:
    return model.predict_proba(X)


def _positive(model: Any, X: np.ndarray) -> Any:
    return model.predict_proba(X)[:, 1]


def _predict(model: Any, X: np.ndarray) -> Any:
    return model.predict(X)


def _decision(model: Any, X: np.ndarray) -> Any:
    return model.decision_function(X)


def _margin(model: Any, X: np.ndarray) -> Any:
    return model.predict(X, output_margin=True)


def _raw_score(model: Any, X: np.ndarray) -> Any:
    return model.predict(X, raw_score=True)


def _xgb_train(params: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], Any]:
    return lambda X, y: xgb.train(params, xgb.DMatrix(X, y), num_boost_round=25)


def _booster_margin(model: Any, X: np.ndarray) -> Any:
    return model.predict(xgb.DMatrix(X), output_margin=True)


def _booster_output(model: Any, X: np.ndarray) -> Any:
    return model.predict(xgb.DMatrix(X))


def _xgb_early_stopping(X: np.ndarray, y: np.ndarray) -> Any:
    model = xgb.XGBClassifier(n_estimators=300, max_depth=3, learning_rate=0.3,
                              early_stopping_rounds=3, eval_metric="logloss")
    return model.fit(X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False)


def _lgb_train(params: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], Any]:
    full = {"verbose": -1, "num_leaves": 8, "min_data_in_leaf": 5, **params}
    return lambda X, y: lgb.train(full, lgb.Dataset(X, y), num_boost_round=25)


def _mean_raw_score(model: Any, X: np.ndarray) -> Any:
    return model.predict(X, raw_score=True) / model.current_iteration()


def _lgbm(cls: Any, **kw: Any) -> Callable[[np.ndarray, np.ndarray], Any]:
    return lambda X, y: cls(n_estimators=25, num_leaves=8, min_child_samples=5, verbose=-1,
                            **kw).fit(X, y)


def _sk(estimator: Any) -> Callable[[np.ndarray, np.ndarray], Any]:
    from sklearn.base import clone

    return lambda X, y: clone(estimator).fit(X, y)


F32 = FLOAT32_PROBABILITY_TOL
CASES = [
    # scikit-learn trees and forests: raw output = predict_proba / predict (NaN supported)
    Case("decision_tree_clf_binary", "binary", _sk(DecisionTreeClassifier(max_depth=6,
         random_state=0)), _proba, nan="both"),
    Case("decision_tree_clf_multiclass", "multiclass", _sk(DecisionTreeClassifier(
         max_depth=6, random_state=0)), _proba, nan="both"),
    Case("decision_tree_reg", "regression", _sk(DecisionTreeRegressor(max_depth=6,
         random_state=0)), _predict, nan="both"),
    Case("random_forest_clf_binary", "binary", _sk(RandomForestClassifier(
         12, max_depth=6, random_state=0)), _proba, nan="both"),
    Case("random_forest_clf_multiclass", "multiclass", _sk(RandomForestClassifier(
         12, max_depth=6, random_state=0)), _proba),
    Case("random_forest_reg", "regression", _sk(RandomForestRegressor(
         12, max_depth=6, random_state=0)), _predict, nan="both"),
    Case("extra_trees_clf_binary", "binary", _sk(ExtraTreesClassifier(
         12, max_depth=6, random_state=0)), _proba),
    Case("extra_trees_clf_multiclass", "multiclass", _sk(ExtraTreesClassifier(
         12, max_depth=6, random_state=0)), _proba, nan="both"),
    Case("extra_trees_reg", "regression", _sk(ExtraTreesRegressor(
         12, max_depth=6, random_state=0)), _predict),
    # GradientBoosting: raw = decision_function, init estimator included
    Case("gradient_boosting_clf_binary", "binary", _sk(GradientBoostingClassifier(
         n_estimators=30, max_depth=3, random_state=0)), _decision, _positive),
    Case("gradient_boosting_clf_multiclass", "multiclass", _sk(GradientBoostingClassifier(
         n_estimators=20, max_depth=3, random_state=0)), _decision, _proba),
    Case("gradient_boosting_clf_binary_tree_init", "binary", _sk(GradientBoostingClassifier(
         n_estimators=20, init=DecisionTreeClassifier(max_depth=3, random_state=0),
         random_state=0)), _decision, _positive),
    Case("gradient_boosting_clf_multiclass_tree_init", "multiclass", _sk(
         GradientBoostingClassifier(n_estimators=15, init=DecisionTreeClassifier(
             max_depth=3, random_state=0), random_state=0)), _decision, _proba),
    Case("gradient_boosting_clf_multiclass_zero_init", "multiclass", _sk(
         GradientBoostingClassifier(n_estimators=15, init="zero", subsample=0.7,
                                    random_state=0)), _decision, _proba),
    Case("gradient_boosting_reg", "regression", _sk(GradientBoostingRegressor(
         n_estimators=30, max_depth=3, random_state=0)), _predict),
    Case("gradient_boosting_reg_huber", "regression", _sk(GradientBoostingRegressor(
         loss="huber", n_estimators=20, random_state=0)), _predict),
    Case("gradient_boosting_reg_tree_init", "regression", _sk(GradientBoostingRegressor(
         n_estimators=20, init=DecisionTreeRegressor(max_depth=3, random_state=0),
         random_state=0)), _predict),
    # HistGradientBoosting: real thresholds from bins, missing_go_to_left
    Case("hist_gradient_boosting_clf_binary", "binary", _sk(HistGradientBoostingClassifier(
         max_iter=30, max_leaf_nodes=8, random_state=0)), _decision, _positive, nan="both"),
    Case("hist_gradient_boosting_clf_multiclass", "multiclass", _sk(
         HistGradientBoostingClassifier(max_iter=20, max_leaf_nodes=8, random_state=0)),
         _decision, _proba, nan="both"),
    Case("hist_gradient_boosting_reg", "regression", _sk(HistGradientBoostingRegressor(
         max_iter=30, max_leaf_nodes=8, random_state=0)), _predict, nan="both"),
    Case("hist_gradient_boosting_reg_unseen_nan", "regression", _sk(
         HistGradientBoostingRegressor(max_iter=30, max_leaf_nodes=8, random_state=0)),
         _predict, nan="test"),
    # XGBoost: raw = margin; float32 thresholds (<) and float32 sums
    Case("xgb_clf_binary", "binary", lambda X, y: xgb.XGBClassifier(
         n_estimators=40, max_depth=4).fit(X, y), _margin, _positive, "both", F32),
    Case("xgb_clf_multiclass", "multiclass", lambda X, y: xgb.XGBClassifier(
         n_estimators=25, max_depth=4).fit(X, y), _margin, _proba, "both", F32),
    Case("xgb_reg", "regression", lambda X, y: xgb.XGBRegressor(
         n_estimators=40, max_depth=4).fit(X, y), _margin, _predict, "both"),
    Case("xgb_reg_unseen_nan", "regression", lambda X, y: xgb.XGBRegressor(
         n_estimators=30, max_depth=4).fit(X, y), _margin, nan="test"),
    Case("xgb_booster_binary_logistic", "binary", _xgb_train(
         {"objective": "binary:logistic", "max_depth": 3, "base_score": 0.3}), _booster_margin,
         _booster_output, "both", F32),
    Case("xgb_booster_multi_softprob", "multiclass", _xgb_train(
         {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}), _booster_margin,
         _booster_output, "both", F32),
    Case("xgb_booster_reg_squarederror", "regression", _xgb_train(
         {"objective": "reg:squarederror", "max_depth": 3}), _booster_margin, nan="both"),
    Case("xgb_clf_early_stopping", "binary", _xgb_early_stopping, _margin, _positive,
         "both", F32),
    Case("xgb_rf_reg", "regression", lambda X, y: xgb.XGBRFRegressor(
         n_estimators=8, max_depth=4).fit(X, y), _margin, nan="both"),
    # LightGBM: raw = raw_score; decision_type <=, missing_type NaN / None
    Case("lgbm_clf_binary", "binary", _lgbm(lgb.LGBMClassifier), _raw_score, _positive,
         "both"),
    Case("lgbm_clf_multiclass", "multiclass", _lgbm(lgb.LGBMClassifier), _raw_score, _proba,
         "both"),
    Case("lgbm_reg", "regression", _lgbm(lgb.LGBMRegressor), _raw_score, _predict, "both"),
    Case("lgbm_reg_unseen_nan", "regression", _lgbm(lgb.LGBMRegressor), _raw_score,
         nan="test"),
    Case("lgbm_booster_binary", "binary", _lgb_train({"objective": "binary"}), _raw_score,
         _predict, "both"),
    Case("lgbm_booster_multiclass", "multiclass", _lgb_train(
         {"objective": "multiclass", "num_class": 3}), _raw_score, _predict, "both"),
    # boosting="rf": raw_score is the sum over trees, predict transforms the mean
    Case("lgbm_booster_rf_average_output", "regression", _lgb_train(
         {"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7}), _mean_raw_score,
         _predict, "both"),
    Case("lgbm_booster_rf_binary", "binary", _lgb_train(
         {"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7, "objective": "binary"}),
         _mean_raw_score, _predict, "both"),
]


def measure(case: Case) -> tuple[float, float | None, TreeEnsemble]:
    """Max abs error of ``predict_raw`` and of ``transform(raw)`` against the library."""
    model, X = case.build()
    ensemble = extract_tree_ensemble(model)
    X = _boundary_rows(ensemble, X)
    raw = ensemble.predict_raw(X)
    raw_error = float(np.max(np.abs(raw - _2d(case.raw(model, X), len(X)))))
    if case.output is None:
        return raw_error, None, ensemble
    output = ensemble.transform(raw)
    return raw_error, float(np.max(np.abs(output - _2d(case.output(model, X), len(X))))), \
        ensemble


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_structure_reproduces_the_library_raw_output(case: Case) -> None:
    raw_error, output_error, ensemble = measure(case)
    assert raw_error <= TOL, f"{case.id}: predict_raw off by {raw_error:.3g}"
    if output_error is not None:
        assert output_error <= case.output_tol, f"{case.id}: transform off by {output_error}"
    for tree in ensemble.trees:
        leaf = tree.left == -1
        assert np.array_equal(leaf, tree.right == -1)
        assert np.all(tree.feature[leaf] == -1)
        assert np.all((tree.feature[~leaf] >= 0) & (tree.feature[~leaf] < ensemble.n_features))
        assert np.all(tree.left[~leaf] > np.flatnonzero(~leaf))  # parents before children
        assert tree.max_depth >= 0


def test_xgboost_probabilities_equal_the_float64_transform_of_its_own_margin() -> None:
    X, y = _data("multiclass", "both")
    model = xgb.XGBClassifier(n_estimators=25, max_depth=4).fit(X[:N_TRAIN], y[:N_TRAIN])
    ensemble = extract_tree_ensemble(model)
    margin = np.asarray(model.predict(X[N_TRAIN:], output_margin=True), dtype=np.float64)
    raw = ensemble.predict_raw(X[N_TRAIN:])
    np.testing.assert_array_equal(raw, margin)
    exp = np.exp(margin - margin.max(axis=1, keepdims=True))
    np.testing.assert_allclose(ensemble.transform(raw), exp / exp.sum(axis=1, keepdims=True),
                               rtol=0, atol=TOL)


def test_xgboost_early_stopping_keeps_the_best_rounds_only() -> None:
    X, y = _data("binary", "both")
    model = _xgb_early_stopping(X[:N_TRAIN], y[:N_TRAIN])
    assert model.best_iteration < 299
    assert len(extract_tree_ensemble(model).trees) == model.best_iteration + 1


# ---- cover against the libraries' own node counts ------------------------------------------


def test_sklearn_cover_is_weighted_n_node_samples() -> None:
    X, y = _data("multiclass")
    forest = RandomForestClassifier(6, max_depth=5, random_state=0).fit(X, y)
    for tree, estimator in zip(extract_tree_ensemble(forest).trees, forest.estimators_,
                               strict=True):
        np.testing.assert_array_equal(tree.cover, estimator.tree_.weighted_n_node_samples)
    boosting = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    trees = extract_tree_ensemble(boosting).trees
    for tree, estimator in zip(trees, boosting.estimators_.ravel(), strict=True):
        np.testing.assert_array_equal(tree.cover, estimator.tree_.weighted_n_node_samples)


def test_hist_gradient_boosting_cover_is_node_count() -> None:
    X, y = _data("regression", "both")
    model = HistGradientBoostingRegressor(max_iter=5, random_state=0).fit(X, y)
    trees = extract_tree_ensemble(model).trees
    for tree, (predictor,) in zip(trees, model._predictors, strict=True):
        np.testing.assert_array_equal(tree.cover, predictor.nodes["count"])
        assert tree.cover[0] == len(X)


def _children_sum(tree: Any) -> tuple[np.ndarray, np.ndarray]:
    internal = np.flatnonzero(tree.left != -1)
    return tree.cover[internal], tree.cover[tree.left[internal]] + tree.cover[
        tree.right[internal]]


def test_xgboost_cover_is_sum_hessian() -> None:
    X, y = _data("binary", "both")
    model = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(X, y)
    frame = model.get_booster().trees_to_dataframe()
    for index, tree in enumerate(extract_tree_ensemble(model).trees):
        expected = np.sort(frame.loc[frame["Tree"] == index, "Cover"].to_numpy())
        np.testing.assert_allclose(np.sort(tree.cover), expected, rtol=1e-6)
        parent, children = _children_sum(tree)
        np.testing.assert_allclose(parent, children, rtol=1e-4)


def test_lightgbm_cover_is_data_count() -> None:
    X, y = _data("multiclass", "both")
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=8, verbose=-1).fit(X, y)
    frame = model.booster_.trees_to_dataframe()
    for index, tree in enumerate(extract_tree_ensemble(model).trees):
        expected = np.sort(frame.loc[frame["tree_index"] == index, "count"].to_numpy())
        np.testing.assert_array_equal(np.sort(tree.cover), expected)
        parent, children = _children_sum(tree)
        np.testing.assert_array_equal(parent, children)
        assert tree.cover[0] == len(X)


# ---- refusals ---------------------------------------------------------------------------------


def test_non_tree_models_and_pipelines_are_refused_by_name() -> None:
    X, y = _data("binary")
    with pytest.raises(CapabilityError, match="LogisticRegression is not one of the supported"):
        extract_tree_ensemble(LogisticRegression().fit(X, y))
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(3)).fit(X, y)
    with pytest.raises(CapabilityError, match="a Pipeline is not a tree model"):
        extract_tree_ensemble(pipe)
    model = xaudit.adapt(pipe)
    assert "tree_ensemble" not in model.capabilities


def test_categorical_splits_are_refused_naming_the_feature() -> None:
    X, y = _data("regression")
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    colour = np.random.default_rng(0).integers(0, 3, len(X))
    frame["colour"] = pd.Categorical(np.array(["red", "green", "blue"])[colour])
    y = y + 20000.0 * (colour == 1)
    hist = HistGradientBoostingRegressor(max_iter=5, categorical_features=["colour"]).fit(frame,
                                                                                       y)
    with pytest.raises(CapabilityError, match=r"feature 6 \('colour'\) is categorical"):
        extract_tree_ensemble(hist)
    booster = xgb.XGBRegressor(n_estimators=5, enable_categorical=True,
                               tree_method="hist").fit(frame, y)
    with pytest.raises(CapabilityError, match=r"feature 6 \('colour'\) is categorical"):
        extract_tree_ensemble(booster)
    assert "tree_ensemble" not in xaudit.adapt(booster).capabilities
    assert "tree_ensemble" not in xaudit.adapt(hist).capabilities
    light = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(frame, y)
    with pytest.raises(CapabilityError, match=r"feature 6 \('colour'\) has a categorical"):
        extract_tree_ensemble(light)


def test_unrepresentable_transforms_and_init_estimators_are_refused() -> None:
    X, y = _data("binary")
    exponential = GradientBoostingClassifier(loss="exponential", n_estimators=3).fit(X, y)
    with pytest.raises(CapabilityError, match=r"expit\(2 \* raw\)"):
        extract_tree_ensemble(exponential)
    Xr, yr = _data("regression")
    linear_init = GradientBoostingRegressor(n_estimators=3, init=LinearRegression()).fit(Xr, yr)
    with pytest.raises(CapabilityError, match="init estimator LinearRegression"):
        extract_tree_ensemble(linear_init)
    poisson = xgb.XGBRegressor(n_estimators=3, objective="count:poisson").fit(Xr, np.abs(yr))
    with pytest.raises(CapabilityError, match="objective 'count:poisson' is not supported"):
        extract_tree_ensemble(poisson)
    assert "tree_ensemble" not in xaudit.adapt(poisson).capabilities
    sqrt = lgb.LGBMRegressor(n_estimators=3, reg_sqrt=True, verbose=-1).fit(Xr, yr)
    with pytest.raises(CapabilityError, match="reg_sqrt=True predicts"):
        extract_tree_ensemble(sqrt)
    assert "tree_ensemble" not in xaudit.adapt(sqrt).capabilities
    zero_missing = lgb.LGBMRegressor(n_estimators=5, zero_as_missing=True, verbose=-1)
    Xz = np.where(np.abs(Xr) < 0.3, 0.0, Xr)
    with pytest.raises(CapabilityError, match="treats zero as missing"):
        extract_tree_ensemble(zero_missing.fit(Xz, yr))


# ---- adapters ---------------------------------------------------------------------------------


def test_sklearn_adapter_offers_cached_tree_ensemble() -> None:
    X, y = _data("multiclass", "both")
    forest = RandomForestClassifier(8, max_depth=5, random_state=0).fit(X, y)
    model = xaudit.adapt(forest)
    linear = LogisticRegression().fit(np.nan_to_num(X), y)
    assert model.adapter == "sklearn"
    assert "tree_ensemble" in model.capabilities
    ensemble = model.tree_ensemble()  # type: ignore[attr-defined]
    assert model.tree_ensemble() is ensemble  # type: ignore[attr-defined]
    np.testing.assert_allclose(ensemble.predict_raw(X), model.predict(X), rtol=0, atol=TOL)
    assert "tree_ensemble" not in xaudit.adapt(linear).capabilities


@pytest.mark.parametrize("kind", ["sklearn_api", "booster"])
def test_xgboost_adapter_predicts_native_probabilities_and_margins(kind: str) -> None:
    X, y = _data("binary", "both")
    if kind == "booster":
        native: Any = _xgb_train({"objective": "binary:logistic", "max_depth": 3})(X, y)
        expected_proba = _booster_output(native, X)[:, None]
        expected_margin = _booster_margin(native, X)
    else:
        native = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
        expected_proba = native.predict_proba(X)
        expected_margin = native.predict(X, output_margin=True)
    model = xaudit.adapt(native)
    assert model.adapter == "xgboost"
    assert model.task == "classification"
    assert "tree_ensemble" in model.capabilities
    np.testing.assert_array_equal(model.predict(X), expected_proba)
    margin = xaudit.adapt(native, output="margin")
    assert margin.output_names == ("margin(1)",)
    np.testing.assert_array_equal(margin.predict(X)[:, 0], expected_margin)
    ensemble = model.tree_ensemble()  # type: ignore[attr-defined]
    np.testing.assert_allclose(ensemble.predict_raw(X), margin.predict(X), rtol=0, atol=TOL)
    assert len(model.fingerprint()) == 64
    assert model.fingerprint() == xaudit.adapt(native).fingerprint()


def test_xgboost_adapter_regressor_and_multiclass() -> None:
    X, y = _data("regression", "both")
    reg = xgb.XGBRegressor(n_estimators=10).fit(X, y)
    model = xaudit.adapt(reg)
    assert model.output_names == ("prediction",)
    np.testing.assert_array_equal(model.predict(X)[:, 0], reg.predict(X))
    Xc, yc = _data("multiclass", "both")
    clf = xgb.XGBClassifier(n_estimators=10).fit(Xc, yc)
    multi = xaudit.adapt(clf)
    assert multi.output_names == ("0", "1", "2")
    np.testing.assert_array_equal(multi.predict(Xc), clf.predict_proba(Xc))
    assert model.fingerprint() != multi.fingerprint()


@pytest.mark.parametrize("kind", ["sklearn_api", "booster"])
def test_lightgbm_adapter_predicts_native_probabilities_and_margins(kind: str) -> None:
    X, y = _data("multiclass", "both")
    if kind == "booster":
        native: Any = _lgb_train({"objective": "multiclass", "num_class": 3})(X, y)
        expected_proba = native.predict(X)
    else:
        native = _lgbm(lgb.LGBMClassifier)(X, y)
        expected_proba = native.predict_proba(X)
    model = xaudit.adapt(native)
    assert model.adapter == "lightgbm"
    assert model.task == "classification"
    assert "tree_ensemble" in model.capabilities
    np.testing.assert_array_equal(model.predict(X), expected_proba)
    margin = xaudit.adapt(native, output="margin")
    assert margin.output_names == ("margin(0)", "margin(1)", "margin(2)")
    np.testing.assert_array_equal(margin.predict(X), native.predict(X, raw_score=True))
    ensemble = model.tree_ensemble()  # type: ignore[attr-defined]
    np.testing.assert_allclose(ensemble.predict_raw(X), margin.predict(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(ensemble.transform(ensemble.predict_raw(X)), model.predict(X),
                               rtol=0, atol=TOL)
    assert model.fingerprint() == xaudit.adapt(native).fingerprint()


def test_lightgbm_adapter_binary_dataframe_model() -> None:
    X, y = _data("binary", "both")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    clf = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(frame, y)
    model = xaudit.adapt(clf)
    assert model.input_spec.feature_names == tuple(frame.columns)
    np.testing.assert_array_equal(model.predict(X), clf.predict_proba(frame))
    ensemble = model.tree_ensemble()  # type: ignore[attr-defined]
    np.testing.assert_allclose(ensemble.transform(ensemble.predict_raw(X))[:, 0],
                               clf.predict_proba(frame)[:, 1], rtol=0, atol=TOL)


def test_importing_xaudit_imports_no_tree_library() -> None:
    code = ("import sys, xaudit; xaudit.create_host(); "
            "print(sorted(m for m in ('sklearn', 'xgboost', 'lightgbm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
