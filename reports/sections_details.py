"""Section "Technical appendix": every explainer's and check's parameters, computation facts
and details, and the counterfactual tables, as labelled tables.

The body of the report shows what a reader needs to follow the audit; the numbers that only
someone re-running or reviewing a method reads are gathered here, one labelled row per value
(:mod:`xaudit.reports.facts`), so no section prints raw JSON. Values too long to print (LIME's
per-row conditions, counterfactual search logs) are named and left to results.json.
"""

from __future__ import annotations

from typing import Any

from ..explanation import Explanation
from ..results import AuditResult
from .analysis import brief_metadata, errors, explanations, row_ids
from .decisions import counterfactual_changes, value_text
from .facts import fact_rows
from .section_base import ContextualSection


class DetailsSection(ContextualSection):
    """Parameters, computation facts, check details and counterfactuals, method by method."""

    name = "details"
    title = "Technical appendix: parameters, facts and counterfactuals"
    order = 115
    template = "section_details.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """The model's full hyperparameter and layer tables; one entry per explainer, per check and
        per counterfactual explainer."""
        methods = [{"id": key, "method": e.method, "params": fact_rows(e.params),
                    "facts": fact_rows(brief_metadata(e.metadata), e.feature_names)}
                   for key, e in explanations(result)]
        methods += [{"id": key, "method": "crashed",
                     "params": fact_rows(_suite_params(result, key)),
                     "facts": [("error", f"{error.type}: {error.message}")]}
                    for key, error in errors(result)]
        checks = []
        for check in result.checks:
            explained = result.explanations.get(check.explainer or "")
            names = explained.feature_names if explained is not None else ()
            checks.append({"name": check.name, "params": fact_rows(check.params),
                           "details": fact_rows(brief_metadata(check.details), names)})
        counterfactuals = [_counterfactual_block(key, e, result)
                           for key, e in explanations(result)
                           if e.handoff.counterfactuals is not None]
        if not (methods or checks):
            return self.not_applicable("no explainer or check ran")
        hyper = result.model.get("hyperparameters") or {}
        return {"methods": methods, "checks": checks,
                "hyper_parameters": list(hyper.get("parameters") or []),
                "hyper_layers": list(hyper.get("layers") or []),
                "counterfactuals": [c for c in counterfactuals if c["rows"]],
                "max_subjects": self.render.options.max_subjects}


def _counterfactual_block(key: str, e: Explanation, result: AuditResult) -> dict[str, Any]:
    """Per row with a verified counterfactual: its principal reasons (the changes that move
    the output furthest towards the target) and each counterfactual's changes."""
    ids = row_ids(result, e.n_rows)
    found = e.handoff.counterfactuals
    reasons = found.reasons if found is not None else ((),) * e.n_rows
    rows = []
    for row in range(e.n_rows):
        tables = counterfactual_changes(e, row)
        if not tables:
            continue
        rows.append({
            "row_id": ids[row],
            "reasons": [{"feature": r.feature, "from": value_text(r.before),
                         "to": value_text(r.after), "effect": r.effect} for r in reasons[row]],
            "tables": tables})
    return {"key": key, "method": e.method, "n_found": len(rows), "rows": rows}


def _suite_params(result: AuditResult, key: str) -> dict[str, Any]:
    for spec in result.suite.get("explainers", []):
        if spec.get("id") == key:
            return dict(spec.get("params") or {})
    return {}
