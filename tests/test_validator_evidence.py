"""Issue 15, items 2 and 4: the model and data as a validator needs them, and fairness evidence.

Every statistic is checked against an independent computation in the test: the KS statistic
against the empirical distribution functions evaluated by numpy, its p-value against brute-force
enumeration of every split of a small pooled sample, the chi-square statistic against its
closed form, intervals and exact tests against scipy, hyperparameters against ``get_params`` and
``sum(p.numel())``, adverse rates against counts made here.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reports_support import make_result
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import xaudit
from xaudit.errors import SuiteError
from xaudit.handoff import CheckHandoff, GroupMetric, MetricEstimate, SegmentMetric
from xaudit.reports.document import render_section
from xaudit.reports.evidence import performance_figures
from xaudit.reports.proportions import fisher_exact, wilson_interval
from xaudit.reports.sections_fairness import FairnessSection, fairness_evidence
from xaudit.reports.sections_model import DataSection, ModelSection
from xaudit.reports.segments import group_order, shown_value, value_label
from xaudit.representativeness import representativeness
from xaudit.results import CheckResult
from xaudit.suite import DocumentationSpec, parse_suite

# --------------------------------------------------------------------------------------------
# Representativeness


def _pools(n: int, explained: list[int], test: list[int]) -> dict[str, np.ndarray]:
    train = np.setdiff1d(np.arange(n), np.union1d(explained, test))
    return {"train": train, "test": np.asarray(test), "explained": np.asarray(explained)}


def _ecdf_sup(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.concatenate([a, b])
    fa = (a[None, :] <= grid[:, None]).mean(axis=1)
    fb = (b[None, :] <= grid[:, None]).mean(axis=1)
    return float(np.abs(fa - fb).max())


def test_numeric_pools_and_ks_against_ecdfs_and_enumeration() -> None:
    rng = np.random.default_rng(3)
    n = 14
    X = np.column_stack([rng.normal(size=n), rng.exponential(size=n)])
    X[2, 0] = np.nan  # a missing value in the training rows
    rows = _pools(n, explained=[0, 1, 3, 4], test=[5, 6, 7, 8, 9])
    record = representativeness(X, ("x", "y"), (), rows)
    feature = record["features"][0]
    assert feature["kind"] == "numeric"
    for pool, index in rows.items():
        values = X[index, 0]
        present = values[~np.isnan(values)]
        summary = feature["pools"][pool]
        assert summary["rows"] == index.size
        assert summary["missing"] == int(np.isnan(values).sum())
        assert summary["mean"] == pytest.approx(present.mean())
        assert summary["sd"] == pytest.approx(present.std(ddof=1))
        assert summary["quantiles"] == pytest.approx(
            np.quantile(present, record["quantiles"]).tolist())
    train = X[rows["train"], 0]
    train = train[~np.isnan(train)]
    explained = X[rows["explained"], 0]
    found = next(c for c in feature["comparisons"] if c["second"] == "explained")
    assert found["test"] == "ks"
    assert found["statistic"] == pytest.approx(_ecdf_sup(train, explained))
    # exact two-sided p-value: the share of all splits of the pooled values with D at least
    # the observed one (no ties in continuous data)
    pooled = np.concatenate([train, explained])
    observed = _ecdf_sup(train, explained)
    splits = list(itertools.combinations(range(pooled.size), explained.size))
    extreme = 0
    for chosen in splits:
        mask = np.zeros(pooled.size, dtype=bool)
        mask[list(chosen)] = True
        extreme += _ecdf_sup(pooled[~mask], pooled[mask]) >= observed - 1e-12
    assert found["p_value"] == pytest.approx(extreme / len(splits), rel=1e-6)


def test_categorical_pools_share_tv_and_chi_square_closed_form() -> None:
    codes = np.array([0.05068, -0.04464] * 30 + [0.05068] * 10)
    X = codes[:, None]
    rows = _pools(codes.size, explained=list(range(50, 70)), test=list(range(40, 50)))
    record = representativeness(X, ("sex",), (), rows)
    feature = record["features"][0]
    assert feature["kind"] == "categorical"
    counts = {}
    for pool, index in rows.items():
        values = codes[index]
        counts[pool] = np.array([np.sum(values == -0.04464), np.sum(values == 0.05068)], float)
        shares = feature["pools"][pool]["shares"]
        assert shares["-0.04464"] == pytest.approx(counts[pool][0] / index.size)
        assert shares["0.05068"] == pytest.approx(counts[pool][1] / index.size)
    found = next(c for c in feature["comparisons"] if c["second"] == "explained")
    table = np.array([counts["train"], counts["explained"]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    assert found["statistic"] == pytest.approx(chi2)
    assert found["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))  # 1 d.f.
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    assert found["distance"] == pytest.approx(0.5 * np.abs(p - q).sum())


def test_images_and_wide_tables_are_not_summarised() -> None:
    rows = {"train": np.arange(3), "test": np.arange(3), "explained": np.arange(3)}
    assert "skipped" in representativeness(np.zeros((3, 2, 2)), ("a", "b", "c", "d"), (), rows)
    wide = representativeness(np.zeros((3, 101)), tuple(f"f{i}" for i in range(101)), (), rows)
    assert "101 features" in wide["skipped"]


def test_data_section_shows_pools_with_value_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=60), np.where(rng.random(60) < 0.5, -0.04464, 0.05068)])
    result = make_result(["a", "sex"], documentation={
        "value_labels": {"sex": {"-0.04464": "group one", "0.05068": "group two"}}})
    result.data["representativeness"] = representativeness(
        X, ("a", "sex"), (), _pools(60, list(range(10)), list(range(10, 30))))
    view = render_section(DataSection, result)
    assert view is not None
    assert view.error is None
    assert "group one (-0.04464)" in view.body
    assert "D = " in view.body
    assert view.body.index(">train<") < view.body.index(">test<") < view.body.index(">explained<")


# --------------------------------------------------------------------------------------------
# Hyperparameters


def test_sklearn_pipeline_parameters_flattened_with_defaults() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    pipe = make_pipeline(StandardScaler(with_mean=False), Ridge(alpha=3.0)).fit(X, y)
    record = xaudit.adapt(pipe).hyperparameters()
    expected = pipe.get_params(deep=True)
    by_name = {p.name: p for p in record.parameters}
    assert set(by_name) == set(expected)
    assert by_name["ridge__alpha"].value == "3.0"
    assert by_name["ridge__alpha"].default == repr(Ridge().get_params()["alpha"])
    assert by_name["ridge__alpha"].changed is True
    assert by_name["ridge__fit_intercept"].changed is False
    assert by_name["standardscaler__with_mean"].changed is True
    assert by_name["ridge"].value == "Ridge"  # a nested estimator by its class name
    assert record.kind == "Pipeline"


def test_torch_summary_counts_parameters() -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    for p in net[0].parameters():
        p.requires_grad_(False)
    record = xaudit.adapt(net, feature_shape=[4], device="cpu").hyperparameters()
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert record.facts["parameters"] == str(total)
    assert record.facts["trainable parameters"] == str(trainable)
    layers = {layer.name: layer for layer in record.layers}
    assert layers["0"].parameters == 4 * 8 + 8
    assert layers["0"].trainable == 0
    assert layers["2"].parameters == layers["2"].trainable == 8 * 2 + 2
    assert layers["1"].kind == "ReLU"
    assert layers["1"].parameters == 0


def test_booster_parameters_from_saved_configuration_and_params() -> None:
    import json

    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X[:, 0] + rng.normal(size=80)
    booster = xgb.train({"max_depth": 2, "eta": 0.3}, xgb.DMatrix(X, y), 3)
    record = xaudit.adapt(booster).hyperparameters()
    config = json.loads(booster.save_config())
    values = {p.name: p.value for p in record.parameters}
    assert values["learner.gradient_booster.tree_train_param.max_depth"] == repr(
        config["learner"]["gradient_booster"]["tree_train_param"]["max_depth"])
    assert record.facts["trees"] == "3"
    model = lgb.train({"num_leaves": 5, "verbose": -1, "objective": "regression"},
                      lgb.Dataset(X, y), 4)
    record = xaudit.adapt(model).hyperparameters()
    assert {p.name: p.value for p in record.parameters} == {
        k: repr(v) for k, v in model.params.items()}
    assert record.facts["trees"] == str(model.num_trees())


def test_onnx_graph_facts_from_the_proto() -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import helper, numpy_helper

    weights = np.arange(6, dtype=np.float32).reshape(3, 2)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, ["n", 3])],
                              [helper.make_tensor_value_info("y", 1, ["n", 2])],
                              initializer=[numpy_helper.from_array(weights, "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    facts = xaudit.adapt(proto).hyperparameters().facts
    assert facts["opset"] == "15"
    assert facts["nodes"] == str(len(proto.graph.node))
    assert facts["initializers"] == str(len(proto.graph.initializer))
    assert facts["inputs"] == "x"
    assert facts["outputs"] == "y"


def test_model_section_shows_hyperparameters_documentation_and_performance() -> None:
    result = make_result(["a", "b"], documentation={
        "version": "2.1", "training_procedure": "Ridge fitted once.",
        "data_lineage": "Synthetic rows.", "limitations": ["Only a test."],
        "value_labels": {"b": {"1": "yes"}}})
    result.model["hyperparameters"] = {
        "family": "scikit-learn estimator", "kind": "Ridge", "layers": [], "facts": {},
        "parameters": [{"name": "alpha", "value": "3.0", "default": "1.0", "changed": True},
                       {"name": "tol", "value": "0.0001", "default": "0.0001",
                        "changed": False}]}
    groups = (GroupMetric("[10, 20]", 40, 0.45, 0.3, 0.6, False),
              GroupMetric("[-5, 10)", 20, 0.2, 0.1, 0.3, True),
              GroupMetric("1", 30, 0.4, 0.2, 0.5, False))
    result.checks.append(CheckResult(
        name="performance.r2", check="performance.r2", explainer="", direction="higher",
        status="pass", value=0.5, threshold=0.3, handoff=CheckHandoff(
            performance=MetricEstimate("R²", 90, 0.5, 0.4, 0.6, 0.95,
                                       (SegmentMetric("b", groups),)))))
    view = render_section(ModelSection, result)
    assert view is not None
    assert view.error is None
    body = str(view.body)
    for text in ("2.1", "Ridge fitted once.", "Synthetic rows.", "Only a test.",
                 "0.4 to 0.6", "1 set away from the class default", "too few rows",
                 "yes (1)"):
        assert text in body, text
    assert body.index("[-5, 10)") < body.index("[10, 20]")  # bins in numeric order


# --------------------------------------------------------------------------------------------
# Value labels, group order, intervals and exact tests


def test_value_labels_match_codes_within_tolerance() -> None:
    labels = {"-0.04464": "code 1", "0.05068": "code 2", "M": "male"}
    assert value_label(labels, -0.0446416365) == "code 1"
    assert value_label(labels, "0.05068") == "code 2"
    assert value_label(labels, 0.0507) == "code 2"
    assert value_label(labels, 0.06) is None
    assert value_label(labels, "M") == "male"
    assert shown_value(labels, "0.05068") == "code 2 (0.05068)"
    assert shown_value(None, "x") == "x"


def test_groups_in_natural_order() -> None:
    labels = ["[0.05, 0.2]", "[-0.05, 0.05)", "[-0.2, -0.05)", "b", "10", "9", "a"]
    assert group_order(labels) == ["[-0.2, -0.05)", "[-0.05, 0.05)", "[0.05, 0.2]", "9", "10",
                                   "a", "b"]


def test_wilson_interval_and_fisher_test_against_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 120))
        k = int(rng.integers(0, n + 1))
        interval = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((interval.low, interval.high), abs=1e-12)
        a, b, c, d = (int(v) for v in rng.integers(0, 30, 4))
        assert fisher_exact(a, b, c, d) == pytest.approx(
            stats.fisher_exact([[a, b], [c, d]]).pvalue, rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------------------------
# Fairness evidence


def _fairness_result(reference: str | None = None, min_group: int = 30) -> Any:
    result = make_result(["a", "sex"], n=80, documentation={
        "decision": {"output": "score", "adverse": "above", "threshold": 1.5},
        "segments": [{"feature": "sex", "min_group": min_group,
                      **({"reference": reference} if reference else {})}],
        "value_labels": {"sex": {"-0.04464": "code 1", "0.05068": "code 2"}}})
    e = result.explanations["abl"]
    e.inputs[:, 1] = np.where(np.arange(80) < 50, -0.04464164, 0.05068012)
    e.values[:, 1, 0] = e.inputs[:, 1] * 10  # attributions stay w·x-like: additive
    return result


def test_adverse_rates_ratio_and_exact_test_per_group() -> None:
    result = _fairness_result(min_group=31)
    e = result.explanations["abl"]
    outputs = e.values[..., 0].sum(axis=1) + e.base_values[:, 0]
    adverse = outputs > 1.5
    code_1 = e.inputs[:, 1] < 0
    evidence = fairness_evidence(result, DocumentationSpec.model_validate(
        result.suite["documentation"]))
    assert evidence is not None
    assert evidence.decided
    (segment,) = evidence.segments
    first, second = segment.groups
    assert (first.label, second.label) == ("code 1 (-0.04464)", "code 2 (0.05068)")
    assert first.reference
    assert segment.reference == "code 1 (-0.04464)"
    k1, n1 = int(adverse[code_1].sum()), int(code_1.sum())
    k2, n2 = int(adverse[~code_1].sum()), int((~code_1).sum())
    assert (first.rows, first.adverse, second.rows, second.adverse) == (n1, k1, n2, k2)
    assert second.rate == pytest.approx(k2 / n2)
    assert second.ratio == pytest.approx((k2 / n2) / (k1 / n1))
    assert second.p_value == pytest.approx(
        stats.fisher_exact([[k2, n2 - k2], [k1, n1 - k1]]).pvalue)
    interval = stats.binomtest(k2, n2).proportion_ci(0.95, method="wilson")
    assert (second.ci_low, second.ci_high) == pytest.approx((interval.low, interval.high))
    assert not first.too_small
    assert second.too_small
    assert first.top[0][0] in ("a", "sex")
    mean_abs = np.abs(e.values[code_1, :, 0]).mean(axis=0)
    assert first.top[0][0] == e.feature_names[int(np.argmax(mean_abs))]


def test_documented_reference_and_unknown_reference() -> None:
    doc = DocumentationSpec.model_validate
    result = _fairness_result(reference="code 2")
    evidence = fairness_evidence(result, doc(result.suite["documentation"]))
    assert evidence is not None
    assert [g.reference for g in evidence.segments[0].groups] == [False, True]
    result = _fairness_result(reference="nobody")
    evidence = fairness_evidence(result, doc(result.suite["documentation"]))
    assert evidence is not None
    assert "not one of the groups" in (evidence.segments[0].note or "")


def test_fairness_section_renders(tmp_path: Path) -> None:
    view = render_section(FairnessSection, _fairness_result(min_group=31))
    assert view is not None
    assert view.error is None
    assert "code 2 (0.05068)" in view.body
    assert "Fisher" in view.body
    assert "too few to conclude" in view.body


# --------------------------------------------------------------------------------------------
# The documentation block


def test_documentation_accepts_new_fields_and_checks_value_label_features() -> None:
    doc = DocumentationSpec.model_validate({
        "version": "1", "training_procedure": "t", "data_lineage": "d", "limitations": ["l"],
        "value_labels": {"sex": {"1": "one"}},
        "segments": [{"feature": "sex", "reference": "one", "min_group": 5}]})
    assert doc.value_labels == {"sex": {"1": "one"}}
    from xaudit.suite_checks import documentation_problems

    problems = documentation_problems(doc.model_copy(update={"value_labels": {"sx": {}}}),
                                      ["sex"], ["score"])
    assert [p.path for p in problems] == ["documentation.value_labels.sx"]


def test_unquoted_numeric_value_label_codes_name_the_field() -> None:
    with pytest.raises(SuiteError, match=r"documentation\.value_labels\.sex"):
        parse_suite({
            "name": "s", "model": {"factory": "m:f"}, "data": {"source": "sklearn:diabetes"},
            "explainers": [{"id": "a", "method": "ablation"}],
            "documentation": {"value_labels": {"sex": {0.05068: "two"}}}})


# --------------------------------------------------------------------------------------------
# The performance check's typed hand-off, as the model section reads it


def test_performance_check_hands_over_its_figure_and_segments() -> None:
    from sklearn import datasets, metrics

    from xaudit.data import Dataset, split_rows

    bunch = datasets.load_diabetes()
    train, test = split_rows(len(bunch.target), 0.3, np.random.default_rng(0))
    data = Dataset(X=bunch.data, y=bunch.target, feature_names=tuple(bunch.feature_names),
                   source="test", fingerprint="0", train_rows=train, test_rows=test,
                   explain_rows=test[:5], background=None)
    model = Ridge(alpha=0.1).fit(data.X_train, data.y_train)
    doc = DocumentationSpec.model_validate({"segments": [
        "sex", {"feature": "age", "bins": [-0.2, -0.05, 0.05, 0.2]}]})
    result = xaudit.check("performance.r2", model, None, data=data, seed=3, n_boot=200,
                          documentation=doc)
    figure = result.handoff.performance
    assert figure is not None
    predicted = model.predict(data.X_test)
    assert figure.value == pytest.approx(metrics.r2_score(data.y_test, predicted))
    assert figure.rows == test.size
    assert figure.ci_low is not None
    assert figure.ci_high is not None
    assert figure.ci_low < figure.value < figure.ci_high
    sex = {g.label: g for g in figure.segments[0].groups}
    for code, group in sex.items():
        rows = np.isclose(data.X_test[:, 1], float(code), rtol=1e-3)
        assert group.rows == int(rows.sum())
        assert group.value == pytest.approx(metrics.r2_score(data.y_test[rows], predicted[rows]))
    shown = performance_figures(make_result(["a"]), None)  # no performance check: nothing
    assert shown == []
