"""Deletion and insertion curves, compared against random attributions of the same shape.

Samek et al. 2017, "Evaluating the Visualization of What a Deep Neural Network Has Learned"
(region perturbation, most- and least-relevant-first); Petsiuk et al. 2018, "RISE: Randomized
Input Sampling for Explanation of Black-box Models" (deletion and insertion metrics).

Features are grouped (single features, pixels, ``patch_size`` squares or superpixels) and ranked
by their summed attribution for each targeted output. Over ``steps`` steps the first
``ceil(s * G / steps)`` groups of the ranking are *removed* (deletion: set to the fill value) or
*inserted* (insertion: start from the fill row and restore them). The curve is the targeted
output after each step, ``s = 0 .. steps``; its area is the trapezoid over removed fractions
``s / steps`` in ``[0, 1]``.

The same curve is drawn for ``n_random`` random attributions (standard normal values of the
explanation's shape, grouped and ranked the same way), drawn from ``rng.spawn(1)[0]`` after the
fill (so a seeded random explainer is never compared with its own draws). Per row and output the
*gain* is the area by which the explanation beats random, in the direction that is better for
this curve (a MoRF deletion curve should fall faster, a MoRF insertion curve rise faster; LeRF
the reverse), divided by the range the row's curves span (explanation and random together) when
``normalize``, so each row's gain lies in ``[-1, 1]``. The gated value is the mean gain over rows
(higher is better; gate with a margin, e.g. 0.05). It is NaN, failing every gate, when a row's
gain is undefined (:mod:`xaudit.plugins.checks.undefined`): its attributions are not finite or
rank nothing (all groups score alike, so the order would be arbitrary), or, with ``normalize``,
its curves are flat (nothing removed moves the output: zero over zero). A one-sided paired test
over rows (Wilcoxon signed-rank or paired t) records its p-value; with ``alpha`` set, a gain that
is not significant at ``alpha`` is reported as ``NaN`` and so fails any gate.

The report draws the hand-off (:class:`~xaudit.handoff.Curve`): the explanation's curve and the
random rankings' mean, both averaged over rows and output slots, the random mean with a band of
±1.96 standard errors over rows, and the three areas of the details.

Cost: one batched model call per step per row block: every row of the block, every output slot,
the explanation and each random ordering go into the same call, so ``steps = 20`` on 100 rows
is 21 calls (with ``max_batch`` large enough for the block).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.data import Dataset
from xaudit.explanation import Explanation
from xaudit.handoff import Area, Band, CheckHandoff, Curve, Series
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Check, CheckOutcome, PluginParams
from xaudit.plugins._support.groups import Grouping, group_labels, group_scores, removal_order
from xaudit.plugins._support.images import ChannelAxis
from xaudit.plugins._support.removal import Removal, fill_values
from xaudit.plugins._support.statistics import mean_finite, paired_test
from xaudit.plugins.checks.cost import Cost
from xaudit.plugins.checks.explained import local_rows
from xaudit.plugins.checks.undefined import Undefined
from xaudit.registry import Registry


class CurveParams(PluginParams):
    """Parameters of ``deletion`` and ``insertion``."""

    steps: int = Field(20, ge=1, le=10_000)
    """Number of removal steps (the curve has ``steps + 1`` points)."""
    order: Literal["morf", "lerf"] = "morf"
    """Most-relevant-first or least-relevant-first."""
    removal: Removal = "baseline"
    """Fill of removed features: ``baseline`` value, background ``mean``, one random
    ``background`` row, or ``blur`` (images)."""
    baseline_value: float = 0.0
    """The fill for ``removal: baseline``."""
    blur_sigma: float = Field(3.0, gt=0)
    """Gaussian blur width in pixels for ``removal: blur``."""
    grouping: Grouping = "feature"
    """Units removed together: ``feature``, ``pixel`` (all channels), ``patch``, ``superpixel``."""
    patch_size: int = Field(4, ge=1)
    """Side of a square patch for ``grouping: patch``."""
    n_segments: int = Field(50, ge=2, le=10_000)
    """Approximate number of superpixels for ``grouping: superpixel``."""
    channel_axis: ChannelAxis = "auto"
    """Where the channels of image rows are: ``auto`` (the model's recorded layout, else the
    row shape), ``first``, ``last``, ``none`` or an axis number (``0``, ``2``, ``-1``)."""
    n_random: int = Field(1, ge=1, le=1_000)
    """Random attributions drawn per row (their curves are averaged)."""
    normalize: bool = True
    """Divide each row's gain by the range its curves span, so rows weigh alike."""
    test: Literal["wilcoxon", "t"] = "wilcoxon"
    """The one-sided paired test over rows (explanation vs random)."""
    alpha: float | None = Field(None, gt=0, lt=1)
    """When set, a gain whose p-value is not below ``alpha`` is reported as NaN (fails gates)."""
    max_batch: int = Field(8192, ge=1)
    """Largest number of rows in one model call."""


class _Curve(Check):
    """Shared implementation; subclasses set ``insertion``."""

    Params = CurveParams
    params: CurveParams
    direction = "higher"
    insertion = False

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Gain over random per row, its mean, the curves' areas and a paired test."""
        p = self.params
        cost = Cost(model)
        X = local_rows(explanation, self.name)
        n, k = explanation.n_rows, explanation.values.shape[-1]
        labels = group_labels(X, p.grouping, p.patch_size, p.n_segments, p.channel_axis,
                              model.input_spec)
        fill = fill_values(X, p.removal, rng, background=data.background,
                           baseline_value=p.baseline_value, blur_sigma=p.blur_sigma,
                           channel_axis=p.channel_axis, spec=model.input_spec)
        random_values = rng.spawn(1)[0].standard_normal((p.n_random, *explanation.values.shape))
        morf = p.order == "morf"
        scores = group_scores(explanation.values, labels)[0]  # (n, G, k)
        undefined = Undefined(n)
        undefined.not_finite("the attributions", explanation.values)
        undefined.add("the attributions rank no feature group above another (a constant map)",
                      _tied(scores))
        orders = [removal_order(scores, morf)]
        orders += [removal_order(group_scores(r, labels)[0], morf) for r in random_values]
        counts = labels.reshape(n, -1).max(axis=1) + 1
        ranks = np.stack(orders)  # (1 + R, n, G, k)
        curves = np.empty((1 + p.n_random, n, k, p.steps + 1))
        per_row = (1 + p.n_random) * k
        for block in row_blocks(n, p.max_batch, per_row):
            self._block(model, explanation, X, fill, labels, counts, ranks, curves, block)
        areas = np.asarray(np.trapezoid(curves, dx=1.0 / p.steps, axis=-1))  # (1 + R, n, k)
        ours, rand = areas[0], areas[1:].mean(axis=0)
        sign = 1.0 if self.insertion == morf else -1.0  # higher area better?
        gain = sign * (ours - rand)
        scale = curves.max(axis=(0, -1)) - curves.min(axis=(0, -1))  # (n, k)
        if p.normalize:
            flat = scale <= 1e-12
            undefined.add("the curves are flat (no removal changes the output), so the gain "
                          "over their range is 0/0", flat)
            gain = gain / np.where(flat, 1.0, scale)
        outcome = undefined.outcome(gain.mean(axis=1))
        row_gain = undefined.mask(gain.mean(axis=1))
        statistic, p_value = paired_test(row_gain, p.test)
        value = outcome.value
        significant = p.alpha is None or p_value < p.alpha
        start = curves[0, :, :, 0]  # f(x) for deletion, f(fill) for insertion
        measured = {"area": mean_finite(ours), "random_area": mean_finite(rand),
                    # area between the curve and its starting value: AOC of a deletion curve
                    # (Samek's AOPC up to the step weighting), AUC above the start for insertion
                    "area_from_start": mean_finite((ours - start)
                                                   * (1.0 if self.insertion else -1.0))}
        return CheckOutcome(
            value=value if significant else float("nan"),
            values=row_gain,
            details={
                "mean_gain": value, "p_value": p_value, "test": p.test, "statistic": statistic,
                "alpha": p.alpha,
                "significant": None if p.alpha is None else bool(p_value < p.alpha),
                **measured, "n_groups": int(counts.max()), "rows": n, **cost.details(),
                **outcome.details,
            },
            handoff=CheckHandoff(curves=(self._curve(curves, measured),)),
        )

    def _curve(self, curves: np.ndarray, measured: dict[str, float]) -> Curve:
        """The mean curve over rows and output slots, against the random rankings' mean with
        a band of ±1.96 standard errors over rows, and the areas of the details."""
        p = self.params
        verb = "restored" if self.insertion else "removed"
        ranked = "least" if p.order == "lerf" else "most"
        random_rows = curves[1:].mean(axis=(0, 2))  # (n, steps + 1): orderings, slots averaged
        random_mean = random_rows.mean(axis=0)
        n = random_rows.shape[0]
        spread = 1.96 * random_rows.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else None
        band = None if spread is None else Band(random_mean - spread, random_mean + spread,
                                                "random rankings: mean ± 1.96 s.e. over rows")
        return Curve(
            title=f"{'Insertion' if self.insertion else 'Deletion'} curve, {ranked} relevant "
                  f"first, against random rankings",
            x_label=f"share of feature groups {verb}",
            y_label="mean targeted output",
            x=np.linspace(0.0, 1.0, p.steps + 1),
            series=(Series("explanation's ranking", curves[0].mean(axis=(0, 1))),
                    Series(f"random rankings ({p.n_random} per row), mean", random_mean, band)),
            areas=(Area("area under the explanation's curve", measured["area"]),
                   Area("area under the random curves", measured["random_area"]),
                   Area("area between the explanation's curve and its start",
                        measured["area_from_start"])),
        )

    def _block(self, model: Model, explanation: Explanation, X: np.ndarray, fill: np.ndarray,
               labels: np.ndarray, counts: np.ndarray, ranks: np.ndarray,
               curves: np.ndarray, block: slice) -> None:
        """One model call per step for the rows of ``block``, all orderings and slots."""
        p = self.params
        r_count, _, _, k = ranks.shape
        x, f = X[block], fill[block]
        b = x.shape[0]
        lab = labels[block].reshape(b, -1)
        rk = ranks[:, block]  # (R1, b, G, k)
        # rank of every feature's group: (R1, b, k, d)
        feature_rank = np.take_along_axis(np.moveaxis(rk, -1, 2), lab[None, :, None, :], axis=-1)
        shape = x.shape[1:]
        idx = explanation.target_indices[block]
        for s in range(p.steps + 1):
            cutoff = np.array([math.ceil(s * int(c) / p.steps) for c in counts[block]])
            chosen = feature_rank < cutoff[None, :, None, None]  # (R1, b, k, d)
            if self.insertion:
                chosen = ~chosen
            mask = chosen.reshape(r_count, b, k, *shape)
            rows = np.where(mask, f[None, :, None], x[None, :, None])
            out = model.predict(rows.reshape(-1, *shape)).reshape(r_count, b, k, -1)
            curves[:, block, :, s] = np.take_along_axis(out, idx[None, :, :, None], axis=-1)[..., 0]


def _tied(scores: np.ndarray) -> np.ndarray:
    """``(n, k)``: where a row's group scores (NaN-padded beyond its groups) are all equal."""
    missing = np.isnan(scores)
    high = np.where(missing, -np.inf, scores).max(axis=1)
    return np.asarray(high == np.where(missing, np.inf, scores).min(axis=1))


class Deletion(_Curve):
    """Deletion curve (remove the highest-ranked features first) against random rankings."""

    name = "deletion"
    summary = "Deletion curve: removing top-ranked features should change the output fastest."
    description = (
        "Feature groups (single features, pixels, patches or superpixels) are ranked by their "
        "summed attribution and removed step by step, most relevant first by default, by setting "
        "them to a fill value; the curve is the explained output after each step against the "
        "share removed. The same curve is computed for random rankings. Per row, the gain is the "
        "area by which the explanation's curve falls faster than the random ones (slower, when "
        "least relevant first), divided by the range the row's curves span; the gated value is "
        "the mean gain over rows (higher is better), with a one-sided paired test over rows.")
    paper = "Samek et al. 2017 (region perturbation); Petsiuk et al. 2018 (RISE deletion)"
    insertion = False


class Insertion(_Curve):
    """Insertion curve (restore the highest-ranked features first) against random rankings."""

    name = "insertion"
    summary = "Insertion curve: restoring top-ranked features should recover the output fastest."
    description = (
        "Starting from the row with every feature set to a fill value, feature groups (single "
        "features, pixels, patches or superpixels) are restored step by step in the order of "
        "their summed attribution, most relevant first by default; the curve is the explained "
        "output after each step against the share restored. The same curve is computed for random "
        "rankings. Per row, the gain is the area by which the explanation's curve rises faster "
        "than the random ones (slower, when least relevant first), divided by the range the row's "
        "curves span; the gated value is the mean gain over rows (higher is better), with a "
        "one-sided paired test over rows.")
    paper = "Petsiuk et al. 2018 (RISE insertion); Samek et al. 2017"
    insertion = True


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``deletion`` and ``insertion``."""
    registry.add(Deletion)
    registry.add(Insertion)
