"""Exact Shapley values of the marginal game by enumerating every coalition.

Shapley (1953, "A value for n-person games"): for ``d`` players,

    phi_i = sum_{S not containing i} |S|! (d-|S|-1)! / d! * (v(S + i) - v(S)),

which, regrouped by coalition, is ``sum_S v(S) * (+w[|S|-1] if i in S else -w[|S|])`` with
``w[s] = s! (d-s-1)! / d!``. Every one of the ``2^d`` coalitions is evaluated once (the empty and
full coalitions are the base value and ``f(x)``), in a stream of model calls of at most
``max_batch`` rows, and accumulated without storing the ``2^d`` values: memory is bounded by the
batch and by ``chunk_coalitions``. The game is the marginal (interventional) one over the
background, as in :mod:`xaudit.plugins.shapley.game`; features equal to every background row
are null players and are left out of the enumeration (value 0).

Cost per row: ``(2^d_v - 2) * B`` model evaluations for ``d_v`` varying features and ``B``
background rows, so ``d`` is limited (``max_features``, 20 by default).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.plugins.shapley.game import (
    MARGINAL_GAME_LIMITATION,
    ShapleyParams,
    check_finite,
    embed_masks,
    evaluate_blocks,
    prepare_game,
    row_groups,
    scatter_features,
    size_weights,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class ExactParams(ShapleyParams):
    """Parameters of ``shap.exact``."""

    max_features: int = Field(20, gt=0, le=30)
    """Refuse rows with more varying features than this (the cost doubles per feature)."""
    chunk_coalitions: int = Field(65_536, gt=0)
    """Coalitions whose masks and values are held in memory at once."""


def _coalition_masks(start: int, stop: int, d: int) -> np.ndarray:
    """Boolean masks of coalitions ``start..stop-1`` read as bit sets over ``d`` features."""
    index = np.arange(start, stop, dtype=np.int64)
    return ((index[:, None] >> np.arange(d, dtype=np.int64)[None, :]) & 1).astype(bool)


def _accumulate(masks: np.ndarray, values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_S v(S) (+w[|S|-1] if i in S else -w[|S|])`` for a chunk, ``(d, k)``."""
    d = masks.shape[1]
    sizes = masks.sum(1)
    w_in = np.where(sizes >= 1, w[np.clip(sizes - 1, 0, d - 1)], 0.0)
    w_out = np.where(sizes <= d - 1, w[np.clip(sizes, 0, d - 1)], 0.0)
    m = masks.astype(np.float64)
    return np.asarray(m.T @ (w_in[:, None] * values) - (1.0 - m).T @ (w_out[:, None] * values))


class ExactShapley(Explainer):
    """Shapley values of the marginal game, every coalition evaluated."""

    name = "shap.exact"
    row_parallel = True
    summary = "Exact Shapley values (all 2^d coalitions) of the marginal game over a background."
    description = (
        "Exact Shapley values of the marginal game, in which a coalition's value is the mean "
        "model output over the background rows with the coalition's features set to the row's "
        "values. Every one of the 2^d coalitions is evaluated, and each feature's value is its "
        "Shapley-weighted mean marginal contribution. A row's values add up to f(x) minus the "
        "base value (the mean output on the background); features equal in every background row "
        "receive zero.")
    paper = ("Shapley 1953, A value for n-person games; Lundberg and Lee 2017, A Unified Approach "
             "to Interpreting Model Predictions")
    limitations = (
        "Cost grows as 2^d model evaluations per row and background row: refused above "
        "max_features varying features.",
        MARGINAL_GAME_LIMITATION,
    )
    Params = ExactParams
    params: ExactParams
    needs_background = True
    additive = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Exact values ``(n, *feature_shape, k)`` and base values ``E_b[f(b)]``."""
        p = self.params
        n, shape = X.shape[0], X.shape[1:]
        prepared = prepare_game(self.name, p, model, X, background, rng, refuse=self._refuse)
        game, bg, base, full = prepared.game, prepared.background, prepared.base, prepared.full
        d, varying = game.n_features, prepared.varying
        values = np.zeros((n, d, targets.n_slots))
        chunk = p.chunk_coalitions
        small = [r for r in range(n) if 2 ** int(varying[r].sum()) <= chunk]
        for group in row_groups([2 ** int(varying[r].sum()) for r in small], chunk):
            rows = [small[g] for g in group]
            blocks = [(r, embed_masks(_coalition_masks(0, 2 ** int(varying[r].sum()),
                                                       int(varying[r].sum())), varying[r]))
                      for r in rows]
            for r, vals in zip(rows, evaluate_blocks(game, blocks), strict=True):
                values[r] = self._row(varying[r], [(0, vals)], base, full[r], targets, r)
        for r in sorted(set(range(n)) - set(small)):
            dv = int(varying[r].sum())
            for part in row_blocks(2 ** dv, chunk):
                masks = embed_masks(_coalition_masks(part.start, part.stop, dv), varying[r])
                vals = evaluate_blocks(game, [(r, masks)])[0]
                values[r] += self._row(varying[r], [(part.start, vals)], base, full[r], targets,
                                       r)
        base_values = prepared.base_values(targets)
        return Attribution(
            values=values.reshape(n, *shape, targets.n_slots),
            base_values=base_values,
            metadata={"background": bg.metadata, "model_rows": int(game.model_rows),
                      "varying_features": [int(v.sum()) for v in varying]},
            handoff=Handoff(marginal=True),
        )

    def _refuse(self, players: list[int]) -> None:
        """Refuse, before any model call, rows with more varying features than allowed."""
        widest = max(players, default=0)
        if widest > self.params.max_features:
            raise InputError(
                f"shap.exact: a row has {widest} varying features, more than max_features="
                f"{self.params.max_features} (2^{widest} coalitions); use shap.kernel or "
                "shap.permutation, or raise max_features (at most 30)")

    def _row(self, varying: np.ndarray, chunks: list[tuple[int, np.ndarray]], base: np.ndarray,
             fx: np.ndarray, targets: TargetSelection, row: int) -> np.ndarray:
        """Accumulated values of one row over ``chunks`` of coalitions starting at ``start``.

        The empty and full coalitions are set to the exact ``v(empty)`` and ``f(x)``.
        """
        dv = int(varying.sum())
        out = targets.indices[row]
        phi = np.zeros((dv, out.size))
        if dv == 0:
            return scatter_features(phi, varying)
        w = size_weights(dv)
        for start, vals in chunks:
            check_finite(vals, self.name)
            v = vals[:, out].copy()
            if start == 0:
                v[0] = base[out]
            if start + v.shape[0] == 2 ** dv:
                v[-1] = fx[out]
            phi += _accumulate(_coalition_masks(start, start + v.shape[0], dv), v, w)
        return scatter_features(phi, varying)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap.exact``."""
    registry.add(ExactShapley)
