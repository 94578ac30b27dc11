"""``model_card.md`` and ``model_card.json``: the audit as a model card.

The sections are those of Mitchell et al. 2019, "Model Cards for Model Reporting" (FAT* '19,
https://doi.org/10.1145/3287560.3287596): Model Details, Intended Use, Factors, Metrics,
Evaluation Data, Training Data, Quantitative Analyses, Ethical Considerations, Caveats and
Recommendations. Every field is filled from the saved results and the suite's documentation
block, the same ones the report renders; a field neither holds says :data:`NOT_DOCUMENTED`
(nothing is invented). Strings from data, models and suites are made safe for their format:
:func:`~xaudit.safe_text.printable` in the JSON, escaped Markdown
(:func:`~xaudit.reports.markdown.md_escape`) in the Markdown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..results import AuditResult, CheckResult
from ..safe_text import printable
from ..suite import DocumentationSpec
from .analysis import errors
from .evidence import performance_figures
from .markdown import md_escape
from .regulatory_evidence import SIGNOFF_ROLES, CheckKind

MODEL_CARD_MD = "model_card.md"
MODEL_CARD_JSON = "model_card.json"
NOT_DOCUMENTED = "not documented"
SECTIONS: tuple[tuple[str, str], ...] = (
    ("model_details", "Model Details"), ("intended_use", "Intended Use"),
    ("factors", "Factors"), ("metrics", "Metrics"), ("evaluation_data", "Evaluation Data"),
    ("training_data", "Training Data"), ("quantitative_analyses", "Quantitative Analyses"),
    ("ethical_considerations", "Ethical Considerations"),
    ("caveats_and_recommendations", "Caveats and Recommendations"))
"""The card's sections, in Mitchell et al.'s order: JSON key and heading."""


def _text(value: object) -> str:
    """A documented text, or :data:`NOT_DOCUMENTED` when it is empty."""
    text = "" if value is None else str(value).strip()
    return text or NOT_DOCUMENTED


def _number(value: object) -> float | None:
    """A finite number, or ``None`` (JSON has no NaN)."""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _gate(check: CheckResult) -> dict[str, Any]:
    return {"name": check.name, "value": _number(check.value),
            "threshold": _number(check.threshold), "status": check.status}


def model_card(result: AuditResult, doc: DocumentationSpec | None,
               kinds: Mapping[str, CheckKind]) -> dict[str, Any]:
    """The card's content, section by section (:data:`SECTIONS`); ``kinds``
    (:func:`~xaudit.reports.regulatory_evidence.check_kinds`) tells the performance checks."""
    model, data, provenance = result.model, result.data, result.provenance
    performance = [c for c in result.checks if kinds.get(c.check) == "model"]
    others = [c for c in result.checks if kinds.get(c.check) != "model"]
    figures = {f.name: f for f in performance_figures(result, doc.value_labels if doc else None)}
    segments = [item if isinstance(item, str) else item.feature
                for item in (doc.segments if doc else [])]
    people = {role: (None if person is None else {
        "name": person.name, "role": _text(person.role),
        "date": NOT_DOCUMENTED if person.date is None else person.date.isoformat()})
        for role, person in ((role, getattr(doc, role) if doc else None)
                             for role in SIGNOFF_ROLES)}
    decision = doc.decision if doc else None
    card: dict[str, Any] = {
        "model_details": {
            "name": _text(model.get("name")), "sha256": _text(model.get("sha256")),
            "type": " ".join(str(model.get(k)) for k in ("framework", "framework_version",
                                                         "adapter") if model.get(k)) or
                    NOT_DOCUMENTED,
            "task": _text(model.get("task")),
            "inputs": list(model.get("input_spec", {}).get("feature_names") or []),
            "outputs": list(model.get("output_names") or []),
            "version": _text(doc and doc.version),
            "owner": _text(doc and doc.owner), "contact": _text(doc and doc.contact),
            "inventory_id": _text(doc and doc.inventory_id),
            "risk_tier": _text(doc and doc.risk_tier),
            "status": doc.status if doc else "draft",
            "sign_off": {role: person or NOT_DOCUMENTED for role, person in people.items()},
            "audited_at": _text(provenance.get("finished_at")),
            "audited_with": f"xaudit {provenance.get('xaudit_version', '?')}",
            "license": NOT_DOCUMENTED, "citation": NOT_DOCUMENTED,
        },
        "intended_use": {
            "primary_uses": _text(doc and doc.intended_use),
            "primary_users": NOT_DOCUMENTED,
            "out_of_scope": list(doc.out_of_scope) if doc and doc.out_of_scope
            else NOT_DOCUMENTED,
        },
        "factors": {
            "relevant_factors": segments or NOT_DOCUMENTED,
            "evaluation_factors": sorted({feature for f in figures.values()
                                          for feature, groups in f.segments.items() if groups})
            or NOT_DOCUMENTED,
        },
        "metrics": {
            "performance": [{**_gate(c), "metric": _text(f.label),
                             "ci_low": _number(f.ci_low), "ci_high": _number(f.ci_high),
                             "ci_level": _number(f.ci_level)}
                            for c in performance for f in (figures.get(c.name),)
                            if f is not None] or NOT_DOCUMENTED,
            "decision_threshold": NOT_DOCUMENTED if decision is None else {
                "output": decision.output, "adverse": decision.adverse,
                "threshold": decision.threshold},
            "explanation_checks": [{**_gate(c), "explainer": c.explainer} for c in others]
            or NOT_DOCUMENTED,
        },
        "evaluation_data": {
            "source": _text(data.get("source")), "sha256": _text(data.get("sha256")),
            "rows": data.get("n_test") or NOT_DOCUMENTED,
            "explained_rows": len(data.get("explain_rows") or []) or NOT_DOCUMENTED,
            "preprocessing": NOT_DOCUMENTED,
        },
        "training_data": {
            "source": _text(data.get("source")), "sha256": _text(data.get("sha256")),
            "rows": data.get("n_train") or NOT_DOCUMENTED,
            "procedure": _text(doc and doc.training_procedure),
            "lineage": _text(doc and doc.data_lineage),
        },
        "quantitative_analyses": {
            "per_group": [{"check": f.name, "feature": feature, "group": g.label,
                           "rows": g.rows, "value": _number(g.value),
                           "ci_low": _number(g.ci_low), "ci_high": _number(g.ci_high),
                           "too_small": g.too_small}
                          for f in figures.values() for feature, groups in f.segments.items()
                          for g in groups] or NOT_DOCUMENTED,
        },
        "ethical_considerations": {"considerations": NOT_DOCUMENTED},
        "caveats_and_recommendations": {
            "limitations": list(doc.limitations) if doc and doc.limitations
            else NOT_DOCUMENTED,
            "gates_not_passed": [_gate(c) for c in result.checks
                                 if c.status in ("fail", "warn", "error")],
            "explainers_that_crashed": [f"{key}: {error}" for key, error in errors(result)],
            "findings": [s for c in performance for s in c.handoff.statements],
        },
    }
    safe: dict[str, Any] = _printable(card)
    return safe


def _printable(value: Any) -> Any:
    """``value`` with every string (keys too) made safe by :func:`printable`."""
    if isinstance(value, dict):
        return {printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return printable(value) if isinstance(value, str) else value


def model_card_json(card: dict[str, Any]) -> bytes:
    """``model_card.json``: the card, keys in :data:`SECTIONS` order, stable bytes."""
    return (json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def model_card_markdown(card: dict[str, Any], suite_name: str) -> str:
    """``model_card.md``: one heading per section, one bullet per field, tables for lists of
    records; every value escaped for Markdown."""
    lines = [f"# Model card: {md_escape(suite_name)}", "",
             "Sections after Mitchell et al. 2019, \"Model Cards for Model Reporting\". Filled "
             f"from the audit's results and documentation block; \"{NOT_DOCUMENTED}\" marks "
             "what neither holds.", ""]
    for key, heading in SECTIONS:
        lines += [f"## {heading}", ""]
        for name, value in card[key].items():
            lines += _field(name.replace("_", " "), value)
        lines.append("")
    return "\n".join(lines)


def _field(name: str, value: Any) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for row in value for k in row))
        return [f"- {md_escape(name)}:", "",
                "| " + " | ".join(md_escape(c) for c in columns) + " |",
                "|" + "---|" * len(columns),
                *("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in value),
                ""]
    if isinstance(value, list):
        return [f"- {md_escape(name)}: " + ("none" if not value else
                                             "; ".join(md_escape(v) for v in value))]
    if isinstance(value, dict):
        return [f"- {md_escape(name)}: " + "; ".join(
            f"{md_escape(k.replace('_', ' '))}: {_cell(v)}" for k, v in value.items())]
    return [f"- {md_escape(name)}: {_cell(value)}"]


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{md_escape(k)} {_cell(v)}" for k, v in value.items())
    return md_escape(value)

