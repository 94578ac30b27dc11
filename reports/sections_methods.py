"""Section 5 (methods) and section 11 (limitations and caveats generated from what ran)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..feature_shares import is_tabular
from ..results import AuditResult
from .analysis import (
    errors,
    explainer_ids,
    explanations,
    is_global,
    numeric_column,
)
from .section_base import ContextualSection

TRACEBACK_LINES = 12
CORRELATION_LIMIT = 0.7


class MethodsSection(ContextualSection):
    """Each explainer: what it computes, how it was called, what it cannot do."""

    name = "methods"
    title = "Methods"
    order = 50
    template = "section_methods.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """One entry per explainer in suite order, crashed ones with their error."""
        entries = []
        for key, method in _explainers_in_order(result):
            facts = self.explainer_facts(method)
            entry: dict[str, Any] = {"id": key, "method": method, "facts": facts}
            seed = result.provenance.get("seeds", {}).get("explainers", {}).get(key)
            if key in result.explanations:
                e = result.explanations[key]
                entry.update(
                    seed=e.seed, runtime=e.wall_time_s, rows=e.n_rows,
                    outputs=list(e.output_names), additive=e.additive,
                    feature_shape=list(e.feature_shape),
                    base_values=e.base_values is not None,
                    std_errors=e.std_errors is not None,
                    error=None)
            else:
                error = result.explainer_errors[key]
                lines = error.traceback.strip().splitlines()
                entry.update(seed=seed, error=error,
                             traceback="\n".join(lines[-TRACEBACK_LINES:]))
            entries.append(entry)
        if not entries:
            return self.not_applicable("no explainer ran")
        return {"entries": entries}


def _explainers_in_order(result: AuditResult) -> list[tuple[str, str]]:
    methods = {str(spec.get("id")): str(spec.get("method", "?"))
               for spec in result.suite.get("explainers", [])}
    for key, e in explanations(result):
        methods[key] = e.method
    return [(key, methods.get(key, "?")) for key in explainer_ids(result)]


class LimitationsSection(ContextualSection):
    """Caveats that follow from the methods that ran and the data they ran on."""

    name = "limitations"
    title = "Limitations and caveats"
    order = 110
    template = "section_limitations.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Declared limitations of each method plus caveats derived from the results."""
        items: list[dict[str, str]] = []
        for key, method in _explainers_in_order(result):
            for text in self.explainer_facts(method).limitations:
                items.append({"topic": f"{key} ({method})", "text": text, "source": "method"})
        items += _derived_caveats(result)
        items.append({
            "topic": "Attribution is not causation",
            "text": "Attributions describe how this model's output responds to its inputs; "
                    "they say nothing about how the outcome in the world responds to changes "
                    "in the features.",
            "source": "general"})
        return {"caveats": items}


def _derived_caveats(result: AuditResult) -> list[dict[str, str]]:
    """Caveats that follow from the explanations' hand-offs and the checks' results."""
    caveats: list[dict[str, str]] = []

    def add(topic: str, text: str) -> None:
        caveats.append({"topic": topic, "text": text, "source": "derived from this audit"})

    marginal = [k for k, e in explanations(result) if is_tabular(e) and e.handoff.marginal]
    pairs = _correlated_pairs(result, marginal)
    if pairs:
        listed = ", ".join(f"{a} and {b} (r = {r:+.2f})" for a, b, r in pairs[:5])
        add("Marginal attributions under correlated features",
            f"{', '.join(marginal)} replace features independently of each other, but {listed} "
            "are correlated over the explained rows. The model is then evaluated on "
            "combinations that do not occur in the data, and credit may be split between "
            "correlated features arbitrarily (Aas, Jullum and Løland 2021, \"Explaining "
            "individual predictions when features are dependent\"; Hooker, Mentch and Zhou "
            "2021, \"Unrestricted permutation forces extrapolation\").")
    if any(e.handoff.partial_dependence is not None for _, e in explanations(result)):
        add("Partial dependence extrapolates",
            "Partial-dependence and ICE curves set one feature to every grid value for every "
            "row, including values that never co-occur with the row's other features; with "
            "correlated features prefer accumulated local effects (Apley and Zhu 2020).")
    surrogates = [k for k, e in explanations(result) if e.handoff.surrogate is not None]
    if surrogates:
        add("Local surrogates are local and sampled",
            f"{', '.join(surrogates)} fit a surrogate in a neighbourhood whose width is a "
            "parameter; results change with the kernel width and the sample (Garreau and von "
            "Luxburg 2020, \"Explaining the Explainer\"; Alvarez-Melis and Jaakkola 2018, \"On "
            "the Robustness of Interpretability Methods\"). Read the local R² next to each "
            "explanation.")
    for key, e in explanations(result):
        if e.std_errors is not None:
            worst = float(np.max(e.std_errors)) if e.std_errors.size else 0.0
            add(f"Sampling error of {key}",
                f"{key} ({e.method}) is estimated by sampling; its attributions carry standard "
                f"errors up to {worst:.3g} (section Stability and uncertainty).")
        for caveat in e.handoff.caveats:
            add(f"Caveat of {key}", f"{key} ({e.method}): {caveat}")
        if e.handoff.inexact_ops:
            add(f"Inexact rules in {key}",
                f"{key} ({e.method}) passed through operations whose rule does not conserve the "
                f"output difference exactly: {', '.join(e.handoff.inexact_ops)}; "
                "its completeness error is not guaranteed to be zero.")
        if is_tabular(e) and e.n_rows < 30 and not is_global(e):
            add(f"Few explained rows for {key}",
                f"Global summaries of {key} average over {e.n_rows} rows only.")
    for check in result.checks:
        if check.check == "completeness" and check.value is not None and check.value > 0:
            add(f"Approximation error of {check.explainer}",
                f"Attributions plus base value differ from the model output by up to "
                f"{check.value:.3g} ({check.name}).")
    if result.explainer_errors:
        add("Incomplete audit",
            f"{len(result.explainer_errors)} explainer(s) crashed "
            f"({', '.join(k for k, _ in errors(result))}); sections that depend on them are empty.")
    return caveats


def _correlated_pairs(result: AuditResult, keys: list[str]) -> list[tuple[str, str, float]]:
    for key in keys:
        e = result.explanations[key]
        columns = [numeric_column(e.inputs[:, j]) for j in range(e.inputs.shape[1])]
        usable = [j for j, c in enumerate(columns)
                  if c is not None and np.all(np.isfinite(c)) and np.ptp(c) > 0]
        if len(usable) < 2 or e.n_rows < 3:
            continue
        matrix = np.corrcoef(np.stack([columns[j] for j in usable]))  # type: ignore[misc]
        found = []
        for a in range(len(usable)):
            for b in range(a + 1, len(usable)):
                if abs(matrix[a, b]) >= CORRELATION_LIMIT:
                    found.append((e.feature_names[usable[a]], e.feature_names[usable[b]],
                                  float(matrix[a, b])))
        return sorted(found, key=lambda p: -abs(p[2]))
    return []
