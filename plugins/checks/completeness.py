"""Completeness (local accuracy): do the attributions add up to the model output?

For row ``x`` and targeted output ``c``:
``err(x, c) = |sum_i phi_i(x, c) + phi_0(x, c) - f_c(x)|``, where ``phi_0`` is the explanation's
base value. SHAP values satisfy it by construction (Lundberg and Lee 2017, "A Unified Approach
to Interpreting Model Predictions", property 1), as do Integrated Gradients up to the path
integral's error (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks",
completeness axiom) and DeepLIFT (Shrikumar et al. 2017, summation-to-delta).

With ``relative: true`` each error is divided by ``|f_c(x) - phi_0(x, c)|`` (floored at
``1e-12``), so the gate reads as a fraction of the change being explained. Rows whose
attributions or base values are not finite, or no rows at all, make the value NaN, which fails
every gate (:mod:`xaudit.plugins.checks.undefined`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from xaudit.data import Dataset
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Check, CheckOutcome, PluginParams
from xaudit.plugins.checks.undefined import Undefined
from xaudit.registry import Registry


class CompletenessParams(PluginParams):
    """Parameters of ``completeness``."""

    aggregate: Literal["max", "mean"] = "max"
    """How per-row errors become the gated value."""
    relative: bool = False
    """Divide each error by the size of the change being explained."""


class Completeness(Check):
    """|sum of attributions + base value - model output|, per row and targeted output."""

    name = "completeness"
    summary = "Local accuracy: attributions plus base value equal the model output."
    description = (
        "For each row and explained output, the absolute difference between the model's output "
        "and the base value plus the sum of the attributions, |sum_i phi_i(x) + phi_0(x) - f(x)|, "
        "optionally relative to |f(x) - phi_0(x)|. The gated value is its maximum (or mean) over "
        "rows and outputs; lower is better. Methods that claim local accuracy (SHAP values, "
        "integrated gradients up to the path integral's error, DeepLIFT) should give zero up to "
        "numerical error.")
    paper = "Lundberg and Lee 2017; Sundararajan et al. 2017 (completeness axiom)"
    Params = CompletenessParams
    params: CompletenessParams
    direction = "lower"

    def run(
        self,
        model: Model,
        explanation: Explanation,
        data: Dataset,
        rng: np.random.Generator,
    ) -> CheckOutcome:
        """Per-row errors (max over targeted outputs) and their aggregate."""
        if explanation.base_values is None:
            raise InputError(
                f"completeness needs base values, and {explanation.method!r} gives none"
            )
        outputs = model.predict(explanation.inputs)
        targeted = np.take_along_axis(outputs, explanation.target_indices, axis=1)
        feature_axes = tuple(range(1, explanation.values.ndim - 1))
        total = explanation.values.sum(axis=feature_axes) + explanation.base_values
        errors = np.abs(total - targeted)
        if self.params.relative:
            errors = errors / np.maximum(np.abs(targeted - explanation.base_values), 1e-12)
        per_row = errors.max(axis=1)
        undefined = Undefined(explanation.n_rows)
        undefined.not_finite("the attributions", explanation.values)
        undefined.not_finite("the base values", explanation.base_values)
        outcome = undefined.outcome(per_row, reduce=self.params.aggregate, details={
            "relative": self.params.relative,
            "method_claims_completeness": explanation.additive,
        })
        finite = np.flatnonzero(np.isfinite(per_row))
        if finite.size:
            outcome.details.update({"max_error": float(per_row[finite].max()),
                                    "mean_error": float(per_row[finite].mean()),
                                    "worst_row": int(finite[per_row[finite].argmax()])})
        return outcome


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register ``completeness``."""
    registry.add(Completeness)
