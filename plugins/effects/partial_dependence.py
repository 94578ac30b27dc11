"""Partial dependence (``pdp``) and individual conditional expectation (``ice``) curves.

For feature ``j`` and value ``v``, the ICE curve of row ``x`` is ``f(x with x_j := v)`` and the
partial dependence is its average over reference rows ``b``:
``PD_j(v) = E_b[f(b with b_j := v)]`` (Friedman, 2001, "Greedy Function Approximation: A Gradient
Boosting Machine", Annals of Statistics 29(5); Goldstein, Kapelner, Bleich and Pitkin, 2015,
"Peeking Inside the Black Box: Visualizing Statistical Learning with Plots of Individual
Conditional Expectation", JCGS 24(1), which also defines the centred c-ICE curves). The reference
rows are the background when given, else the explained rows.

Grids follow scikit-learn's rule: a feature's unique values when it is categorical or has fewer
than ``grid_resolution`` of them, else ``grid_resolution`` evenly spaced points between the
``percentiles`` of the reference rows (quantiles as ``scipy.stats.mstats.mquantiles``).

Curves go to ``handoff.partial_dependence`` (:class:`~xaudit.handoff.PartialDependence`):
``grid`` ``(d, g)`` (shorter grids padded with NaN), ``average`` ``(d, g, k)``, for ``ice`` also
``individual`` ``(n, d, g, k)``, for pairs ``pairs.grids`` ``(p, 2, g2)`` and ``pairs.average``
``(p, g2, g2, k)``; ``handoff.outputs`` ``(n, k)`` holds the model outputs and ``handoff.kind``
is ``"effect"``. Each row's ``values`` put one number per feature on the one result schema:

* ``pdp``: the centred partial dependence at the row's own value,
  ``PD_j(x_j) - E_b[PD_j(b_j)]``;
* ``ice``: the row's ICE curve at its own value minus its average over the reference values,
  ``f(x) - E_b[f(x with x_j := b_j)]`` (which equals ``ablation`` with a background).

Both are zero for a feature the model ignores and, for a model additive in its features, equal
its exact (interventional) Shapley values. ``pdp`` takes scikit-learn's fast tree path
(``algorithm="recursion"``, which averages over the training data through the trees' node weights)
for the scikit-learn trees where it equals the model's output, else evaluates the model.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff, PairDependence
from xaudit.handoff import PartialDependence as DependenceCurves
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.features import resolve_features
from xaudit.plugins.effects.grid import (
    Evaluator,
    column,
    feature_grid,
    padded,
    recursion_estimator,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

Feature = str | int


class CurveParams(PluginParams):
    """Parameters shared by ``pdp`` and ``ice``."""

    features: list[Feature] | None = None
    """Features (names or indices) to compute curves for; default all. The others get zero
    values and NaN curves."""
    grid_resolution: int = Field(100, gt=1, le=10_000)
    """Points per grid (fewer for a feature with fewer unique values)."""
    percentiles: tuple[float, float] = (0.05, 0.95)
    """Lower and upper percentiles (in [0, 1]) of the reference rows bounding each grid."""
    categorical_features: list[Feature] = Field(default_factory=list)
    """Features whose grid is their unique values (categories), whatever their number."""
    max_batch: int = Field(65_536, gt=0)
    """Largest number of rows in one model call."""


class PDPParams(CurveParams):
    """Parameters of ``pdp``."""

    pairs: list[tuple[Feature, Feature]] = Field(default_factory=list)
    """Feature pairs for 2-D partial dependence (``handoff.partial_dependence.pairs``)."""
    pair_grid_resolution: int = Field(20, gt=1, le=1_000)
    """Points per feature in a 2-D grid (the cost grows with its square)."""
    algorithm: Literal["auto", "brute", "recursion"] = "auto"
    """``recursion``: scikit-learn's tree traversal (DecisionTreeRegressor,
    RandomForestRegressor, HistGradientBoosting regressors, and HistGradientBoosting
    classifiers adapted with ``output: decision_function``), which averages over the training
    data instead of the reference rows; ``brute``: evaluate the model; ``auto``: recursion
    where available."""


class ICEParams(CurveParams):
    """Parameters of ``ice``."""

    centered: bool = False
    """Centred ICE (c-ICE): subtract each curve's value at the first grid point."""


class _Curves(Explainer):
    limitations = (
        "Setting a feature independently of the others extrapolates where features are "
        "correlated: curves may rest on rows the model never saw.",
        "A flat partial dependence can hide opposite effects in subgroups; ICE curves show "
        "them.",
    )
    paper = ("Friedman 2001, Greedy Function Approximation: A Gradient Boosting Machine; "
             "Goldstein et al. 2015, Peeking Inside the Black Box (ICE)")

    def _setup(self, model: Model, X: np.ndarray, background: np.ndarray | None
               ) -> tuple[np.ndarray, list[int], list[np.ndarray], set[int]]:
        params: Any = self.params
        if X.ndim != 2:
            raise InputError(f"{self.name} needs tabular rows (n, d), got shape {X.shape}")
        if not 0 <= params.percentiles[0] < params.percentiles[1] <= 1:
            raise InputError(f"{self.name}: percentiles must satisfy 0 <= low < high <= 1, "
                             f"got {params.percentiles}")
        reference = X if background is None else np.asarray(background)
        names = model.input_spec.feature_names
        d = X.shape[1]
        chosen = resolve_features(params.features, names, d) if params.features else list(
            range(d))
        categorical = set(resolve_features(params.categorical_features, names, d))
        grids = [feature_grid(column(reference, j), params.grid_resolution, params.percentiles,
                              j in categorical, j) if j in chosen else np.empty(0)
                 for j in range(d)]
        return reference, chosen, grids, categorical


class PartialDependence(_Curves):
    """Average model output as one feature (or a pair) is set to each grid value."""

    name = "pdp"
    summary = "Partial dependence curves (1-D and 2-D), with the fast tree path."
    description = (
        "For feature j and grid value v, the partial dependence is the mean model output over the "
        "reference rows (the background, else the explained rows) with x_j set to v, PD_j(v) = "
        "E_b[f(b with b_j := v)]; pairs of features give two-way surfaces. A row's value for j is "
        "the centred partial dependence at its own value, PD_j(x_j) - E_b[PD_j(b_j)]: an effect "
        "read off the curve, not an attribution. For the scikit-learn trees that support it, a "
        "traversal of the trees replaces the model evaluations.")
    Params = PDPParams
    params: PDPParams

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Centred PD at each row's own values ``(n, d, k)``; curves in the hand-off."""
        params = self.params
        reference, chosen, grids, categorical = self._setup(model, X, background)
        tree = recursion_estimator(model)
        if params.algorithm == "recursion" and tree is None:
            raise InputError("pdp algorithm 'recursion' needs a scikit-learn "
                             "DecisionTreeRegressor, RandomForestRegressor or "
                             "HistGradientBoosting model fitted on arrays (classifiers "
                             "adapted with "
                             "output: decision_function); "
                             "use algorithm: brute")
        use_tree = tree if params.algorithm != "brute" else None
        evaluator = Evaluator(model, reference, params.max_batch, use_tree)
        predictions = model.predict(X)
        n, d, m = X.shape[0], X.shape[1], predictions.shape[1]
        columns = targets.indices[0]
        deltas = np.zeros((n, d, m))
        curves = np.full((d, max((g.size for g in grids), default=0), m), np.nan)
        centre_all = np.zeros(d)
        for j in chosen:
            points = np.unique(np.concatenate([grids[j], column(X, j), column(reference, j)]))
            pd_values = evaluator.pd(j, points)  # (u, m)
            at = np.searchsorted(points, column(X, j))
            centre = pd_values[np.searchsorted(points, column(reference, j))].mean(axis=0)
            deltas[:, j] = pd_values[at] - centre
            curves[j, : grids[j].size] = pd_values[np.searchsorted(points, grids[j])]
            centre_all[j] = float(centre[columns[0]])
        pair_names = []
        two_way = None
        if params.pairs:
            names = model.input_spec.feature_names
            pair_grids, surfaces = [], []
            for a, b in params.pairs:
                ia, ib = resolve_features([a, b], names, d)
                if ia == ib:
                    raise InputError(f"pdp pairs: ({a!r}, {b!r}) names one feature twice")
                ga, gb = (feature_grid(column(reference, f), params.pair_grid_resolution,
                                       params.percentiles, f in categorical, f)
                          for f in (ia, ib))
                surfaces.append(evaluator.pd2(ia, ib, ga, gb)[..., columns])
                pair_grids.append(padded([ga, gb]))
                pair_names.append([ia, ib])
            g2 = max(grid.shape[1] for grid in pair_grids)
            two_way = PairDependence(
                pairs=tuple((a, b) for a, b in pair_names),
                grids=np.stack([np.pad(p, ((0, 0), (0, g2 - p.shape[1])),
                                       constant_values=np.nan) for p in pair_grids]),
                average=np.stack([np.pad(s, ((0, g2 - s.shape[0]), (0, g2 - s.shape[1]),
                                             (0, 0)), constant_values=np.nan)
                                  for s in surfaces]))
        base = np.broadcast_to(model.predict(reference).mean(axis=0), (n, m))
        return Attribution(
            values=np.take_along_axis(deltas, targets.indices[:, None, :].repeat(d, 1), 2),
            base_values=targets.take(np.ascontiguousarray(base)),
            metadata={"algorithm": "recursion" if use_tree is not None else "brute",
                      "n_reference": int(reference.shape[0]),
                      "pdp_outputs": [model.output_names[c] for c in columns],
                      "pd_centres": centre_all.tolist()},
            handoff=Handoff(kind="effect", outputs=targets.take(predictions),
                            partial_dependence=DependenceCurves(
                                padded(grids), curves[..., columns], tuple(chosen),
                                pairs=two_way)),
        )


class IndividualConditionalExpectation(_Curves):
    """One curve per row: the model output as one feature is set to each grid value."""

    name = "ice"
    summary = "Individual conditional expectation curves (optionally centred), and their mean."
    description = (
        "For each explained row and feature j, the individual conditional expectation curve is "
        "the model's output as x_j is set to each value of a grid (the feature's unique values, "
        "or evenly spaced points between percentiles of the reference rows). A row's value for j "
        "is its output minus the mean of its curve over the reference rows' values of j: an "
        "effect read off the curve, not an attribution. The report draws the curves, optionally "
        "centred at the first grid point.")
    Params = ICEParams
    params: ICEParams

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Each row's ICE at its own value minus its reference mean ``(n, d, k)``."""
        reference, chosen, grids, _ = self._setup(model, X, background)
        evaluator = Evaluator(model, X, self.params.max_batch, None)
        predictions = model.predict(X)
        n, d, m = X.shape[0], X.shape[1], predictions.shape[1]
        g = max((grid.size for grid in grids), default=0)
        deltas = np.zeros((n, d, m))
        curves = np.full((n, d, g, m), np.nan)
        for j in chosen:
            levels, counts = np.unique(column(reference, j), return_counts=True)
            points = np.unique(np.concatenate([grids[j], levels]))
            ice = evaluator.ice(j, points)  # (n, u, m)
            weights = counts / counts.sum()
            mean = np.einsum("num,u->nm", ice[:, np.searchsorted(points, levels)], weights)
            deltas[:, j] = predictions - mean
            curve = ice[:, np.searchsorted(points, grids[j])]
            if self.params.centered:
                curve = curve - curve[:, :1]
            curves[:, j, : grids[j].size] = curve
        index = targets.indices
        ice_k = np.take_along_axis(curves, index[:, None, None, :], axis=3)
        return Attribution(
            values=np.take_along_axis(deltas, index[:, None, :].repeat(d, 1), 2),
            metadata={"centered": self.params.centered,
                      "n_reference": int(reference.shape[0]),
                      "pdp_outputs": [model.output_names[c] for c in index[0]]},
            handoff=Handoff(kind="effect", outputs=targets.take(predictions),
                            partial_dependence=DependenceCurves(
                                padded(grids), curves.mean(axis=0)[..., index[0]],
                                tuple(chosen), individual=ice_k)),
        )


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``pdp`` and ``ice``."""
    registry.add(PartialDependence)
    registry.add(IndividualConditionalExpectation)
