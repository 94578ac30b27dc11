"""An example xaudit plugin: one explainer and one check, registered through xaudit's hooks.

``example.gradient_free_sensitivity``
    Central finite differences of the model output, one feature at a time::

        phi_i(x, c) = (f_c(x + h_i e_i) - f_c(x - h_i e_i)) / (2 h_i)

    with a step ``h_i = max(relative_step * std_i, min_step)`` where ``std_i`` is feature
    ``i``'s standard deviation over the background rows. It estimates the gradient without
    needing one (any model with a ``predict`` will do): exact for models that are linear or
    quadratic in each feature, off by ``h_i**2 / 6 * f'''`` otherwise. Gradients as local
    explanations: Baehrens et al. 2010, "How to Explain Individual Classification Decisions"
    (JMLR 11), and Simonyan et al. 2014, "Deep Inside Convolutional Networks" (saliency maps).
    Cost: ``2 d`` model evaluations per row for ``d`` features.

``example.sparsity``
    The Gini index of ``|phi(x, c)|`` over the features of each row and targeted output, as
    Chalasani et al. 2020, "Concise Explanations of Neural Networks using Adversarial Training"
    (ICML), use to measure how concise an explanation is (the index itself: Hurley and Rickard
    2009, "Comparing Measures of Sparsity"). With ``c_(1) <= ... <= c_(d)`` sorted::

        G(c) = sum_k (2k - d - 1) c_(k) / (d * sum_k c_(k))

    ``G = 0`` when every feature carries the same weight, ``G = 1 - 1/d`` when one feature
    carries everything; an all-zero row scores 0. Higher is sparser, so ``direction`` is
    ``"higher"``.

The module is the plugin: ``pyproject.toml`` points the ``xaudit`` entry-point group at it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from xaudit import (
    Attribution,
    Check,
    CheckOutcome,
    Explainer,
    InputError,
    PluginParams,
    hookimpl,
)

if TYPE_CHECKING:
    from xaudit import Dataset, Explanation, Model
    from xaudit.registry import Registry
    from xaudit.targets import TargetSelection

__version__ = "0.1.0"


class SensitivityParams(PluginParams):
    """Parameters of ``example.gradient_free_sensitivity`` (unknown fields are errors)."""

    relative_step: float = Field(1e-3, gt=0.0, le=1.0)
    """Half-width of the difference, as a fraction of the feature's background std."""
    min_step: float = Field(1e-8, gt=0.0)
    """Smallest step, used for features that are constant in the background."""
    max_batch: int = Field(65_536, gt=0)
    """Largest number of rows in one model call."""


class GradientFreeSensitivity(Explainer):
    """Central finite-difference sensitivity of each targeted output to each feature."""

    name = "example.gradient_free_sensitivity"
    summary = "Central finite differences of the output per feature (a gradient without autograd)."
    description = (  # the report's definition paragraph: plain text, about this method only
        "For each feature i, (f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i): the slope of the "
        "explained output along that feature, estimated from two model calls, with a step h_i "
        "proportional to the feature's standard deviation over the background rows. Exact for "
        "models linear or quadratic in each feature; it needs no gradient, only predictions.")
    paper = ("Baehrens et al. 2010, How to Explain Individual Classification Decisions; "
             "Simonyan et al. 2014, Deep Inside Convolutional Networks")
    limitations = (
        "A local slope, not a share of the output: values do not add up to f(x) - f(baseline).",
        "Piecewise-constant models (trees) give zeros or spikes, depending on whether a split "
        "falls within one step of the row.",
    )
    Params = SensitivityParams
    params: SensitivityParams
    needs_background = True

    def explain(
        self,
        model: Model,
        X: np.ndarray,
        *,
        background: np.ndarray | None,
        targets: TargetSelection,
        rng: np.random.Generator,
    ) -> Attribution:
        """Slopes ``(n, *feature_shape, k)``; no base value (the method defines none)."""
        if background is None:
            raise InputError(f"{self.name} needs a background to scale its steps")
        n, shape = X.shape[0], X.shape[1:]
        flat = np.asarray(X, dtype=np.float64).reshape(n, -1)
        d = flat.shape[1]
        spread = np.asarray(background, dtype=np.float64).reshape(len(background), -1).std(axis=0)
        steps = np.maximum(self.params.relative_step * spread, self.params.min_step)
        shift = np.diag(steps)  # shift[i] moves feature i by its step
        rows_per_call = max(1, self.params.max_batch // (2 * d))
        slopes = []
        for start in range(0, n, rows_per_call):
            block = flat[start:start + rows_per_call]
            plus = block[:, None, :] + shift  # (r, d, d): row r with feature i stepped up
            minus = block[:, None, :] - shift
            stacked = np.concatenate([plus, minus], axis=1).reshape(-1, *shape)
            out = model.predict(stacked).reshape(block.shape[0], 2, d, -1)
            # divide by the step actually taken after rounding, not the nominal 2 h
            taken = np.diagonal(plus, axis1=1, axis2=2) - np.diagonal(minus, axis1=1, axis2=2)
            slopes.append((out[:, 0] - out[:, 1]) / taken[:, :, None])
        slope = np.concatenate(slopes, axis=0)  # (n, d, n_model_outputs)
        index = np.repeat(targets.indices[:, None, :], d, axis=1)
        values = np.take_along_axis(slope, index, axis=2).reshape(n, *shape, targets.n_slots)
        return Attribution(
            values=values,
            extras={"steps": steps.reshape(shape)},
            metadata={"relative_step": self.params.relative_step, "model_calls_per_row": 2 * d},
        )


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


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``example.gradient_free_sensitivity``."""
    registry.add(GradientFreeSensitivity)


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``example.sparsity``."""
    registry.add(Sparsity)
