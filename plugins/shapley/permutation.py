"""Shapley values of the marginal game estimated by antithetic permutation sampling.

Shapley (1953) values are the expected marginal contributions ``v(P_i + i) - v(P_i)`` of each
player ``i`` over the players ``P_i`` that precede it in a uniformly random order. Castro, Gomez
and Tejada (2009, "Polynomial calculation of the Shapley value based on sampling", Computers &
Operations Research 36) estimate them by averaging over sampled orders; one order walks the chain
``empty -> ... -> all`` of ``d + 1`` coalitions, so it costs ``d - 1`` evaluations (the empty and
full coalitions are known) and gives one contribution to every player.

Orders are drawn in *antithetic* pairs, an order and its reverse (Mitchell, Cooper, Frank and
Holmes 2022, "Sampling Permutations for Shapley Value Estimation", JMLR 23; Illes and Kerenyi
2019): a player early in one is late in the other, so the pair's mean contribution cancels the
variance of the coalition-size effect, and for a game of order two (pairwise interactions) it is
exact. The estimate of each value is the mean over ``P`` independent pairs, its standard error
the pairs' sample standard deviation over ``sqrt(P)``. Every order's contributions add up to
``v(all) - v(empty)``, so the estimate satisfies efficiency exactly.

``n_samples`` is the budget of coalitions per explained row (as for ``shap.kernel``), each the
mean of the model over the ``B`` background rows: ``P = max(2, n_samples // (2 (d - 1)))``
pairs of orders for ``d`` varying features, or all ``d!`` orders (exact values, standard error
0) when ``d! (d - 1) <= n_samples``.
"""

from __future__ import annotations

from itertools import permutations
from math import factorial
from typing import Any

import numpy as np
from pydantic import Field

from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.plugins.shapley.game import (
    MARGINAL_GAME_LIMITATION,
    SUMMARISED_BACKGROUND_LIMITATION,
    ShapleyParams,
    check_finite,
    prepare_game,
    sampled_groups,
    scatter_features,
)
from xaudit.progress import rows_done
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class PermutationParams(ShapleyParams):
    """Parameters of ``shap.permutation``."""

    n_samples: int = Field(2048, ge=2, le=1_048_576)
    """Coalitions evaluated per explained row (each the mean over the background); an order of
    ``d`` varying features costs ``d - 1``; at least two antithetic pairs are always drawn."""


def pairs_for(d: int, n_samples: int) -> int:
    """Antithetic pairs for ``d >= 2`` players: all ``d!/2`` when the budget covers them."""
    if d <= 12 and factorial(d) * (d - 1) <= n_samples:
        return factorial(d) // 2
    return max(2, n_samples // (2 * (d - 1)))


def enumerates(d: int, n_pairs: int) -> bool:
    """Whether ``n_pairs`` antithetic pairs are all ``d!`` orders of ``d`` players."""
    return d <= 12 and n_pairs == factorial(d) // 2


def draw_orders(d: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``2 n_pairs`` orders of ``d`` players, ``(2 n_pairs, d)``: each one then its reverse.

    ``n_pairs = d!/2`` enumerates every order once (those starting below their last player,
    each followed by its reverse): the estimate is then exact.
    """
    if enumerates(d, n_pairs):
        forward = np.array([o for o in permutations(range(d)) if o[0] < o[-1]],
                           dtype=np.int64).reshape(n_pairs, d)
    else:
        forward = np.argsort(rng.random((n_pairs, d)), axis=1)
    orders = np.empty((2 * n_pairs, d), dtype=np.int64)
    orders[0::2], orders[1::2] = forward, forward[:, ::-1]
    return orders


def chain_masks(orders: np.ndarray) -> np.ndarray:
    """The inner coalitions of every order's chain, ``(n_orders * (d - 1), d)`` bool.

    Row ``o * (d - 1) + j`` holds the first ``j + 1`` players of order ``o``.
    """
    n_orders, d = orders.shape
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.arange(d)[None, :], axis=1)
    steps = np.arange(d - 1)
    masks = rank[:, None, :] <= steps[None, :, None]
    return masks.reshape(n_orders * (d - 1), d)


def contributions(orders: np.ndarray, inner: np.ndarray, base: np.ndarray,
                  fx: np.ndarray) -> np.ndarray:
    """Marginal contributions ``(n_orders, d, k)`` from the chains' inner values.

    ``inner`` is ``(n_orders * (d - 1), k)`` in the order of :func:`chain_masks`; ``base`` and
    ``fx`` ``(k,)`` are ``v(empty)`` and ``v(all)``.
    """
    n_orders, d = orders.shape
    k = base.size
    chain = np.empty((n_orders, d + 1, k))
    chain[:, 0] = base
    chain[:, d] = fx
    chain[:, 1:d] = inner.reshape(n_orders, d - 1, k)
    steps = np.diff(chain, axis=1)  # step j adds player orders[:, j]
    out = np.empty((n_orders, d, k))
    np.put_along_axis(out, orders[:, :, None], steps, axis=1)
    return out


class PermutationShapley(Explainer):
    """Shapley values estimated from antithetic pairs of random feature orders."""

    name = "shap.permutation"
    row_parallel = True
    summary = ("Permutation sampling of Shapley values with antithetic (reversed) orders and "
               "standard errors; efficiency exact.")
    description = (
        "Estimates the Shapley values of the marginal game as each feature's mean marginal "
        "contribution over random orders of the features, drawn as pairs of an order and its "
        "reverse. Each order's contributions add up to f(x) minus the base value, so the estimate "
        "does too; standard errors come from the spread over the pairs, and when the budget "
        "covers every order the values are exact.")
    paper = ("Castro, Gomez and Tejada 2009 (Computers & Operations Research); Mitchell, "
             "Cooper, Frank and Holmes 2022, Sampling Permutations for Shapley Value "
             "Estimation (JMLR)")
    limitations = (
        "An estimate: the reported std_errors are the standard deviation of the pair means over "
        "the square root of their number (normal approximation; nominal for a few tens of "
        "pairs or more).",
        MARGINAL_GAME_LIMITATION,
        SUMMARISED_BACKGROUND_LIMITATION,
    )
    Params = PermutationParams
    params: PermutationParams
    needs_background = True
    stochastic = True
    additive = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Estimated values and standard errors ``(n, *feature_shape, k)``, base values."""
        p = self.params
        n, shape = X.shape[0], X.shape[1:]
        prepared = prepare_game(self.name, p, model, X, background, rng)
        game, bg, base, full = prepared.game, prepared.background, prepared.base, prepared.full
        d, varying, players = game.n_features, prepared.varying, prepared.players
        pairs = [pairs_for(dv, p.n_samples) if dv >= 2 else 0 for dv in players]
        costs = [2 * pr * (dv - 1) for pr, dv in zip(pairs, players, strict=True)]
        values = np.zeros((n, d, targets.n_slots))
        errors = np.zeros_like(values)

        def draw(r: int) -> tuple[Any, np.ndarray] | None:
            if not pairs[r]:
                return None
            order = draw_orders(players[r], pairs[r], rng)
            return order, chain_masks(order)

        for group, orders, results in sampled_groups(prepared, costs, p.max_batch, draw):
            for r in group:
                out = targets.indices[r]
                order = orders.get(r)
                if order is None:  # at most one varying feature: it takes the whole change
                    values[r, varying[r]] = full[r, out] - base[out]
                    continue
                check_finite(results[r], self.name)
                contrib = contributions(order, results[r][:, out], base[out], full[r, out])
                pair_means = 0.5 * (contrib[0::2] + contrib[1::2])  # (pairs, dv, k)
                values[r] = scatter_features(pair_means.mean(0), varying[r])
                if not enumerates(players[r], pairs[r]):  # all orders: exact, error 0
                    errors[r] = scatter_features(
                        pair_means.std(0, ddof=1) / np.sqrt(pairs[r]), varying[r])
            rows_done(len(group))
        base_values = prepared.base_values(targets)
        return Attribution(
            values=values.reshape(n, *shape, targets.n_slots),
            base_values=base_values,
            std_errors=errors.reshape(n, *shape, targets.n_slots),
            metadata={
                "background": bg.metadata,
                "model_rows": int(game.model_rows),
                "orders_per_row": [2 * pr for pr in pairs],
                "coalitions_per_row": costs,
                "std_errors": "standard deviation of antithetic pair means / sqrt(pairs)",
            },
            handoff=Handoff(marginal=True),
        )


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap.permutation``."""
    registry.add(PermutationShapley)
