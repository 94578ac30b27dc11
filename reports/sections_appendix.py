"""Sections 12-14: reproducibility appendix, sign-off, regulatory mapping."""

from __future__ import annotations

import json
from typing import Any

from ..results import AuditResult
from .section_base import ContextualSection


class ReproducibilitySection(ContextualSection):
    """Everything needed to run the audit again and get the same numbers."""

    name = "reproducibility"
    title = "Reproducibility appendix"
    order = 120
    template = "section_reproducibility.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Seeds, versions, plugins, platform, command, suite text, hashes, timings, the
        explanations reused from the cache and the gate policy."""
        p = result.provenance
        hashes = dict(p.get("hashes") or {})
        hashes["results.json (embedded in the PDF)"] = self.render.results_sha256
        suite_text = result.suite_text or json.dumps(result.suite, indent=2, sort_keys=True)
        return {
            "provenance": p,
            "seeds": p.get("seeds") or {},
            "packages": sorted((p.get("packages") or {}).items()),
            "plugins": _plugins_by_distribution(p.get("plugins") or []),
            "blocked": p.get("blocked_plugins") or [],
            "hashes": sorted(hashes.items()),
            "timings": _flat_timings(p.get("timings") or {}),
            "cached": sorted((k, v.get("key", "")) for k, v in
                             ((p.get("cache") or {}).get("explainers") or {}).items()
                             if v.get("hit")),
            "fail_on_warn": result.gate_policy.fail_on_warn,
            "suite_text": suite_text,
            "suite_is_yaml": bool(result.suite_text),
        }


def _plugins_by_distribution(plugins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The loaded plugin modules grouped by the distribution and version that ship them (the
    fifty built-ins are one row, not fifty), in the order first seen."""
    groups: dict[tuple[str, str], list[str]] = {}
    for plugin in plugins:
        key = (str(plugin.get("distribution")), str(plugin.get("version")))
        groups.setdefault(key, []).append(str(plugin.get("name")))
    return [{"distribution": d, "version": v, "names": names}
            for (d, v), names in groups.items()]


def _flat_timings(timings: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    for key, value in sorted(timings.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat_timings(value, f"{name}.")
        elif isinstance(value, int | float):
            rows.append((name, float(value)))
    return rows


class SignoffSection(ContextualSection):
    """Prepared, reviewed (independent validation) and approved, with dates."""

    name = "signoff"
    title = "Sign-off"
    order = 130
    template = "section_signoff.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """The three roles, filled from the documentation block or left blank."""
        doc = self.render.documentation
        roles = [("Prepared by", doc.prepared_by if doc else None),
                 ("Reviewed by (independent validator)", doc.reviewed_by if doc else None),
                 ("Approved by", doc.approved_by if doc else None)]
        return {"roles": roles, "status": doc.status if doc else "draft"}


MAPPING: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("EU AI Act, Annex IV 1(a)", "Regulation (EU) 2024/1689",
     "Intended purpose, provider and version of the system.", ("cover", "model")),
    ("EU AI Act, Annex IV 1(c)", "Regulation (EU) 2024/1689",
     "Versions of the relevant software.", ("reproducibility",)),
    ("EU AI Act, Annex IV 2(b)", "Regulation (EU) 2024/1689",
     "General logic of the system and of its algorithms, key design choices.",
     ("methods", "global")),
    ("EU AI Act, Annex IV 2(d)", "Regulation (EU) 2024/1689",
     "Data used: provenance, scope, main characteristics, how it was selected.", ("data",)),
    ("EU AI Act, Annex IV 2(e)", "Regulation (EU) 2024/1689",
     "Technical measures that help deployers interpret the system's outputs.",
     ("global", "local", "media")),
    ("EU AI Act, Annex IV 2(g)", "Regulation (EU) 2024/1689",
     "Validation and testing procedures, metrics, dated and signed test reports.",
     ("summary", "faithfulness", "signoff")),
    ("EU AI Act, Annex IV 3", "Regulation (EU) 2024/1689",
     "Capabilities and limitations in performance, including for groups of persons.",
     ("limitations", "stability", "local")),
    ("EU AI Act, Art. 13(3)(b)(iv)", "Regulation (EU) 2024/1689",
     "Capabilities that provide information relevant to explain the system's output.",
     ("methods", "global", "local")),
    ("SR 11-7: conceptual soundness", "Federal Reserve / OCC supervisory guidance (2011)",
     "The design and theory of the method and evidence that it fits its purpose.",
     ("methods", "faithfulness", "limitations")),
    ("SR 11-7: ongoing monitoring", "Federal Reserve / OCC supervisory guidance (2011)",
     "Checks that can be rerun to show the model still performs as intended.",
     ("summary", "reproducibility")),
    ("SR 11-7: outcomes analysis", "Federal Reserve / OCC supervisory guidance (2011)",
     "Comparison of outputs with what they should be; here for the explanations, not for "
     "predictive accuracy.", ("faithfulness", "stability")),
    ("GDPR Art. 15(1)(h) and Art. 22", "Regulation (EU) 2016/679",
     "Meaningful information about the logic involved in automated decisions.",
     ("local", "global")),
    ("Regulation B, 12 CFR 1002.9(b)(2)", "Equal Credit Opportunity Act, CFPB",
     "Statement of the specific principal reasons for adverse action.", ("local",)),
    ("NIST AI RMF, MEASURE 2.9", "NIST AI 100-1 (2023)",
     "The model is explained, validated and documented; outputs interpreted in context.",
     ("methods", "global", "local", "faithfulness")),
)


class RegulatorySection(ContextualSection):
    """Which section serves which regulatory item, and where a section had nothing."""

    name = "regulatory"
    title = "Regulatory mapping appendix"
    order = 140
    template = "section_regulatory.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Rows of (item, source, requirement, sections); statuses come at render time."""
        doc = self.render.documentation
        adverse_reason = None
        if doc is None or doc.decision is None:
            adverse_reason = "no decision rule documented, so no adverse decisions to explain"
        elif not doc.reason_codes:
            adverse_reason = "no reason-code dictionary documented"
        rows = [{"item": item, "source": source, "requirement": text, "sections": list(names),
                 "extra_reason": adverse_reason if item.startswith("Regulation B") else None}
                for item, source, text, names in MAPPING]
        return {"rows": rows}
