"""Performance checks against scikit-learn's own metrics and a plain numpy bootstrap.

Small scikit-learn models are fitted once per module on the training rows of shipped data
sets; every value is recomputed from the fitted estimator's own ``predict``/``predict_proba`` on
the test rows with ``sklearn.metrics``, so a wrong split, output column or class mapping fails.
The bootstrap interval is recomputed with the draws the check documents
(``default_rng(seed).integers(0, n, size=(B, n))``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import datasets, metrics
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression, Ridge

import xaudit
from xaudit.data import Dataset, split_rows
from xaudit.errors import InputError
from xaudit.plugins.governance.metrics import sklearn_metrics
from xaudit.suite import DocumentationSpec

HOST = xaudit.create_host(autoload=False)
SEED = 17


def dataset(X: np.ndarray, y: np.ndarray, names: list[str] | None = None) -> Dataset:
    train, test = split_rows(len(y), 0.3, np.random.default_rng(0))
    return Dataset(X=X, y=y, feature_names=tuple(names or [f"x{i}" for i in range(X.shape[1])]),
                   source="test", fingerprint="0", train_rows=train, test_rows=test,
                   explain_rows=test[:5], background=None)


@pytest.fixture(scope="module")
def regression() -> tuple[Ridge, Dataset]:
    bunch = datasets.load_diabetes()
    data = dataset(bunch.data, bunch.target, list(bunch.feature_names))
    return Ridge(alpha=0.1).fit(data.X_train, data.y_train), data


@pytest.fixture(scope="module")
def binary() -> tuple[LogisticRegression, Dataset]:
    X, y = datasets.load_breast_cancer(return_X_y=True)
    data = dataset(X[:, :5], y)
    return LogisticRegression(max_iter=2000).fit(data.X_train, data.y_train), data


@pytest.fixture(scope="module")
def multiclass() -> tuple[LogisticRegression, Dataset]:
    bunch = datasets.load_iris()
    labels = np.asarray(bunch.target_names)[bunch.target]  # string labels, matched by name
    data = dataset(bunch.data, labels)
    return LogisticRegression(max_iter=2000).fit(data.X_train, data.y_train), data


def measure(name: str, model: Any, data: Dataset, documentation: DocumentationSpec | None = None,
            **params: Any) -> xaudit.CheckResult:
    return xaudit.check(name, model, None, data=data, host=HOST, seed=SEED,
                        documentation=documentation, **params)


REGRESSION: dict[str, Callable[..., float]] = {
    "r2": metrics.r2_score, "mae": metrics.mean_absolute_error,
    "rmse": metrics.root_mean_squared_error, "mape": metrics.mean_absolute_percentage_error}


@pytest.mark.parametrize("metric", sorted(REGRESSION))
def test_regression_metrics_equal_scikit_learns(regression: tuple[Ridge, Dataset],
                                                metric: str) -> None:
    model, data = regression
    result = measure(f"performance.{metric}", model, data, n_boot=0)
    oracle = REGRESSION[metric](data.y_test, model.predict(data.X_test))
    assert result.value == pytest.approx(oracle, rel=1e-12)
    assert result.details["rows"] == data.test_rows.size
    assert result.model_calls == 1


def _binary_oracles(model: LogisticRegression, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    proba, predicted = model.predict_proba(X), model.predict(X)
    return {"accuracy": metrics.accuracy_score(y, predicted),
            "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
            "f1": metrics.f1_score(y, predicted),
            "roc_auc": metrics.roc_auc_score(y, proba[:, 1]),
            "log_loss": metrics.log_loss(y, proba),
            "brier": metrics.brier_score_loss(y, proba[:, 1])}


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss",
                                    "brier"])
def test_binary_metrics_equal_scikit_learns(binary: tuple[LogisticRegression, Dataset],
                                            metric: str) -> None:
    model, data = binary
    result = measure(f"performance.{metric}", model, data, n_boot=0)
    oracle = _binary_oracles(model, data.X_test, data.y_test)[metric]
    assert result.value == pytest.approx(oracle, rel=1e-12)


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1", "roc_auc",
                                    "log_loss"])
def test_multiclass_metrics_equal_scikit_learns(
        multiclass: tuple[LogisticRegression, Dataset], metric: str) -> None:
    model, data = multiclass
    result = measure(f"performance.{metric}", model, data, n_boot=0)
    X, y = data.X_test, data.y_test
    proba, predicted = model.predict_proba(X), model.predict(X)
    oracle = {"accuracy": metrics.accuracy_score(y, predicted),
              "balanced_accuracy": metrics.balanced_accuracy_score(y, predicted),
              "f1": metrics.f1_score(y, predicted, average="macro"),
              "roc_auc": metrics.roc_auc_score(y, proba, multi_class="ovr",
                                               labels=model.classes_),
              "log_loss": metrics.log_loss(y, proba, labels=model.classes_)}[metric]
    assert result.value == pytest.approx(oracle, rel=1e-12)


def plain_bootstrap(score: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray,
                    p: np.ndarray, n_boot: int, level: float,
                    rng: np.random.Generator) -> tuple[float, float]:
    values = []
    for rows in rng.integers(0, y.size, size=(n_boot, y.size)):
        values.append(score(y[rows], p[rows]))
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def test_the_interval_is_a_percentile_bootstrap_with_the_checks_seed(
        regression: tuple[Ridge, Dataset]) -> None:
    model, data = regression
    result = measure("performance.rmse", model, data, n_boot=300, confidence=0.9)
    low, high = plain_bootstrap(metrics.root_mean_squared_error, data.y_test,
                                model.predict(data.X_test), 300, 0.9,
                                np.random.default_rng(SEED))
    assert (result.details["ci_low"], result.details["ci_high"]) == pytest.approx((low, high),
                                                                                  rel=1e-12)
    assert result.details["ci_low"] < result.value < result.details["ci_high"]
    assert result.details["bootstrap_failed"] == 0


def test_resamples_on_which_the_metric_is_undefined_are_left_out(
        binary: tuple[LogisticRegression, Dataset]) -> None:
    model, data = binary
    small = dataset(data.X, data.y)
    small.test_rows = np.concatenate([np.flatnonzero(data.y == 0)[:2],
                                      np.flatnonzero(data.y == 1)[:2]])  # two of each class:
    # some resamples hold one class only, where ROC AUC is undefined
    result = measure("performance.roc_auc", model, small, n_boot=200)
    y, p = small.y_test, model.predict_proba(small.X_test)[:, 1]
    draws = np.random.default_rng(SEED).integers(0, 4, size=(200, 4))
    defined = [metrics.roc_auc_score(y[i], p[i]) for i in draws if np.unique(y[i]).size == 2]
    assert result.details["bootstrap_failed"] == 200 - len(defined)
    assert result.details["ci_low"] == pytest.approx(np.quantile(defined, 0.025))


def test_segments_give_group_sizes_values_and_their_own_intervals(
        regression: tuple[Ridge, Dataset]) -> None:
    model, data = regression
    documentation = DocumentationSpec(segments=["sex", {"feature": "age",  # type: ignore[list-item]
                                                        "bins": [-0.2, 0.0, 0.2]}])
    result = measure("performance.r2", model, data, documentation, n_boot=50, min_group=60)
    X, y, p = data.X_test, data.y_test, model.predict(data.X_test)
    rng = np.random.default_rng(SEED)
    plain_bootstrap(metrics.r2_score, y, p, 50, 0.95, rng)  # the overall interval comes first
    sex, age = result.details["segments"]
    assert sex["feature"] == "sex"
    assert age["feature"] == "age"
    column = X[:, 1]
    for group, value in zip(sex["groups"], sorted(set(column.tolist())), strict=True):
        rows = column == value
        assert group["rows"] == int(rows.sum())
        assert group["value"] == pytest.approx(metrics.r2_score(y[rows], p[rows]), rel=1e-12)
        assert group["too_small"] == (rows.sum() < 60)
        assert (group["ci_low"], group["ci_high"]) == pytest.approx(
            plain_bootstrap(metrics.r2_score, y[rows], p[rows], 50, 0.95, rng), rel=1e-12)
    below = X[:, 0] < 0.0
    assert [g["label"] for g in age["groups"]] == ["[-0.2, 0)", "[0, 0.2]"]
    assert [g["rows"] for g in age["groups"]] == [int(below.sum()), int((~below).sum())]
    small = [f"{s['feature']} {g['label']} ({g['rows']} rows)" for s in (sex, age)
             for g in s["groups"] if g["too_small"]]
    assert small, "the test needs a group below min_group"
    assert any(all(name in s for name in small) for s in result.handoff.statements)


def test_the_worst_segment_can_be_gated(regression: tuple[Ridge, Dataset]) -> None:
    model, data = regression
    documentation = DocumentationSpec(segments=["sex"])
    result = measure("performance.mae", model, data, documentation, n_boot=0,
                     value="worst_segment", min_group=10)
    y, p, sex = data.y_test, model.predict(data.X_test), data.X_test[:, 1]
    worst = max(metrics.mean_absolute_error(y[sex == v], p[sex == v]) for v in np.unique(sex))
    assert result.value == pytest.approx(worst, rel=1e-12)  # MAE: lower is better, worst = max
    assert result.details["overall"] == pytest.approx(metrics.mean_absolute_error(y, p))


def test_an_undefined_metric_is_nan_with_its_reason_and_fails_its_gate(
        regression: tuple[Ridge, Dataset], binary: tuple[LogisticRegression, Dataset]) -> None:
    model, data = regression
    gate = xaudit.suite.GateSpec(threshold=100.0)
    none_large = measure("performance.mae", model, data, DocumentationSpec(segments=["sex"]),
                         n_boot=0, value="worst_segment", min_group=10_000, gate=gate)
    assert none_large.value is not None
    assert np.isnan(none_large.value)
    assert none_large.status == "fail"
    assert "no segment group has 10000 or more test rows" in none_large.details["undefined"]
    classifier, both = binary
    positive = np.flatnonzero(both.y == 1)[:40]  # test rows of one class: no ROC curve
    one_class = dataclasses.replace(both, test_rows=positive)
    with pytest.warns(UndefinedMetricWarning, match="Only one class"):
        oracle = metrics.roc_auc_score(both.y[positive],
                                       classifier.predict_proba(both.X[positive])[:, 1])
    assert np.isnan(oracle)
    auc = measure("performance.roc_auc", classifier, one_class, n_boot=0,
                  gate=xaudit.suite.GateSpec(threshold=0.5))
    assert auc.value is not None
    assert np.isnan(auc.value)
    assert auc.status == "fail"
    assert "undefined on the 40 test rows" in auc.details["undefined"]


def test_a_gate_fails_a_model_that_performs_badly(regression: tuple[Ridge, Dataset]) -> None:
    model, data = regression
    shuffled = Ridge().fit(data.X_train, np.random.default_rng(0).permutation(data.y_train))
    result = xaudit.check("performance.r2", shuffled, None, data=data, host=HOST, n_boot=0,
                          gate=xaudit.suite.GateSpec(threshold=0.3))
    assert result.status == "fail"
    assert result.verdict().startswith("performance.r2: FAIL value")
    assert "R² on 133 held-out rows is" in result.verdict()
    passed = measure("performance.r2", model, data, n_boot=0)
    assert passed.value > 0.3


def test_refusals_say_what_to_change(regression: tuple[Ridge, Dataset],
                                     multiclass: tuple[LogisticRegression, Dataset],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ridge, data = regression
    with pytest.raises(InputError, match="classification metric and Ridge is a regression"):
        measure("performance.accuracy", ridge, data)
    unlabelled = dataset(data.X, data.y)
    unlabelled.y = None
    with pytest.raises(InputError, match=r"name the label column in data\.target"):
        measure("performance.r2", ridge, unlabelled)
    classifier, iris = multiclass
    margins = xaudit.adapt(classifier, output="decision_function", host=HOST,
                           output_names=list(classifier.classes_))
    with pytest.raises(InputError, match="needs class probabilities"):
        measure("performance.log_loss", margins, iris)
    with pytest.raises(InputError, match="two classes"):
        measure("performance.brier", classifier, iris)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(InputError, match=r"pip install 'xaudit\[sklearn\]'"):
        sklearn_metrics("performance.r2")


def test_a_suite_names_a_performance_check_without_an_explainer(tmp_path: Any) -> None:
    from xaudit.suite import parse_suite
    from xaudit.suite_checks import check_against_host

    def suite(check: dict[str, Any]) -> Any:
        return parse_suite({"name": "s", "model": {"factory": "m:f"},
                            "data": {"source": "sklearn:diabetes"},
                            "explainers": [{"id": "abl", "method": "ablation"}],
                            "checks": [check]}, base_dir=tmp_path)

    check_against_host(suite({"check": "performance.r2"}), HOST)
    with pytest.raises(xaudit.SuiteError, match="remove 'explainer'"):
        check_against_host(suite({"check": "performance.r2", "explainer": "abl"}), HOST)
    with pytest.raises(xaudit.SuiteError, match="name the explainer whose output it measures"):
        check_against_host(suite({"check": "concentration"}), HOST)
    assert suite({"check": "performance.r2"}).checks[0].key == "performance.r2"
