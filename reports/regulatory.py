"""The regulatory mapping: which documentation item this audit serves, computed from evidence.

Each item (:data:`~xaudit.reports.regulatory_items.ITEMS`) declares the pieces of evidence it
needs, by key of :data:`EVIDENCE`; :func:`assess` compares them with the evidence an audit
offers (:func:`~xaudit.reports.regulatory_evidence.gather_evidence`) and gives its status:

- ``SERVED``: every piece is present;
- ``PARTIAL``: some are, and the assessment names the ones missing (and why);
- ``NOT SERVED``: none is;
- ``OUTSIDE SCOPE``: the item is about something an explanation audit does not produce (the
  provider's risk-management system, the declaration of conformity), with one line of why.

An item is never served because a section "rendered something": a signed test report needs
names, roles and dates, a performance item needs performance figures. The mapping relates
evidence to items; it is not a legal opinion on compliance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["SERVED", "PARTIAL", "NOT SERVED", "OUTSIDE SCOPE"]

EVIDENCE: dict[str, str] = {
    "intended_use": "the intended use (documentation.intended_use)",
    "provider": "the owner or provider (documentation.owner)",
    "model_identified": "the audited model identified by its SHA-256",
    "software_versions": "the versions of the software used (provenance)",
    "data_described": "the data's source, fingerprint and size",
    "data_split": "the training and held-out test rows (data.split)",
    "global_explanations": "global explanations (feature importance over rows)",
    "local_explanations": "local explanations of individual rows",
    "explanation_checks": "checks of the explanations' faithfulness or stability that ran",
    "gated_results": "test results with a pass or fail verdict (gated checks)",
    "performance": "model performance figures (a performance.* check)",
    "performance_per_group": "performance per group of persons (documentation.segments with a "
                             "performance.* check)",
    "performance_gated": "an acceptance threshold on performance (a gated performance.* check)",
    "baseline_comparison": "a comparison with an approved earlier run (a baseline and drift "
                           "checks)",
    "signoff": "a sign-off with names, roles and dates (documentation.prepared_by, reviewed_by "
               "and approved_by)",
    "independent_review": "an independent reviewer with name, role and date "
                          "(documentation.reviewed_by)",
    "out_of_scope": "the uses the model is not for (documentation.out_of_scope)",
    "decision_rule": "the decision rule (documentation.decision)",
    "reason_statements": "a documented statement for every reason issued (a "
                         "reason_codes_complete check finding none missing)",
}
"""Every piece of evidence an item may need: key -> what a reader is told is missing."""


@dataclass(frozen=True)
class Evidence:
    """Whether one piece of evidence is present, and when not, what exactly is lacking."""

    present: bool
    note: str = ""


@dataclass(frozen=True)
class RegulatoryItem:
    """One documentation item of a framework, and the evidence it needs."""

    framework: str
    item: str
    source: str
    requirement: str
    """The requirement, paraphrased."""
    needs: tuple[str, ...] = ()
    """Keys of :data:`EVIDENCE`; empty for an item outside the audit's scope."""
    sections: tuple[str, ...] = ()
    """The report sections that show the evidence (links in the report)."""
    outside_scope: str = ""
    """Why the item is not something an explanation audit produces (empty: it is)."""

    def __post_init__(self) -> None:
        unknown = [key for key in self.needs if key not in EVIDENCE]
        if unknown or bool(self.needs) == bool(self.outside_scope):
            raise ValueError(f"{self.item}: give evidence keys of EVIDENCE or a reason it is "
                             f"outside scope, not both (unknown keys: {unknown})")


@dataclass(frozen=True)
class Assessment:
    """An item's computed status, the evidence present and what is missing."""

    item: RegulatoryItem
    status: Status
    present: tuple[str, ...] = ()
    missing: tuple[str, ...] = field(default_factory=tuple)
    """One line per missing piece: what it is, then why it is missing when known."""

    @property
    def why(self) -> str:
        """The line shown under the status: what is missing, or why the item is out of scope."""
        return self.item.outside_scope or "; ".join(self.missing)


def assess(item: RegulatoryItem, evidence: Mapping[str, Evidence]) -> Assessment:
    """The status of ``item`` given ``evidence`` (a key absent from it counts as absent)."""
    if item.outside_scope:
        return Assessment(item, "OUTSIDE SCOPE")
    absent = Evidence(False)
    present = tuple(EVIDENCE[key] for key in item.needs if evidence.get(key, absent).present)
    missing = tuple(EVIDENCE[key] + (f" ({note})" if (note := evidence.get(key, absent).note)
                                     else "")
                    for key in item.needs if not evidence.get(key, absent).present)
    status: Status = ("SERVED" if not missing else
                      "NOT SERVED" if not present else "PARTIAL")
    return Assessment(item, status, present, missing)


def assess_all(items: Iterable[RegulatoryItem],
               evidence: Mapping[str, Evidence]) -> list[Assessment]:
    """:func:`assess` of every item, in order."""
    return [assess(item, evidence) for item in items]
