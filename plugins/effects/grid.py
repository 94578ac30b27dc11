"""How ``pdp`` and ``ice`` evaluate the model: grids, brute force or trees.

Friedman 2001 ("Greedy Function Approximation: A Gradient Boosting Machine"): the partial
dependence of feature ``j`` at ``v`` is the mean over reference rows of ``f(row with x_j := v)``;
Goldstein et al. 2015 ("Peeking Inside the Black Box") keep each row's curve (ICE).
:class:`Evaluator` computes them by setting the feature on every reference row (batched model
calls), or through scikit-learn's tree ``recursion`` where the model offers it (same values for
tree ensembles, without calling the model); grids follow scikit-learn's choice (unique values,
or a linear grid between percentiles) so that results equal ``sklearn.inspection``'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xaudit.batching import row_blocks
from xaudit.errors import InputError
from xaudit.model import Model


class Evaluator:
    """Partial dependence and ICE values of ``model`` over ``rows`` (brute force or trees)."""

    def __init__(self, model: Model, rows: np.ndarray, max_batch: int, tree: Any) -> None:
        self.model, self.rows, self.max_batch, self.tree = model, rows, max_batch, tree

    def ice(self, j: int, points: np.ndarray) -> np.ndarray:
        """``f(row with x_j := v)`` for every row and point: ``(n, u, m)``."""
        return self._brute([j], points[:, None])

    def pd(self, j: int, points: np.ndarray) -> np.ndarray:
        """``PD_j(v)`` for each point: ``(u, m)``."""
        if self.tree is None:
            return np.asarray(self.ice(j, points).mean(axis=0))
        average = self._recursion([j], {j: points})["average"]
        return np.moveaxis(np.asarray(average, dtype=np.float64), 0, -1)

    def pd2(self, a: int, b: int, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
        """``PD_ab(u, v)`` over the grid product ``ga x gb``: ``(ga, gb, m)``."""
        if self.tree is not None:
            average = self._recursion([a, b], {a: ga, b: gb})["average"]
            return np.moveaxis(np.asarray(average, dtype=np.float64), 0, -1)
        pairs = np.stack(np.meshgrid(ga, gb, indexing="ij"), axis=-1).reshape(-1, 2)
        return np.asarray(self._brute([a, b], pairs).mean(axis=0).reshape(ga.size, gb.size, -1))

    def _recursion(self, features: list[int], grids: dict[int, np.ndarray]) -> Any:
        """scikit-learn's tree traversal at the given grid values (``[a, b]``: a pair)."""
        from sklearn.inspection import partial_dependence

        rows = np.asarray(self.rows, dtype=np.float64)
        return partial_dependence(self.tree, rows, features, method="recursion",
                                  custom_values=grids, kind="average")

    def _brute(self, columns: list[int], values: np.ndarray) -> np.ndarray:
        n, u = self.rows.shape[0], values.shape[0]
        parts = []
        for points in row_blocks(u, self.max_batch, n):
            block = values[points]
            batch = np.repeat(self.rows[None], block.shape[0], axis=0)
            for c, j in enumerate(columns):
                batch[:, :, j] = block[:, c, None]
            out = self.model.predict(batch.reshape(-1, *self.rows.shape[1:]))
            parts.append(out.reshape(block.shape[0], n, -1))
        return np.asarray(np.concatenate(parts, axis=0).transpose(1, 0, 2))


def column(rows: np.ndarray, j: int) -> np.ndarray:
    """Feature ``j`` of ``rows`` as floats (curves need numeric features)."""
    try:
        return np.asarray(rows[:, j], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"feature {j} is not numeric; partial dependence needs numbers "
                         "(encode categories as numbers and list them in "
                         "categorical_features)") from None


def mquantiles(x: np.ndarray, probs: tuple[float, float]) -> np.ndarray:
    """Quantiles with plotting positions ``alphap = betap = 0.4`` (as scipy's mquantiles)."""
    data = np.sort(x[np.isfinite(x)])
    n = data.size
    p = np.asarray(probs, dtype=np.float64)
    aleph = n * p + 0.4 + p * (1.0 - 0.4 - 0.4)
    k = np.floor(np.clip(aleph, 1, n - 1)).astype(np.int64)
    gamma = np.clip(aleph - k, 0, 1)
    return np.asarray((1.0 - gamma) * data[k - 1] + gamma * data[k])


def feature_grid(values: np.ndarray, resolution: int, percentiles: tuple[float, float],
                 categorical: bool, j: int) -> np.ndarray:
    """scikit-learn's grid rule: unique values, or evenly spaced between percentiles."""
    uniques = np.unique(values)
    if categorical or uniques.size < resolution:
        return uniques
    low, high = mquantiles(values, percentiles)
    if np.allclose(low, high):
        raise InputError(f"feature {j}: percentiles {percentiles} give the same value {low}; "
                         "choose percentiles further apart")
    return np.linspace(low, high, num=resolution, endpoint=True)


def padded(grids: list[np.ndarray]) -> np.ndarray:
    """Grids of unequal lengths as one ``(len(grids), g)`` array padded with NaN."""
    out = np.full((len(grids), max((g.size for g in grids), default=0)), np.nan)
    for i, grid in enumerate(grids):
        out[i, : grid.size] = grid
    return out


def recursion_estimator(model: Model) -> Any:
    """The scikit-learn tree model whose ``method="recursion"`` PD is this model's, or None."""
    estimator = getattr(model, "estimator", None)
    if (model.adapter != "sklearn" or estimator is None or getattr(model, "columns", None)
            or getattr(model, "log_odds", False)):
        return None
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeRegressor

    method = getattr(model, "method", "")
    regressors = (DecisionTreeRegressor, RandomForestRegressor, HistGradientBoostingRegressor)
    if isinstance(estimator, regressors) and method == "predict":
        return estimator
    if isinstance(estimator, HistGradientBoostingClassifier) and method == "decision_function":
        return estimator
    return None
