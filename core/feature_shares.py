"""Each named feature's share of an explanation's attribution, for summaries and baselines.

The share of feature ``j`` is its mean absolute attribution over the explained rows, summed
over the targeted outputs, divided by the total over features (the global importance of
Lundberg et al. 2020, "From local explanations to global understanding with explainable AI
for trees", normalised). The summary lists the largest shares; a run with a baseline records
the approved run's shares in its provenance, so the summary (and any later re-render of it)
can show each top feature's change against the approved run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .explanation import Explanation
from .streaming import abs_mean_over_outputs

if TYPE_CHECKING:
    from .results import AuditResult

BASELINE_SHARES = "attribution_shares"
"""Key, in ``provenance["baseline"]``, of the approved run's shares: explainer id -> method ->
feature name -> share."""


def is_tabular(explanation: Explanation) -> bool:
    """One named attribution per feature (as opposed to pixels or tokens)."""
    return len(explanation.feature_shape) == 1 and len(explanation.feature_names) > 0


def is_attribution(explanation: Explanation) -> bool:
    """Values attribute each explained row's output to its features (``handoff.kind``).

    Global measurements (permutation importance), partial dependence effects and counterfactual
    changes also fill ``values``, but ranking, waterfalls and reasons do not apply to them.
    """
    return explanation.handoff.kind == "attribution"


def feature_shares(explanation: Explanation) -> dict[str, float] | None:
    """Feature name -> share of the mean |attribution| (summing to one), in feature order;
    ``None`` for an explanation that is not a tabular attribution or attributes nothing."""
    if not (is_tabular(explanation) and is_attribution(explanation)):
        return None
    scores = abs_mean_over_outputs(explanation.values)
    total = float(scores.sum())
    if not np.isfinite(total) or total <= 0:
        return None
    return {name: float(score / total)
            for name, score in zip(explanation.feature_names, scores, strict=True)}


def baseline_shares(approved: AuditResult) -> dict[str, dict[str, dict[str, float]]]:
    """The approved run's shares, for the new run's provenance: explainer id -> method ->
    feature -> share, for every explainer :func:`feature_shares` applies to."""
    found = {}
    for key, explanation in approved.explanations.items():
        shares = feature_shares(explanation)
        if shares is not None:
            found[key] = {explanation.method: shares}
    return found


def approved_shares(result: AuditResult) -> dict[str, dict[str, dict[str, float]]]:
    """What :func:`baseline_shares` recorded in ``result``'s provenance; ``{}`` without a
    baseline. Results folders are received data: entries of any other shape are passed over
    (never trusted to be numbers)."""
    recorded: Any = result.provenance.get("baseline")
    recorded = recorded.get(BASELINE_SHARES) if isinstance(recorded, dict) else None
    if not isinstance(recorded, dict):
        return {}
    return {key: {method: {str(name): float(share) for name, share in shares.items()
                           if _finite(share)}
                  for method, shares in methods.items() if isinstance(shares, dict)}
            for key, methods in recorded.items() if isinstance(methods, dict)}


def _finite(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
