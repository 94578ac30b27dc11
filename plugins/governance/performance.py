"""Model-performance evidence: held-out metrics with bootstrap intervals, overall and per segment.

One registered check per metric (``performance.r2``, ``performance.roc_auc``, ...), each with
its own direction, all measuring the model (:class:`~xaudit.plugin.ModelCheck`: a suite names
them without an ``explainer``) on the test split of the suite's data; the metrics are
scikit-learn's (:mod:`xaudit.plugins.governance.metrics`, which also documents the bootstrap).
Per segment: for every feature in the suite's ``documentation.segments``, the test rows are
grouped as the report groups explained rows (categories, or ``bins``, else quartiles) and the
metric is computed per group with its size and interval; a group smaller than ``min_group``
rows is flagged as too small to conclude. The gated value is the overall metric, or with
``value: worst_segment`` the worst group among those large enough.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from xaudit.data import Dataset
from xaudit.handoff import CheckHandoff, GroupMetric, MetricEstimate, SegmentMetric
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Check, CheckOutcome, ModelCheck, PluginParams
from xaudit.plugins.governance.metrics import (
    METRICS,
    Estimate,
    HeldOut,
    Scorer,
    estimate,
    held_out,
    scorer,
)
from xaudit.registry import Registry
from xaudit.reports.decisions import segment_labels
from xaudit.suite import DocumentationSpec, SegmentSpec


class PerformanceParams(PluginParams):
    """Parameters of every ``performance.*`` check."""

    output: str | int | None = None
    """A regression model's output that is the prediction, when it has several."""
    n_boot: int = Field(1000, ge=0, le=10_000)
    """Bootstrap resamples for the confidence intervals (0: no interval; at most 10,000, well
    past the 1,000 or so that percentile intervals need: Efron and Tibshirani 1993)."""
    confidence: float = Field(0.95, gt=0, lt=1)
    """Level of the intervals."""
    segments: bool = True
    """Also compute the metric per group of each ``documentation.segments`` feature."""
    min_group: int = Field(30, ge=1)
    """Groups with fewer test rows are flagged as too small to conclude."""
    value: Literal["overall", "worst_segment"] = "overall"
    """The gated value: the metric on all test rows, or on the worst group large enough."""


class Performance(ModelCheck):
    """A held-out metric of the model with its bootstrap interval and per-segment values."""

    metric: ClassVar[str]
    Params = PerformanceParams
    params: PerformanceParams

    def measure(self, model: Model, data: Dataset, rng: np.random.Generator) -> CheckOutcome:
        """The metric on the test rows (or the worst segment), with intervals and groups."""
        p, metric = self.params, METRICS[self.metric]
        held = held_out(model, data, metric, p.output, self.name)
        score = scorer(metric, self.name)
        overall = estimate(score, held, np.arange(held.y.size), p.n_boot, p.confidence, rng)
        statements = [f"{metric.label} on {overall.rows} held-out rows is "
                      f"{_figure(overall, p.confidence)}."]
        if np.array_equal(data.test_rows, data.train_rows):
            statements.append("The test rows are the training rows (data.split.test_size is "
                              "0): these figures are not held out.")
        documentation = self.context.documentation if self.context else None
        segments = (_segments(score, held, data, documentation, p, rng)
                    if p.segments else [])
        small = [f"{s['feature']} {g['label']} ({g['rows']} rows)" for s in segments
                 for g in s["groups"] if g["too_small"]]
        if small:
            statements.append(f"Too few test rows to conclude (fewer than {p.min_group}) in "
                              f"{'; '.join(small)}.")
        value = overall.value
        if p.value == "worst_segment":
            value, where = self._worst(segments)
            statements.insert(0, f"The worst segment is {where}." if where else
                              f"No segment has {p.min_group} or more test rows to gate on.")
        details: dict[str, Any] = {
            "metric": metric.key, "label": metric.label, "rows": overall.rows,
            "overall": overall.value, "ci_low": overall.low, "ci_high": overall.high,
            "ci_level": p.confidence, "n_boot": p.n_boot, "bootstrap_failed": overall.failed,
            "segments": segments, "model_calls": 1}
        if np.isnan(value):
            details["undefined"] = (
                f"no segment group has {p.min_group} or more test rows and a defined "
                f"{metric.label}" if p.value == "worst_segment" else
                f"scikit-learn finds the {metric.label} undefined on the {overall.rows} test "
                "rows (one class only, or a single row)")
        figure = MetricEstimate(metric.label, overall.rows, _defined(overall.value),
                                _defined(overall.low), _defined(overall.high), p.confidence,
                                tuple(_segment_metric(s) for s in segments
                                      if s["missing"] is None))
        return CheckOutcome(value, details=details,
                            handoff=CheckHandoff(statements=tuple(statements),
                                                 performance=figure))

    def _worst(self, segments: list[dict[str, Any]]) -> tuple[float, str | None]:
        """The worst value over groups large enough to conclude, and the group's name."""
        candidates = [(g["value"], f"{s['feature']} {g['label']} ({g['rows']} rows, "
                                   f"{g['value']:.4g})")
                      for s in segments for g in s["groups"]
                      if not g["too_small"] and np.isfinite(g["value"])]
        if not candidates:
            return float("nan"), None
        pick = min if self.direction == "higher" else max
        return pick(candidates, key=lambda c: c[0])


def _defined(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _segment_metric(table: dict[str, Any]) -> SegmentMetric:
    return SegmentMetric(table["feature"], tuple(
        GroupMetric(g["label"], int(g["rows"]), _defined(g["value"]), _defined(g["ci_low"]),
                    _defined(g["ci_high"]), bool(g["too_small"])) for g in table["groups"]))


def _figure(found: Estimate, level: float) -> str:
    text = f"{found.value:.4g}"
    if np.isfinite(found.low):
        text += f" ({level:.0%} CI {found.low:.4g} to {found.high:.4g})"
    return text


def _segments(score: Scorer, held: HeldOut, data: Dataset,
              documentation: DocumentationSpec | None, p: PerformanceParams,
              rng: np.random.Generator) -> list[dict[str, Any]]:
    """Per documented segment feature, each group's size, value and interval."""
    tables: list[dict[str, Any]] = []
    for item in documentation.segments if documentation else []:
        spec = SegmentSpec(feature=item) if isinstance(item, str) else item
        if spec.feature not in data.feature_names:
            tables.append({"feature": spec.feature, "groups": [],
                           "missing": f"{spec.feature} is not a feature of the data"})
            continue
        column = held.X[:, data.feature_names.index(spec.feature)]
        labels = np.asarray(segment_labels(column, spec.bins,
                                           spec.feature in data.categorical), dtype=object)
        groups = []
        for label in sorted(set(labels.tolist())):
            found = estimate(score, held, np.flatnonzero(labels == label), p.n_boot,
                             p.confidence, rng)
            groups.append({"label": label, "rows": found.rows, "value": found.value,
                           "ci_low": found.low, "ci_high": found.high,
                           "too_small": found.rows < p.min_group})
        tables.append({"feature": spec.feature, "groups": groups, "missing": None})
    return tables


def _about(key: str) -> str:
    metric = METRICS[key]
    return (f"The model's {metric.label} on the held-out test rows: {metric.definition}. A "
            "percentile bootstrap interval and the value per documented segment (with group "
            "sizes) are in the details.")


class Accuracy(Performance):
    """Held-out accuracy."""

    name, metric, direction = "performance.accuracy", "accuracy", "higher"
    summary, description = "Held-out accuracy with a bootstrap CI.", _about("accuracy")


class BalancedAccuracy(Performance):
    """Held-out balanced accuracy."""

    name, metric, direction = "performance.balanced_accuracy", "balanced_accuracy", "higher"
    summary = "Held-out balanced accuracy with a bootstrap CI."
    description = _about("balanced_accuracy")


class F1(Performance):
    """Held-out F1 score."""

    name, metric, direction = "performance.f1", "f1", "higher"
    summary, description = "Held-out F1 score with a bootstrap CI.", _about("f1")


class RocAuc(Performance):
    """Held-out area under the ROC curve."""

    name, metric, direction = "performance.roc_auc", "roc_auc", "higher"
    summary, description = "Held-out ROC AUC with a bootstrap CI.", _about("roc_auc")


class LogLoss(Performance):
    """Held-out log loss."""

    name, metric, direction = "performance.log_loss", "log_loss", "lower"
    summary, description = "Held-out log loss with a bootstrap CI.", _about("log_loss")


class Brier(Performance):
    """Held-out Brier score."""

    name, metric, direction = "performance.brier", "brier", "lower"
    summary, description = "Held-out Brier score with a bootstrap CI.", _about("brier")


class R2(Performance):
    """Held-out coefficient of determination."""

    name, metric, direction = "performance.r2", "r2", "higher"
    summary, description = "Held-out R² with a bootstrap CI.", _about("r2")


class MAE(Performance):
    """Held-out mean absolute error."""

    name, metric, direction = "performance.mae", "mae", "lower"
    summary, description = "Held-out mean absolute error with a bootstrap CI.", _about("mae")


class RMSE(Performance):
    """Held-out root mean squared error."""

    name, metric, direction = "performance.rmse", "rmse", "lower"
    summary = "Held-out root mean squared error with a bootstrap CI."
    description = _about("rmse")


class MAPE(Performance):
    """Held-out mean absolute percentage error."""

    name, metric, direction = "performance.mape", "mape", "lower"
    summary = "Held-out mean absolute percentage error with a bootstrap CI."
    description = _about("mape")


CHECKS: tuple[type[Performance], ...] = (Accuracy, BalancedAccuracy, F1, RocAuc, LogLoss, Brier,
                                         R2, MAE, RMSE, MAPE)


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register one ``performance.<metric>`` check per metric."""
    for cls in CHECKS:
        registry.add(cls)
