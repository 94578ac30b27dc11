"""A report section: the sparsity of each checked explanation, from the saved results.

The section computes its template's variables from the :class:`~xaudit.AuditResult` alone
(reports read results, never plugins), and its template, ``templates/example_sparsity.html.j2``
next to this module, emits only the section's body: the report adds the heading, the anchor
and the page around it, and escapes every value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from xaudit import AuditResult, ReportSection

from .check import Sparsity


class SparsitySection(ReportSection):
    """One row per ``example.sparsity`` check: its value, verdict and per-row spread."""

    name = "example.sparsity_overview"
    title = "Sparsity of the explanations"
    order = 95  # after the built-in faithfulness section (90), before stability (100)
    template = "example_sparsity.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any] | None:
        """The sparsity checks that ran; ``None`` (no section) when the audit has none."""
        rows = []
        for check in result.checks:
            if check.check != Sparsity.name or check.error is not None:
                continue
            spread = (np.nanpercentile(check.values, [25, 50, 75]).tolist()
                      if check.values is not None and len(check.values) else [])
            rows.append({"name": check.name, "explainer": check.explainer,
                         "value": check.value, "status": check.status,
                         "quartiles": spread, "least_sparse_row":
                         check.details.get("least_sparse_row")})
        return {"rows": rows} if rows else None
