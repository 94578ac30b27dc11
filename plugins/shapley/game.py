"""Shared machinery of the model-agnostic Shapley explainers (``shap.exact``, ``shap.kernel``,
``shap.permutation``): the coalition game, its evaluation in bounded batches, the background.

The game is the *marginal* (interventional) value function of Lundberg and Lee (2017, "A Unified
Approach to Interpreting Model Predictions"; Janzing, Minorics and Bloebaum 2020, "Feature
relevance quantification in explainable AI: a causal problem"): for an explained row ``x`` and a
coalition ``S`` of features,

    v(S) = sum_b w_b f(x_S, b_notS),

the weighted mean over background rows ``b`` (weights ``w_b`` sum to one; equal unless the
background was summarised by weighted k-means) of the model output on ``x`` with the features
outside ``S`` taken from ``b``. ``v(empty)`` is the base value ``E_b[f(b)]`` and ``v(all) =
f(x)``, so Shapley values of ``v`` add up to ``f(x) - E_b[f(b)]``.

A feature whose value in ``x`` equals its value in every background row cannot change ``v``; it
is a null player with Shapley value exactly 0 (Shapley 1953, "A value for n-person games"), and
the explainers play the game of the remaining (*varying*) features only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from math import comb
from typing import Any

import numpy as np
from pydantic import Field

from xaudit.batching import predict_batched, row_blocks
from xaudit.errors import InputError
from xaudit.model import Model
from xaudit.plugin import PluginParams
from xaudit.plugins.shapley.kmeans import kmeans
from xaudit.targets import TargetSelection


class ShapleyParams(PluginParams):
    """Parameters every model-agnostic Shapley explainer shares."""

    max_background: int = Field(100, gt=0, le=100_000)
    """A background with more rows is summarised by seeded weighted k-means into this many
    centres (weights = cluster sizes); recorded in the explanation's metadata."""
    max_batch: int = Field(65_536, gt=0)
    """Largest number of rows in one model call (bounds memory)."""


@dataclass(frozen=True)
class Background:
    """Background rows flattened to ``(B, d)``, weights ``(B,)`` summing to one, and facts."""

    rows: np.ndarray
    weights: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def prepare_background(background: np.ndarray | None, feature_shape: tuple[int, ...],
                       max_background: int, rng: np.random.Generator) -> Background:
    """Flatten the background and summarise it by weighted k-means when it is too large."""
    if background is None or np.asarray(background).shape[0] == 0:
        raise InputError("Shapley explainers need a background with at least one row; "
                         "pass background=...")
    bg = np.asarray(background)
    if tuple(bg.shape[1:]) != tuple(feature_shape):
        raise InputError(f"background rows are shaped {bg.shape[1:]}, the explained rows "
                         f"{tuple(feature_shape)}; pass rows of the same shape")
    flat = bg.reshape(bg.shape[0], -1)
    n = flat.shape[0]
    meta: dict[str, Any] = {"background_rows": int(n), "summarised": False}
    if n <= max_background:
        return Background(flat, np.full(n, 1.0 / n), meta)
    if not np.issubdtype(flat.dtype, np.number) or np.issubdtype(flat.dtype, np.complexfloating):
        raise InputError(f"the background has {n} rows (more than max_background="
                         f"{max_background}) of non-numeric values, which k-means cannot "
                         "summarise; pass a smaller background or raise max_background")
    result = kmeans(flat.astype(np.float64), max_background, rng)
    meta.update(summarised=True, method="weighted k-means (k-means++ seeding, Lloyd)",
                k=int(max_background), inertia=result.inertia, kmeans_iterations=result.n_iter,
                cluster_sizes=[int(c) for c in result.weights])
    return Background(result.centers, result.weights / result.weights.sum(), meta)


MARGINAL_GAME_LIMITATION = (
    "Marginal (interventional) game: features outside a coalition come from the background "
    "independently of the others, which can create unrealistic rows when features are "
    "correlated.")
SUMMARISED_BACKGROUND_LIMITATION = (
    "A large background is summarised by weighted k-means, which changes the game being "
    "explained (recorded in the metadata).")


@dataclass
class PreparedGame:
    """The game of some explained rows, with what every Shapley explainer needs first:
    the (possibly summarised) background, ``v(empty)`` ``(m,)``, ``f(x)`` ``(n, m)`` and each
    row's varying features (those that differ from some background row)."""

    game: CoalitionGame
    background: Background
    base: np.ndarray
    full: np.ndarray
    varying: list[np.ndarray]

    @property
    def players(self) -> list[int]:
        """Number of varying features of each row."""
        return [int(v.sum()) for v in self.varying]

    def base_values(self, targets: TargetSelection) -> np.ndarray:
        """``v(empty)`` at each row's targeted outputs, ``(n, k)``."""
        return targets.take(np.ascontiguousarray(np.broadcast_to(self.base, self.full.shape)))


def prepare_game(method: str, params: ShapleyParams, model: Model, X: np.ndarray,
                 background: np.ndarray | None, rng: np.random.Generator,
                 refuse: Callable[[list[int]], None] | None = None) -> PreparedGame:
    """Set up the marginal game of the rows of ``X``; ``refuse`` sees each row's number of
    varying features before any model call (to reject a budget or size that cannot work)."""
    bg = prepare_background(background, X.shape[1:], params.max_background, rng)
    game = CoalitionGame(model, X, bg, params.max_batch)
    varying = [game.varying(r) for r in range(X.shape[0])]
    if refuse is not None:
        refuse([int(v.sum()) for v in varying])
    base = game.base_value()
    full = game.full_values()
    check_finite(full, method)
    return PreparedGame(game, bg, base, full, varying)


def sampled_groups(prepared: PreparedGame, costs: list[int], max_batch: int,
                   draw: Callable[[int], tuple[Any, np.ndarray] | None],
                   ) -> Iterator[tuple[list[int], dict[int, Any], dict[int, np.ndarray]]]:
    """Rows in groups whose coalitions fit the model calls, each group with its draws.

    ``costs`` are the rows' coalition counts; ``draw(r)`` returns a sample (a design, orders)
    and its coalition masks over ``r``'s varying features, or ``None`` for a row with at most
    one varying feature. Draws are made group by group in row order, so they do not depend on
    the grouping and memory stays bounded by ``max_batch``. Yields the group's rows, the
    samples by row and the game's values ``(coalitions, m)`` by row.
    """
    per_call = max(1, max_batch // prepared.background.rows.shape[0])
    for group in row_groups(costs, max(per_call, max(costs, default=1))):
        drawn = {r: sample for r in group if (sample := draw(r)) is not None}
        blocks = [(r, embed_masks(masks, prepared.varying[r])) for r, (_, masks) in drawn.items()]
        values = evaluate_blocks(prepared.game, blocks)
        yield group, {r: sample for r, (sample, _) in drawn.items()}, dict(
            zip(drawn, values, strict=True))


def size_weights(d: int) -> np.ndarray:
    """Shapley weights ``w[s] = s! (d-s-1)! / d! = 1 / (d C(d-1, s))`` for ``s = 0..d-1``."""
    return np.array([1.0 / (d * comb(d - 1, s)) for s in range(d)])


class CoalitionGame:
    """Evaluates ``v(S)`` for coalitions of the rows of ``X`` in batches of ``max_batch`` rows.

    ``X`` is ``(n, *feature_shape)``; masks are boolean ``(M, d)`` over the ``d`` flattened
    features (True: the feature keeps the explained row's value). Counts the model rows used.
    """

    def __init__(self, model: Model, X: np.ndarray, background: Background,
                 max_batch: int) -> None:
        self.model = model
        self.shape = tuple(X.shape[1:])
        self.flat_x = X.reshape(X.shape[0], -1)
        self.background = background
        self.max_batch = max_batch
        self.model_rows = 0
        self.dtype = np.result_type(self.flat_x.dtype, background.rows.dtype)

    @property
    def n_features(self) -> int:
        """Number of (flattened) features ``d``."""
        return int(self.flat_x.shape[1])

    def _predict(self, flat_rows: np.ndarray) -> np.ndarray:
        self.model_rows += flat_rows.shape[0]
        out = predict_batched(self.model, flat_rows.reshape(-1, *self.shape), self.max_batch)
        return np.asarray(out, dtype=np.float64)

    def base_value(self) -> np.ndarray:
        """``v(empty) = E_b[f(b)]`` for every model output, ``(n_outputs,)``."""
        out = self._predict(self.background.rows)
        return np.asarray(self.background.weights @ out)

    def full_values(self) -> np.ndarray:
        """``v(all) = f(x)`` for every explained row, ``(n, n_outputs)``."""
        return self._predict(self.flat_x)

    def varying(self, row: int) -> np.ndarray:
        """Features of ``row`` that differ from at least one background row, ``(d,)`` bool."""
        same = self.background.rows == self.flat_x[row][None, :]
        return np.asarray(~np.all(same, axis=0))

    def values(self, rows: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``v(S)`` for coalition ``masks[j]`` of explained row ``rows[j]``, ``(M, n_outputs)``."""
        bg, weights = self.background.rows, self.background.weights
        n_bg, d = bg.shape
        parts = []
        for part in row_blocks(masks.shape[0], self.max_batch, n_bg):
            mask = masks[part]
            x = self.flat_x[rows[part]]
            block = np.where(mask[:, None, :], x[:, None, :], bg[None, :, :]).astype(
                self.dtype, copy=False)
            out = self._predict(block.reshape(-1, d)).reshape(mask.shape[0], n_bg, -1)
            parts.append(np.einsum("cbo,b->co", out, weights))
        if not parts:
            return np.zeros((0, 0))
        return np.concatenate(parts, axis=0)


def embed_masks(sub_masks: np.ndarray, varying: np.ndarray) -> np.ndarray:
    """Masks over the varying features ``(m, d_v)`` to masks over all ``d`` features.

    Non-varying features are set to True (their value is the same either way).
    """
    full = np.ones((sub_masks.shape[0], varying.size), dtype=bool)
    full[:, varying] = sub_masks
    return full


def scatter_features(sub_values: np.ndarray, varying: np.ndarray) -> np.ndarray:
    """Values over the varying features ``(d_v, k)`` to all features ``(d, k)``, zeros else."""
    full = np.zeros((varying.size, *sub_values.shape[1:]))
    full[varying] = sub_values
    return full


def check_finite(values: np.ndarray, method: str) -> None:
    """Refuse model outputs that are not finite (NaN in a coalition poisons every value)."""
    if not np.all(np.isfinite(values)):
        raise InputError(f"{method}: the model returned NaN or infinite outputs on rows mixing "
                         "the explained rows with the background; check the model and the data")


def evaluate_blocks(game: CoalitionGame, blocks: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
    """``v`` for several rows' coalitions at once: ``[(row, masks (m_i, d))] -> [(m_i, out)]``.

    One stream of model calls for all blocks, so many small per-row games share full batches.
    """
    if not blocks:
        return []
    rows = np.concatenate([np.full(m.shape[0], r, dtype=np.int64) for r, m in blocks])
    masks = np.concatenate([m for _, m in blocks], axis=0)
    values = game.values(rows, masks)
    splits = np.cumsum([m.shape[0] for _, m in blocks])[:-1]
    return list(np.split(values, splits, axis=0))


def row_groups(costs: list[int], budget: int) -> list[list[int]]:
    """Consecutive row indices grouped so that each group's summed cost stays near ``budget``."""
    groups: list[list[int]] = [[]]
    total = 0
    for row, cost in enumerate(costs):
        if groups[-1] and total + cost > budget:
            groups.append([])
            total = 0
        groups[-1].append(row)
        total += cost
    return [g for g in groups if g]


BLAS_CARRIERS = ("numpy", "scipy.linalg")
"""Modules that load a BLAS of their own (numpy's and scipy's wheels each bundle an OpenBLAS)."""


@lru_cache(maxsize=4)
def _blas_controller(loaded: frozenset[str]) -> Any:
    """A threadpoolctl controller of the BLAS libraries loaded with the modules ``loaded``
    (a controller sees only the libraries loaded when it was made, so it is made again when
    scipy's arrives)."""
    try:  # installed with scikit-learn; optional here (untyped, hence imported by name)
        module = importlib.import_module("threadpoolctl")
    except ImportError:
        return None
    return module.ThreadpoolController()


def _controller() -> Any:
    return _blas_controller(frozenset(m for m in BLAS_CARRIERS if m in sys.modules))


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the enclosed small dense algebra (per-row fits) on one BLAS thread.

    Threaded BLAS gains nothing on matrices of a few hundred columns and stalls badly when the
    machine's cores are busy (a 138 x 138 eigendecomposition: 5 ms on one thread, 0.5 s
    threaded on a loaded 2-core machine). Uses threadpoolctl when installed; else a no-op.
    Model calls stay outside, with the user's threading.
    """
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
