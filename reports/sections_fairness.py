"""Fairness evidence per documented segment: group sizes, adverse-outcome rates with intervals,
disparity against a reference group with an exact test, performance and attributions per group.

For every feature in ``documentation.segments``, the explained rows are grouped as the
performance checks group the held-out rows (:func:`~xaudit.reports.decisions.segment_labels`:
categories, the documented ``bins``, else quartiles), listed in natural order
(:func:`~xaudit.reports.segments.group_order`) and named through ``documentation.value_labels``.
Per group:

- rows, and the rows whose output is adverse under ``documentation.decision``, with the
  adverse-outcome rate and its 95% Wilson score interval (:mod:`xaudit.reports.proportions`);
- the disparity ratio: the group's rate divided by the reference group's (the segment's
  documented ``reference``, else its largest group), the ratio the "four-fifths rule" of the
  US Uniform Guidelines on Employee Selection Procedures (29 CFR 1607.4(D)) reads, and the
  two-sided p-value of Fisher's exact test of the group's and the reference's 2 x 2 table;
- the held-out metric of each ``performance.*`` check for the same group (its own rows: the
  test split, not the explained rows);
- the features with the largest mean |attribution| in the group and their mean signed
  attribution (the explanation that decided the outcomes);
- a flag when the group has fewer rows than the segment's ``min_group`` (30 unless
  documented): its rate and ratio are shown but too uncertain to conclude from.

The rates are over the explained rows, the only rows whose outputs the results hold; the
section says how many, and a suite that wants rates over more subjects explains more rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..explanation import Explanation
from ..feature_shares import is_attribution, is_tabular
from ..results import AuditResult
from ..suite import DecisionSpec, DocumentationSpec, SegmentSpec
from .analysis import Outputs, explanations, outputs_of
from .decisions import decision_slots, is_adverse, segment_labels
from .evidence import GroupFigure, performance_figures
from .proportions import fisher_exact, wilson_interval
from .section_base import ContextualSection
from .segments import group_order, shown_value

TOP_FEATURES = 3
"""Features listed per group by mean |attribution|."""
LEVEL = 0.95


@dataclass(frozen=True)
class GroupEvidence:
    """One group of one segment feature."""

    label: str
    """As shown: the value label and code, a category or a bin."""
    code: str
    rows: int
    adverse: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    ratio: float | None
    """Adverse rate divided by the reference group's (``None`` when it is 0 or unknown)."""
    p_value: float | None
    """Fisher's exact test against the reference group (``None`` for the reference)."""
    reference: bool
    too_small: bool
    performance: list[tuple[str, GroupFigure]] = field(default_factory=list)
    """(metric label, the group's figure) of each performance check."""
    top: list[tuple[str, float]] = field(default_factory=list)
    """(feature, mean signed attribution) of the features with the largest mean |attribution|."""


@dataclass(frozen=True)
class SegmentEvidence:
    """One documented segment feature: its groups, reference and any problem."""

    feature: str
    groups: list[GroupEvidence]
    reference: str | None
    min_group: int
    note: str | None = None


@dataclass(frozen=True)
class FairnessEvidence:
    """Every documented segment over the rows of one explanation."""

    explainer: str
    rows: int
    decided: bool
    """Whether adverse outcomes could be counted (a decision rule and known outputs)."""
    why_not: str | None
    segments: list[SegmentEvidence]


def fairness_evidence(result: AuditResult,
                      documentation: DocumentationSpec) -> FairnessEvidence | None:
    """The evidence for every documented segment, over the first tabular attribution with
    known outputs (else the first tabular attribution); ``None`` when there is none."""
    candidates = [(k, e) for k, e in explanations(result) if is_tabular(e) and is_attribution(e)]
    if not candidates:
        return None
    key, e = next(((k, e) for k, e in candidates if outputs_of(k, e, result) is not None),
                  candidates[0])
    outputs = outputs_of(key, e, result)
    decision = documentation.decision
    adverse, slot, why_not = _adverse(e, result, decision, outputs)
    figures = performance_figures(result, documentation.value_labels)
    segments = []
    for item in documentation.segments:
        spec = SegmentSpec(feature=item) if isinstance(item, str) else item
        if spec.feature not in e.feature_names:
            segments.append(SegmentEvidence(spec.feature, [], None, spec.min_group,
                                            f"{spec.feature} is not a feature of {e.method}"))
            continue
        column = e.inputs[:, e.feature_names.index(spec.feature)]
        labels = np.asarray(segment_labels(column, spec.bins, spec.feature in (
            result.data.get("categorical") or [])), dtype=object)
        performance = [(f.label, {g.code: g for g in f.segments.get(spec.feature, [])})
                       for f in figures]
        segments.append(_segment(e, spec, labels, adverse, slot, performance,
                                 documentation.value_labels.get(spec.feature)))
    return FairnessEvidence(key, e.n_rows, adverse is not None, why_not, segments)


def _adverse(e: Explanation, result: AuditResult, decision: DecisionSpec | None,
             outputs: Outputs | None) -> tuple[np.ndarray | None, np.ndarray, str | None]:
    """Per row: adverse or not (``None`` when unknown), the decision's output slot, and why
    outcomes cannot be counted."""
    if decision is None:
        return None, np.zeros(e.n_rows, dtype=np.int64), \
            "the documentation defines no decision rule (documentation.decision)"
    slots = decision_slots(e, result.model.get("output_names") or [], decision)
    if outputs is None:
        return None, np.maximum(slots, 0), "the explained rows' outputs are not known"
    if np.any(slots < 0):
        return None, np.maximum(slots, 0), \
            f"the decision's output {decision.output!r} was not explained for every row"
    values = outputs.values[np.arange(e.n_rows), slots]
    return np.array([is_adverse(float(v), decision) for v in values]), slots, None


def _segment(e: Explanation, spec: SegmentSpec, labels: np.ndarray, adverse: np.ndarray | None,
             slots: np.ndarray, performance: list[tuple[str, dict[str, GroupFigure]]],
             value_labels: dict[str, str] | None) -> SegmentEvidence:
    order = group_order(labels.tolist())
    shown = {code: shown_value(value_labels, code) for code in order}
    sizes = {code: int(np.sum(labels == code)) for code in order}
    reference, note = _reference(spec.reference, order, shown, sizes)
    ref_rows = labels == reference
    ref_k = None if adverse is None else int(adverse[ref_rows].sum())
    groups = []
    for code in order:
        rows = np.flatnonzero(labels == code)
        k = None if adverse is None else int(adverse[rows].sum())
        rate = None if k is None else k / rows.size
        low, high = (None, None) if k is None else wilson_interval(k, int(rows.size), LEVEL)
        ratio = p_value = None
        if k is not None and ref_k is not None:
            ref_n = sizes[reference]
            ratio = None if ref_k == 0 else (k / rows.size) / (ref_k / ref_n)
            if code != reference:
                p_value = fisher_exact(k, int(rows.size) - k, ref_k, ref_n - ref_k)
        groups.append(GroupEvidence(
            shown[code], code, int(rows.size), k, rate, low, high, ratio, p_value,
            code == reference, int(rows.size) < spec.min_group,
            [(label, by_code[code]) for label, by_code in performance if code in by_code],
            _top(e, rows, slots)))
    return SegmentEvidence(spec.feature, groups, shown[reference], spec.min_group, note)


def _reference(documented: str | None, order: list[str], shown: dict[str, str],
               sizes: dict[str, int]) -> tuple[str, str | None]:
    """The reference group's code, and a note when the documented one is not a group."""
    largest = max(order, key=lambda code: (sizes[code], -order.index(code)))
    if documented is None:
        return largest, None
    for code in order:
        if documented in (code, shown[code]) or shown[code].startswith(f"{documented} ("):
            return code, None
    return largest, (f"the documented reference {documented!r} is not one of the groups; "
                     "the largest group is the reference")


def _top(e: Explanation, rows: np.ndarray, slots: np.ndarray) -> list[tuple[str, float]]:
    if not rows.size:
        return []
    values = e.values.reshape(e.n_rows, -1, e.values.shape[-1])[rows, :, slots[rows]]
    order = np.lexsort((np.arange(values.shape[1]), -np.abs(values).mean(axis=0)))
    means = values.mean(axis=0)
    return [(e.feature_names[i], float(means[i])) for i in order[:TOP_FEATURES]]


class FairnessSection(ContextualSection):
    """Per documented segment: sizes, adverse-outcome rates and disparity, performance,
    attributions."""

    name = "fairness"
    title = "Fairness evidence"
    order = 75
    template = "section_fairness.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any] | None:
        """The :class:`FairnessEvidence`, or why there is none."""
        doc = self.render.documentation
        if doc is None or not doc.segments:
            return self.not_applicable("the documentation names no segments "
                                       "(documentation.segments)")
        evidence = fairness_evidence(result, doc)
        if evidence is None:
            return self.not_applicable("no explanation of tabular rows with named features")
        return {"evidence": evidence, "level": LEVEL, "decision": doc.decision}
