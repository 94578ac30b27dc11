"""The regulatory mapping's statuses, computed from evidence (issue 15, item 1).

Each framework is fed a result carrying every piece of evidence, then results with one piece
taken away (in the results or the documentation block, never in the evidence itself), and the
status and the named missing piece are checked against what the item needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reports_support import make_result

import xaudit
from xaudit.handoff import CheckHandoff, GroupMetric, MetricEstimate, SegmentMetric
from xaudit.host import default_host
from xaudit.reports.options import documentation_of
from xaudit.reports.regulatory import EVIDENCE, Assessment, Evidence, RegulatoryItem, assess
from xaudit.reports.regulatory_evidence import check_kinds, gather_evidence
from xaudit.reports.regulatory_items import ANNEX_IV, ITEMS
from xaudit.results import AuditResult, CheckResult

FULL_DOCUMENTATION: dict[str, Any] = {
    "intended_use": "Rank applications for manual review.", "owner": "Credit risk",
    "out_of_scope": ["Automatic decline."], "status": "approved",
    "prepared_by": {"name": "Ada", "role": "developer", "date": "2025-02-01"},
    "reviewed_by": {"name": "Edsger", "role": "validator", "date": "2025-02-02"},
    "approved_by": {"name": "Grace", "role": "chief risk officer", "date": "2025-02-03"},
    "segments": ["b"],
    "decision": {"output": "score", "adverse": "above", "threshold": 1.5},
    "reason_codes": {"a": "A is high", "b": "B is high", "c": "C is high"},
}


def _check(name: str, check: str, value: float, status: str = "pass",
           details: dict[str, Any] | None = None, explainer: str = "") -> CheckResult:
    return CheckResult(name=name, check=check, explainer=explainer, direction="higher",
                       status=status, value=value, threshold=0.0 if status != "not_gated"
                       else None, details=details or {})  # type: ignore[arg-type]


def performance(segments: bool = True, status: str = "pass") -> CheckResult:
    """A held-out R² check as ``performance.r2`` hands it over: the figure in its typed hand-off
    (what the report reads), the same numbers in its details."""
    groups = [{"label": "0", "rows": 30, "value": 0.41, "ci_low": 0.2, "ci_high": 0.6,
               "too_small": False}]
    check = _check("performance.r2", "performance.r2", 0.45, status, {
        "metric": "r2", "overall": 0.45, "ci_low": 0.3, "ci_high": 0.55,
        "segments": [{"feature": "b", "groups": groups, "missing": None}] if segments else []})
    figure = MetricEstimate("R²", 110, 0.45, 0.3, 0.55, 0.95, (
        SegmentMetric("b", tuple(GroupMetric(**g) for g in groups)),) if segments else ())
    check.handoff = CheckHandoff(performance=figure)
    return check


def drift() -> CheckResult:
    return _check("drift.rank_correlation@abl", "drift.rank_correlation", 0.9,
                  explainer="abl")


def reasons(undocumented: dict[str, int] | None = None) -> CheckResult:
    missing = undocumented or {}
    return CheckResult(name="reason_codes_complete@abl", check="reason_codes_complete",
                       explainer="abl", direction="lower", status="pass" if not missing
                       else "fail", value=float(len(missing)), threshold=0.0,
                       details={"undocumented": missing, "issued": {}})


def full_result() -> AuditResult:
    """A result with every piece of evidence: complete documentation, explanations, an
    explanation check, a performance check per segment, a drift check and the reasons check."""
    result = make_result(["a", "b", "c"], n=10, documentation=FULL_DOCUMENTATION)
    result.checks += [performance(), drift(), reasons()]
    return result


def statuses(result: AuditResult) -> dict[str, Assessment]:
    evidence = gather_evidence(result, documentation_of(result), check_kinds(default_host()))
    return {item.item: assess(item, evidence) for item in ITEMS}


def documented(**changes: Any) -> Callable[[AuditResult], None]:
    """A change of the documentation block (``None`` removes the field)."""
    def change(result: AuditResult) -> None:
        block = dict(result.suite["documentation"])
        for key, value in changes.items():
            if value is None:
                block.pop(key, None)
            else:
                block[key] = value
        result.suite["documentation"] = block
    return change


def without_checks(*kinds: str) -> Callable[[AuditResult], None]:
    def change(result: AuditResult) -> None:
        result.checks[:] = [c for c in result.checks if c.check not in kinds]
    return change


def replaced(old: str, new: CheckResult) -> Callable[[AuditResult], None]:
    def change(result: AuditResult) -> None:
        result.checks[:] = [new if c.check == old else c for c in result.checks]
    return change


def no_explanations(result: AuditResult) -> None:
    result.explanations.clear()
    result.checks[:] = [c for c in result.checks if not c.explainer]


def run_case(item: str, change: Callable[[AuditResult], None] | None) -> Assessment:
    result = full_result()
    if change is not None:
        change(result)
    return statuses(result)[item]


CASES: list[tuple[str, str, Callable[[AuditResult], None] | None, str, str]] = [
    # EU AI Act
    ("EU AI Act, Annex IV 2(g)", "all evidence", None, "SERVED", ""),
    ("EU AI Act, Annex IV 2(g)", "approver has no date",
     documented(status="draft", approved_by={"name": "Grace", "role": "CRO"}), "PARTIAL",
     "approved_by has no date"),
    ("EU AI Act, Annex IV 2(g)", "no reviewer", documented(reviewed_by=None), "PARTIAL",
     "reviewed_by missing"),
    ("EU AI Act, Annex IV 2(g)", "no performance figure", without_checks("performance.r2"),
     "PARTIAL", EVIDENCE["performance"]),
    ("EU AI Act, Annex IV 3", "all evidence", None, "SERVED", ""),
    ("EU AI Act, Annex IV 3", "performance without groups",
     replaced("performance.r2", performance(segments=False)), "PARTIAL",
     EVIDENCE["performance_per_group"]),
    ("EU AI Act, Annex IV 3", "no out-of-scope uses", documented(out_of_scope=None),
     "PARTIAL", EVIDENCE["out_of_scope"]),
    ("EU AI Act, Annex IV 4", "performance not gated",
     replaced("performance.r2", performance(status="not_gated")), "PARTIAL",
     EVIDENCE["performance_gated"]),
    ("EU AI Act, Annex IV 4", "no performance check", without_checks("performance.r2"),
     "NOT SERVED", EVIDENCE["performance"]),
    ("EU AI Act, Annex IV 1(a)", "no owner", documented(owner=None), "PARTIAL",
     EVIDENCE["provider"]),
    ("EU AI Act, Annex IV 6", "no baseline", without_checks("drift.rank_correlation"),
     "NOT SERVED", "this run has no baseline"),
    ("EU AI Act, Annex IV 2(e)", "no explanations", no_explanations, "NOT SERVED",
     EVIDENCE["local_explanations"]),
    ("EU AI Act, Annex IV 9", "all evidence", None, "OUTSIDE SCOPE", "post-market"),
    # SR 11-7
    ("SR 11-7: outcomes analysis", "all evidence", None, "SERVED", ""),
    ("SR 11-7: outcomes analysis", "explanation checks only",
     without_checks("performance.r2"), "NOT SERVED", EVIDENCE["performance"]),
    ("SR 11-7: ongoing monitoring", "no baseline", without_checks("drift.rank_correlation"),
     "PARTIAL", EVIDENCE["baseline_comparison"]),
    ("SR 11-7: effective challenge", "reviewer without role",
     documented(reviewed_by={"name": "Edsger", "date": "2025-02-02"}), "NOT SERVED",
     "reviewed_by has no role"),
    ("SR 11-7: conceptual soundness", "no explanation check",
     without_checks("completeness", "reason_codes_complete"), "PARTIAL",
     EVIDENCE["explanation_checks"]),
    # GDPR
    ("GDPR Art. 15(1)(h) and Art. 22", "all evidence", None, "SERVED", ""),
    ("GDPR Art. 15(1)(h) and Art. 22", "no intended use", documented(intended_use=""),
     "PARTIAL", EVIDENCE["intended_use"]),
    ("GDPR Art. 15(1)(h) and Art. 22", "no explanations", no_explanations, "PARTIAL",
     EVIDENCE["global_explanations"]),
    # Regulation B
    ("Regulation B, 12 CFR 1002.9(b)(2)", "all evidence", None, "SERVED", ""),
    ("Regulation B, 12 CFR 1002.9(b)(2)", "no decision rule", documented(decision=None),
     "PARTIAL", EVIDENCE["decision_rule"]),
    ("Regulation B, 12 CFR 1002.9(b)(2)", "reasons not checked",
     without_checks("reason_codes_complete"), "PARTIAL", "no reason_codes_complete check ran"),
    ("Regulation B, 12 CFR 1002.9(b)(2)", "a reason without statement",
     replaced("reason_codes_complete", reasons({"s1": 3, "age": 1})), "PARTIAL",
     "issued without a statement: age, s1"),
    # NIST AI RMF
    ("NIST AI RMF, MEASURE 2.9", "all evidence", None, "SERVED", ""),
    ("NIST AI RMF, MEASURE 2.9", "no explanation check",
     without_checks("completeness", "reason_codes_complete"), "PARTIAL",
     EVIDENCE["explanation_checks"]),
    ("NIST AI RMF, MEASURE 2.9", "no intended use", documented(intended_use=""), "PARTIAL",
     EVIDENCE["intended_use"]),
]


@pytest.mark.parametrize(("item", "case", "change", "status", "named"), CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_status_follows_the_evidence(item: str, case: str,
                                     change: Callable[[AuditResult], None] | None,
                                     status: str, named: str) -> None:
    found = run_case(item, change)
    assert found.status == status, (case, found.why)
    if status == "SERVED":
        assert not found.missing
    else:
        assert named in found.why


def test_nothing_at_all_serves_nothing() -> None:
    result = make_result(["a", "b"])
    no_explanations(result)
    result.provenance["packages"] = {}
    result.model.pop("sha256")
    result.data.pop("sha256")
    result.data["n_test"] = 0
    found = statuses(result)
    assert {a.status for a in found.values()} == {"NOT SERVED", "OUTSIDE SCOPE"}
    assert found["Regulation B, 12 CFR 1002.9(b)(2)"].status == "NOT SERVED"


def test_every_annex_iv_point_appears_once() -> None:
    points = [item.item.removeprefix("EU AI Act, Annex IV ") for item in ANNEX_IV]
    expected = ([f"1({c})" for c in "abcdefgh"] + [f"2({c})" for c in "abcdefgh"]
                + [str(n) for n in range(3, 10)])
    assert points == expected
    for item in ANNEX_IV:  # each is assessed or says why it is outside the audit's scope
        assert item.needs or len(item.outside_scope) > 20


def test_assess_is_pure_over_the_evidence() -> None:
    item = RegulatoryItem("F", "F 1", "src", "req", ("performance", "signoff"))
    assert assess(item, {}).status == "NOT SERVED"
    half = assess(item, {"performance": Evidence(True),
                         "signoff": Evidence(False, "approved_by missing")})
    assert half.status == "PARTIAL"
    assert half.missing == (f"{EVIDENCE['signoff']} (approved_by missing)",)
    assert assess(item, {"performance": Evidence(True),
                         "signoff": Evidence(True)}).status == "SERVED"
    with pytest.raises(ValueError, match="unknown keys"):
        RegulatoryItem("F", "F 2", "src", "req", ("no_such_evidence",))


def test_report_shows_every_status_with_why(tmp_path: Path) -> None:
    result = full_result()
    without_checks("drift.rank_correlation")(result)
    documented(reviewed_by=None)(result)
    xaudit.render(result, tmp_path, formats=("html",))
    page = (tmp_path / "report.html").read_text()
    regulatory = page[page.index('id="sec-regulatory"'):]
    regulatory = regulatory[:regulatory.index("</section>")]
    for label in ("SERVED</span>", "PARTIAL</span>", "NOT SERVED</span>",
                  "OUTSIDE SCOPE</span>"):
        assert label in regulatory
    outside = regulatory.count('<li><strong>')  # outside-scope items: a list after the table
    assert outside
    assert regulatory.count("<tr>") + outside == len(ITEMS) + 1
    assert "missing: " + EVIDENCE["signoff"] + " (reviewed_by missing)" in regulatory
    assert "post-market monitoring is the provider" in regulatory
