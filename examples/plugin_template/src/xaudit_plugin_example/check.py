"""``example.sparsity``: how concise an explanation is, as the Gini index of its magnitudes.

The Gini index of ``|phi(x, c)|`` over the features of each row and targeted output, as
Chalasani et al. 2020, "Concise Explanations of Neural Networks using Adversarial Training"
(ICML), use to measure conciseness (the index itself: Hurley and Rickard 2009, "Comparing
Measures of Sparsity"). With ``c_(1) <= ... <= c_(d)`` sorted::

    G(c) = sum_k (2k - d - 1) c_(k) / (d * sum_k c_(k))

``G = 0`` when every feature carries the same weight, ``G = 1 - 1/d`` when one feature carries
everything; an all-zero row scores 0. Higher is sparser, so ``direction`` is ``"higher"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from xaudit import Check, CheckOutcome, PluginParams

if TYPE_CHECKING:
    from xaudit import Dataset, Explanation, Model


def gini_index(magnitudes: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gini index of non-negative ``magnitudes`` along ``axis`` (0 for an all-zero vector)."""
    c = np.sort(np.moveaxis(np.asarray(magnitudes, dtype=np.float64), axis, -1), axis=-1)
    d = c.shape[-1]
    weights = 2.0 * np.arange(1, d + 1) - d - 1.0
    total = c.sum(axis=-1)
    weighted = (c * weights).sum(axis=-1)
    return np.asarray(np.divide(weighted, d * total, out=np.zeros_like(total), where=total > 0))


class SparsityParams(PluginParams):
    """Parameters of ``example.sparsity``."""

    aggregate: Literal["mean", "min"] = "mean"
    """How per-row indices become the gated value: their mean, or the least sparse row."""


class Sparsity(Check):
    """Gini index of |attributions| per row (mean over targeted outputs); higher is sparser."""

    name = "example.sparsity"
    summary = "Conciseness: Gini index of |attributions| over the features of each row."
    description = (
        "The Gini index of the absolute attributions over the features of each row and "
        "explained output: 0 when every feature carries the same weight, 1 - 1/d when one "
        "feature carries everything. The gated value is the mean over rows (or the least "
        "sparse row); higher is sparser.")
    paper = ("Chalasani et al. 2020, Concise Explanations of Neural Networks using Adversarial "
             "Training; Hurley and Rickard 2009, Comparing Measures of Sparsity")
    Params = SparsityParams
    params: SparsityParams
    direction = "higher"

    def run(
        self,
        model: Model,
        explanation: Explanation,
        data: Dataset,
        rng: np.random.Generator,
    ) -> CheckOutcome:
        """Per-row Gini indices and their aggregate; the model is not called."""
        values = np.abs(explanation.values)
        n, k = values.shape[0], values.shape[-1]
        per_output = gini_index(values.reshape(n, -1, k), axis=1)  # (n, k)
        per_row = per_output.mean(axis=1)
        value = per_row.mean() if self.params.aggregate == "mean" else per_row.min()
        return CheckOutcome(
            value=float(value),
            values=per_row,
            details={
                "aggregate": self.params.aggregate,
                "least_sparse_row": int(per_row.argmin()),
                "n_features": int(values[0, ..., 0].size),
            },
        )
