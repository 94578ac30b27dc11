"""The model's held-out performance as plain data, read from the ``performance.*`` checks.

The model section, the fairness evidence and any later summary read the same records: each
``performance.<metric>`` check's value, interval and per-segment groups (the check's details,
:mod:`xaudit.plugins.governance.performance`), with group labels shown through the
documentation's ``value_labels`` and in natural order (:mod:`xaudit.reports.segments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..results import AuditResult, CheckResult
from .segments import group_order, shown_value

PERFORMANCE_PREFIX = "performance."
"""The registered names of the model-performance checks start with this."""


@dataclass(frozen=True)
class GroupFigure:
    """A metric on one segment group: its label as shown, rows, value and interval."""

    label: str
    code: str
    rows: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    too_small: bool


@dataclass(frozen=True)
class PerformanceFigure:
    """One held-out metric: value, interval, its gate's status, and per-segment groups."""

    check: str
    name: str
    label: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float | None
    rows: int | None
    status: str
    segments: dict[str, list[GroupFigure]] = field(default_factory=dict)
    """Feature -> its groups in natural order."""


def is_performance(check: CheckResult) -> bool:
    """Whether ``check`` is one of the ``performance.*`` model checks."""
    return check.check.startswith(PERFORMANCE_PREFIX)


def performance_figures(result: AuditResult,
                        value_labels: Mapping[str, Mapping[str, str]] | None = None,
                        ) -> list[PerformanceFigure]:
    """Every ``performance.*`` check's figures, in suite order."""
    labels = value_labels or {}
    return [_figure(c, labels) for c in result.checks if is_performance(c)]


def _figure(check: CheckResult, labels: Mapping[str, Mapping[str, str]]) -> PerformanceFigure:
    details = check.details or {}
    segments: dict[str, list[GroupFigure]] = {}
    for table in details.get("segments") or []:
        feature = str(table.get("feature", ""))
        groups = {str(g.get("label")): g for g in table.get("groups") or []}
        segments[feature] = [
            GroupFigure(shown_value(labels.get(feature), code), code, int(g.get("rows", 0)),
                        _number(g.get("value")), _number(g.get("ci_low")),
                        _number(g.get("ci_high")), bool(g.get("too_small")))
            for code in group_order(groups) for g in (groups[code],)]
    return PerformanceFigure(
        check.check, check.name, str(details.get("label", check.check)),
        _number(details.get("overall", check.value)), _number(details.get("ci_low")),
        _number(details.get("ci_high")), _number(details.get("ci_level")),
        None if details.get("rows") is None else int(details["rows"]), check.status, segments)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN: undefined
