"""Sections 1-2: cover and document control, executive summary (the model and the data are
in :mod:`xaudit.reports.sections_model`)."""

from __future__ import annotations

from typing import Any

from ..results import AuditResult
from ..verdict import policy_note
from .analysis import errors
from .plain_language import check_meanings, plain_summary
from .section_base import ContextualSection
from .verdict import verdict


class CoverSection(ContextualSection):
    """Who, what, when, and the verdict."""

    name = "cover"
    title = "Cover and document control"
    order = 10
    template = "section_cover.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Suite, model, report id, date, status and the documented purpose."""
        doc = self.render.documentation
        hashes = result.provenance.get("hashes", {})
        return {
            "suite_name": result.suite_name,
            "description": result.suite.get("description", ""),
            "model_name": result.model.get("name", "n/a"),
            "model_sha256": result.model.get("sha256") or hashes.get("model", ""),
            "report_id": self.render.report_id,
            "date": result.provenance.get("finished_at", ""),
            "status": doc.status if doc else "draft",
            "verdict": verdict(result),
            "doc": doc,
            "results_sha256": self.render.results_sha256,
            "suite_sha256": hashes.get("suite", ""),
            "xaudit_version": result.provenance.get("xaudit_version", ""),
        }


class SummarySection(ContextualSection):
    """The audit in plain words, then every gate and what ran."""

    name = "summary"
    title = "Executive summary"
    order = 20
    template = "section_summary.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Plain-language paragraphs (:func:`~xaudit.reports.plain_language.plain_summary`);
        gates with value, threshold, direction and verdict; counts; crashes."""
        checks = [{
            "name": c.name, "check": c.check, "explainer": c.explainer, "value": c.value,
            "threshold": c.threshold, "warn_threshold": c.warn_threshold,
            "relation": "≤" if c.direction == "lower" else "≥",
            "direction": "lower is better" if c.direction == "lower" else "higher is better",
            "status": c.status, "error": None if c.error is None else str(c.error),
            "note": policy_note(c.status, result.gate_policy),
        } for c in result.checks]
        return {
            "plain": plain_summary(result, self.render.documentation,
                                   check_meanings(self.render.host)),
            "verdict": verdict(result),
            "fail_on_warn": result.gate_policy.fail_on_warn,
            "exit_code": int(result.exit_code()),
            "counts": result.counts(),
            "checks": checks,
            "crashed": [(k, str(v)) for k, v in errors(result)],
        }
