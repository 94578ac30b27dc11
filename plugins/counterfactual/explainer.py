"""Counterfactual explanations: the smallest, sparse and diverse changes that reach a target.

For row ``x``, a counterfactual ``x'`` is a row the model maps to the desired outcome (another
class, or an output inside a range) while staying close to ``x`` (Wachter, Mittelstadt and
Russell, 2017, "Counterfactual Explanations without Opening the Black Box", Harvard JOLT 31;
distance: L1 scaled by each feature's median absolute deviation) and, when several are asked
for, different from each other (Mothilal, Sharma and Tan, 2020, "Explaining Machine Learning
Classifiers through Diverse Counterfactual Explanations", FAT* (DiCE)). Features may be fixed
(``immutable``), kept in ranges (``feature_ranges``, default the reference rows' range) or
restricted to their observed categories (``categorical``).

Two searches (:mod:`xaudit.plugins.counterfactual.search`): a seeded genetic search that needs
only ``predict``, so it works for any model, and for models with gradients a DiCE-style joint
gradient descent (hinge loss towards the target, proximity, a determinant diversity term). Both
are followed by greedy sparsification and a diverse selection. Every returned counterfactual is
checked once more with ``model.predict``; those that do not reach the target are dropped, never
returned.

Result: ``handoff.counterfactuals`` (:class:`~xaudit.handoff.Counterfactuals`) holds ``rows``
``(n, c, d)`` (rows with fewer than ``c`` found are padded with copies of ``x``, flagged false in
``valid`` ``(n, c)``), ``distances`` ``(n, c)`` (NaN for padding), ``outputs`` ``(n, c, m)`` and
per row its principal ``reasons``: the features whose change alone moves the output furthest
towards the target, ranked (at most four, as adverse-action notices state).
``handoff.outputs`` ``(n, k)`` holds the model's outputs on the rows and ``handoff.kind`` is
``"change"``: ``values`` ``(n, d, k)`` hold the *closest* counterfactual's change ``x' - x``
(zero when none was found), for ``target_range`` one search per targeted output (slot ``s`` asks
output ``s`` to reach the range), for a class target the same in every slot; the hand-off and
metadata describe the first slot's search. Each search is seeded from the seed, the row and the
output alone, so selecting other outputs does not change it. ``metadata["rows"]`` lists per row
the changed features and distances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import ChangeReason, Counterfactuals, Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import differentiable, require_torch
from xaudit.plugins._support.features import resolve_features
from xaudit.plugins.counterfactual.search import (
    Goal,
    Problem,
    genetic_search,
    gradient_search,
    mad_scale,
    select_diverse,
    sparsify,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

Feature = str | int
MAX_REASONS = 4


class CounterfactualParams(PluginParams):
    """Parameters of ``counterfactual``."""

    target_class: Feature | None = None
    """Classification: the class to reach (output index or name). Default: any class other
    than the row's predicted one."""
    target_range: tuple[float, float] | None = None
    """Regression: the interval ``[low, high]`` the first targeted output must reach."""
    n_counterfactuals: int = Field(3, gt=0, le=100)
    """Counterfactuals per row (fewer when fewer distinct valid ones are found)."""
    immutable: list[Feature] = Field(default_factory=list)
    """Features that must not change."""
    categorical: list[Feature] = Field(default_factory=list)
    """Features that take only the values seen in the reference rows."""
    feature_ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Allowed ``[low, high]`` per feature name (default: the reference rows' range)."""
    proximity_weight: float = Field(0.5, ge=0.0)
    """Weight of the distance in the search objective."""
    diversity_weight: float = Field(1.0, ge=0.0)
    """Weight of the distance between chosen counterfactuals."""
    sparsify: bool = True
    """Revert each change the target does not need."""
    population: int = Field(200, ge=4, le=100_000)
    """Candidates per generation."""
    generations: int = Field(40, gt=0, le=100_000)
    """Generations of the genetic search."""
    search: Literal["auto", "genetic", "gradient"] = "auto"
    """``gradient``: DiCE-style gradient descent through the model (needs a model with
    gradients); ``genetic``: the gradient-free search (any model); ``auto``: gradient where the
    model offers gradients, then genetic for rows where it found nothing."""
    steps: int = Field(300, gt=0, le=100_000)
    """Optimiser steps of the gradient search."""
    learning_rate: float = Field(0.05, gt=0.0)
    """Adam step size of the gradient search, in units of each feature's MAD."""


class Counterfactual(Explainer):
    """Close, sparse, diverse rows that reach another class or an output range."""

    name = "counterfactual"
    summary = "Counterfactual explanations (gradient-free, verified), with principal reasons."
    description = (
        "For each row, searches for nearby rows that the model maps to the desired outcome "
        "(another class, or an output inside a range): a genetic search that needs only "
        "predictions, or a gradient search for differentiable models, followed by sparsification "
        "and a diverse selection. Distance is the L1 distance scaled by each feature's median "
        "absolute deviation; immutable features stay fixed and the others stay inside their "
        "ranges. Every counterfactual returned was verified with the model. The values are the "
        "closest counterfactual's change x' - x, not attributions; the principal reasons rank the "
        "changed features by how far changing each one alone moves the output towards the target.")
    paper = ("Wachter, Mittelstadt and Russell 2017, Counterfactual Explanations without "
             "Opening the Black Box; Mothilal, Sharma and Tan 2020, Explaining Machine "
             "Learning Classifiers through Diverse Counterfactual Explanations (DiCE)")
    limitations = (
        "A counterfactual shows one way to reach the target for this model, not a causal or "
        "feasible action: constraints not declared (immutable, ranges) are not respected.",
        "The search is heuristic: a row without counterfactuals may still have some, and the "
        "closest one found need not be the closest that exists.",
    )
    Params = CounterfactualParams
    params: CounterfactualParams
    stochastic = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Per row: verified counterfactuals, the closest one's change and principal reasons."""
        p = self.params
        if X.ndim != 2:
            raise InputError(f"counterfactual needs tabular rows (n, d), got shape {X.shape}")
        try:
            rows = np.asarray(X, dtype=np.float64)
            reference = rows if background is None else np.asarray(background, np.float64)
        except (TypeError, ValueError):
            raise InputError("counterfactual needs numeric features; encode categories as "
                             "numbers and list them in categorical") from None
        names = model.input_spec.feature_names
        d = rows.shape[1]
        immutable = set(resolve_features(p.immutable, names, d))
        mutable = np.asarray([j for j in range(d) if j not in immutable], dtype=np.int64)
        categories = {j: np.unique(reference[:, j])
                      for j in resolve_features(p.categorical, names, d)}
        low, high = reference.min(axis=0), reference.max(axis=0)
        for feature, (lo, hi) in p.feature_ranges.items():
            j = resolve_features([feature], names, d)[0]
            if lo > hi:
                raise InputError(f"feature_ranges[{feature!r}]: low {lo} is above high {hi}")
            low[j], high[j] = lo, hi
        net = self._network(model)
        outputs = model.predict(rows)
        goal = _goal(p, model)
        n, c = rows.shape[0], p.n_counterfactuals
        found = np.repeat(rows[:, None, :], c, axis=1)
        valid = np.zeros((n, c), dtype=bool)
        distances = np.full((n, c), np.nan)
        cf_outputs = np.repeat(outputs[:, None, :], c, axis=1)
        values = np.zeros((n, d, targets.n_slots))
        scale = mad_scale(reference)
        base_seed = int(rng.integers(0, 2**63 - 1))
        per_row: list[dict[str, Any]] = []
        reasons: list[tuple[ChangeReason, ...]] = []
        for i in range(n):
            # one search per goal (a class goal is one for all slots; a range goal is per
            # targeted output), each seeded from (seed, row, output) alone
            searches: dict[Goal, tuple[Problem, np.ndarray, np.ndarray, str | None]] = {}
            for slot, column in enumerate(targets.indices[i].tolist()):
                wanted = goal(outputs[i], int(column))
                if wanted not in searches:
                    problem = Problem(rows[i], mutable, low, high, categories, reference,
                                      scale, model.predict, wanted)
                    child = np.random.default_rng([base_seed, i, int(column)])
                    searches[wanted] = (problem, *self._row(problem, net, child))
                chosen = searches[wanted][1]
                if chosen.shape[0]:
                    values[i, :, slot] = chosen[0] - rows[i]
            problem, chosen, checked, route = next(iter(searches.values()))
            k = chosen.shape[0]
            found[i, :k], valid[i, :k] = chosen, True
            if k:
                distances[i, :k], cf_outputs[i, :k] = problem.distance(chosen), checked
            per_row.append({
                "found": int(k), "search": route, "already_at_target": route is None,
                "changed_features": [[_name(names, j)
                                      for j in np.flatnonzero(cf != rows[i]).tolist()]
                                     for cf in chosen],
                "distances": distances[i, :k].tolist(),
            })
            reasons.append(_reasons(problem, chosen, names))
        return Attribution(
            values=values,
            handoff=Handoff(kind="change", outputs=targets.take(outputs),
                            counterfactuals=Counterfactuals(found, valid, distances, cf_outputs,
                                                            tuple(reasons))),
            metadata={"rows": per_row,
                      "found_share": float(valid[:, 0].mean()) if n else 0.0,
                      "target": _describe(p),
                      "immutable": sorted(_name(names, j) for j in immutable),
                      "distance": "L1 scaled by the reference rows' MAD",
                      "values": "change x' - x of the closest counterfactual, not an "
                                "attribution"},
        )

    def _row(self, problem: Problem, net: Any, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, str | None]:
        """Verified counterfactuals of one row (closest first), their outputs and the route
        (``None`` when the row already reaches the target: nothing to change)."""
        p = self.params
        empty = np.empty((0, problem.x.size))
        if problem.gap(problem.predict(problem.x[None]))[0] <= 0:
            return empty, empty, None
        pool, route = self._search(problem, net, rng)
        if p.sparsify and pool.shape[0]:
            pool = sparsify(problem, pool)
        chosen = select_diverse(problem, pool, p.n_counterfactuals, p.diversity_weight)
        if not chosen.shape[0]:
            return empty, empty, route
        checked = problem.predict(chosen)  # verification: drop what misses the target
        keep = problem.gap(checked) <= 0
        return chosen[keep], checked[keep], route

    def _network(self, model: Model) -> Any:
        """The differentiable model the gradient route uses, or ``None`` for the genetic one."""
        wanted = self.params.search
        if wanted == "genetic" or (wanted == "auto" and "gradients" not in model.capabilities):
            return None
        require_torch("counterfactual search 'gradient'")
        return differentiable(model, "counterfactual search 'gradient'")

    def _search(self, problem: Problem, net: Any,
                rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """Candidates reaching the target, and the route that found them."""
        p = self.params
        if net is not None:
            pool = gradient_search(problem, net, rng, p.n_counterfactuals, p.steps,
                                   p.learning_rate, p.proximity_weight, p.diversity_weight)
            if pool.shape[0] or p.search == "gradient":
                return pool, "gradient"
        pool = genetic_search(problem, rng, p.population, p.generations, p.proximity_weight)
        return pool, "genetic"


def _goal(p: CounterfactualParams, model: Model) -> Callable[[np.ndarray, int], Goal]:
    """A function of one row's outputs ``(m,)`` and a targeted output returning the
    :class:`Goal` of its search (the output matters for ``target_range`` only)."""
    if p.target_range is not None:
        low, high = p.target_range
        if low > high:
            raise InputError(f"target_range {list(p.target_range)}: low is above high")
        return lambda _, column: Goal("range", column, float(low), float(high))
    if model.task == "regression" or len(model.output_names) < 2:
        raise InputError("counterfactual for a single-output or regression model needs "
                         "target_range: [low, high] (e.g. [0.5, 1.0] for a probability)")
    if p.target_class is not None:
        wanted = Goal("class", resolve_features([p.target_class], model.output_names,
                                                len(model.output_names))[0])
        return lambda _, __: wanted
    return lambda row_out, _: Goal("away", int(np.argmax(row_out)))


def _reasons(problem: Problem, chosen: np.ndarray,
             names: tuple[str, ...] | None) -> tuple[ChangeReason, ...]:
    """Changed features ranked by how far changing each one alone moves the output towards
    the target (the unclipped margin, so changes that overshoot still rank)."""
    if chosen.shape[0] == 0 or not np.any(chosen != problem.x):
        return ()
    base = float(problem.gap(problem.predict(problem.x[None]), clip=False)[0])
    trials, meta = [], []
    for cf in chosen:
        for j in np.flatnonzero(cf != problem.x).tolist():
            trial = problem.x.copy()
            trial[j] = cf[j]
            trials.append(trial)
            meta.append((int(j), float(cf[j])))
    gaps = problem.gap(problem.predict(np.asarray(trials)), clip=False)
    best: dict[int, tuple[float, float]] = {}
    for (j, to), gap in zip(meta, gaps, strict=True):
        effect = base - float(gap)
        if effect > best.get(j, (-np.inf, 0.0))[0]:
            best[j] = (effect, to)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:MAX_REASONS]
    return tuple(ChangeReason(_name(names, j), float(problem.x[j]), to, effect)
                 for j, (effect, to) in ranked)


def _name(names: tuple[str, ...] | None, j: int) -> str:
    return names[j] if names else f"x{j}"


def _describe(p: CounterfactualParams) -> str:
    if p.target_range is not None:
        return f"targeted output in {list(p.target_range)}"
    if p.target_class is not None:
        return f"class {p.target_class}"
    return "any class other than the predicted one"


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``counterfactual``."""
    registry.add(Counterfactual)
