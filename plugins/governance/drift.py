"""Drift checks: has the model's reasoning moved away from the approved run's?

Each compares the checked explanation with the approved run's explanation by the same
explainer (:class:`~xaudit.plugin.BaselineCheck`: a suite evaluates them when the run has a
baseline, ``xaudit diff`` runs them all on two saved runs). Both are put on the union of their
features (a feature absent from a run contributes nothing there; see
:mod:`xaudit.plugins.governance.attribution`), on the same explained rows when both runs
explained the same data. Every statistic is computed per output slot and the worst slot is
gated. With ``I_j`` the mean absolute attribution of feature ``j`` and ``s_j = I_j / sum I``
its share, before (approved run) and after (this run):

- ``drift.rank_correlation``: Spearman's rank correlation (Pearson's correlation of the
  average ranks; Spearman 1904) or Kendall's tau-b (Kendall 1945) between ``I`` before and
  after. Higher is better; NaN (a run that attributes nothing, or the same to every feature)
  fails any gate, with the reason in ``details["undefined"]``.
- ``drift.top_k``: the number of features new to or missing from the top ``k`` (the ``k``
  features of largest ``I``, ties by feature order, features with ``I_j = 0`` never in it),
  that is the size of the symmetric difference of the two top-``k`` sets; their Jaccard index
  is in the details. Lower is better.
- ``drift.share``: ``max_j |s_j(after) - s_j(before)|``, the largest change in a feature's share
  of the total attribution. Lower is better.
- ``drift.distribution``: per feature, the Wasserstein-1 distance between the two runs'
  attribution distributions over the explained rows (the area between their distribution
  functions; Vallender 1973), divided by the approved run's total ``sum I`` (``scale:
  total``, the default) so that the value is unit-free; the largest over features. Lower is
  better. Comparing distributions of attributions to detect a change of the model's reasoning
  follows Mougan et al. 2023 (explanation shift).
- ``drift.sign_flips``: the number of features whose mean signed attribution changed sign,
  among those holding at least ``min_share`` of the attribution in both runs. Lower is better.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from xaudit.explanation import Explanation
from xaudit.handoff import CheckHandoff
from xaudit.hookspecs import hookimpl
from xaudit.plugin import Baseline, BaselineCheck, Check, CheckOutcome, PluginParams
from xaudit.plugins._support.statistics import kendall_tau, spearman_rows, wasserstein_1
from xaudit.plugins.governance.attribution import (
    Aligned,
    align,
    importance,
    percent,
    ranks,
    shares,
    top_set,
)
from xaudit.registry import Registry


def _outcome(value: float, details: dict[str, object], *statements: str) -> CheckOutcome:
    return CheckOutcome(float(value), details=details,
                        handoff=CheckHandoff(statements=tuple(statements)))


def _rows_note(aligned: Aligned) -> str:
    n_before, n_after = aligned.before.shape[1], aligned.after.shape[1]
    if aligned.paired:
        return f"over the same {n_after} explained rows"
    return f"over {n_before} and {n_after} explained rows of different data"


SHOWN = 3
"""Features a statement describes one by one; the rest are listed by name."""


class RankCorrelationParams(PluginParams):
    """Parameters of ``drift.rank_correlation``."""

    method: Literal["spearman", "kendall"] = "spearman"
    """Spearman's rho (average ranks for ties) or Kendall's tau-b."""


class RankCorrelation(BaselineCheck):
    """Rank correlation of global importance with the approved run's."""

    name = "drift.rank_correlation"
    summary = "Rank correlation of mean |attribution| per feature with the approved run's."
    description = (
        "The features are ranked by their mean absolute attribution in the approved run and in "
        "this run (a feature absent from a run counts as zero there), and the two rankings are "
        "compared by Spearman's rank correlation or Kendall's tau-b. 1 is the same order; "
        "higher is better.")
    paper = "Spearman 1904; Kendall 1945 (tau-b)"
    Params = RankCorrelationParams
    params: RankCorrelationParams
    direction = "higher"

    def compare(self, explanation: Explanation, baseline: Baseline) -> CheckOutcome:
        """The correlation of the worst output slot; every feature's rank in the details."""
        aligned = align(explanation, baseline, self.name)
        before, after = importance(aligned.before), importance(aligned.after)
        if self.params.method == "spearman":
            rho = spearman_rows(before, after)
        else:
            rho = np.array([kendall_tau(b, a) for b, a in zip(before, after, strict=True)])
        slot = aligned.slot(rho, "min")
        then, now = ranks(before[slot]), ranks(after[slot])
        moved = int(np.lexsort((np.arange(now.size), -np.abs(now - then)))[0])
        feature = aligned.features[moved]
        statements = [f"The feature ranking{aligned.about(slot)} correlates {rho[slot]:.2f} with "
                      f"the approved run's ({self.params.method.title()}; 1 is the same "
                      "order)."]
        if now[moved] != then[moved]:
            origin = ("absent in the approved run" if feature in aligned.new
                      else f"rank {then[moved]} in the approved run")
            statements.append(f"{feature} moved furthest: rank {now[moved]} now, {origin}.")
        details: dict[str, object] = {
            "method": self.params.method, "output": aligned.outputs[slot],
            "per_output": dict(zip(aligned.outputs, rho.tolist(), strict=True)),
            "ranks_before": dict(zip(aligned.features, then.tolist(), strict=True)),
            "ranks_after": dict(zip(aligned.features, now.tolist(), strict=True)),
            "paired_rows": aligned.paired}
        if np.isnan(rho[slot]):
            tied = [run for run, scores in (("the approved run", before[slot]),
                                            ("this run", after[slot]))
                    if np.ptp(scores) == 0]
            details["undefined"] = (f"{' and '.join(tied) or 'a run'} gives every feature the "
                                    "same mean |attribution|, so there is no ranking to "
                                    "correlate")
        return _outcome(rho[slot], details, *statements)


class TopKParams(PluginParams):
    """Parameters of ``drift.top_k``."""

    k: int = Field(5, ge=1)
    """Size of the top set of features by mean absolute attribution."""


class TopK(BaselineCheck):
    """Features new to or missing from the top k of global importance."""

    name = "drift.top_k"
    summary = "How many features entered or left the top k by mean |attribution|."
    description = (
        "The top features by mean absolute attribution (the k largest, never a feature with "
        "no attribution) are compared with the approved run's: the value is the number of "
        "features new to or missing from the top k. 0 is the same set; lower is better.")
    paper = "Krishna et al. 2022 (feature agreement); Jaccard 1912"
    Params = TopKParams
    params: TopKParams
    direction = "lower"

    def compare(self, explanation: Explanation, baseline: Baseline) -> CheckOutcome:
        """The count of the worst output slot; both top sets, named, in the details."""
        aligned = align(explanation, baseline, self.name)
        before, after = importance(aligned.before), importance(aligned.after)
        k = self.params.k
        tops = [(top_set(b, k), top_set(a, k)) for b, a in zip(before, after, strict=True)]
        changed = np.array([len(set(b) ^ set(a)) for b, a in tops], dtype=np.float64)
        slot = aligned.slot(changed, "max")
        then, now = tops[slot]
        names = aligned.features
        entered = [names[j] for j in now if j not in then]
        left = [names[j] for j in then if j not in now]
        union = set(then) | set(now)
        statements = [f"The top {k} features{aligned.about(slot)} are the same as in the "
                      "approved run."] if not entered and not left else []
        for feature in entered:
            note = " (it was absent in the approved run)" if feature in aligned.new else ""
            statements.append(f"{feature} entered the top {k} features{aligned.about(slot)}"
                              f"{note}.")
        statements += [f"{feature} left the top {k} features{aligned.about(slot)}."
                       for feature in left]
        return _outcome(changed[slot], {
            "k": k, "output": aligned.outputs[slot],
            "top_before": [names[j] for j in then], "top_after": [names[j] for j in now],
            "entered": entered, "left": left,
            "jaccard": len(set(then) & set(now)) / len(union) if union else 1.0,
            "paired_rows": aligned.paired}, *statements)


class Share(BaselineCheck):
    """Largest change in a feature's share of the total attribution."""

    name = "drift.share"
    summary = "Largest change in one feature's share of the total attribution."
    description = (
        "Each feature's share of the total mean absolute attribution is compared with its "
        "share in the approved run (a feature absent from a run holds none there); the value "
        "is the largest absolute change of a share, between 0 and 1. Lower is better.")
    paper = "Lundberg et al. 2020 (global importance as mean |SHAP value|)"
    direction = "lower"

    def compare(self, explanation: Explanation, baseline: Baseline) -> CheckOutcome:
        """The largest change of the worst output slot, naming the feature; all shares in the
        details."""
        aligned = align(explanation, baseline, self.name)
        before, after = shares(aligned.before), shares(aligned.after)
        change = np.abs(after - before)
        slot = aligned.slot(change.max(axis=1), "max")
        j = int(np.lexsort((np.arange(change.shape[1]), -change[slot]))[0])
        feature, then, now = aligned.features[j], float(before[slot, j]), float(after[slot, j])
        where = aligned.about(slot)
        if feature in aligned.new:
            statement = (f"{feature} now holds {percent(now)} of attribution{where}; it was "
                         "absent in the approved run.")
        elif feature in aligned.gone:
            statement = (f"{feature} is absent now; it held {percent(then)} of attribution"
                         f"{where} in the approved run.")
        else:
            statement = (f"{feature} now holds {percent(now)} of attribution{where} "
                         f"({percent(then)} in the approved run).")
        return _outcome(change[slot, j], {
            "feature": feature, "share_before": then, "share_after": now,
            "output": aligned.outputs[slot],
            "shares_before": dict(zip(aligned.features, before[slot].tolist(), strict=True)),
            "shares_after": dict(zip(aligned.features, after[slot].tolist(), strict=True)),
            "paired_rows": aligned.paired}, statement)


class DistributionParams(PluginParams):
    """Parameters of ``drift.distribution``."""

    scale: Literal["total", "none"] = "total"
    """``total``: divide by the approved run's total mean absolute attribution (unit-free);
    ``none``: the distance in the attributions' own units (the model's output units)."""


class Distribution(BaselineCheck):
    """Largest per-feature Wasserstein-1 distance between the runs' attribution distributions."""

    name = "drift.distribution"
    summary = "Largest per-feature Wasserstein-1 distance between the runs' attributions."
    description = (
        "For each feature, the distribution of its attributions over the explained rows is "
        "compared with the approved run's by the Wasserstein-1 (earth mover's) distance, on the "
        "same rows when both runs explained the same data; the value is the largest distance, "
        "as a share of the approved run's total mean absolute attribution. Lower is better.")
    paper = "Vallender 1973 (Wasserstein-1 on the line); Mougan et al. 2023 (explanation shift)"
    Params = DistributionParams
    params: DistributionParams
    direction = "lower"

    def compare(self, explanation: Explanation, baseline: Baseline) -> CheckOutcome:
        """The largest scaled distance over features and output slots, naming the feature;
        every feature's distance in the details."""
        aligned = align(explanation, baseline, self.name)
        k, d = aligned.before.shape[0], aligned.before.shape[2]
        raw = np.array([[wasserstein_1(aligned.before[s, :, j], aligned.after[s, :, j])
                         for j in range(d)] for s in range(k)])
        total = importance(aligned.before).sum(axis=1)
        scale = np.where(total > 0, total, 1.0) if self.params.scale == "total" else np.ones(k)
        scaled = raw / scale[:, None]
        slot = aligned.slot(scaled.max(axis=1), "max")
        j = int(np.lexsort((np.arange(d), -scaled[slot]))[0])
        feature = aligned.features[j]
        unit = (f" ({percent(scaled[slot, j])} of the approved run's total attribution)"
                if self.params.scale == "total" else "")
        statement = (f"{feature}'s attributions moved furthest{aligned.about(slot)}: "
                     f"Wasserstein-1 distance {raw[slot, j]:.3g}{unit}, {_rows_note(aligned)}.")
        details: dict[str, object] = {
            "feature": feature, "output": aligned.outputs[slot], "scale": self.params.scale,
            "scale_value": float(scale[slot]),
            "distances": dict(zip(aligned.features, raw[slot].tolist(), strict=True)),
            "paired_rows": aligned.paired, "rows_before": int(aligned.before.shape[1]),
            "rows_after": int(aligned.after.shape[1])}
        if aligned.paired:
            details["mean_abs_difference"] = dict(zip(aligned.features, np.abs(
                aligned.after[slot] - aligned.before[slot]).mean(axis=0).tolist(), strict=True))
        return _outcome(scaled[slot, j], details, statement)


class SignFlipsParams(PluginParams):
    """Parameters of ``drift.sign_flips``."""

    min_share: float = Field(0.01, ge=0.0, lt=1.0)
    """Only features holding at least this share of the attribution in both runs count."""


class SignFlips(BaselineCheck):
    """Features whose mean attribution changed sign since the approved run."""

    name = "drift.sign_flips"
    summary = "How many features now push the output the other way on average."
    description = (
        "The mean signed attribution of each feature that holds a noticeable share of the "
        "attribution in both runs is compared with the approved run's; the value is the number "
        "of features whose mean changed sign (a feature that raised the output on average now "
        "lowers it, or the reverse). Lower is better.")
    Params = SignFlipsParams
    params: SignFlipsParams
    direction = "lower"

    def compare(self, explanation: Explanation, baseline: Baseline) -> CheckOutcome:
        """The count of the worst output slot, naming the features; means in the details."""
        aligned = align(explanation, baseline, self.name)
        floor = self.params.min_share
        mean_before, mean_after = aligned.before.mean(axis=1), aligned.after.mean(axis=1)
        counted = (shares(aligned.before) >= floor) & (shares(aligned.after) >= floor)
        flipped = counted & (np.sign(mean_before) * np.sign(mean_after) < 0)
        slot = aligned.slot(flipped.sum(axis=1).astype(np.float64), "max")
        names = [aligned.features[j] for j in np.flatnonzero(flipped[slot])]
        statements = [
            f"{name} now {'raises' if mean_after[slot, j] > 0 else 'lowers'} the output on "
            f"average{aligned.about(slot)} (mean attribution {mean_after[slot, j]:+.3g}; "
            f"{mean_before[slot, j]:+.3g} in the approved run)."
            for name, j in ((n, aligned.features.index(n)) for n in names[:SHOWN])]
        if len(names) > SHOWN:
            statements.append(f"{len(names) - SHOWN} more changed sign: "
                              f"{', '.join(names[SHOWN:])}.")
        if not names:
            statements = [f"No feature holding at least {percent(floor)} of attribution "
                          f"changed the sign of its mean attribution{aligned.about(slot)}."]
        return _outcome(float(len(names)), {
            "flipped": names, "min_share": floor, "output": aligned.outputs[slot],
            "mean_before": dict(zip(aligned.features, mean_before[slot].tolist(), strict=True)),
            "mean_after": dict(zip(aligned.features, mean_after[slot].tolist(), strict=True)),
            "paired_rows": aligned.paired}, *statements)


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register the five drift checks."""
    for cls in (RankCorrelation, TopK, Share, Distribution, SignFlips):
        registry.add(cls)
