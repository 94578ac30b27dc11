"""``method="auto"``, the default of ``xaudit.explain``, and row shapes taken from ``X``.

Oracles: the closed form of exact Shapley values of a linear model over a background
(``phi_i = w_i (x_i - mean_b b_i)``), the same method named explicitly with the background the
choice records, shap's TreeExplainer for the tree rule, and a torch module explained with its
row shape declared.
"""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression

import xaudit
from xaudit.auto import DEFAULT_BACKGROUND_ROWS, EXACT_MAX_FEATURES, RULE


def _linear(d: int, n: int = 150) -> tuple[LinearRegression, np.ndarray]:
    r = np.random.default_rng(d)
    X = r.normal(size=(n, d))
    return LinearRegression().fit(X, X @ r.normal(size=d) + 0.1 * r.normal(size=n)), X


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 3)
        self.head = torch.nn.Linear(3 * 6 * 6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.conv(x)).flatten(1))


def test_up_to_the_cutoff_features_get_exact_shapley_values() -> None:
    model, X = _linear(EXACT_MAX_FEATURES, n=4)
    exp = xaudit.explain(model, X)
    assert exp.method == "shap.exact"
    assert exp.metadata["method_choice"]["background_rows"] == [0, 1, 2, 3]
    np.testing.assert_allclose(exp.values[..., 0], model.coef_ * (X - X.mean(axis=0)),
                               atol=1e-9)


def test_many_rows_give_a_seeded_sample_of_x_as_background() -> None:
    model, X = _linear(3)
    exp = xaudit.explain(model, X, seed=3)
    choice = exp.metadata["method_choice"]
    assert exp.method == "shap.exact"
    assert choice["requested"] == "auto"
    assert choice["rule"] == RULE
    rows = np.asarray(choice["background_rows"])
    assert rows.size == DEFAULT_BACKGROUND_ROWS
    assert np.all(np.diff(rows) > 0)
    expected = model.coef_ * (X - X[rows].mean(axis=0))  # exact Shapley values, linear model
    np.testing.assert_allclose(exp.values[..., 0], expected, atol=1e-9)
    again = xaudit.explain(model, X, seed=3)
    assert again.metadata["method_choice"]["background_rows"] == choice["background_rows"]
    other = xaudit.explain(model, X, seed=4).metadata["method_choice"]["background_rows"]
    assert other != choice["background_rows"]


def test_few_rows_are_their_own_background_and_checks_reuse_it() -> None:
    model, X = _linear(4, n=30)
    exp = xaudit.explain(model, X)
    assert exp.metadata["method_choice"]["background_rows"] == list(range(30))
    named = xaudit.explain(model, X, method="shap.exact", background=X)
    np.testing.assert_array_equal(exp.values, named.values)
    result = xaudit.check("stability", model, exp, repeats=1)  # re-explains: needs the background
    assert result.error is None
    assert result.model_calls > 0


def test_more_features_get_kernelshap() -> None:
    model, X = _linear(EXACT_MAX_FEATURES + 1, n=40)
    exp = xaudit.explain(model, X[:3])
    assert exp.method == "shap.kernel"
    assert "more than" in exp.metadata["method_choice"]["reason"]
    rows = exp.metadata["method_choice"]["background_rows"]
    expected = model.coef_ * (X[:3] - X[:3][rows].mean(axis=0))  # linear: KernelSHAP is exact
    np.testing.assert_allclose(exp.values[..., 0], expected, atol=1e-8)


def test_tree_ensembles_get_treeshap_without_a_background() -> None:
    r = np.random.default_rng(0)
    X = r.normal(size=(200, 5))
    model = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(
        X, X[:, 0] * X[:, 1] + X[:, 2])
    exp = xaudit.explain(model, X[:10])
    assert exp.method == "shap.tree"
    assert exp.metadata["method_choice"]["background"].startswith("none")
    np.testing.assert_allclose(exp.values[..., 0], shap.TreeExplainer(model).shap_values(X[:10]),
                               atol=1e-9)


def test_a_cnn_needs_no_feature_shape_and_gets_integrated_gradients() -> None:
    torch.manual_seed(0)
    net = SmallCNN()
    X = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    exp = xaudit.explain(net, X)
    assert exp.method == "gradient.integrated"
    assert exp.values.shape[1:-1] == (1, 8, 8)
    declared = xaudit.explain(xaudit.adapt(net, feature_shape=[1, 8, 8]), X,
                              method="gradient.integrated")
    np.testing.assert_array_equal(exp.values, declared.values)
    np.testing.assert_array_equal(exp.target_indices, declared.target_indices)
    model = xaudit.adapt(net)
    assert model.input_spec.feature_shape == ()  # unbound until it sees rows
    model.predict(X[:2])
    assert model.input_spec.feature_shape == (1, 8, 8)
    assert model.input_spec.modality == "image"
    assert model.output_names == ("output_0", "output_1")


def test_auto_takes_no_params_and_suites_accept_it() -> None:
    model, X = _linear(3, n=40)
    with pytest.raises(xaudit.InputError, match="'auto' takes no parameters"):
        xaudit.explain(model, X, n_samples=10)
    suite = {"name": "auto", "model": {"object": model}, "data": {"X": X, "explain": {"n": 4}},
             "explainers": [{"id": "a", "method": "auto"}]}
    audit = xaudit.run_suite(suite)
    assert audit.explanations["a"].method == "shap.exact"
    assert audit.suite["explainers"][0]["method"] == "auto"
    with pytest.raises(xaudit.SuiteError, match=r"explainers\[0\].params: method 'auto' takes"):
        xaudit.run_suite({**suite, "explainers": [{"id": "a", "method": "auto",
                                                   "params": {"n_samples": 8}}]})
