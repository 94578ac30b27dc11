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

from xaudit.batching import predict_batched
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
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
        n, shape = X.shape[0], X.shape[1:]
        flat_x = X.reshape(n, -1)
        flat_refs = references.reshape(references.shape[0], -1)
        d, n_refs = flat_x.shape[1], flat_refs.shape[0]
        base = predict_batched(model, references, params.max_batch).mean(axis=0)
        full = predict_batched(model, X, params.max_batch)
        rows_per_block = max(1, params.max_batch // max(1, d * n_refs))
        ablated_mean = np.empty((n, d, full.shape[1]))
        feature = np.arange(d)
        for start in range(0, n, rows_per_block):
            block = flat_x[start:start + rows_per_block]
            # perturbed[r, i, b] = block[r] with feature i replaced by reference b's value
            perturbed = np.repeat(block[:, None, None, :], d, axis=1).repeat(n_refs, axis=2)
            perturbed[:, feature, :, feature] = flat_refs.T[feature][:, None, :]
            preds = predict_batched(
                model, perturbed.reshape(-1, *shape), params.max_batch
            ).reshape(block.shape[0], d, n_refs, -1)
            ablated_mean[start:start + block.shape[0]] = preds.mean(axis=2)
        deltas = full[:, None, :] - ablated_mean  # (n, d, m)
        index = targets.indices[:, None, :].repeat(d, axis=1)
        values = np.take_along_axis(deltas, index, axis=2).reshape(n, *shape, targets.n_slots)
        base_values = np.broadcast_to(base, full.shape)
        return Attribution(
            values=values,
            base_values=targets.take(np.ascontiguousarray(base_values)),
            metadata={"baseline": params.baseline, "n_references": int(n_refs)},
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
