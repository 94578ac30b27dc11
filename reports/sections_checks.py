"""Section 9: faithfulness and sanity checks, each with its definition and its evidence.

A check's curves (``handoff.curves``, :class:`~xaudit.handoff.Curve`) are drawn with their
series, bands and areas (e.g. a deletion curve against random rankings); its per-row ``values``
are shown as a distribution against the gate's threshold. Its parameters and ``details`` are in
the technical appendix (:mod:`xaudit.reports.sections_details`), never interpreted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from markupsafe import Markup

from ..results import AuditResult, CheckResult
from . import figures
from .section_base import ContextualSection

MIN_ROWS_FOR_HISTOGRAM = 3


class FaithfulnessSection(ContextualSection):
    """Whether the explanations can be trusted, check by check."""

    name = "faithfulness"
    title = "Faithfulness and sanity checks"
    order = 90
    template = "section_faithfulness.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Definition, value, threshold, verdict, curves and distribution per check."""
        if not result.checks:
            return self.not_applicable("the suite runs no checks")
        entries = []
        for check in result.checks:
            entries.append({
                "check": check, "facts": self.check_facts(check.check),
                "relation": "≤" if check.direction == "lower" else "≥",
                "curves": [{"title": c.title, "figure": figures.curve(c), "areas": c.areas}
                           for c in check.handoff.curves],
                "distribution": _distribution(check),
                "n_values": None if check.values is None else int(np.size(check.values)),
            })
        return {"entries": entries}


def _distribution(check: CheckResult) -> Markup | None:
    """A histogram of the check's per-row values, when there are enough of them."""
    if check.values is None or np.size(check.values) < MIN_ROWS_FOR_HISTOGRAM:
        return None
    values = np.asarray(check.values, dtype=np.float64).reshape(-1)
    return figures.histogram(values, f"{check.check} per row", check.threshold)
