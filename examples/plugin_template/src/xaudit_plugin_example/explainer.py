"""``example.gradient_free_sensitivity``: central finite differences of the model output.

For each feature ``i`` of a row ``x`` and each targeted output ``c``::

    phi_i(x, c) = (f_c(x + h_i e_i) - f_c(x - h_i e_i)) / (2 h_i)

with a step ``h_i = max(relative_step * std_i, min_step)`` where ``std_i`` is feature ``i``'s
standard deviation over the background rows. It estimates the gradient without needing one (any
model with a ``predict`` will do): exact for models that are linear or quadratic in each
feature, off by ``h_i**2 / 6 * f'''`` otherwise. Gradients as local explanations: Baehrens et
al. 2010, "How to Explain Individual Classification Decisions" (JMLR 11), and Simonyan et al.
2014, "Deep Inside Convolutional Networks" (saliency maps). Cost: ``2 d`` model evaluations per
row for ``d`` features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field
from xaudit import Attribution, Explainer, InputError, PluginParams

if TYPE_CHECKING:
    from xaudit import Model
    from xaudit.targets import TargetSelection


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
