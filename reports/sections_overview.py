"""Sections 1-4: cover and document control, executive summary, model, data."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..feature_shares import is_attribution, is_tabular
from ..results import AuditResult
from ..verdict import policy_note
from .analysis import errors, explanations, mean_abs, numeric_column, rank_top
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


class ModelSection(ContextualSection):
    """The model as the adapter describes it."""

    name = "model"
    title = "Model"
    order = 30
    template = "section_model.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Adapter, framework, SHA-256, task, inputs, outputs, capabilities."""
        model = result.model
        if not model:
            return self.not_applicable("the result holds no model description")
        spec = model.get("input_spec") or {}
        names = spec.get("feature_names") or []
        return {"model": model, "input_spec": spec, "n_features": len(names),
                "feature_shape": spec.get("feature_shape"),
                "outputs": model.get("output_names") or []}


class DataSection(ContextualSection):
    """Source, hash, shape, features, explained rows and background."""

    name = "data"
    title = "Data"
    order = 40
    template = "section_data.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """The data description and a feature table over the explained rows."""
        data = result.data
        if not data:
            return self.not_applicable("the result holds no data description")
        sampling = data.get("sampling") or {}
        background = dict(sampling.get("background") or {})
        background_rows = background.pop("rows", None)
        explain_rows = data.get("explain_rows") or []
        features, other = self._features(result)
        return {
            "data": data,
            "split": sampling.get("split") or {},
            "explain": sampling.get("explain") or {},
            "background": background,
            "n_background_rows": len(background_rows or []),
            "n_explained": len(explain_rows),
            "explain_rows_head": explain_rows[:30],
            "features": features,
            "other": other,
        }

    def _features(self, result: AuditResult) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        names: list[str] = list(result.data.get("feature_names") or [])
        categorical = set(result.data.get("categorical") or [])
        tabular = next((e for _, e in explanations(result) if is_tabular(e) and is_attribution(e)),
                       None)
        rows: list[dict[str, Any]] = [
                {"name": n, "type": "categorical" if n in categorical else "numeric",
                 "min": None, "max": None, "missing": None, "distinct": None} for n in names]
        order = np.arange(len(names))
        if tabular is not None and tuple(tabular.feature_names) == tuple(names):
            for j, row in enumerate(rows):
                row.update(_column_facts(tabular.inputs[:, j], row["type"]))
            scores, _ = mean_abs(tabular, 0)
            order = rank_top(names, scores, None, len(names)).indices
        k = self.render.options.top_k
        shown = [rows[i] for i in order[:k]]
        rest = [rows[i] for i in order[k:]]
        other = {
            "count": len(rest),
            "numeric": sum(r["type"] == "numeric" for r in rest),
            "categorical": sum(r["type"] == "categorical" for r in rest),
            "missing": sum(int(r["missing"] or 0) for r in rest),
            "names": [r["name"] for r in rest],
        }
        return shown, other


def _column_facts(column: np.ndarray, kind: str) -> dict[str, Any]:
    values = numeric_column(column)
    if values is None or kind == "categorical":
        text = [str(v) for v in column.tolist()]
        missing = sum(t in ("", "nan", "None") for t in text)
        return {"type": "categorical", "missing": missing,
                "distinct": len(set(text) - {"", "nan", "None"})}
    missing = int(np.isnan(values).sum())
    finite = values[~np.isnan(values)]
    return {"min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "missing": missing, "distinct": int(np.unique(finite).size)}
