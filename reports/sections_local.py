"""Section 7: reconciled adverse-action reasons, local explanations, subjects in words
(segments are in :mod:`xaudit.reports.sections_fairness`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..explanation import Explanation
from ..feature_shares import is_attribution, is_tabular
from ..results import AuditResult
from ..suite import DecisionSpec
from . import figures
from .analysis import Outputs, explanations, outputs_of, row_ids
from .decisions import (
    Subject,
    counterfactual_changes,
    decision_slots,
    direction_text,
    is_adverse,
    paragraph,
    value_text,
)
from .reasons import Reconciled, reconcile
from .section_base import ContextualSection


class LocalSection(ContextualSection):
    """Why the model gave each explained subject its output."""

    name = "local"
    title = "Local explanations"
    order = 70
    template = "section_local.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Reconciled reasons; per explainer waterfalls, surrogate fit, counterfactuals;
        subjects in words from the primary explainer when reasons are reconciled (the others
        corroborate it in the reasons table), else from every explainer."""
        doc = self.render.documentation
        blocks = [self._block(key, e, result) for key, e in explanations(result)
                  if is_tabular(e) and (is_attribution(e)
                                        or e.handoff.counterfactuals is not None)]
        if not blocks:
            return self.not_applicable("no explanation of individual rows with named features")
        codes = doc.reason_codes if doc else {}
        names = set().union(*(set(e.feature_names) for e in result.explanations.values()))
        found = reconcile(result, doc)
        if found.primary is not None:  # the explainer that issues reasons speaks for subjects
            for block in blocks:
                if block["key"] != found.primary and block["kind"] == "attribution":
                    block["words_by"], block["subjects"] = found.primary, []
        return {"blocks": blocks, "decision": doc.decision if doc else None,
                "reasons": _reasons_view(found, self.render.options.max_subjects),
                "unknown_codes": sorted(set(codes) - names),
                "max_subjects": self.render.options.max_subjects}

    def _block(self, key: str, e: Explanation, result: AuditResult) -> dict[str, Any]:
        if not is_attribution(e):
            return self._changes_block(key, e, result)
        options, doc = self.render.options, self.render.documentation
        outputs = outputs_of(key, e, result)
        ids = row_ids(result, e.n_rows)
        decision = doc.decision if doc else None
        slots = (decision_slots(e, result.model.get("output_names") or [], decision)
                 if decision is not None
                 else np.zeros(e.n_rows, dtype=np.int64))
        fit = e.handoff.surrogate
        waterfalls = []
        for row in range(min(options.local_rows, e.n_rows)):
            slot = max(int(slots[row]), 0)
            waterfalls.append({
                "row_id": ids[row], "output": e.output_names[slot],
                "figure": _waterfall(e, row, slot, options.top_k, outputs),
                "r2": None if fit is None else float(fit.r2[row, slot]),
                "counterfactuals": counterfactual_changes(e, row),
            })
        subjects = self._subjects(e, ids, slots, outputs, decision)
        return {
            "key": key, "method": e.method, "rows": e.n_rows, "kind": "attribution",
            "waterfalls": waterfalls,
            "outputs_source": None if outputs is None else outputs.source,
            "subjects": subjects[: options.max_subjects], "n_subjects": len(subjects),
        }

    def _changes_block(self, key: str, e: Explanation, result: AuditResult) -> dict[str, Any]:
        """How many rows have a verified counterfactual; the tables are in the technical
        appendix (:class:`~xaudit.reports.sections_details.DetailsSection`)."""
        n_found = sum(1 for row in range(e.n_rows) if counterfactual_changes(e, row))
        return {"key": key, "method": e.method, "rows": e.n_rows, "kind": "counterfactual",
                "n_found": n_found}

    def _subjects(self, e: Explanation, ids: list[int], slots: np.ndarray,
                  outputs: Outputs | None, decision: DecisionSpec | None) -> list[Subject]:
        subjects = []
        for row in range(e.n_rows):
            slot = int(slots[row])
            usable = slot >= 0 and outputs is not None and decision is not None
            value = None if outputs is None or slot < 0 else float(outputs.values[row, slot])
            adverse = is_adverse(value, decision) if usable and value is not None \
                and decision is not None else None
            subject = Subject(row, ids[row], value, adverse)
            subject.paragraph = paragraph(e, row, ids[row], max(slot, 0), outputs,
                                          decision if usable else None, adverse)
            subjects.append(subject)
        return subjects


def _waterfall(e: Explanation, row: int, slot: int, k: int, outputs: Outputs | None) -> Any:
    phi = e.values[row, ..., slot].reshape(-1)
    order = np.lexsort((np.arange(phi.size), -np.abs(phi)))
    top, rest = order[:k], order[k:]
    labels = [f"{e.feature_names[i]} = {value_text(e.inputs[row, i])}" for i in top]
    contributions = list(phi[top])
    if rest.size:
        labels.append(f"other {rest.size} features")
        contributions.append(float(phi[rest].sum()))
    base = 0.0 if e.base_values is None else float(e.base_values[row, slot])
    end = "model output" if outputs is not None else "base value + sum"
    return figures.waterfall(base, labels, np.asarray(contributions),
                             f"{e.output_names[slot]} (output units)", end)


def _reasons_view(found: Reconciled, limit: int) -> dict[str, Any]:
    """The reconciled reasons as the template prints them: the first ``limit`` adverse
    subjects, each reason with its value's direction, withheld reasons and disagreements."""
    subjects = [{
        "row_id": s.row_id, "output": s.output, "flagged": s.flagged,
        "reasons": [{"statement": r.statement, "coded": r.coded, "feature": r.feature,
                     "value": r.value, "contribution": r.contribution,
                     "against": direction_text(r)} for r in s.reasons],
        "withheld": s.withheld,
        "corroboration": s.corroboration,
    } for s in found.subjects[:limit]]
    return {"found": found, "subjects": subjects, "n_subjects": len(found.subjects),
            "limit": limit}
