"""Numbers the report shows, computed from an :class:`~xaudit.explanation.Explanation`.

Everything here reads the explanation's own fields: values ``(n, d, k)``, base values, standard
errors, inputs and the typed hand-off (:mod:`xaudit.handoff`). Nothing is re-estimated with the
model, which is not available at render time. Summaries over all rows read the values a block
of rows at a time (:mod:`xaudit.streaming`), so an explanation stored out of core is never read
whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..explanation import Explanation
from ..results import AuditResult, ErrorInfo
from ..streaming import abs_max, abs_mean_se, bootstrap_abs_means, row_totals


def explainer_ids(result: AuditResult) -> list[str]:
    """Explainer ids, explained or crashed, in suite order (then sorted), however loaded.

    A freshly run result and the same result loaded from disk iterate their dicts in different
    orders; every output iterates in this one, so both render to the same bytes.
    """
    known = set(result.explanations) | set(result.explainer_errors)
    listed = [str(spec.get("id")) for spec in result.suite.get("explainers", [])]
    ordered = [key for key in dict.fromkeys(listed) if key in known]
    return ordered + sorted(known - set(ordered))


def explanations(result: AuditResult) -> list[tuple[str, Explanation]]:
    """``(id, explanation)`` pairs in :func:`explainer_ids` order."""
    return [(k, result.explanations[k]) for k in explainer_ids(result)
            if k in result.explanations]


def errors(result: AuditResult) -> list[tuple[str, ErrorInfo]]:
    """``(id, error)`` of crashed explainers in :func:`explainer_ids` order."""
    return [(k, result.explainer_errors[k]) for k in explainer_ids(result)
            if k in result.explainer_errors]


def is_global(explanation: Explanation) -> bool:
    """Rows are repeats of a global measurement (e.g. permutation importance), not subjects."""
    return explanation.handoff.kind == "global"


FACT_CHARACTERS = 300
"""Metadata entries longer than this (as JSON) are left to results.json, not printed."""


def brief_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The explainer's computation facts short enough to print; long ones are named only.

    Per-row details (LIME's conditions, counterfactual searches) can run to pages; they stay in
    results.json, and the report says which entries it left there.
    """
    kept = {k: v for k, v in metadata.items()
            if len(json.dumps(v, default=str)) <= FACT_CHARACTERS}
    left = sorted(set(metadata) - set(kept))
    if left:
        kept["in results.json only"] = ", ".join(left)
    return kept


@dataclass(frozen=True)
class Ranked:
    """Features ranked by a score: the top ``k`` by name, the rest aggregated."""

    names: list[str]
    scores: np.ndarray
    errors: np.ndarray | None
    indices: np.ndarray
    other_count: int
    other_score: float
    other_error: float | None


def mean_abs(explanation: Explanation, slot: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean |attribution| per feature for output ``slot``, and its standard error over rows."""
    return abs_mean_se(explanation.values, slot)


def rank_top(names: tuple[str, ...] | list[str], scores: np.ndarray,
             errors: np.ndarray | None, k: int) -> Ranked:
    """The ``k`` features with the largest scores, then "other N features" summed.

    Ties are broken by feature order, so the ranking is deterministic.
    """
    order = np.lexsort((np.arange(scores.size), -scores))
    top, rest = order[:k], order[k:]
    other_error = None
    if errors is not None and rest.size:
        other_error = float(np.sqrt(np.sum(errors[rest] ** 2)))
    return Ranked(
        names=[names[i] for i in top],
        scores=scores[top],
        errors=None if errors is None else errors[top],
        indices=top,
        other_count=int(rest.size),
        other_score=float(scores[rest].sum()) if rest.size else 0.0,
        other_error=other_error,
    )


@dataclass(frozen=True)
class Outputs:
    """Model outputs per explained row and slot, with where they come from."""

    values: np.ndarray
    source: str


def outputs_of(key: str, explanation: Explanation, result: AuditResult) -> Outputs | None:
    """The explained rows' outputs, when known without the model.

    Outputs the explainer handed over (``handoff.outputs``, ``(n, k)``) are used first.
    Otherwise base value + sum of attributions, but only when that sum is known to equal the
    output: the method claims local accuracy, or a ``completeness`` gate on it passed.
    """
    if explanation.handoff.outputs is not None:
        return Outputs(explanation.handoff.outputs, "model outputs stored by the explainer")
    if explanation.base_values is None:
        return None
    total = row_totals(explanation.values) + explanation.base_values
    gate = next((c for c in result.checks if c.explainer == key and c.check == "completeness"
                 and c.status in ("pass", "warn") and c.value is not None), None)
    if gate is not None:
        return Outputs(total, f"base value + sum of attributions (completeness gate "
                              f"{gate.name} passed, largest error {gate.value:.3g})")
    if explanation.additive:
        return Outputs(total, "base value + sum of attributions (the method is additive)")
    return None


def used_features(explanation: Explanation, slot: int) -> np.ndarray:
    """Boolean mask of features with any non-zero attribution for ``slot`` over the rows."""
    per_feature = abs_max(explanation.values, slot)
    peak = float(per_feature.max()) if per_feature.size else 0.0
    return np.asarray(per_feature > peak * 1e-12)


def row_ids(result: AuditResult, n: int) -> list[int]:
    """The data-set row number of each explained row (their position when unknown)."""
    rows = result.data.get("explain_rows")
    if isinstance(rows, list) and len(rows) == n:
        return [int(r) for r in rows]
    return list(range(n))


def bootstrap_importance(explanation: Explanation, slot: int, n_boot: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Mean |attribution| per feature on ``n_boot`` resamples of the rows: ``(n_boot, d)``."""
    return bootstrap_abs_means(explanation.values, slot, n_boot, rng)


def ranks_of(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = largest) of each column of ``scores`` ``(m, d)``, ties by feature order."""
    d = scores.shape[1]
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, d + 1)[None, :]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score vectors (ranks by :func:`ranks_of`)."""
    ra = ranks_of(a[None, :])[0].astype(np.float64)
    rb = ranks_of(b[None, :])[0].astype(np.float64)
    if ra.size < 2 or np.all(ra == ra[0]) or np.all(rb == rb[0]):
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def numeric_column(column: np.ndarray) -> np.ndarray | None:
    """``column`` as floats, or ``None`` when it holds text categories."""
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        return None
