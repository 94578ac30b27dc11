"""Sections 12-14: reproducibility appendix, sign-off, regulatory mapping."""

from __future__ import annotations

from typing import Any

from ..results import AuditResult
from .embedding import suite_file
from .regulatory import assess_all
from .regulatory_evidence import check_kinds, gather_evidence
from .regulatory_items import ITEMS
from .section_base import ContextualSection
from .signature_fields import SIGNATURE_ROLES


class ReproducibilitySection(ContextualSection):
    """Everything needed to run the audit again and get the same numbers."""

    name = "reproducibility"
    title = "Reproducibility appendix"
    order = 120
    template = "section_reproducibility.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Seeds, versions, plugins, platform, command, the suite file (attached, named and
        hashed, not printed), hashes, timings, the explanations reused from the cache and the
        gate policy."""
        p = result.provenance
        hashes = dict(p.get("hashes") or {})
        hashes["results.json (embedded in the PDF)"] = self.render.results_sha256
        suite = suite_file(result)
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
            "suite_file": suite.name,
            "suite_sha256": suite.sha256,
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
        """The three roles (key, label, person), filled from the documentation block or left
        blank; each role's signature box becomes a signature field in the PDF
        (:mod:`xaudit.reports.signature_fields`)."""
        doc = self.render.documentation
        roles = [(key, label, getattr(doc, key) if doc else None)
                 for key, label in SIGNATURE_ROLES]
        return {"roles": roles, "status": doc.status if doc else "draft"}


class RegulatorySection(ContextualSection):
    """Which regulatory items this audit's evidence serves, each status computed from it
    (:mod:`xaudit.reports.regulatory`)."""

    name = "regulatory"
    title = "Regulatory mapping appendix"
    order = 140
    template = "section_regulatory.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """One row per item: its assessment and the sections that show its evidence."""
        from ..host import default_host

        kinds = check_kinds(self.render.host or default_host())
        evidence = gather_evidence(result, self.render.documentation, kinds)
        return {"rows": assess_all(ITEMS, evidence)}
