"""The model's held-out performance as plain data, read from the checks' typed hand-off.

The model section, the fairness evidence and any later summary read the same records: each
check that hands over a :class:`~xaudit.handoff.MetricEstimate` (the ``performance.*`` checks,
:mod:`xaudit.plugins.governance.performance`), with its gate status, and its segment groups
named through the documentation's ``value_labels`` and listed in natural order
(:mod:`xaudit.reports.segments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..handoff import MetricEstimate
from ..results import AuditResult, CheckResult
from .segments import group_order, shown_value


@dataclass(frozen=True)
class GroupFigure:
    """A metric on one segment group: its label as shown, its code, rows, value, interval."""

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
    ci_level: float
    rows: int
    status: str
    segments: dict[str, list[GroupFigure]] = field(default_factory=dict)
    """Feature -> its groups in natural order."""


def performance_figures(result: AuditResult,
                        value_labels: Mapping[str, Mapping[str, str]] | None = None,
                        ) -> list[PerformanceFigure]:
    """The figure of every check that hands one over, in suite order."""
    labels = value_labels or {}
    return [_figure(c, c.handoff.performance, labels) for c in result.checks
            if c.handoff.performance is not None]


def _figure(check: CheckResult, estimate: MetricEstimate,
            labels: Mapping[str, Mapping[str, str]]) -> PerformanceFigure:
    segments: dict[str, list[GroupFigure]] = {}
    for segment in estimate.segments:
        groups = {g.label: g for g in segment.groups}
        segments[segment.feature] = [
            GroupFigure(shown_value(labels.get(segment.feature), code), code, g.rows, g.value,
                        g.ci_low, g.ci_high, g.too_small)
            for code in group_order(groups) for g in (groups[code],)]
    return PerformanceFigure(check.check, check.name, estimate.label, estimate.value,
                             estimate.ci_low, estimate.ci_high, estimate.level, estimate.rows,
                             check.status, segments)
