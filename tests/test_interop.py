"""Explanations as shap and pandas hold them, and selections of an explanation.

Oracles: shap's own plotting functions (they must draw from ``to_shap()``), shap's own
``TreeExplainer`` (an explanation made by shap, imported with ``from_shap``), pandas (a long
frame pivoted back must give the values), numpy indexing of the arrays, and the model outputs
(completeness of imported SHAP values, computed here by hand).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier

import xaudit
from xaudit.explanation import Explanation
from xaudit.handoff import Handoff, PartialDependence, SurrogateFit
from xaudit.results import AuditResult


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X.index = [f"patient-{i}" for i in range(len(X))]
    return X, y


@pytest.fixture(scope="module")
def forest(diabetes: tuple[pd.DataFrame, pd.Series]) -> GradientBoostingRegressor:
    X, y = diabetes
    return GradientBoostingRegressor(n_estimators=25, max_depth=3, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def tree_exp(forest: GradientBoostingRegressor,
             diabetes: tuple[pd.DataFrame, pd.Series]) -> Explanation:
    return xaudit.explain(forest, diabetes[0].iloc[100:140], method="shap.tree")


@pytest.fixture(scope="module")
def iris_exp() -> tuple[Explanation, RandomForestClassifier, np.ndarray]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    rows = X.iloc[::15]
    exp = xaudit.explain(model, rows, method="ablation", background=X.iloc[::7], target="all")
    return exp, model, rows.to_numpy()


def _labelled(base: Explanation) -> Explanation:
    """``base`` with standard errors, per-row and value-shaped extras and a hand-off."""
    n, d, k = base.values.shape
    r = np.random.default_rng(3)
    return Explanation(
        method=base.method, values=base.values, base_values=base.base_values,
        feature_names=base.feature_names, output_names=base.output_names,
        target_indices=base.target_indices, inputs=base.inputs,
        std_errors=r.random((n, d, k)),
        extras={"delta": r.random((n, k)), "per_row": r.random(n), "like": r.random((n, d, k)),
                "shared": r.random((1, d)), "pairs": r.random((n, d, d, k)),
                "odd": r.random((3, 5))},
        handoff=Handoff(outputs=r.random((n, k)),
                        surrogate=SurrogateFit(r.random((n, k)), r.random((n, k))),
                        partial_dependence=PartialDependence(
                            grid=r.random((d, 4)), average=r.random((d, 4, k)),
                            features=tuple(range(d)), individual=r.random((n, d, 4, k)))),
        row_index=base.row_index)


# ---------------------------------------------------------------------------- shap


def test_to_shap_draws_with_shaps_own_plots(tree_exp: Explanation) -> None:
    sv = tree_exp.to_shap()
    assert sv.values.shape == (40, 10)
    assert sv.base_values.shape == (40,)
    np.testing.assert_array_equal(sv.data, tree_exp.inputs)
    assert list(sv.feature_names) == list(tree_exp.feature_names)
    assert sv.output_names == "prediction"
    for draw in (lambda: shap.plots.beeswarm(sv, show=False),
                 lambda: shap.plots.waterfall(sv[0], show=False),
                 lambda: shap.plots.bar(sv, show=False),
                 lambda: shap.plots.scatter(sv[:, "bmi"], show=False)):
        draw()
        assert plt.gcf().axes, "the plot drew nothing"
        plt.close("all")


def test_to_shap_one_output_or_all(iris_exp: tuple[Explanation, object, np.ndarray]) -> None:
    exp, _, _ = iris_exp
    every = exp.to_shap()
    assert every.values.shape == (exp.n_rows, 4, 3)
    assert every.base_values.shape == (
        exp.n_rows, 3)
    assert list(every.output_names) == ["0", "1", "2"]
    one = exp.to_shap(output="2")
    np.testing.assert_array_equal(one.values, exp.values[..., 2])
    np.testing.assert_array_equal(one.base_values, exp.base_values[:, 2])
    shap.plots.bar(one, show=False)
    plt.close("all")


def test_from_shap_round_trips(tree_exp: Explanation,
                               iris_exp: tuple[Explanation, object, np.ndarray]) -> None:
    for exp in (tree_exp, iris_exp[0]):
        back = xaudit.from_shap(exp.to_shap())
        assert back.method == "external.shap"
        np.testing.assert_array_equal(back.values, exp.values)
        np.testing.assert_array_equal(back.base_values, exp.base_values)
        np.testing.assert_array_equal(back.inputs, exp.inputs)
        np.testing.assert_array_equal(back.target_indices, exp.target_indices)
        assert back.feature_names == exp.feature_names
        assert back.output_names == exp.output_names
        assert back.row_index == exp.row_index


def test_shaps_own_explanation_is_checked_and_reported(tmp_path: object) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)
    rows = X.iloc[::10]
    sv = shap.TreeExplainer(model)(rows)  # values (n, d, 3), base values (n, 3)
    exp = xaudit.from_shap(sv, X=rows)  # shap keeps the rows as an array: give the frame
    assert exp.values.shape == (15, 4, 3)
    assert exp.additive
    assert exp.row_index.labels == tuple(rows.index)
    assert exp.feature_names == tuple(rows.columns)
    # Completeness by hand: f(x) - base - sum(values), per row and class.
    gap = np.abs(model.predict_proba(rows) - sv.base_values - sv.values.sum(axis=1)).max()
    result = xaudit.check("completeness", model, exp)
    assert result.value == pytest.approx(gap, abs=1e-12)
    assert result.value < 1e-6
    with pytest.raises(xaudit.InputError, match="cannot be re-explained"):
        xaudit.check("stability", model, exp)
    written = xaudit.render(result, tmp_path, formats=("json", "html"), explanation=exp,
                            model=model)
    assert {p.name for p in written} == {"results.json", "arrays.npz", "report.html",
                                         "manifest.json"}
    assert AuditResult.load(tmp_path).explanations["external.shap"].method == "external.shap"


def test_from_shap_reads_one_row_and_refuses_what_it_cannot_place(
        tree_exp: Explanation) -> None:
    sv = tree_exp.to_shap()
    one = xaudit.from_shap(sv[3])
    np.testing.assert_array_equal(one.values[..., 0], tree_exp.values[3:4, :, 0])
    bare = shap.Explanation(values=sv.values, base_values=sv.base_values)
    with pytest.raises(xaudit.InputError, match="holds no data"):
        xaudit.from_shap(bare)
    rebuilt = xaudit.from_shap(bare, X=tree_exp.inputs, model_outputs=[0])
    np.testing.assert_array_equal(rebuilt.values, tree_exp.values)
    with pytest.raises(xaudit.InputError, match="model_outputs"):
        xaudit.from_shap(sv, model_outputs=[0, 1])


# ---------------------------------------------------------------------------- pandas


def test_long_frame_pivots_back_to_the_values(
        iris_exp: tuple[Explanation, object, np.ndarray]) -> None:
    exp = _labelled(iris_exp[0])
    frame = exp.to_frame()
    n, d, k = exp.values.shape
    assert len(frame) == n * d * k
    assert list(frame.columns) == ["feature", "output", "value", "input", "std_error"]
    assert frame.index.name is None  # the caller's index, as it was
    frame = frame.rename_axis("row")
    wide = frame.reset_index().pivot_table(index="row", columns=["feature", "output"],
                                           values="value")
    for j, name in enumerate(exp.feature_names):
        for o, output in enumerate(exp.output_names):
            np.testing.assert_array_equal(wide[(name, output)].to_numpy(), exp.values[:, j, o])
    inputs = frame[frame["output"] == "0"].reset_index().pivot(
        index="row", columns="feature", values="input")[list(exp.feature_names)]
    np.testing.assert_array_equal(inputs.to_numpy(), exp.inputs)


def test_wide_frame_keeps_the_callers_row_index(tree_exp: Explanation,
                                                diabetes: tuple[pd.DataFrame, pd.Series]
                                                ) -> None:
    wide = tree_exp.to_frame("wide")
    pd.testing.assert_index_equal(wide.index, diabetes[0].index[100:140])
    pd.testing.assert_frame_equal(
        wide, pd.DataFrame(tree_exp.values[..., 0], index=diabetes[0].index[100:140],
                           columns=pd.Index(tree_exp.feature_names, name="feature")))
    several = _labelled(xaudit.explain(lambda A: np.c_[A.sum(1), A[:, 0]], np.eye(3),
                                       method="ablation", background=np.zeros((1, 3))))
    assert several.to_frame().index.name == "row"  # no caller's index: positions
    header = several.to_frame("wide").columns
    assert header.names == ["output", "feature"]
    assert len(header) == 6
    with pytest.raises(xaudit.InputError, match="'long' or 'wide'"):
        several.to_frame("tall")  # type: ignore[arg-type]


def test_row_index_survives_results_json(tree_exp: Explanation, tmp_path: object) -> None:
    audit = AuditResult("s", {}, {}, {}, explanations={"e": tree_exp[5:9]})
    audit.save(tmp_path)
    back = AuditResult.load(tmp_path).explanations["e"]
    assert back.row_index is not None
    assert back.row_index.labels == ("patient-105", "patient-106", "patient-107",
                                     "patient-108")
    multi = pd.DataFrame(np.eye(2), index=pd.MultiIndex.from_tuples(
        [("a", 1), ("b", 2)], names=["site", "visit"]), columns=["u", "v"])
    exp = xaudit.explain(lambda A: A.sum(1), multi, method="ablation",
                         background=np.zeros((1, 2)))
    AuditResult("s", {}, {}, {}, explanations={"m": exp}).save(tmp_path)
    index = AuditResult.load(tmp_path).explanations["m"].to_frame("wide").index
    pd.testing.assert_index_equal(index, multi.index)


# ---------------------------------------------------------------------------- selections


def test_selection_cuts_every_array_consistently(
        iris_exp: tuple[Explanation, object, np.ndarray]) -> None:
    exp = _labelled(iris_exp[0])
    rows, feats, outs = [4, 0, 2], [3, 1], [2, 0]
    sub = exp[rows, ["petal width (cm)", "sepal width (cm)"], ["2", "0"]]
    v = exp.values[np.ix_(rows, feats, outs)]
    np.testing.assert_array_equal(sub.values, v)
    np.testing.assert_array_equal(sub.std_errors, exp.std_errors[np.ix_(rows, feats, outs)])
    np.testing.assert_array_equal(sub.base_values, exp.base_values[np.ix_(rows, outs)])
    np.testing.assert_array_equal(sub.target_indices, exp.target_indices[np.ix_(rows, outs)])
    np.testing.assert_array_equal(sub.inputs, exp.inputs[np.ix_(rows, feats)])
    assert sub.feature_names == tuple(exp.feature_names[j] for j in feats)
    assert sub.output_names == ("2", "0")
    np.testing.assert_array_equal(sub.extras["delta"], exp.extras["delta"][np.ix_(rows, outs)])
    np.testing.assert_array_equal(sub.extras["per_row"], exp.extras["per_row"][rows])
    np.testing.assert_array_equal(sub.extras["like"], exp.extras["like"][np.ix_(rows, feats,
                                                                                 outs)])
    np.testing.assert_array_equal(sub.extras["shared"], exp.extras["shared"][:, feats])
    np.testing.assert_array_equal(sub.extras["pairs"],
                                  exp.extras["pairs"][np.ix_(rows, feats, feats, outs)])
    assert "odd" not in sub.extras
    assert sub.metadata["selection"] == {"rows": rows, "features": feats, "outputs": outs,
                                         "dropped_extras": ["odd"]}
    h, g = sub.handoff, exp.handoff
    np.testing.assert_array_equal(h.outputs, g.outputs[np.ix_(rows, outs)])
    np.testing.assert_array_equal(h.surrogate.r2, g.surrogate.r2[np.ix_(rows, outs)])
    pdp, full = h.partial_dependence, g.partial_dependence
    np.testing.assert_array_equal(pdp.grid, full.grid[feats])
    np.testing.assert_array_equal(pdp.average, full.average[np.ix_(feats, range(4), outs)])
    np.testing.assert_array_equal(pdp.individual,
                                  full.individual[np.ix_(rows, feats, range(4), outs)])
    assert pdp.features == (0, 1)
    assert not sub.additive


def test_selections_compose_and_keep_additivity_when_features_stay(
        tree_exp: Explanation, forest: GradientBoostingRegressor) -> None:
    assert tree_exp.additive
    rows = tree_exp[10:20][::3]
    np.testing.assert_array_equal(rows.values, tree_exp.values[10:20][::3])
    assert rows.metadata["selection"]["rows"] == [10, 13, 16, 19]
    assert rows.row_index.labels == tuple(f"patient-{110 + i}" for i in (0, 3, 6, 9))
    assert rows.additive
    assert xaudit.check("completeness", forest, rows).value < 1e-8
    one = tree_exp[0]
    assert one.n_rows == 1
    assert one.row_index.labels == ("patient-100",)
    bmi = tree_exp[:, "bmi"]
    assert bmi.values.shape == (40, 1, 1)
    assert not bmi.additive
    np.testing.assert_array_equal(bmi.squeeze()[:, 0], tree_exp.values[:, 2, 0])
    mask = tree_exp.values[:, 2, 0] > 0
    np.testing.assert_array_equal(tree_exp[mask].values, tree_exp.values[mask])
    assert tree_exp.output("prediction").squeeze().shape == (40, 10)


def test_selection_errors_say_what_to_change(
        iris_exp: tuple[Explanation, object, np.ndarray]) -> None:
    exp = iris_exp[0]
    with pytest.raises(xaudit.InputError, match="did you mean 'petal length"):
        exp[:, "petal lenght (cm)"]
    with pytest.raises(xaudit.InputError, match="out of range"):
        exp[99]
    with pytest.raises(xaudit.InputError, match="by position"):
        exp["row-3"]
    with pytest.raises(xaudit.InputError, match="more than once"):
        exp[:, [0, 0]]
    with pytest.raises(xaudit.InputError, match="keeps no row"):
        exp[5:5]
    with pytest.raises(xaudit.InputError, match=r"pick one with exp\.output"):
        exp.squeeze()
    with pytest.raises(xaudit.InputError, match="exp\\[rows, features, outputs\\]"):
        exp[0, 0, 0, 0]


def test_image_features_are_selected_flat() -> None:
    X = np.arange(2 * 1 * 3 * 3, dtype=float).reshape(2, 1, 3, 3)
    exp = xaudit.explain(lambda A: A.reshape(len(A), -1).sum(1), X, method="ablation",
                         background=np.zeros((1, 1, 3, 3)))
    assert exp.values.shape == (2, 1, 3, 3, 1)
    corner = exp[:, [0, 8]]
    np.testing.assert_array_equal(corner.values[..., 0], X.reshape(2, 9)[:, [0, 8]])
    np.testing.assert_array_equal(corner.inputs, X.reshape(2, 9)[:, [0, 8]])
    np.testing.assert_array_equal(exp[1].values, exp.values[1:2])  # rows keep the image shape
