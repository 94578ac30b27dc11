"""Feature ablation: how much the output moves when one feature is replaced by a reference.

For row ``x``, feature ``i`` and references ``b`` (the background rows, their mean, or zero),
``phi_i(x) = f(x) - E_b[f(x with x_i := b_i)]`` and the base value is ``E_b[f(b)]``. For a model
additive in its features these values are exactly the interventional Shapley values, and they
sum to ``f(x) - E_b[f(b)]``; for other models the sum differs, and the ``completeness`` check
measures by how much. This is the occlusion / leave-one-covariate-out idea (Zeiler and Fergus,
2014, "Visualizing and Understanding Convolutional Networks"; Lei et al., 2018, "Distribution-Free
Predictive Inference for Regression", LOCO).

Cost: ``d * B + B + 1`` model evaluations per row for ``d`` features and ``B`` references,
evaluated in calls of at most ``max_batch`` rows.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins.perturbation.leave_one_out import leave_one_out
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class AblationParams(PluginParams):
    """Parameters of ``ablation``."""

    baseline: Literal["background", "mean", "zero"] = "background"
    """Replace a feature by each background row's value (averaged), the background mean, or 0."""
    max_batch: int = Field(65_536, gt=0)
    """Largest number of rows in one model call."""


class FeatureAblation(Explainer):
    """Replace one feature at a time by reference values and measure the change in output."""

    name = "ablation"
    row_parallel = True
    summary = "Feature ablation against a background (leave-one-feature-out)."
    description = (
        "For row x, feature i and reference rows b (the background rows, their mean, or zeros), "
        "the value is f(x) - E_b[f(x with x_i := b_i)]: how much the output falls when that "
        "feature alone takes the reference values. The base value is E_b[f(b)]. For a model "
        "additive in its features the values equal the interventional Shapley values and add up "
        "to f(x) - E_b[f(b)]; for other models their sum can differ from it.")
    paper = ("Zeiler and Fergus 2014, Visualizing and Understanding Convolutional Networks; "
             "Lei et al. 2018, Distribution-Free Predictive Inference for Regression (LOCO)")
    limitations = (
        "Measures one feature at a time: interactions are not shared out, so attributions do "
        "not sum to the output unless the model is additive.",
        "Replacing a feature independently of the others can create unrealistic rows when "
        "features are correlated.",
    )
    Params = AblationParams
    params: AblationParams
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
        """Ablation values ``(n, *feature_shape, k)`` and base values ``E_b[f(b)]``."""
        params = self.params
        references = _references(params.baseline, background, X)
        values, base_values = leave_one_out(model, X, references, targets, params.max_batch)
        return Attribution(
            values=values,
            base_values=base_values,
            metadata={"baseline": params.baseline, "n_references": int(references.shape[0])},
            handoff=Handoff(marginal=True),
        )


def _references(kind: str, background: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    if kind == "zero":
        return np.zeros((1, *X.shape[1:]), dtype=X.dtype)
    if background is None:
        raise InputError(f"ablation with baseline {kind!r} needs a background")
    if kind == "mean":
        return np.asarray(np.asarray(background, dtype=np.float64).mean(axis=0, keepdims=True))
    return np.asarray(background)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``ablation``."""
    registry.add(FeatureAblation)
