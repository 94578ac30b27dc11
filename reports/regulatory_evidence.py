"""The evidence an audit offers to the regulatory mapping (:mod:`xaudit.reports.regulatory`).

:func:`gather_evidence` reads the saved results and the suite's documentation block only (no
model, no plugin code): each key of :data:`~xaudit.reports.regulatory.EVIDENCE` is present or
absent, with a note saying what exactly is lacking. Checks are told apart by the kind of check
class that registered them (:func:`check_kinds`), never by their names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from ..plugin import BaselineCheck, ModelCheck
from ..results import AuditResult, CheckResult
from .analysis import is_global
from .regulatory import Evidence

if TYPE_CHECKING:
    from ..host import Host
    from ..suite import DocumentationSpec, Person

CheckKind = Literal["model", "baseline", "explanation"]
REASONS_CHECK = "reason_codes_complete"
"""The check that verifies every issued adverse-action reason has a documented statement."""
SIGNOFF_ROLES = ("prepared_by", "reviewed_by", "approved_by")
GATED = ("pass", "warn", "fail")


def check_kinds(host: Host) -> dict[str, CheckKind]:
    """Each registered check's kind: a model check (performance), a comparison with the
    baseline (drift), or a check of an explanation."""
    kinds: dict[str, CheckKind] = {}
    for name, cls in host.checks.items():
        kinds[name] = ("model" if issubclass(cls, ModelCheck) else
                       "baseline" if issubclass(cls, BaselineCheck) else "explanation")
    return kinds


def person_gaps(role: str, person: Person | None) -> list[str]:
    """What a sign-off entry lacks: the whole entry, or its role or date (empty: complete)."""
    if person is None or not person.name.strip():
        return [f"{role} missing"]
    return [f"{role} has no {part}" for part, value in (("role", person.role.strip()),
                                                       ("date", person.date)) if not value]


def _measured(check: CheckResult) -> bool:
    return check.error is None and check.value is not None and math.isfinite(check.value)


def _has(flag: bool, note: str) -> Evidence:
    return Evidence(True) if flag else Evidence(False, note)


def gather_evidence(result: AuditResult, doc: DocumentationSpec | None,
                    kinds: Mapping[str, CheckKind]) -> dict[str, Evidence]:
    """Every piece of evidence of :data:`~xaudit.reports.regulatory.EVIDENCE` in ``result`` and
    ``doc``; ``kinds`` (:func:`check_kinds`) classifies the checks by their registered name (an
    unknown name counts as a check of an explanation)."""
    by_kind: dict[str, list[CheckResult]] = {"model": [], "baseline": [], "explanation": []}
    for check in result.checks:
        by_kind[kinds.get(check.check, "explanation")].append(check)
    performance = [c for c in by_kind["model"] if _measured(c)]
    grouped = [c for c in performance if c.handoff.performance is not None
               and any(g.value is not None and math.isfinite(g.value)
                       for s in c.handoff.performance.segments for g in s.groups)]
    attributions = [e for e in result.explanations.values() if e.handoff.kind == "attribution"]
    signoff = [gap for role in SIGNOFF_ROLES
               for gap in person_gaps(role, getattr(doc, role) if doc else None)]
    review = person_gaps("reviewed_by", doc.reviewed_by if doc else None)
    data = result.data
    return {
        "intended_use": _has(bool(doc and doc.intended_use.strip()), "not documented"),
        "provider": _has(bool(doc and doc.owner.strip()), "not documented"),
        "model_identified": _has(bool(result.model.get("sha256")), "no model hash recorded"),
        "software_versions": _has(bool(result.provenance.get("packages")),
                                  "no package versions recorded"),
        "data_described": _has(bool(data.get("source") and data.get("sha256")),
                               "no data source or fingerprint recorded"),
        "data_split": _has(bool(data.get("n_train")) and bool(data.get("n_test")),
                           "no separate training and test rows"),
        "global_explanations": _has(bool(attributions) or any(
            is_global(e) for e in result.explanations.values()), "no explainer produced one"),
        "local_explanations": _has(any(not is_global(e) for e in attributions),
                                   "no attribution of individual rows"),
        "explanation_checks": _has(any(_measured(c) for c in by_kind["explanation"]),
                                   "none ran to a value"),
        "gated_results": _has(any(c.status in GATED for c in result.checks), "no check gated"),
        "performance": _has(bool(performance), "no performance check ran to a value"),
        "performance_per_group": _has(bool(grouped), "no performance figure per segment"),
        "performance_gated": _has(any(c.status in GATED for c in performance),
                                  "no gate on a performance check"),
        "baseline_comparison": _has(any(_measured(c) for c in by_kind["baseline"]),
                                    "this run has no baseline"),
        "signoff": _has(not signoff, "; ".join(signoff)),
        "independent_review": _has(not review, "; ".join(review)),
        "out_of_scope": _has(bool(doc and doc.out_of_scope), "not documented"),
        "decision_rule": _has(bool(doc and doc.decision), "not documented"),
        "reason_statements": _reason_statements(result),
    }


def _reason_statements(result: AuditResult) -> Evidence:
    """Present when a ``reason_codes_complete`` check ran and found no undocumented reason."""
    runs = [c for c in result.checks if c.check == REASONS_CHECK]
    if not runs:
        return Evidence(False, f"no {REASONS_CHECK} check ran")
    failed = [c.name for c in runs if not _measured(c)]
    if failed:
        return Evidence(False, f"{', '.join(failed)} did not run to a value")
    missing = sorted({str(f) for c in runs for f in c.details.get("undocumented") or {}})
    if missing or any(c.value for c in runs):
        return Evidence(False, "issued without a statement: " + (", ".join(missing) or "some"))
    return Evidence(True)
