"""Section 9: faithfulness and sanity checks, each with its definition and its evidence.

A check's ``details`` may carry a curve to plot as ``{"curve": {"x": [...], "y": [...],
"x_label": "...", "y_label": "..."}}`` (e.g. a deletion curve); per-row ``values`` are shown
as a distribution against the gate's threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from markupsafe import Markup

from ..results import AuditResult, CheckResult
from . import figures
from .analysis import brief_metadata
from .section_base import ContextualSection

MIN_ROWS_FOR_HISTOGRAM = 3


class FaithfulnessSection(ContextualSection):
    """Whether the explanations can be trusted, check by check."""

    name = "faithfulness"
    title = "Faithfulness and sanity checks"
    order = 90
    template = "section_faithfulness.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Definition, value, threshold, verdict and plot per check."""
        if not result.checks:
            return self.not_applicable("the suite runs no checks")
        entries = []
        for check in result.checks:
            facts = self.check_facts(check.check)
            entries.append({
                "check": check, "facts": facts,
                "relation": "≤" if check.direction == "lower" else "≥",
                "details": brief_metadata(
                    {k: v for k, v in sorted(check.details.items()) if k != "curve"}),
                "figure": _figure(check),
                "n_values": None if check.values is None else int(np.size(check.values)),
            })
        return {"entries": entries}


def _figure(check: CheckResult) -> Markup | None:
    curve = check.details.get("curve")
    if isinstance(curve, dict) and "x" in curve and "y" in curve:
        x = np.asarray(curve["x"], dtype=np.float64)
        y = np.asarray(curve["y"], dtype=np.float64)
        if x.shape == y.shape and x.ndim == 1 and x.size > 1:
            return figures.lines(x, [y], [check.name], str(curve.get("x_label", "x")),
                                 str(curve.get("y_label", check.check)))
    if check.values is not None and np.size(check.values) >= MIN_ROWS_FOR_HISTOGRAM:
        values = np.asarray(check.values, dtype=np.float64).reshape(-1)
        return figures.histogram(values, f"{check.check} per row", check.threshold)
    return None
