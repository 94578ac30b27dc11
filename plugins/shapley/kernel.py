"""KernelSHAP: Shapley values of the marginal game estimated by weighted linear regression.

Lundberg and Lee (2017, "A Unified Approach to Interpreting Model Predictions") estimate Shapley
values as a Shapley-kernel-weighted least-squares fit over sampled coalitions. This
implementation follows the later improvements, written from the papers:

* paired (antithetic) coalitions and the efficiency constraint solved exactly (Covert and Lee,
  AISTATS 2021, "Improving KernelSHAP: Practical Shapley Value Estimation via Linear
  Regression");
* coalition sizes stratified, sampled without replacement, equal budget per size (Musco and
  Witter, ICLR 2025, "Provably Accurate Shapley Value Estimation via Leverage Score
  Sampling"), with the smallest and largest sizes enumerated exactly when the budget covers them
  (see :mod:`xaudit.plugins.shapley.kernel_design`);
* the fit runs on pairs, on the odd part of the game (pairing cancels the even part, which
  carries no Shapley value), jointly with a Gaussian-process surrogate of the interactions of
  order three and more (a Walsh-kernel prior weighted by feature relevance, its scale chosen
  by REML) whose Shapley values are exact in closed form: a regression adjustment
  (Witter, Liu and Musco 2025) that stays consistent whatever the surrogate (see
  :mod:`xaudit.plugins.shapley.kernel_gp`);
* rows are fitted in blocks of up to ``POOL_ROWS``: the rows of a block that vary the same
  features share one design and are fitted as the output columns of one fit, so the
  surrogate's relevances, scale and Cholesky factor are computed once per block (REML keeps a
  variance per output) instead of once per row;
* per-value standard errors from the stratified sandwich (delta-method) covariance over the
  sampled pairs.

``n_samples`` is the budget of coalitions per explained row besides the empty and the full one
(as the reference implementation's ``nsamples``); each costs ``B`` model rows for ``B``
background rows. All targeted outputs are fitted on the same coalitions.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
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
    single_threaded_blas,
)
from xaudit.plugins.shapley.kernel_design import Design, draw_design, strata_sizes, total_pairs
from xaudit.plugins.shapley.kernel_fit import linear_fit, pairs_of, std_errors
from xaudit.plugins.shapley.kernel_gp import gp_fit
from xaudit.progress import rows_done
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class KernelParams(ShapleyParams):
    """Parameters of ``shap.kernel``."""

    n_samples: int = Field(2048, ge=4, le=1_048_576)
    """Coalitions evaluated per explained row, besides the empty and the full coalition (each
    is the mean over the background). A budget covering every coalition gives exact values."""
    surrogate: Literal["gp", "linear"] = "gp"
    """``linear``: KernelSHAP's additive regression. ``gp``: also fit a Gaussian-process
    surrogate of the interactions (orders three and more, relevance-weighted, scale by REML)
    and return the Shapley values of the fit, exact in closed form (lower error for models
    with interactions; consistent either way)."""
    allocation: Literal["leverage", "kernel"] = "leverage"
    """How the budget is shared between coalition sizes: the same for every size (leverage
    scores) or in proportion to the Shapley-kernel mass."""


POOL_ROWS = 64
"""Most consecutive rows fitted together (one block) on one shared design."""


def same_players(rows: list[int], varying: list[np.ndarray],
                 sampled: dict[int, np.ndarray]) -> dict[bytes, list[int]]:
    """The sampled ``rows`` grouped by their varying features (in row order): the rows whose
    fits are pooled, as the players of a pooled fit must be the same features."""
    groups: dict[bytes, list[int]] = {}
    for r in rows:
        if r in sampled:
            groups.setdefault(np.asarray(varying[r], dtype=np.int64).tobytes(), []).append(r)
    return groups


def fit(design: Design, y: np.ndarray, delta: np.ndarray,
        surrogate: Literal["gp", "linear"]) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Values and standard errors ``(d, k)`` of one row from ``y = v(S) - v(empty)`` ``(m, k)``
    and ``delta = v(all) - v(empty)``, and the surrogate's scale (None: linear fit)."""
    pairs = pairs_of(design, y, delta)
    result = linear_fit(pairs)
    if surrogate == "gp":
        result = gp_fit(design, pairs, result) or result
    phi = result.values
    phi += (pairs.delta - phi.sum(0)) / phi.shape[0]  # efficiency holds; remove rounding drift
    return phi, std_errors(design, result), result.scale


class KernelShap(Explainer):
    """Shapley values estimated by (paired, stratified, constrained) kernel regression."""

    name = "shap.kernel"
    row_parallel = True
    summary = ("KernelSHAP: paired stratified coalition sampling, exact efficiency constraint, "
               "Gaussian-process surrogate of the interactions, standard errors.")
    description = (
        "Estimates the Shapley values of the marginal game (a coalition's features from the row, "
        "the others from the background rows, averaged) by a Shapley-kernel-weighted "
        "least-squares fit over sampled coalitions: paired coalitions, sizes stratified and "
        "sampled without replacement, the values constrained to add up to f(x) minus the base "
        "value, and a Gaussian-process surrogate of the interactions that removes most of the "
        "sampling error. Each value carries a standard error from the fit.")
    paper = ("Lundberg and Lee 2017; Covert and Lee 2021 (AISTATS); Musco and Witter 2025 "
             "(ICLR); Witter, Liu and Musco 2025; Rasmussen and Williams 2006 (Gaussian "
             "processes)")
    limitations = (
        "An estimate: the reported std_errors give its sampling error (a normal "
        "approximation; coverage is nominal for budgets of a few hundred coalitions or more).",
        MARGINAL_GAME_LIMITATION,
        SUMMARISED_BACKGROUND_LIMITATION,
    )
    Params = KernelParams
    params: KernelParams
    needs_background = True
    stochastic = True
    additive = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Estimated values and standard errors ``(n, *feature_shape, k)``, base values."""
        p = self.params
        if p.surrogate == "gp":  # its BLAS loaded before the fits' thread limits are set
            import scipy.linalg  # noqa: F401
        n, shape = X.shape[0], X.shape[1:]
        prepared = prepare_game(self.name, p, model, X, background, rng,
                                refuse=self._check_budget)
        game, bg, base, full = prepared.game, prepared.background, prepared.base, prepared.full
        d, varying, players = game.n_features, prepared.varying, prepared.players
        planned = [2 * min(p.n_samples // 2, total_pairs(dv)) if dv >= 2 else 0
                   for dv in players]
        scales: list[float | None] = [None] * n
        costs = [0] * n
        values = np.zeros((n, d, targets.n_slots))
        errors = np.zeros_like(values)

        shared: dict[int, Design] = {}  # one design per number of varying features

        def draw(r: int) -> tuple[Any, np.ndarray] | None:
            if players[r] < 2:
                return None
            if players[r] not in shared:
                shared[players[r]] = draw_design(players[r], p.n_samples, p.allocation, rng)
            return shared[players[r]], shared[players[r]].masks

        def fit_block(rows: list[int], results: dict[int, np.ndarray]) -> None:
            """Fit ``rows`` (one pool block): rows with the same varying features together,
            as the output columns of one fit on their shared design."""
            for pooled in same_players(rows, varying, results).values():
                design = shared[players[pooled[0]]]
                columns, deltas = [], []
                for r in pooled:
                    out = targets.indices[r]
                    check_finite(results[r], self.name)
                    columns.append(results[r][:, out] - base[out])
                    deltas.append(full[r, out] - base[out])
                    costs[r] = int(design.masks.shape[0])
                phi, se, scale = fit(design, np.hstack(columns), np.concatenate(deltas),
                                     p.surrogate)
                k = targets.n_slots
                for j, r in enumerate(pooled):
                    values[r] = scatter_features(phi[:, j * k:(j + 1) * k], varying[r])
                    errors[r] = scatter_features(se[:, j * k:(j + 1) * k], varying[r])
                    scales[r] = scale
            for r in rows:
                if r not in results:  # at most one varying feature: it takes the whole change
                    out = targets.indices[r]
                    values[r, varying[r]] = full[r, out] - base[out]

        waiting: dict[int, np.ndarray] = {}
        block_start = 0
        for group, _, results in sampled_groups(prepared, planned, p.max_batch, draw):
            waiting.update(results)
            arrived = group[-1] + 1
            while block_start < n and (block_start + POOL_ROWS <= arrived or arrived == n):
                block = list(range(block_start, min(n, block_start + POOL_ROWS)))
                with single_threaded_blas():
                    fit_block(block, {r: waiting.pop(r) for r in block if r in waiting})
                rows_done(len(block))
                block_start = block[-1] + 1
        base_values = prepared.base_values(targets)
        return Attribution(
            values=values.reshape(n, *shape, targets.n_slots),
            base_values=base_values,
            std_errors=errors.reshape(n, *shape, targets.n_slots),
            metadata={
                "background": bg.metadata,
                "model_rows": int(game.model_rows),
                "coalitions_per_row": costs,
                "surrogate": p.surrogate,
                "surrogate_scale": scales,
                "std_errors": "stratified sandwich (delta method) over sampled pairs, HC3",
            },
            handoff=Handoff(marginal=True),
        )

    def _check_budget(self, players: list[int]) -> None:
        """Refuse, before any model call, a budget too small for some row's varying features."""
        for d in players:
            if d < 2:
                continue
            needed = min(4 * len(strata_sizes(d)), 2 * total_pairs(d))
            if self.params.n_samples < needed:
                raise InputError(
                    f"shap.kernel: n_samples={self.params.n_samples} is too small for {d} "
                    f"varying features; use at least {needed} (two pairs of coalitions per "
                    "size)")


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap.kernel``."""
    registry.add(KernelShap)
