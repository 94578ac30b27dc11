"""The plain-language executive summary: every failed, warned and crashed check is named with
what it means, caveats and open decisions follow the results, and names from data are escaped
in the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from reports_support import make_result
from test_reconciled_reasons import (
    DIRECTIONAL,
    THRESHOLD,
    W,
    _explanation,
    _linear_case,
    _result,
    _rule,
)

import xaudit
from xaudit.reports.options import documentation_of
from xaudit.reports.plain_language import FAILURE_MEANINGS, check_meanings, plain_summary
from xaudit.results import AuditResult, CheckResult, ErrorInfo


def _check(name: str, check: str, status: str, value: float | None, threshold: float | None,
           direction: str = "lower") -> CheckResult:
    return CheckResult(name=name, check=check, explainer="abl", direction=direction,  # type: ignore[arg-type]
                       status=status, value=value, threshold=threshold)  # type: ignore[arg-type]


def _with_checks(checks: list[CheckResult], **documentation: object) -> AuditResult:
    result = make_result(["a", "b", "c"], n=40, documentation=dict(documentation) or None)
    result.checks = checks
    return result


def _text(result: AuditResult) -> str:
    host = xaudit.create_host()
    return "\n".join(plain_summary(result, documentation_of(result), check_meanings(host)))


def test_every_failed_warned_and_crashed_check_is_named_with_its_meaning() -> None:
    custom = _check("my_probe@abl", "infidelity", "fail", 0.4, 0.1)
    result = _with_checks([
        _check("completeness@abl", "completeness", "fail", 0.25, 1e-6),
        _check("agreement@abl", "agreement", "warn", 0.81, 0.8, "higher"),
        _check("deletion@abl", "deletion", "pass", 0.1, 0.0),
        replace(_check("stability@abl", "stability", "error", None, 0.7),
                error=ErrorInfo("ValueError", "bad", "tb")),
        _check("r2", "performance.r2", "fail", 0.12, 0.3, "higher"),
        custom,
        _check("concentration@abl", "concentration", "not_gated", 0.6, None),
    ])
    text = _text(result)
    assert "Overall verdict: CRASHED." in text  # a crashed check decides the exit code (3)
    assert "3 of 6 checks with a pass mark did not meet it and 1 could not be completed" in text
    assert ("“completeness@abl” failed: it measured 0.25 where at most 1e-06 is required; "
            f"this means {FAILURE_MEANINGS['completeness']}.") in text
    assert "“r2” failed: it measured 0.12 where at least 0.3 is required; this means the " \
           "model predicts held-out cases less accurately than required." in text
    assert f"“my_probe@abl” failed: it measured 0.4 where at most 0.1 is required; this means " \
           f"{FAILURE_MEANINGS['infidelity']}." in text
    assert "“agreement@abl” passed with a warning: it measured 0.81 where at least 0.8 is " \
           f"required; if it worsens, {FAILURE_MEANINGS['agreement']}." in text
    assert "“stability@abl” could not be completed (ValueError)" in text
    assert "deletion@abl" not in text  # passed: not listed among the failures
    assert "1 check measured values without a pass mark (concentration@abl)" in text
    assert "should not be relied on" in text


def test_an_unknown_check_falls_back_to_its_plugin_summary() -> None:
    result = _with_checks([_check("x", "third.party", "fail", 2.0, 1.0)])
    text = "\n".join(plain_summary(result, None, {"third.party": "Counts the gremlins."}))
    assert "this means the check (counts the gremlins) is not met." in text


def test_a_passing_audit_says_what_it_means_and_what_remains() -> None:
    result = _with_checks([_check("completeness@abl", "completeness", "pass", 1e-9, 1e-6)],
                          status="approved", approved_by={"name": "Grace", "role": "validator",
                                                          "date": "2025-02-03"},
                          intended_use="Rank applications for review.")
    paragraphs = plain_summary(result, documentation_of(result))
    assert paragraphs[0].startswith("This audit examined a regression model named “linear”, "
                                    "with data from in-memory arrays. It explained the "
                                    "model's outputs for 40 subjects")
    assert paragraphs[0].endswith("The model's documented purpose: Rank applications for "
                                  "review.")
    assert paragraphs[1] == ("Overall verdict: PASSED. All 1 check with a pass mark met it.")
    assert "as far as these checks go" in paragraphs[2]
    assert paragraphs[-1].startswith("The reviewer must still decide: confirm the approval "
                                     "recorded for Grace (validator); whether the pass marks")
    assert "sign off" not in paragraphs[-1]
    draft = _with_checks([])
    text = _text(draft)
    assert "Overall verdict: NO GATES EVALUATED. No check had a pass mark" in text
    assert "sign off the audit (its status is draft)" in text
    assert "only" not in text  # 40 subjects are not few
    assert plain_summary(result, documentation_of(result)) == paragraphs  # deterministic


def test_caveats_count_withheld_and_disagreeing_reasons_and_few_subjects() -> None:
    X, B, values = _linear_case(n=20)
    other = values.copy()
    other[:, :, 0] = values[:, ::-1, 0]
    errors = np.abs(values) * 0.9  # every reason within 2 standard errors: all withheld
    result = _result({"shap": _explanation(X, B, values),
                      "other": _explanation(X, B, other),
                      "kernel": _explanation(X, B, values, std_errors=errors)},
                     B, {"decision": _rule(), "reason_codes": DIRECTIONAL})
    text = "\n".join(plain_summary(result, documentation_of(result)))
    adverse = int((X @ W > THRESHOLD).sum())
    assert f"{adverse} of 20 subjects received an adverse decision; their reasons come from " \
           "shap." in text
    assert "only 20 subjects were explained" in text
    assert "the other explanation methods do not support every reason shap gives" in text
    withheld = _result({"kernel": _explanation(X, B, values, std_errors=errors)}, B,
                       {"decision": _rule(), "reason_codes": DIRECTIONAL})
    text = "\n".join(plain_summary(withheld, documentation_of(withheld)))
    assert f"for {adverse} adverse decisions, some reasons were withheld" in text
    assert "how to handle the adverse decisions whose reasons are flagged or withheld" in text


def test_names_from_data_are_escaped_and_the_summary_comes_first(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    result = _with_checks([_check(hostile, "completeness", "fail", 0.5, 1e-6)],
                          intended_use=f"Use {hostile}")
    result.model["name"] = hostile
    xaudit.render(result, tmp_path, formats=("html",))
    page = (tmp_path / "report.html").read_text()
    summary = page[page.index('id="sec-summary"'):page.index('id="sec-model"')]
    assert "<script>" not in summary
    assert summary.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # model, purpose, check
    assert summary.index('class="plain-summary"') < summary.index('class="gates"')
    assert "did not meet it" in summary
