"""Adverse-action reasons reconciled across explainers: one explainer issues them, the others
corroborate, and a subject whose reasons they do not support is flagged.

The rules (``docs/reports.md``, "Reconciled reasons"):

- **Primary.** Reasons are issued from ``documentation.decision.primary_explainer`` only; by
  default the first explainer in suite order whose method is additive (its attributions sum to
  the model output, as SHAP's do), else the first local attribution explainer. Whether a
  subject's decision is adverse is read from the primary's outputs
  (:func:`~xaudit.reports.analysis.outputs_of`).
- **Reasons.** At most four features pushing the output furthest towards the adverse side, each
  with the statement its value's direction allows (:mod:`~xaudit.reports.decisions`).
  Features named by a ``forbidden_features`` check (protected attributes, identifiers; issue
  14's policy) are never reasons: they are left out of the ranking, and the subject records
  that they were (the check itself reports the model's reliance on them).
- **Fit floors.** All of a subject's reasons are withheld when the primary is a local surrogate
  (LIME, ``handoff.surrogate``) whose R² for that subject is below
  ``decision.min_surrogate_r2``; a single reason is withheld when its attribution carries a
  standard error (sampling explainers: ``shap.kernel``, ``shap.permutation``) and is smaller
  than ``decision.min_signal_to_error`` of them. Withheld reasons are listed with why; the next
  feature does not take their place.
- **Corroboration.** Every other local attribution explainer of the same rows and features
  ranks its own top four by the same rule (forbidden features left out). A subject is
  **flagged** when a reason the primary issued is absent from a corroborator's top four; the
  same features in another order are noted, not flagged. A corroborator whose own fit is under
  its floor for the subject is "not usable" there, and does not flag it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..explanation import Explanation
from ..feature_shares import is_attribution, is_tabular
from ..results import AuditResult
from ..suite import DecisionSpec, DocumentationSpec
from .analysis import explanations, is_global, outputs_of, row_ids, used_features
from .decisions import (
    MAX_REASONS,
    Reason,
    adverse_pushes,
    decision_slots,
    direction_text,
    is_adverse,
    principal_reasons,
)

Agreement = Literal["agrees", "other order", "disagrees", "not usable"]


@dataclass(frozen=True)
class Withheld:
    """A reason not issued: one feature's, or (``feature`` ``None``) all of the subject's."""

    feature: str | None
    why: str


@dataclass(frozen=True)
class Corroboration:
    """One corroborating explainer's top reasons for a subject, against the issued ones."""

    explainer: str
    reasons: tuple[str, ...]
    missing: tuple[str, ...]
    """Issued reasons absent from ``reasons``: the disagreement."""
    status: Agreement
    why: str = ""


@dataclass
class AdverseSubject:
    """An adverse decision: the reasons issued, withheld, and how the others corroborate."""

    row_id: int
    output: float
    reasons: list[Reason] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    corroboration: list[Corroboration] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """A corroborator's top reasons lack one the primary issued."""
        return any(c.status == "disagrees" for c in self.corroboration)


@dataclass
class Reconciled:
    """The reconciled reasons of one audit (``not_applicable`` says why there are none)."""

    primary: str | None = None
    chosen_by: str = ""
    not_applicable: str | None = None
    decision: DecisionSpec | None = None
    corroborators: list[str] = field(default_factory=list)
    not_corroborating: dict[str, str] = field(default_factory=dict)
    """Local attribution explainers that cannot corroborate, with why."""
    forbidden: list[str] = field(default_factory=list)
    rows: int = 0
    subjects: list[AdverseSubject] = field(default_factory=list)
    reference: str = "background mean (data.background_means)"

    @property
    def flagged(self) -> int:
        """Adverse subjects whose reasons a corroborator does not support."""
        return sum(s.flagged for s in self.subjects)

    @property
    def withheld(self) -> int:
        """Adverse subjects with at least one reason withheld."""
        return sum(bool(s.withheld) for s in self.subjects)

    def record(self) -> dict[str, Any]:
        """The JSON-ready form ``results.json`` stores under ``decisions``."""
        decision = self.decision
        return {
            "not_applicable": self.not_applicable,
            "primary_explainer": self.primary, "chosen_by": self.chosen_by,
            "rule": None if decision is None else decision.model_dump(mode="json"),
            "reference": self.reference, "max_reasons": MAX_REASONS,
            "corroborators": self.corroborators, "not_corroborating": self.not_corroborating,
            "forbidden_features": self.forbidden,
            "counts": {"rows": self.rows, "adverse": len(self.subjects),
                       "flagged": self.flagged, "withheld": self.withheld},
            "subjects": [_subject_record(s) for s in self.subjects],
        }


def reconcile(result: AuditResult, documentation: DocumentationSpec | None) -> Reconciled:
    """The reconciled adverse-action reasons of ``result`` under ``documentation``'s decision
    rule and reason codes (the module docstring states the rules)."""
    decision = documentation.decision if documentation is not None else None
    if decision is None:
        return Reconciled(not_applicable="the documentation block defines no decision rule "
                                         "(documentation.decision)")
    local = [(k, e) for k, e in explanations(result)
             if is_tabular(e) and is_attribution(e) and not is_global(e)]
    primary, chosen_by, why = _primary(result, local, decision)
    if primary is None:
        return Reconciled(not_applicable=why, decision=decision)
    e = result.explanations[primary]
    found = Reconciled(primary, chosen_by, decision=decision, rows=e.n_rows,
                       forbidden=forbidden_features(result))
    outputs = outputs_of(primary, e, result)
    model_outputs = result.model.get("output_names") or []
    slots = decision_slots(e, model_outputs, decision)
    if outputs is None or np.all(slots < 0):
        found.not_applicable = (
            f"the decision's output {decision.output!r} was not explained by {primary}"
            if outputs is not None else
            f"the model outputs of the rows {primary} explained are unknown: it stores none, "
            "and its attributions are not shown to add up to them")
        return found
    others = {}
    for key, other in local:
        if key == primary:
            continue
        problem = _cannot_corroborate(e, other)
        if problem:
            found.not_corroborating[key] = problem
        else:
            other_slots = decision_slots(other, model_outputs, decision)
            others[key] = (other, other_slots, _used_by_slot(other, other_slots))
    found.corroborators = list(others)
    codes = documentation.reason_codes if documentation is not None else {}
    references = result.data.get("background_means") or {}
    used = _used_by_slot(e, slots)
    ids = row_ids(result, e.n_rows)
    for row, slot in enumerate(slots.tolist()):
        value = float(outputs.values[row, slot]) if slot >= 0 else float("nan")
        if slot < 0 or not is_adverse(value, decision):
            continue
        subject = AdverseSubject(ids[row], value)
        every = principal_reasons(e, row, slot, decision, used[slot], codes, references)
        reasons = principal_reasons(e, row, slot, decision, used[slot], codes, references,
                                    found.forbidden)
        subject.withheld = [Withheld(r.feature, "a forbidden feature (forbidden_features "
                                                "check): never stated as a reason")
                            for r in every if r.feature in found.forbidden]
        misfit = fit_problem(e, row, slot, decision)
        if misfit:
            subject.withheld.append(Withheld(None, misfit))
            reasons = []
        for reason in reasons:
            noise = noise_problem(e, row, slot, e.feature_names.index(reason.feature),
                                  decision)
            if noise:
                subject.withheld.append(Withheld(reason.feature, noise))
            else:
                subject.reasons.append(reason)
        subject.corroboration = [
            corroborate(key, other, row, int(other_slots[row]), subject.reasons, decision,
                        found.forbidden, other_used.get(int(other_slots[row])))
            for key, (other, other_slots, other_used) in others.items()]
        found.subjects.append(subject)
    return found


def fit_problem(e: Explanation, row: int, slot: int, decision: DecisionSpec) -> str | None:
    """Why all of a row's reasons from ``e`` are withheld: its local surrogate's R² is under
    ``decision.min_surrogate_r2`` (or undefined); ``None`` when the fit is good or unknown."""
    fit = e.handoff.surrogate
    if fit is None:
        return None
    r2 = float(fit.r2[row, slot])
    if np.isfinite(r2) and r2 >= decision.min_surrogate_r2:
        return None
    measured = f"{r2:.3g}" if np.isfinite(r2) else "undefined"
    return (f"local surrogate R² {measured} under the floor {decision.min_surrogate_r2:g} "
            "(decision.min_surrogate_r2)")


def noise_problem(e: Explanation, row: int, slot: int, feature: int,
                  decision: DecisionSpec) -> str | None:
    """Why one sampled attribution is withheld as a reason: it is under
    ``decision.min_signal_to_error`` of its standard errors; ``None`` otherwise or when ``e``
    records no standard errors."""
    if e.std_errors is None:
        return None
    phi = float(e.values[row, feature, slot])
    se = float(e.std_errors[row, feature, slot])
    if abs(phi) >= decision.min_signal_to_error * se:
        return None
    return (f"attribution {phi:+.3g} within {decision.min_signal_to_error:g} standard errors "
            f"({se:.3g}) of zero (decision.min_signal_to_error)")


def corroborate(key: str, other: Explanation, row: int, slot: int, issued: list[Reason],
                decision: DecisionSpec, forbidden: list[str],
                used: np.ndarray | None = None) -> Corroboration:
    """``other``'s top reasons for ``row`` against the ``issued`` ones; ``used`` is
    :func:`~xaudit.reports.analysis.used_features` of ``other`` for ``slot`` (computed when
    not given)."""
    if slot < 0:
        return Corroboration(key, (), (), "not usable", "the decision's output is not explained")
    misfit = fit_problem(other, row, slot, decision)
    if misfit:
        return Corroboration(key, (), (), "not usable", misfit)
    if used is None:
        used = used_features(other, slot)
    top = tuple(other.feature_names[i] for i in adverse_pushes(
        other, row, slot, decision, used, forbidden)[:MAX_REASONS])
    if not issued:
        return Corroboration(key, top, (), "not usable", "no reason was issued to compare")
    missing = tuple(r.feature for r in issued if r.feature not in top)
    if missing:
        return Corroboration(key, top, missing, "disagrees")
    order = [f for f in top if f in {r.feature for r in issued}]
    status: Agreement = "agrees" if order == [r.feature for r in issued] else "other order"
    return Corroboration(key, top, (), status)


def forbidden_features(result: AuditResult) -> list[str]:
    """Features the suite's ``forbidden_features`` checks name, in order, once each."""
    named: list[str] = []
    for spec in result.suite.get("checks") or []:
        if isinstance(spec, dict) and spec.get("check") == "forbidden_features":
            features = (spec.get("params") or {}).get("features") or []
            named += [f for f in features if isinstance(f, str)]
    return list(dict.fromkeys(named))


def _primary(result: AuditResult, local: list[tuple[str, Explanation]],
             decision: DecisionSpec) -> tuple[str | None, str, str]:
    """The primary explainer's id, how it was chosen, and why there is none."""
    named = decision.primary_explainer
    if named is not None:
        if named in result.explainer_errors:
            return None, "", (f"the primary explainer {named} crashed "
                              f"({result.explainer_errors[named].type}); no reason is issued")
        if named not in dict(local):
            return None, "", (f"the primary explainer {named} gives no local attributions of "
                              "named features (documentation.decision.primary_explainer)")
        return named, "documentation.decision.primary_explainer", ""
    additive = [k for k, e in local if e.additive]
    if additive:
        return additive[0], "default: the first additive local explainer", ""
    if local:
        return local[0][0], "default: the first local attribution explainer", ""
    return None, "", "no explainer gives local attributions of named features"


def _used_by_slot(e: Explanation, slots: np.ndarray) -> dict[int, np.ndarray]:
    """:func:`~xaudit.reports.analysis.used_features` of each output slot decisions use."""
    return {slot: used_features(e, slot) for slot in set(slots.tolist()) if slot >= 0}


def _cannot_corroborate(primary: Explanation, other: Explanation) -> str | None:
    if other.feature_names != primary.feature_names:
        return "it explains other features"
    if other.inputs.shape != primary.inputs.shape or not np.array_equal(
            np.asarray(other.inputs, dtype=object), np.asarray(primary.inputs, dtype=object)):
        return "it explains other rows"
    return None


def _subject_record(s: AdverseSubject) -> dict[str, Any]:
    return {
        "row": s.row_id, "output": s.output, "flagged": s.flagged,
        "reasons": [{"feature": r.feature, "value": r.value, "contribution": r.contribution,
                     "statement": r.statement if r.coded else None, "direction": r.direction,
                     "against": direction_text(r)} for r in s.reasons],
        "withheld": [{"feature": w.feature, "why": w.why} for w in s.withheld],
        "corroboration": [{"explainer": c.explainer, "reasons": list(c.reasons),
                           "missing": list(c.missing), "status": c.status, "why": c.why}
                          for c in s.corroboration],
    }
