"""Stability of a stochastic explainer across seeds, and agreement between two explainers.

- ``stability``: the explained rows are re-explained ``repeats`` times with seeds
  ``seed + 1 .. seed + repeats`` (same method and params), and together with the checked
  explanation the ``R = repeats + 1`` runs are compared pairwise per row and targeted output:
  Spearman rank correlation over the ``top_k`` features of the runs' mean absolute attribution
  (all features when ``top_k`` is 0) and the overlap of each run's top-``k`` set. Per feature,
  a ``confidence`` interval of the mean attribution across runs (Student t, ``R - 1`` degrees of
  freedom) is reported: its half-width per feature (averaged over rows) and relative to the mean
  absolute attribution. The gated value is the mean pairwise rank correlation (higher is
  better). A deterministic explainer gives 1 trivially; details say whether the method declares
  itself stochastic. Users asked for this in shap#441, shap#1835 and lime#767.
- ``agreement``: the checked explanation against a second explainer's (``reference`` in the
  suite, ``reference=`` in ``xaudit.check``) of the same rows and outputs: per row and output,
  Spearman rank correlation of the (absolute, by default) attributions and top-``k`` overlap.
  ``metric`` picks the gated one (higher is better). Krishna et al. 2022, "The Disagreement
  Problem in Explainable Machine Learning", use the same measures (rank correlation, feature
  agreement).

A constant map ranks nothing, so its rank correlation (and its top-``k`` set) is undefined: a
row where a run (``stability``) or either explanation (``agreement``) is constant over the
compared features, or not finite, makes the gated value NaN, failing every gate, with the rows
and the reason in ``details["undefined"]`` (:mod:`xaudit.plugins.checks.undefined`).
"""

from __future__ import annotations

from itertools import combinations
from typing import Literal

import numpy as np
from pydantic import Field

from xaudit.data import Dataset
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Check, CheckOutcome, PluginParams
from xaudit.plugins._support.statistics import (
    mean_finite,
    spearman_rows,
    t_half_width,
    top_k_overlap,
)
from xaudit.plugins.checks.cost import Cost
from xaudit.plugins.checks.explained import local_rows, per_slot, reexplainer
from xaudit.plugins.checks.undefined import Undefined, constant
from xaudit.registry import Registry


class StabilityParams(PluginParams):
    """Parameters of ``stability``."""

    repeats: int = Field(4, ge=1, le=1_000)
    """Extra runs with other seeds (the checked explanation is run 0)."""
    top_k: int = Field(10, ge=0)
    """Features compared (by mean absolute attribution); 0 compares all."""
    confidence: float = Field(0.95, gt=0, lt=1)
    """Level of the per-feature confidence intervals."""
    absolute: bool = False
    """Rank absolute attributions (sign flips then do not count)."""


class Stability(Check):
    """Rank agreement of repeated runs of a stochastic explainer, with per-feature CIs."""

    name = "stability"
    summary = "Repeat a stochastic explainer with other seeds: top-k rank correlation and CIs."
    description = (
        "The explained rows are explained again with other seeds (same method and parameters), "
        "and all runs are compared pairwise per row and output by the Spearman rank correlation "
        "over the features that matter most across the runs; the overlap of the runs' top "
        "features and confidence intervals of the mean attributions are in the details. The gated "
        "value is the mean pairwise rank correlation; higher is better. A deterministic method "
        "gives 1 trivially.")
    paper = "Visani et al. 2022 (stability indices for LIME); Yeh et al. 2019"
    Params = StabilityParams
    params: StabilityParams
    direction = "higher"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Pairwise rank correlation per row and its mean; CIs in the details."""
        p, cost = self.params, Cost(model)
        reexplain = reexplainer(self, self.name)
        rows = local_rows(explanation, self.name)
        runs = [per_slot(explanation.values)]
        for r in range(1, p.repeats + 1):
            again = cost.reexplain(reexplain, rows, explanation.target_indices,
                                   seed=explanation.seed + r)
            runs.append(per_slot(again))
        stack = np.stack(runs)  # (R, n, k, d)
        if p.absolute:
            stack = np.abs(stack)
        d = stack.shape[-1]
        k = d if p.top_k == 0 else min(p.top_k, d)
        top = np.argsort(-np.abs(stack).mean(axis=0), axis=-1)[..., :k]  # (n, k_out, k)
        picked = np.take_along_axis(stack, np.broadcast_to(top, (stack.shape[0], *top.shape)),
                                    axis=-1)
        pairs = list(combinations(range(stack.shape[0]), 2))
        rho = np.stack([spearman_rows(picked[a], picked[b]) for a, b in pairs])  # (P, n, k)
        overlap = np.stack([top_k_overlap(np.abs(stack[a]), np.abs(stack[b]), k)
                            for a, b in pairs])
        undefined = Undefined(stack.shape[1])
        undefined.not_finite("the attributions", np.moveaxis(stack, 0, 1))
        undefined.add("a run's attributions are constant over the compared features (no rank "
                      "correlation)",
                      np.moveaxis(constant(picked), 0, 1))
        R = stack.shape[0]
        sd = stack.std(axis=0, ddof=1)
        half = t_half_width(sd, R, p.confidence)  # (n, k, d)
        scale = np.abs(stack.mean(axis=0)).mean()
        context = self.context
        return undefined.outcome(rho.mean(axis=(0, 2)), {
            "runs": R, "seeds": [explanation.seed + r for r in range(R)], "top_k": k,
            "top_k_overlap": mean_finite(overlap),
            "ci_level": p.confidence,
            "ci_half_width": half.mean(axis=(0, 1)).tolist(),
            "ci_half_width_mean": float(half.mean()),
            "ci_relative": float(half.mean() / scale) if scale > 0 else 0.0,
            "stochastic": bool(context is not None and context.stochastic),
            **cost.details(),
        })


class AgreementParams(PluginParams):
    """Parameters of ``agreement``."""

    metric: Literal["rank_correlation", "top_k_overlap"] = "rank_correlation"
    """The gated measure."""
    top_k: int = Field(5, ge=1)
    """Size of the top sets compared by ``top_k_overlap``."""
    absolute: bool = True
    """Compare absolute attributions."""


class Agreement(Check):
    """Rank correlation and top-k overlap between two explainers of the same rows."""

    name = "agreement"
    summary = "Do two explainers of the same model agree? Rank correlation and top-k overlap."
    description = (
        "The checked explanation is compared with a second explainer's explanation of the same "
        "rows and outputs: per row and output, the Spearman rank correlation of the (by default "
        "absolute) attributions, or the overlap of their top features. The gated value is its "
        "mean over rows; higher is better.")
    paper = "Krishna et al. 2022 (The Disagreement Problem)"
    Params = AgreementParams
    params: AgreementParams
    direction = "higher"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Per-row measure (mean over outputs) and its mean; both measures in the details."""
        p = self.params
        other = None if self.context is None else self.context.reference
        if other is None:
            raise InputError("agreement compares two explainers: give the check a reference "
                             "(suite: checks[].reference: <explainer id>; Python: reference=...)")
        if other.values.shape != explanation.values.shape or not np.array_equal(
                other.target_indices, explanation.target_indices):
            raise InputError(f"agreement: {explanation.method} and {other.method} must explain "
                             f"the same rows and outputs; shapes {explanation.values.shape} and "
                             f"{other.values.shape}")
        a, b = per_slot(explanation.values), per_slot(other.values)
        if p.absolute:
            a, b = np.abs(a), np.abs(b)
        rho = spearman_rows(a, b)
        overlap = top_k_overlap(a, b, p.top_k)
        chosen = rho if p.metric == "rank_correlation" else overlap
        undefined = Undefined(a.shape[0])
        undefined.not_finite(f"the attributions of {explanation.method}", a)
        undefined.not_finite(f"the attributions of {other.method}", b)
        for side, values in ((explanation.method, a), (other.method, b)):
            undefined.add(f"the attributions of {side} are constant (no rank correlation, no "
                          "top features)", constant(values))
        return undefined.outcome(chosen.mean(axis=1), {
            "reference": other.method, "rank_correlation": mean_finite(rho),
            "top_k_overlap": mean_finite(overlap), "top_k": p.top_k, "model_calls": 0,
        })


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``stability`` and ``agreement``."""
    registry.add(Stability)
    registry.add(Agreement)
