"""``xaudit.explain`` and ``xaudit.check`` with the built-in ablation and completeness plugins.

Oracles: the closed form of ablation on a linear model, a brute-force loop over features and
background rows written independently here, and the model outputs themselves.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

import xaudit
from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.plugin import Explainer
from xaudit.suite import GateSpec


def _diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


def test_ablation_on_linear_model_equals_closed_form() -> None:
    X, y = _diabetes()
    reg = LinearRegression().fit(X, y)
    background = X[:50]
    exp = xaudit.explain(reg, X[100:110], method="ablation", background=background)
    expected = reg.coef_[None, :] * (X[100:110] - background.mean(axis=0))
    assert exp.values.shape == (10, 10, 1)
    np.testing.assert_allclose(exp.values[..., 0], expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(exp.base_values[:, 0], reg.predict(background).mean())
    result = xaudit.check("completeness", reg, exp)
    assert result.value < 1e-9
    assert result.status == "not_gated"


def test_ablation_matches_brute_force_on_a_nonlinear_model() -> None:
    X, y = _diabetes()
    forest = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    rows, background = X[200:203], X[:7]
    exp = xaudit.explain(forest, rows, method="ablation", background=background, max_batch=13)
    for r, x in enumerate(rows):
        fx = forest.predict(x[None])[0]
        for i in range(X.shape[1]):
            replaced = []
            for b in background:
                z = x.copy()
                z[i] = b[i]
                replaced.append(forest.predict(z[None])[0])
            assert exp.values[r, i, 0] == pytest.approx(fx - np.mean(replaced), abs=1e-9)


def test_mean_and_zero_baselines() -> None:
    X, y = _diabetes()
    reg = LinearRegression().fit(X, y)
    mean = xaudit.explain(reg, X[:4], method="ablation", background=X[:30], baseline="mean")
    np.testing.assert_allclose(mean.values[..., 0], reg.coef_ * (X[:4] - X[:30].mean(0)),
                               atol=1e-10)
    zero = xaudit.explain(reg, X[:4], method="ablation", baseline="zero", background=X[:30])
    np.testing.assert_allclose(zero.values[..., 0], reg.coef_ * X[:4], atol=1e-10)
    np.testing.assert_allclose(zero.base_values[:, 0], reg.intercept_)


def test_targets_select_outputs() -> None:
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    rows = X[[0, 60, 120]]
    every = xaudit.explain(clf, rows, method="ablation", background=X[::10])
    assert every.values.shape == (3, 4, 3)
    assert every.output_names == ("0", "1", "2")
    one = xaudit.explain(clf, rows, method="ablation", background=X[::10], target="2")
    np.testing.assert_array_equal(one.values[..., 0], every.values[..., 2])
    predicted = xaudit.explain(clf, rows, method="ablation", background=X[::10],
                               target="predicted")
    chosen = clf.predict_proba(rows).argmax(axis=1)
    np.testing.assert_array_equal(predicted.target_indices[:, 0], chosen)
    np.testing.assert_array_equal(predicted.values[..., 0],
                                  every.values[np.arange(3), :, chosen])
    listed = xaudit.explain(clf, rows, method="ablation", background=X[::10], target=[2, 0])
    assert listed.output_names == ("2", "0")
    with pytest.raises(xaudit.InputError, match="out of range"):
        xaudit.explain(clf, rows, method="ablation", background=X[::10], target=5)
    with pytest.raises(xaudit.InputError, match="not an output"):
        xaudit.explain(clf, rows, method="ablation", background=X[::10], target="setosa")


def test_params_are_validated_by_the_plugin() -> None:
    X, y = _diabetes()
    reg = LinearRegression().fit(X, y)
    with pytest.raises(xaudit.InputError, match="basline"):
        xaudit.explain(reg, X[:2], method="ablation", background=X[:5], basline="mean")
    with pytest.raises(xaudit.InputError, match="max_batch"):
        xaudit.explain(reg, X[:2], method="ablation", background=X[:5], max_batch=0)
    with pytest.raises(xaudit.InputError, match="needs a background"):
        xaudit.explain(reg, X[:2], method="ablation")
    with pytest.raises(xaudit.UnknownNameError, match="did you mean 'ablation'"):
        xaudit.explain(reg, X[:2], method="ablaton", background=X[:5])


class NeedsGradients(Explainer):
    name = "test.needs_gradients"
    requires: ClassVar[frozenset[str]] = frozenset({"gradients"})

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        raise AssertionError("must be refused before any work")


class Plugin:
    @hookimpl
    def xaudit_register_explainers(self, registry):  # type: ignore[no-untyped-def]
        registry.add(NeedsGradients)


def test_capability_mismatch_is_refused_before_work_naming_both_sides() -> None:
    host = xaudit.create_host(plugins=[Plugin()], autoload=False)
    X, y = _diabetes()
    reg = LinearRegression().fit(X, y)
    with pytest.raises(xaudit.CapabilityError) as info:
        xaudit.explain(reg, X[:2], method="test.needs_gradients", host=host)
    message = str(info.value)
    assert "'test.needs_gradients' needs capability 'gradients'" in message
    assert "model 'LinearRegression' (adapter 'sklearn'" in message
    assert "explainers that work with this model: ablation" in message


def test_gates_and_completeness_on_a_non_additive_model() -> None:
    X, y = _diabetes()
    forest = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(X, y)
    exp = xaudit.explain(forest, X[:20], method="ablation", background=X[100:140])
    # Independent measurement of the non-additivity the check must report.
    outputs = forest.predict(X[:20])
    errors = np.abs(exp.values[..., 0].sum(axis=1) + exp.base_values[:, 0] - outputs)
    result = xaudit.check("completeness", forest, exp, gate=GateSpec(threshold=1e-6))
    assert result.value == pytest.approx(errors.max())
    assert result.status == "fail"
    assert result.model_calls == 1
    mean = xaudit.check("completeness", forest, exp, aggregate="mean",
                        gate=GateSpec(threshold=errors.mean() * 2))
    assert mean.value == pytest.approx(errors.mean())
    assert mean.status == "pass"
    warned = xaudit.check("completeness", forest, exp, aggregate="mean",
                          gate=GateSpec(threshold=1e9, warn_threshold=errors.mean() / 2))
    assert warned.status == "warn"
    relative = xaudit.check("completeness", forest, exp, relative=True)
    scale = np.maximum(np.abs(outputs - exp.base_values[:, 0]), 1e-12)
    assert relative.value == pytest.approx((errors / scale).max())


def test_attribution_shape_errors_are_clear() -> None:
    with pytest.raises(xaudit.InputError, match="values must be"):
        xaudit.Explanation("m", np.zeros((2, 3)), None, (), ("y",), np.zeros((2, 1)),
                           np.zeros((2, 3)))
    with pytest.raises(xaudit.InputError, match="base_values shaped"):
        xaudit.Explanation("m", np.zeros((2, 3, 1)), np.zeros((2, 2)), (), ("y",),
                           np.zeros((2, 1)), np.zeros((2, 3)))
    assert Attribution(np.zeros((1, 2, 1))).base_values is None


class _ByName(Explainer):
    """Reads the model's feature names, as explainers that take features by name do."""

    name = "probe.names"

    def explain(self, model, X, *, background, targets, rng):  # type: ignore[no-untyped-def]
        names = model.input_spec.feature_names
        assert names is not None
        values = np.zeros((X.shape[0], X.shape[1], len(targets.names)))
        values[:, names.index("bmi")] = 1.0
        return Attribution(values=values)


class _ByNamePlugin:
    @hookimpl
    def xaudit_register_explainers(self, registry):  # type: ignore[no-untyped-def]
        registry.add(_ByName)


def test_explainers_see_the_callers_feature_names_when_the_model_has_none() -> None:
    data = load_diabetes()
    reg = LinearRegression().fit(data.data, data.target)  # fitted on a bare array: no names
    host = xaudit.create_host(plugins=[_ByNamePlugin()])
    exp = xaudit.explain(reg, data.data[:3], method="probe.names",
                         feature_names=data.feature_names, host=host)
    assert exp.feature_names == tuple(data.feature_names)
    assert exp.values[:, data.feature_names.index("bmi"), 0].tolist() == [1.0, 1.0, 1.0]
    assert xaudit.adapt(reg).input_spec.feature_names is None  # the model itself is unchanged
