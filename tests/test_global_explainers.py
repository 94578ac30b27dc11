"""permutation_importance, pdp, ice and probing against scikit-learn and closed forms.

Oracles: ``sklearn.inspection.partial_dependence`` (brute and recursion, grids and curves to
1e-9), ``sklearn.inspection.permutation_importance`` called on the raw estimator (identical with
the same random state, within standard errors with another), and closed forms on linear models
(centred PD and ICE values). Probing is tested in ``test_probing.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits

import xaudit
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.handoff import PartialDependence as DependenceCurves
from xaudit.host import BLOCK_ENV, BUILTIN_PLUGINS, Host, create_host

MISSING = [m for m in BUILTIN_PLUGINS if importlib.util.find_spec(m) is None]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # OpenMP start-up dominates the small batches here when other jobs share the CPUs
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def host() -> Host:
    # modules other work in progress lists but has not written yet are blocked, not imported
    return create_host(autoload=False, block=MISSING)


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray, RandomForestRegressor]:
    X, y = make_regression(150, 4, n_informative=3, random_state=0)
    X[:, 3] = np.round(X[:, 3])  # a feature with few values: its grid is its unique values
    return X, y, RandomForestRegressor(15, max_depth=6, random_state=0).fit(X, y)


def curves(e: Explanation) -> DependenceCurves:
    """The partial dependence curves ``e`` hands to the report."""
    assert e.handoff.partial_dependence is not None
    return e.handoff.partial_dependence


# --- pdp ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["brute", "recursion"])
def test_pdp_equals_sklearn(host: Host, regression: Any, algorithm: str) -> None:
    X, _, model = regression
    e = xaudit.explain(model, X[:8], "pdp", background=X, host=host, algorithm=algorithm,
                       grid_resolution=25, pairs=[(0, 2), (1, 3)], pair_grid_resolution=5,
                       categorical_features=[3])
    assert e.metadata["algorithm"] == algorithm
    for j in range(4):
        ref = partial_dependence(model, X, [j], grid_resolution=25, method=algorithm,
                                 categorical_features=[3])
        grid = ref["grid_values"][0]
        np.testing.assert_allclose(curves(e).grid[j, : grid.size], grid, rtol=0, atol=1e-9)
        assert np.isnan(curves(e).grid[j, grid.size:]).all()
        np.testing.assert_allclose(curves(e).average[j, : grid.size, 0], ref["average"][0],
                                   rtol=0, atol=1e-9)
    for p, (a, b) in enumerate([(0, 2), (1, 3)]):  # 2-D, the second with a categorical axis
        pair = partial_dependence(model, X, [a, b], grid_resolution=5, method=algorithm,
                                  categorical_features=[3])
        ga, gb = pair["grid_values"]
        np.testing.assert_allclose(curves(e).pairs.grids[p, 0, : ga.size], ga, atol=1e-12)
        np.testing.assert_allclose(curves(e).pairs.grids[p, 1, : gb.size], gb, atol=1e-12)
        np.testing.assert_allclose(curves(e).pairs.average[p, : ga.size, : gb.size, 0],
                                   pair["average"][0], rtol=0, atol=1e-9)
    # the categorical axis holds all 6 categories (more than 5 points); shorter grids padded
    np.testing.assert_array_equal(curves(e).pairs.grids[1, 1], np.unique(X[:, 3]))
    assert np.isnan(curves(e).pairs.grids[0, :, 5]).all()


def test_pdp_recursion_for_a_boosted_classifier_margin(host: Host) -> None:
    X, y = make_classification(200, 4, random_state=1)
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y)
    adapted = xaudit.adapt(model, output="decision_function", host=host)
    e = xaudit.explain(adapted, X[:3], "pdp", background=X, host=host, grid_resolution=12)
    assert e.metadata["algorithm"] == "recursion"
    ref = partial_dependence(model, X, [1], grid_resolution=12, method="recursion")
    np.testing.assert_allclose(curves(e).average[1, :, 0], ref["average"][0], atol=1e-9)
    with pytest.raises(InputError, match="recursion"):  # probabilities: recursion refused
        xaudit.explain(model, X[:3], "pdp", background=X, host=host, algorithm="recursion")


def test_pdp_categorical_grid_and_percentiles(host: Host, regression: Any) -> None:
    X, _, model = regression
    e = xaudit.explain(model, X[:4], "pdp", background=X, host=host, grid_resolution=10,
                       percentiles=(0.1, 0.9), categorical_features=[1], features=[0, 1],
                       algorithm="brute")
    # a categorical grid is every unique value of the feature (150 here, not 10)
    for j in (0, 1):
        ref = partial_dependence(model, X, [j], grid_resolution=10, percentiles=(0.1, 0.9),
                                 categorical_features=[1], method="brute")
        grid = ref["grid_values"][0]
        np.testing.assert_allclose(curves(e).grid[j, : grid.size], grid, atol=1e-12)
        np.testing.assert_allclose(curves(e).average[j, : grid.size, 0], ref["average"][0],
                                   atol=1e-9)
    assert curves(e).grid.shape[1] == np.unique(X[:, 1]).size
    assert np.isnan(curves(e).average[2]).all()
    assert not e.values[:, 2].any()
    ice = xaudit.explain(model, X[:20], "ice", host=host, grid_resolution=10,
                         percentiles=(0.1, 0.9), categorical_features=[1], features=[1])
    ref = partial_dependence(model, X[:20], [1], grid_resolution=10, percentiles=(0.1, 0.9),
                             categorical_features=[1], kind="individual")
    np.testing.assert_allclose(curves(ice).grid[1], ref["grid_values"][0], atol=1e-12)
    np.testing.assert_allclose(curves(ice).individual[:, 1, :, 0], ref["individual"][0], atol=1e-9)


def test_pdp_and_ice_for_every_class_of_a_classifier(host: Host) -> None:
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(10, random_state=0).fit(X, y)
    e = xaudit.explain(model, X[:5], "pdp", background=X, host=host, grid_resolution=10)
    assert e.metadata["algorithm"] == "brute"
    assert e.output_names == ("0", "1", "2")
    ref = partial_dependence(model, X, [2], grid_resolution=10)  # predict_proba, every class
    np.testing.assert_allclose(np.moveaxis(curves(e).average[2], -1, 0), ref["average"],
                               atol=1e-9)
    ice = xaudit.explain(model, X[:5], "ice", host=host, grid_resolution=10, features=[2])
    ref = partial_dependence(model, X[:5], [2], grid_resolution=10, kind="individual")
    np.testing.assert_allclose(np.moveaxis(curves(ice).individual[:, 2], -1, 0), ref["individual"],
                               atol=1e-9)


def test_pdp_and_ice_values_closed_form_on_a_linear_model(host: Host) -> None:
    rng = np.random.default_rng(0)
    X, bg = rng.normal(size=(6, 3)), rng.normal(size=(40, 3))
    model = LinearRegression().fit(bg, bg @ [1.5, -2.0, 0.0] + 0.3)
    expected = model.coef_ * (X - bg.mean(axis=0))  # both: w_j (x_j - mean_b b_j)
    for method in ("pdp", "ice"):
        e = xaudit.explain(model, X, method, background=bg, host=host, grid_resolution=5)
        np.testing.assert_allclose(e.values[..., 0], expected, atol=1e-9)


def test_ice_equals_sklearn_individual_and_centred(host: Host, regression: Any) -> None:
    X, _, model = regression
    rows = X[:40]
    e = xaudit.explain(model, rows, "ice", host=host, grid_resolution=15)
    for j in (0, 2):
        ref = partial_dependence(model, rows, [j], grid_resolution=15, kind="both")
        np.testing.assert_allclose(curves(e).individual[:, j, :, 0], ref["individual"][0],
                                   atol=1e-9)
        np.testing.assert_allclose(curves(e).average[j, :, 0], ref["average"][0], atol=1e-9)
    centred = xaudit.explain(model, rows, "ice", host=host, grid_resolution=15, centered=True)
    individual = partial_dependence(model, rows, [0], grid_resolution=15,
                                    kind="individual")["individual"][0]
    np.testing.assert_allclose(curves(centred).individual[:, 0, :, 0],
                               individual - individual[:, :1], atol=1e-9)
    # per-row value: f(x) - mean_b f(x with x_j := b_j), by brute force with scikit-learn
    x = rows[5]
    swapped = np.repeat(x[None], rows.shape[0], axis=0)
    swapped[:, 2] = rows[:, 2]
    brute = model.predict(x[None])[0] - model.predict(swapped).mean()
    assert e.values[5, 2, 0] == pytest.approx(brute, abs=1e-9)


# --- permutation importance -----------------------------------------------------------------------


def test_permutation_importance_is_sklearns_with_the_same_random_state(
        host: Host, regression: Any) -> None:
    X, y, model = regression
    e = xaudit.explain(model, X, "permutation_importance", y=y, host=host, n_repeats=4,
                       metric="neg_mean_squared_error", seed=7)
    ref = permutation_importance(model, X, y, scoring="neg_mean_squared_error", n_repeats=4,
                                 random_state=e.metadata["random_state"])
    np.testing.assert_allclose(e.values[..., 0], ref.importances.T, rtol=1e-12)
    assert e.handoff.kind == "global"
    assert e.output_names == ("neg_mean_squared_error",)
    assert e.values.shape == (4, 4, 1)
    assert np.isnan(e.inputs).all()


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc", "neg_log_loss"])
def test_permutation_importance_agrees_within_standard_errors(host: Host, metric: str) -> None:
    X, y = make_classification(300, 5, n_informative=3, random_state=0)
    model = RandomForestClassifier(20, random_state=0).fit(X, y)
    n = 15
    e = xaudit.explain(model, X, "permutation_importance", y=y, host=host, n_repeats=n,
                       metric=metric, seed=1)
    ref = permutation_importance(model, X, y, scoring=metric, n_repeats=n, random_state=12345)
    ours, theirs = e.values[..., 0], ref.importances.T
    se = np.sqrt(ours.var(axis=0, ddof=1) / n + theirs.var(axis=0, ddof=1) / n)
    diff = np.abs(ours.mean(axis=0) - theirs.mean(axis=0))
    assert np.all(diff <= 4 * se + 1e-12), (diff, se)
    assert e.output_names == (metric,)


def test_permutation_importance_callable_metric_and_labels_required(host: Host) -> None:
    X, y = make_regression(80, 3, random_state=2)
    model = LinearRegression().fit(X, y)

    def neg_mae(truth: np.ndarray, outputs: np.ndarray) -> float:
        return -float(np.mean(np.abs(truth - outputs)))

    e = xaudit.explain(model, X, "permutation_importance", y=y, host=host, metric=neg_mae)
    ref = permutation_importance(model, X, y, scoring="neg_mean_absolute_error", n_repeats=5,
                                 random_state=e.metadata["random_state"])
    np.testing.assert_allclose(e.values[..., 0], ref.importances.T, rtol=1e-9, atol=1e-12)
    assert e.params["metric"].endswith("neg_mae")
    with pytest.raises(InputError, match="needs the labels"):
        xaudit.explain(model, X, "permutation_importance", host=host)


# --- suites and the report ----------------------------------------------------------------------

MODELS = '''\
from sklearn.ensemble import RandomForestRegressor


def forest(data):
    return RandomForestRegressor(10, max_depth=4, random_state=0).fit(data.X_train, data.y_train)
'''


@pytest.mark.slow
def test_suite_runs_every_method_and_the_report_renders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from xaudit.cli import main

    monkeypatch.setenv(BLOCK_ENV, ",".join(MISSING))
    name = f"xaudit_global_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = {
        "name": "global", "seed": 1, "model": {"factory": f"{name}:forest"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 30}, "background": {"n": 40}},
        "explainers": [
            {"id": "pi", "method": "permutation_importance", "params": {"n_repeats": 3}},
            {"id": "pd", "method": "pdp", "params": {"grid_resolution": 8}},
            {"id": "ice", "method": "ice", "params": {"grid_resolution": 8, "features": [2, 8]}},
            {"id": "cf", "method": "counterfactual",
             "params": {"target_range": [200, 400], "generations": 10, "population": 60,
                        "n_counterfactuals": 2}},
        ],
        "report": {"formats": ["json", "html"]},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    out = tmp_path / "out"
    assert main(["run", "-q", str(path), "--out", str(out)]) in (0, 5)
    result = xaudit.AuditResult.load(out)
    assert not result.explainer_errors, result.explainer_errors
    assert result.explanations["pi"].values.shape == (3, 10, 1)
    assert curves(result.explanations["ice"]).individual.shape[:3] == (30, 10, 8)
    page = (out / "report.html").read_text()
    section = page[page.index('id="sec-global"'):page.index('id="sec-local"')]
    assert "mean over 3 repeats" in section
    assert section.count("<svg") >= 3  # importance bars and PD/ICE curves
    local = page[page.index('id="sec-local"'):]
    assert 'class="counterfactuals"' in local  # its tables, in the technical appendix
    sys.modules.pop(name, None)
