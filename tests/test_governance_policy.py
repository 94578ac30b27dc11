"""Policy checks on explanations made by hand, against a brute-force reading of the arrays.

The model is linear, ``f(x) = w·x``, and its explanation is exact (``phi_ij = w_j x_ij``), so
the adverse decisions and their principal reasons (up to four features pushing the output
furthest above the threshold) are recomputed here with a plain loop.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

import xaudit
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.suite import DocumentationSpec

HOST = xaudit.create_host(autoload=False)
NAMES = ("income", "debt", "age", "sex", "zip", "tenure")
W = np.array([3.0, -2.0, 1.0, 0.8, 0.5, 0.0])  # tenure is never used


@pytest.fixture(scope="module")
def case() -> tuple[Any, Explanation]:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 6))
    X[:, 3] = rng.integers(0, 2, size=60) * 2.0 - 1.0  # sex as -1 / +1
    values = (X * W)[..., None]
    model = xaudit.adapt(lambda rows: rows @ W, output_names=["score"], host=HOST)
    explanation = Explanation(method="ablation", values=values, base_values=np.zeros((60, 1)),
                              feature_names=NAMES, output_names=("score",),
                              target_indices=np.zeros((60, 1), dtype=np.int64), inputs=X)
    return model, explanation


def policy(name: str, case: tuple[Any, Explanation], documentation: DocumentationSpec | None,
           **params: Any) -> xaudit.CheckResult:
    model, explanation = case
    return xaudit.check(name, model, explanation, host=HOST, documentation=documentation,
                        **params)


def brute_force_reasons(X: np.ndarray, threshold: float) -> Counter[str]:
    counts: Counter[str] = Counter()
    for x in X:
        if x @ W <= threshold:
            continue
        push = [(w * v, -j) for j, (w, v) in enumerate(zip(W, x, strict=True)) if w * v > 0]
        for _, j in sorted(push, reverse=True)[:4]:
            counts[NAMES[-j]] += 1
    return counts


def documented(codes: dict[str, str], threshold: float = 1.0) -> DocumentationSpec:
    return DocumentationSpec.model_validate({
        "decision": {"output": "score", "adverse": "above", "threshold": threshold},
        "reason_codes": codes})


def test_concentration_is_the_largest_share(case: tuple[Any, Explanation]) -> None:
    _, explanation = case
    result = policy("concentration", case, None)
    mean_abs = np.abs(explanation.values[..., 0]).mean(axis=0)
    assert result.value == pytest.approx(mean_abs.max() / mean_abs.sum(), rel=1e-12)
    assert result.details["feature"] == "income"
    assert result.handoff.statements == (
        f"income holds {mean_abs.max() / mean_abs.sum():.0%} of all attribution.",)


def test_a_leak_column_is_named_by_concentration() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=(20, 4, 1)) * np.array([1.0, 1.0, 1.0, 30.0])[None, :, None]
    explanation = Explanation("shap.tree", values, None, ("a", "b", "c", "followup_lab"),
                              ("y",), np.zeros((20, 1), dtype=np.int64), np.zeros((20, 4)))
    model = xaudit.adapt(lambda rows: rows.sum(axis=1), host=HOST)
    result = xaudit.check("concentration", model, explanation, host=HOST,
                          gate=xaudit.suite.GateSpec(threshold=0.5))
    assert result.status == "fail"
    assert result.verdict().endswith(f"followup_lab holds {result.value:.0%} of all "
                                     "attribution.")


def test_forbidden_features_in_the_top_k(case: tuple[Any, Explanation]) -> None:
    _, explanation = case
    mean_abs = np.abs(explanation.values[..., 0]).mean(axis=0)
    rank = {NAMES[j]: r + 1 for r, j in enumerate(np.argsort(-mean_abs))}
    for k in (2, 3, 4, 5):
        result = policy("forbidden_features", case, None, features=["age", "sex"], top_k=k,
                        reasons=False)
        expected = {f: rank[f] for f in ("age", "sex") if rank[f] <= k}
        assert result.details["in_top_k"] == expected
        assert result.value == len(expected)


def test_forbidden_features_among_the_reasons_issued(case: tuple[Any, Explanation]) -> None:
    _model, explanation = case
    counts = brute_force_reasons(explanation.inputs, threshold=1.0)
    assert counts["sex"] > 0, "the case needs sex among the reasons"
    result = policy("forbidden_features", case, documented({}), features=["sex", "tenure"],
                    top_k=1)
    assert result.details["in_reasons"] == {"sex": counts["sex"]}
    assert result.details["in_top_k"] == {}
    assert result.value == 1
    adverse = int((explanation.inputs @ W > 1.0).sum())
    assert result.details["adverse_rows"] == adverse
    assert result.handoff.statements == (
        f"sex is given as a principal reason for {counts['sex']} of {adverse} adverse "
        "decisions.",)


def test_reason_codes_complete_names_every_reason_without_a_statement(
        case: tuple[Any, Explanation]) -> None:
    _, explanation = case
    counts = brute_force_reasons(explanation.inputs, threshold=1.0)
    codes = {"income": "Income too low", "debt": "Debt too high"}
    result = policy("reason_codes_complete", case, documented(codes))
    missing = {f: n for f, n in counts.items() if f not in codes}
    assert result.details["undocumented"] == missing
    assert result.details["issued"] == dict(counts)
    assert result.value == len(missing)
    complete = policy("reason_codes_complete", case,
                      documented({f: f"{f} statement" for f in NAMES}))
    assert complete.value == 0
    assert complete.handoff.statements[0].startswith("Every reason issued")


def test_policy_refusals_say_what_to_change(case: tuple[Any, Explanation]) -> None:
    with pytest.raises(InputError, match=r"add documentation\.decision"):
        policy("reason_codes_complete", case, None)
    with pytest.raises(InputError, match=r"add documentation\.decision"):
        policy("forbidden_features", case, DocumentationSpec(), features=["sex"])
    with pytest.raises(InputError, match="sexx is not a feature"):
        policy("forbidden_features", case, None, features=["sexx"], reasons=False)
    wrong_output = DocumentationSpec.model_validate(
        {"decision": {"output": "other", "threshold": 0.0}})
    with pytest.raises(InputError, match="is not among the explained outputs"):
        policy("reason_codes_complete", case, wrong_output)
