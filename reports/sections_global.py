"""Section 6 (global explanations) and section 10 (stability and uncertainty)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..explanation import Explanation
from ..feature_shares import is_attribution, is_tabular
from ..results import AuditResult
from ..seeding import derive_seed
from ..streaming import abs_mean_se, sample_rows, signed_mean
from . import figures
from .analysis import (
    bootstrap_importance,
    explanations,
    is_global,
    mean_abs,
    numeric_column,
    rank_top,
    ranks_of,
    spearman,
)
from .section_base import ContextualSection

MAX_SLOTS = 4
DEPENDENCE_PLOTS = 3
PDP_PLOTS = 6
BOOTSTRAP = 200
BEESWARM_ROWS = 1000
"""Rows drawn in the beeswarm and dependence plots (all rows up to this many; a fixed-seed
sample beyond, :func:`xaudit.streaming.sample_rows`)."""


def _slots(e: Explanation) -> list[int]:
    return list(range(min(e.values.shape[-1], MAX_SLOTS)))


def _unit(e: Explanation, slot: int) -> str:
    return f"attribution to {e.output_names[slot]} (output units)"


class GlobalSection(ContextualSection):
    """Which features matter overall: bars, beeswarm, dependence, PDP/ICE, permutation."""

    name = "global"
    title = "Global explanations"
    order = 60
    template = "section_global.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Per tabular explanation and output: the summaries its fields support."""
        k = self.render.options.top_k
        blocks = []
        for key, e in explanations(result):
            if not is_tabular(e):
                continue
            if is_global(e):
                blocks.append(_repeats_block(key, e, k))
                continue
            for slot in _slots(e) if is_attribution(e) else []:
                blocks.append(_attribution_block(key, e, slot, k))
            pdp = _pdp_block(key, e)
            if pdp is not None:
                blocks.append(pdp)
        if not blocks:
            reason = ("every explainer crashed" if result.explainer_errors and
                      not result.explanations else "no explanation has one attribution per "
                      "named feature (see section Images and text)")
            return self.not_applicable(reason)
        skipped = sum(max(0, e.values.shape[-1] - MAX_SLOTS)
                      for e in result.explanations.values() if is_tabular(e))
        return {"blocks": blocks, "skipped_slots": skipped, "top_k": k}


def _attribution_block(key: str, e: Explanation, slot: int, k: int) -> dict[str, Any]:
    scores, se = mean_abs(e, slot)
    ranked = rank_top(e.feature_names, scores, se, k)
    labels = list(ranked.names)
    values, errors = list(ranked.scores), list(ranked.errors if ranked.errors is not None else [])
    colours = [figures.MAGNITUDE] * len(labels)
    if ranked.other_count:
        labels.append(f"other {ranked.other_count} features (sum)")
        values.append(ranked.other_score)
        errors.append(ranked.other_error or 0.0)
        colours.append(figures.NEUTRAL)
    n = e.n_rows
    bars = figures.bar_chart(labels, np.asarray(values), np.asarray(errors) if n > 1 else None,
                             f"mean |{_unit(e, slot)}|", colours)
    means = signed_mean(e.values, slot)
    total = float(scores.sum()) or 1.0
    table = [{"rank": r + 1, "name": e.feature_names[i], "mean_abs": float(scores[i]),
              "se": float(se[i]), "mean": float(means[i]),
              "share": float(scores[i]) / total}
             for r, i in enumerate(ranked.indices)]
    block: dict[str, Any] = {
        "kind": "attribution", "key": key, "method": e.method, "output": e.output_names[slot],
        "rows": n, "bars": bars, "table": table, "other_count": ranked.other_count,
        "other_share": ranked.other_score / total, "beeswarm": None, "dependence": [],
        "sampled": min(n, BEESWARM_ROWS),
    }
    if n >= 2:
        top = ranked.indices
        drawn = sample_rows(n, BEESWARM_ROWS)
        signed = np.asarray(e.values[drawn][..., slot]).reshape(drawn.size, -1)
        colours_matrix = np.full((drawn.size, top.size), np.nan)
        for c, i in enumerate(top):
            column = numeric_column(e.inputs[:, i])
            finite = None if column is None else column[np.isfinite(column)]
            if column is not None and finite is not None and finite.size \
                    and np.ptp(finite) > 0:
                low, high = float(finite.min()), float(finite.max())
                colours_matrix[:, c] = (column[drawn] - low) / (high - low)
        block["beeswarm"] = figures.beeswarm([e.feature_names[i] for i in top], signed[:, top],
                                             colours_matrix, _unit(e, slot))
        for i in top[:DEPENDENCE_PLOTS]:
            column = numeric_column(e.inputs[:, i])
            if column is not None:
                block["dependence"].append(figures.scatter(
                    column[drawn], signed[:, i], e.feature_names[i], "attribution"))
    return block


def _repeats_block(key: str, e: Explanation, k: int) -> dict[str, Any]:
    """A global measurement repeated ``n`` times (e.g. permutation importance)."""
    values = e.values[..., 0].reshape(e.n_rows, -1)
    mean = values.mean(axis=0)
    spread = values.std(axis=0, ddof=1) if e.n_rows > 1 else None
    ranked = rank_top(e.feature_names, mean, spread, k)
    labels, bars, errs = list(ranked.names), list(ranked.scores), ranked.errors
    if ranked.other_count:
        labels.append(f"other {ranked.other_count} features (sum)")
        bars.append(ranked.other_score)
    err_list = None if errs is None else [*errs, *([0.0] if ranked.other_count else [])]
    colours = [figures.POSITIVE if v >= 0 else figures.NEGATIVE for v in bars]
    chart = figures.bar_chart(labels, np.asarray(bars),
                              None if err_list is None else np.asarray(err_list),
                              f"importance for {e.output_names[0]}", colours)
    return {"kind": "repeats", "key": key, "method": e.method, "output": e.output_names[0],
            "rows": e.n_rows, "bars": chart}


def _pdp_block(key: str, e: Explanation) -> dict[str, Any] | None:
    """Partial dependence and ICE curves of the computed features, flattest last
    (``handoff.partial_dependence``)."""
    curves = e.handoff.partial_dependence
    if curves is None:
        return None
    grid, pdp, ice = curves.grid, curves.average, curves.individual
    d = grid.shape[0]
    spread = np.where(np.isin(np.arange(d), curves.features), np.ptp(pdp[..., 0], axis=1),
                      -np.inf)
    plots = []
    for i in np.argsort(-spread, kind="stable")[:min(PDP_PLOTS, int(np.isfinite(spread).sum()))]:
        faint = None if ice is None else ice[:, i, :, 0]
        plots.append(figures.lines(grid[i], [pdp[i, :, 0]], ["partial dependence"],
                                   e.feature_names[i], f"{e.output_names[0]} (output units)",
                                   faint=faint))
    return {"kind": "pdp", "key": key, "method": e.method, "output": e.output_names[0],
            "plots": plots, "ice": ice is not None, "surfaces": _pdp_surfaces(e)}


def _pdp_surfaces(e: Explanation) -> list[Any]:
    """Two-way partial dependence surfaces (``handoff.partial_dependence.pairs``)."""
    curves = e.handoff.partial_dependence
    two_way = None if curves is None else curves.pairs
    if two_way is None:
        return []
    figures_ = []
    for (a, b), grid, z in zip(two_way.pairs, two_way.grids, two_way.average, strict=True):
        ga, gb = grid[0][~np.isnan(grid[0])], grid[1][~np.isnan(grid[1])]
        figures_.append(figures.surface(ga, gb, z[:ga.size, :gb.size, 0], e.feature_names[a],
                                        e.feature_names[b], f"{e.output_names[0]}"))
    return figures_[:PDP_PLOTS]


class StabilitySection(ContextualSection):
    """How much the global ranking would move with other rows or another method."""

    name = "stability"
    title = "Stability and uncertainty"
    order = 100
    template = "section_stability.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Bootstrap intervals, rank stability, the methods' own errors, method agreement."""
        k = self.render.options.top_k
        seed = int(result.suite.get("seed", 0))
        blocks = []
        usable = {key: e for key, e in explanations(result)
                  if is_tabular(e) and is_attribution(e) and e.n_rows >= 2}
        for key, e in usable.items():
            rng = np.random.default_rng(derive_seed(seed, "report", "bootstrap", key))
            blocks.append(_stability_block(key, e, k, rng))
        agreement = []
        keys = list(usable)
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                ea, eb = usable[keys[a]], usable[keys[b]]
                if ea.feature_names == eb.feature_names:
                    agreement.append({"a": keys[a], "b": keys[b], "rho": spearman(
                        mean_abs(ea, 0)[0], mean_abs(eb, 0)[0])})
        if not blocks:
            return self.not_applicable("no tabular explanation of two or more rows to resample")
        return {"blocks": blocks, "agreement": agreement, "n_boot": BOOTSTRAP, "top_k": k}


def _stability_block(key: str, e: Explanation, k: int,
                     rng: np.random.Generator) -> dict[str, Any]:
    scores, _ = mean_abs(e, 0)
    boot = bootstrap_importance(e, 0, BOOTSTRAP, rng)
    ranks = ranks_of(boot)
    ranked = rank_top(e.feature_names, scores, None, k)
    own = None
    if e.std_errors is not None:
        own = abs_mean_se(e.std_errors, 0)[0]
    rows = []
    for r, i in enumerate(ranked.indices):
        low, high = np.quantile(boot[:, i], [0.025, 0.975])
        rank_low, rank_high = np.quantile(ranks[:, i], [0.05, 0.95])
        rows.append({
            "rank": r + 1, "name": e.feature_names[i], "mean_abs": float(scores[i]),
            "ci_low": float(low), "ci_high": float(high),
            "own_se": None if own is None else float(own[i]),
            "median_rank": float(np.median(ranks[:, i])),
            "rank_low": int(rank_low), "rank_high": int(rank_high),
            "in_top_k": float(np.mean(ranks[:, i] <= k)),
        })
    top_set = set(ranked.indices.tolist())
    same_top = float(np.mean([set(np.argsort(-b, kind="stable")[:k].tolist()) == top_set
                              for b in boot]))
    return {"key": key, "method": e.method, "output": e.output_names[0], "rows": rows,
            "n": e.n_rows, "same_top": same_top, "has_own": own is not None,
            "other_count": ranked.other_count}
