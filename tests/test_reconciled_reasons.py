"""Reconciled adverse-action reasons, against brute force on hand-built explanations.

The model is linear, ``f(x) = w·x``, explained exactly against a background ``B``:
``phi_ij = w_j (x_ij - mean(B_j))`` (interventional SHAP of a linear model, a closed form), so
the direction of every value against the background mean, the adverse decisions and the
features pushing towards them are recomputed here with plain numpy and loops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reports_support import make_result
from sklearn.datasets import load_diabetes

import xaudit
from xaudit.explanation import Explanation
from xaudit.handoff import Handoff, SurrogateFit
from xaudit.reports.options import documentation_of
from xaudit.reports.reasons import Reconciled, reconcile
from xaudit.results import AuditResult
from xaudit.suite import DocumentationSpec

NAMES = ("a", "b", "c", "d", "e", "f")
W = np.array([2.0, -1.5, 1.0, -0.8, 0.6, 0.3])
THRESHOLD = 0.5


def _linear_case(n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Explained rows ``X``, background ``B`` (shifted, so the mean is not zero) and the exact
    attributions ``(n, d, 1)``."""
    rng = np.random.default_rng(seed)
    B = rng.normal(loc=0.3, size=(200, len(NAMES)))
    X = rng.normal(size=(n, len(NAMES)))
    return X, B, ((X - B.mean(axis=0)) * W)[..., None]


def _explanation(X: np.ndarray, B: np.ndarray, values: np.ndarray, method: str = "shap.exact",
                 **fields: Any) -> Explanation:
    n = X.shape[0]
    return Explanation(method=method, values=values,
                       base_values=np.full((n, 1), float(B.mean(axis=0) @ W)),
                       feature_names=NAMES, output_names=("score",),
                       target_indices=np.zeros((n, 1), dtype=np.int64), inputs=X,
                       additive=True, **fields)


def _result(explanations: dict[str, Explanation], B: np.ndarray,
            documentation: dict[str, Any], checks: list[dict[str, Any]] | None = None
            ) -> AuditResult:
    """An AuditResult holding ``explanations`` (suite order as given) and the background
    means of ``B`` computed here."""
    first = next(iter(explanations.values()))
    result = make_result(NAMES, n=first.n_rows, documentation=documentation)
    result.explanations = dict(explanations)
    result.checks = []
    result.suite["explainers"] = [{"id": k, "method": e.method, "params": {}}
                                  for k, e in explanations.items()]
    result.suite["checks"] = checks or []
    result.data["background_means"] = dict(zip(NAMES, B.mean(axis=0).tolist(), strict=True))
    return result


def _decided(result: AuditResult) -> Reconciled:
    return reconcile(result, documentation_of(result))


def _rule(**more: Any) -> dict[str, Any]:
    return {"output": "score", "adverse": "above", "threshold": THRESHOLD, **more}


def _brute_force_top(x: np.ndarray, phi: np.ndarray, excluded: set[str] = frozenset()
                     ) -> list[str]:
    pushes = sorted(((phi[j], -j) for j in range(len(NAMES))
                     if phi[j] > 0 and NAMES[j] not in excluded), reverse=True)
    return [NAMES[-j] for _, j in pushes[:4]]


DIRECTIONAL = {name: {"high": f"{name} is high", "low": f"{name} is low"} for name in NAMES}


def test_a_statement_is_issued_only_on_its_side_of_the_background_mean() -> None:
    X, B, values = _linear_case()
    found = _decided(_result({"shap": _explanation(X, B, values)}, B,
                             {"decision": _rule(), "reason_codes": DIRECTIONAL}))
    mean = B.mean(axis=0)
    adverse = np.flatnonzero(X @ W > THRESHOLD)
    assert [s.row_id for s in found.subjects] == [100 + r for r in adverse]
    low_issued = 0
    for subject, row in zip(found.subjects, adverse, strict=True):
        assert [r.feature for r in subject.reasons] == _brute_force_top(X[row], values[row, :, 0])
        for reason in subject.reasons:
            j = NAMES.index(reason.feature)
            expected = "high" if X[row, j] > mean[j] else "low"
            assert reason.statement == f"{reason.feature} is {expected}"
            low_issued += expected == "low"
    assert low_issued > 0, "the case needs below-mean values among the reasons"


def test_a_below_mean_value_never_gets_the_high_statement() -> None:
    """A U-shaped effect of ``a`` (``2 |a - mean|``): both high and low values push the output
    up, as a model in which extreme cholesterol either way raises the risk."""
    X, B, values = _linear_case()
    mean_a = B[:, 0].mean()
    values[:, 0, 0] = 2.0 * np.abs(X[:, 0] - mean_a)
    codes = {"a": {"high": "a is high"}, "b": "b (plain)"}
    found = _decided(_result({"shap": _explanation(X, B, values)}, B,
                             {"decision": _rule(), "reason_codes": codes}))
    seen = {"high": 0, "low": 0}
    for subject in found.subjects:
        row = subject.row_id - 100
        for reason in subject.reasons:
            if reason.feature == "a":
                side = "high" if X[row, 0] > mean_a else "low"
                seen[side] += 1
                assert reason.coded == (side == "high")
                assert (reason.statement == "a is high") == (side == "high")
                if side == "low":
                    assert reason.statement == "a (no statement documented for a low value)"
            if reason.feature == "b":  # a plain statement: issued, with the measured side
                assert reason.statement == "b (plain)"
                assert reason.coded
                assert reason.direction == ("high" if X[row, 1] > B[:, 1].mean() else "low")
    assert min(seen.values()) > 0, "the case needs a on both sides"


def test_without_a_background_mean_no_directional_statement_is_issued() -> None:
    X, B, values = _linear_case()
    result = _result({"shap": _explanation(X, B, values)}, B,
                     {"decision": _rule(), "reason_codes": DIRECTIONAL})
    del result.data["background_means"]
    found = _decided(result)
    reasons = [r for s in found.subjects for r in s.reasons]
    assert reasons
    assert not any(r.coded for r in reasons)
    assert all("direction unknown" in r.statement for r in reasons)


def test_lime_reasons_under_the_r2_floor_are_withheld_with_why() -> None:
    X, B, values = _linear_case()
    n = X.shape[0]
    r2 = np.linspace(0.05, 0.95, n)[:, None]
    fit = SurrogateFit(r2=r2, local_prediction=(X @ W)[:, None])
    lime = _explanation(X, B, values, method="lime.tabular",
                        handoff=Handoff(outputs=(X @ W)[:, None], surrogate=fit))
    lime.additive = False
    for floor in (0.5, 0.2):
        found = _decided(_result({"lime": lime}, B, {
            "decision": _rule(primary_explainer="lime", min_surrogate_r2=floor),
            "reason_codes": DIRECTIONAL}))
        assert found.primary == "lime"
        withheld = 0
        for subject in found.subjects:
            row = subject.row_id - 100
            if r2[row, 0] < floor:
                withheld += 1
                assert subject.reasons == []
                assert len(subject.withheld) == 1
                assert subject.withheld[0].feature is None
                assert f"local surrogate R² {r2[row, 0]:.3g} under the floor {floor:g}" in \
                    subject.withheld[0].why
            else:
                assert [r.feature for r in subject.reasons] == _brute_force_top(
                    X[row], values[row, :, 0])
                assert subject.withheld == []
        assert withheld == found.withheld > 0


def test_sampled_reasons_within_their_standard_errors_are_withheld() -> None:
    X, B, values = _linear_case()
    errors = np.abs(values) * np.random.default_rng(5).uniform(0.1, 1.0, size=values.shape)
    found = _decided(_result({"kernel": _explanation(X, B, values, std_errors=errors)}, B, {
        "decision": _rule(), "reason_codes": DIRECTIONAL}))
    withheld = 0
    for subject in found.subjects:
        row = subject.row_id - 100
        top = _brute_force_top(X[row], values[row, :, 0])
        noisy = [f for f in top if abs(values[row, NAMES.index(f), 0])
                 < 2 * errors[row, NAMES.index(f), 0]]
        assert [r.feature for r in subject.reasons] == [f for f in top if f not in noisy]
        assert [w.feature for w in subject.withheld] == noisy
        withheld += len(noisy)
    assert withheld > 0, "the case needs noisy reasons"


def test_a_corroborator_missing_an_issued_reason_flags_the_subject() -> None:
    X, B, values = _linear_case()
    other = values.copy()
    flip = np.arange(0, X.shape[0], 3)  # every third row: the corroborator's top push is gone
    for row in flip:
        top = _brute_force_top(X[row], values[row, :, 0])
        if top:
            other[row, NAMES.index(top[0]), 0] *= -1.0
    reordered = values.copy()  # the two largest pushes swapped: same reasons, other order
    for row in range(X.shape[0]):
        top = [NAMES.index(f) for f in _brute_force_top(X[row], values[row, :, 0])]
        if len(top) > 1:
            reordered[row, top[:2], 0] = values[row, top[1::-1], 0]
    found = _decided(_result({
        "shap": _explanation(X, B, values),
        "same": _explanation(X, B, values.copy()),
        "other": _explanation(X, B, other),
        "reordered": _explanation(X, B, reordered),
    }, B, {"decision": _rule(primary_explainer="shap"), "reason_codes": DIRECTIONAL}))
    assert found.corroborators == ["same", "other", "reordered"]
    flagged = 0
    for subject in found.subjects:
        row = subject.row_id - 100
        by = {c.explainer: c for c in subject.corroboration}
        issued = [r.feature for r in subject.reasons]
        assert by["same"].status == "agrees"
        assert by["same"].missing == ()
        expected_other = _brute_force_top(X[row], other[row, :, 0])
        assert list(by["other"].reasons) == expected_other
        missing = [f for f in issued if f not in expected_other]
        assert list(by["other"].missing) == missing
        assert subject.flagged == bool(missing)
        flagged += bool(missing)
        assert by["reordered"].status == ("other order" if len(issued) > 1 else "agrees")
    assert flagged == found.flagged > 0
    record = json.loads(json.dumps(found.record()))
    assert record["counts"]["flagged"] == flagged
    assert sum(s["flagged"] for s in record["subjects"]) == flagged


def test_forbidden_features_are_never_reasons() -> None:
    X, B, values = _linear_case()
    checks = [{"check": "forbidden_features", "explainer": "shap",
               "params": {"features": ["a", "b"]}}]
    found = _decided(_result({"shap": _explanation(X, B, values)}, B,
                             {"decision": _rule(), "reason_codes": DIRECTIONAL}, checks))
    assert found.forbidden == ["a", "b"]
    excluded_seen = 0
    for subject in found.subjects:
        row = subject.row_id - 100
        assert not {"a", "b"} & {r.feature for r in subject.reasons}
        assert [r.feature for r in subject.reasons] == _brute_force_top(
            X[row], values[row, :, 0], {"a", "b"})
        would_be = [f for f in _brute_force_top(X[row], values[row, :, 0]) if f in "ab"]
        assert [w.feature for w in subject.withheld] == would_be
        excluded_seen += len(would_be)
    assert excluded_seen > 0, "the case needs a forbidden feature among the pushes"


def test_the_default_primary_is_the_first_additive_explainer() -> None:
    X, B, values = _linear_case()
    lime = _explanation(X, B, values, method="lime.tabular")
    lime.additive = False
    found = _decided(_result({"lime": lime, "shap": _explanation(X, B, values)}, B,
                             {"decision": _rule()}))
    assert (found.primary, found.chosen_by) == ("shap",
                                                "default: the first additive local explainer")
    assert found.corroborators == ["lime"]
    none = _decided(_result({"shap": _explanation(X, B, values)}, B, {}))
    assert none.not_applicable is not None
    assert "documentation.decision" in none.not_applicable


def test_the_report_prints_reasons_escaped_with_disagreements(tmp_path: Path) -> None:
    from test_reports_content import render_html

    X, B, values = _linear_case(n=12)
    other = values.copy()
    other[:, :, 0] = values[:, ::-1, 0]
    codes = {n: {"high": f"<b>{n}</b> high", "low": f"{n} low"} for n in NAMES}
    result = _result({"shap": _explanation(X, B, values), "other": _explanation(X, B, other)},
                     B, {"decision": _rule(), "reason_codes": codes})
    page = render_html(result, tmp_path)
    local = page[page.index('id="sec-local"'):page.index('id="sec-media"')]
    found = _decided(result)
    assert found.flagged > 0
    assert local.count("DISAGREE</span>") == found.flagged
    assert "&lt;b&gt;" in local
    assert "<b>a</b>" not in local
    assert f"{len(found.subjects)} of 12 explained subjects had an adverse decision" in local


# --- a real run: the runner records the reconciled reasons in results.json -----------------

MODELS = '''\
from sklearn.linear_model import LinearRegression


def linear(data):
    return LinearRegression().fit(data.X_train, data.y_train)
'''


def test_a_run_writes_the_reconciled_reasons_to_results_json(tmp_path: Path) -> None:
    (tmp_path / "reasons_models.py").write_text(MODELS)
    codes = {f: {"high": f"{f} is high", "low": f"{f} is low"}
             for f in ("age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")}
    suite = {
        "name": "reasons", "seed": 3,
        "model": {"factory": "reasons_models:linear", "output_names": ["progression"]},
        "data": {"source": "sklearn:diabetes", "split": {"test_size": 0.25},
                 "explain": {"n": 25, "from": "test"}, "background": {"n": 60}},
        "explainers": [{"id": "abl", "method": "ablation"},
                       {"id": "lime", "method": "lime.tabular", "params": {"n_samples": 300}}],
        "checks": [{"check": "forbidden_features", "explainer": "abl",
                    "params": {"features": ["sex"], "reasons": False}},
                   {"check": "completeness", "explainer": "abl",  # outputs = base + sum
                    "gate": {"threshold": 1e-6}}],
        "report": {"formats": ["json"]},
        "documentation": {"decision": {"output": "progression", "threshold": 150.0,
                                       "primary_explainer": "abl"},
                          "reason_codes": codes},
    }
    path = tmp_path / "suite.yaml"
    path.write_text(json.dumps(suite))
    out = tmp_path / "out"
    assert xaudit.cli.main(["run", "-q", str(path), "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())["decisions"]
    assert record["primary_explainer"] == "abl"
    assert record["corroborators"] == ["lime"]
    saved = json.loads((out / "results.json").read_text())
    X = load_diabetes().data
    mean = X[saved["data"]["sampling"]["background"]["rows"]].mean(axis=0)
    names = saved["data"]["feature_names"]
    explained = saved["data"]["explain_rows"]
    assert record["counts"]["adverse"] == len(record["subjects"]) > 0
    for subject in record["subjects"]:
        assert subject["row"] in explained
        for reason in subject["reasons"]:
            assert reason["feature"] != "sex"
            j = names.index(reason["feature"])
            side = "high" if X[subject["row"], j] > mean[j] else "low"
            assert reason["statement"] == f"{reason['feature']} is {side}"
        assert [c["explainer"] for c in subject["corroboration"]] == ["lime"]
    loaded = AuditResult.load(out)
    assert loaded.decisions == record
    rebuilt = reconcile(loaded, DocumentationSpec.model_validate(suite["documentation"]))
    assert json.loads(json.dumps(rebuilt.record())) == record


def test_protected_feature_check_still_sees_the_model_rely_on_it() -> None:
    """Leaving a forbidden feature out of the reasons does not hide it from its check."""
    X, B, values = _linear_case()
    model = xaudit.adapt(lambda rows: rows @ W, output_names=["score"],
                         host=xaudit.create_host(autoload=False))
    explanation = _explanation(X, B, values)
    documentation = DocumentationSpec.model_validate({"decision": _rule()})
    checked = xaudit.check("forbidden_features", model, explanation,
                           host=xaudit.create_host(autoload=False),
                           documentation=documentation, features=["a"], top_k=1)
    counts = sum("a" in _brute_force_top(X[r], values[r, :, 0])
                 for r in np.flatnonzero(X @ W > THRESHOLD))
    assert checked.details["in_reasons"] == {"a": counts}
    assert counts > 0


@pytest.mark.parametrize("side", ["high", "low"])
def test_reason_codes_complete_counts_a_missing_direction(side: str) -> None:
    X, B, values = _linear_case()
    host = xaudit.create_host(autoload=False)
    model = xaudit.adapt(lambda rows: rows @ W, output_names=["score"], host=host)
    data = xaudit.data.Dataset.from_arrays(X, feature_names=NAMES, background=B)
    codes = {n: {side: f"{n} is {side}"} for n in NAMES}
    documentation = DocumentationSpec.model_validate({"decision": _rule(),
                                                      "reason_codes": codes})
    checked = xaudit.check("reason_codes_complete", model, _explanation(X, B, values),
                           host=host, documentation=documentation, data=data)
    mean = B.mean(axis=0)
    other = {"high": "low", "low": "high"}[side]
    expected: dict[str, int] = {}
    for row in np.flatnonzero(X @ W > THRESHOLD):
        for f in _brute_force_top(X[row], values[row, :, 0]):
            j = NAMES.index(f)
            if ("high" if X[row, j] > mean[j] else "low") == other:
                expected[f] = expected.get(f, 0) + 1
    assert checked.details["undocumented"] == dict(sorted(expected.items()))
    assert checked.value == len(expected) > 0
