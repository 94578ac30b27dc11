"""Perturbation checks: faithfulness correlation, infidelity, max- and avg-sensitivity.

- ``faithfulness_correlation`` (Bhatt et al. 2020, "Evaluating and Aggregating Feature-based
  Model Explanations", IJCAI): for ``n_runs`` random subsets ``S`` of ``subset_size`` features,
  the Pearson correlation between ``sum_{i in S} phi_i`` and ``f(x) - f(x with x_S := fill)``;
  mean over rows (higher is better). As Quantus' ``FaithfulnessCorrelation`` with
  ``normalise=False`` (Pearson ignores a positive rescaling, so Quantus' default max-normalising
  gives the same number) and ``abs=False``.
- ``infidelity`` (Yeh et al. 2019, "On the (In)fidelity and Sensitivity of Explanations",
  NeurIPS): ``E_I[(I . phi - (f(x) - f(x - I)))^2]`` over ``n_samples`` perturbations ``I``
  (Gaussian noise of std ``noise``, or ``x - fill`` on a random ``subset_size`` subset);
  lower is better. **Scale.** The raw value depends on the attributions' scale, which is why
  Captum users see "wrong" numbers for methods that are faithful only up to a factor
  (Captum#613). With ``normalize: true`` (default) each row's attributions are multiplied by the
  optimal ``beta = E[(I.phi)(Df)] / E[(I.phi)^2]`` first, as Yeh et al. do when comparing
  methods and as Captum's ``normalize=True`` does; the betas are recorded in details. Captum's
  ``infidelity(..., normalize=...)`` gives the same values on the same perturbations.
- ``max_sensitivity`` / ``avg_sensitivity`` (Yeh et al. 2019): over ``n_samples`` draws
  ``delta ~ U(-radius, radius)^d``, ``||Phi(x + delta) - Phi(x)||`` (Frobenius, per targeted
  output), its maximum or mean per row; mean over rows; lower is better. With ``relative: true``
  (default) each norm is divided by ``||Phi(x)||`` (1 when that is 0), as Captum's
  ``sensitivity_max`` and Quantus' ``MaxSensitivity``/``AvgSensitivity`` do; Yeh et al.'s
  definition is the absolute one (``relative: false``). Perturbed rows keep the original rows'
  targeted outputs. The perturbed rows are re-explained with the same method, params and seed.

Undefined values (:mod:`xaudit.plugins.checks.undefined`): the gated value is NaN, failing
every gate, with the rows and the reason in ``details["undefined"]``, when on some row the
attributions are not finite; for ``faithfulness_correlation``, when the subset sums are constant
(a constant map) or the output drops are (a model that does not react to the removals): a
Pearson correlation with a constant is undefined, and Quantus reports NaN there too; for the
sensitivities with ``relative: true``, when the attributions are zero (a change relative to
zero), or when a re-explanation is not finite. ``infidelity`` is defined for a zero map (it
is then ``E[(f(x) - f(x - I))^2]``, with ``beta`` taken as 1 where ``E[(I . phi)^2] = 0``, which
gives Captum's value). ``subset_size`` is checked before any model call: at most the number of
features ``d`` for ``infidelity``, below ``d`` for ``faithfulness_correlation`` (all ``d``
features in every subset would make every subset the same).

Random draws, so other implementations can be fed identical ones: per row block ``b`` (rows in
order), ``faithfulness_correlation`` draws ``rng.random((b, n_runs, d))`` and takes each row's
``argsort(...)[:subset_size]`` as subsets, after a fill draw for ``removal: background``;
``infidelity`` draws ``rng.standard_normal((b, n_samples, *shape)) * noise`` (or subsets as
above); the sensitivities draw ``rng.uniform(-radius, radius, (b, n_samples, *shape))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.data import Dataset
from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Check, CheckOutcome, PluginParams
from xaudit.plugins._support.removal import fill_values, output_drops
from xaudit.plugins._support.statistics import pearson_rows
from xaudit.plugins.checks.cost import Cost
from xaudit.plugins.checks.explained import local_rows, per_slot, reexplainer
from xaudit.plugins.checks.undefined import Undefined, constant
from xaudit.registry import Registry


class FaithfulnessCorrelationParams(PluginParams):
    """Parameters of ``faithfulness_correlation``."""

    n_runs: int = Field(100, ge=2, le=100_000)
    """Random subsets per row."""
    subset_size: int = Field(2, ge=1)
    """Features replaced per subset; below the number of features (refused otherwise)."""
    removal: Literal["baseline", "mean", "background"] = "baseline"
    """Fill of the subset: ``baseline_value``, background mean, or one background row."""
    baseline_value: float = 0.0
    """The fill for ``removal: baseline``."""
    max_batch: int = Field(8192, ge=1)
    """Largest number of rows in one model call."""


def random_subsets(rng: np.random.Generator, b: int, runs: int, d: int, size: int) -> np.ndarray:
    """Masks ``(b, runs, d)``: each run's ``size`` features (``argsort`` of uniform keys)."""
    keys = rng.random((b, runs, d))
    chosen = np.argsort(keys, axis=-1)[..., :size]
    mask = np.zeros((b, runs, d), dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=-1)
    return mask


def subset_size(check: str, size: int, d: int, *, below: bool) -> None:
    """Refuse, before any work, a ``subset_size`` the explanation's ``d`` features cannot
    hold: above ``d`` or, with ``below`` (the subsets must differ from each other), ``d``."""
    limit = d - 1 if below else d
    if size <= limit:
        return
    problem = (f"is larger than the explanation's {d} features" if size > d else
               f"takes all of the explanation's {d} features, so every subset is the same and "
               "the correlation is undefined")
    advice = (f"choose subset_size between 1 and {limit}" if limit >= 1 else
              "it needs at least two features")
    raise InputError(f"{check}: subset_size {size} {problem}; {advice}")


class FaithfulnessCorrelation(Check):
    """Correlation of subset attribution sums with the output drop when the subset is removed."""

    name = "faithfulness_correlation"
    summary = "Pearson correlation of attribution sums with output drops over random subsets."
    description = (
        "For many random subsets S of a few features, the Pearson correlation between the sum of "
        "the attributions over S and the fall of the explained output when the features in S are "
        "set to a fill value (a constant, the background mean or a background row). The gated "
        "value is the mean correlation over rows; higher is better.")
    paper = "Bhatt et al. 2020"
    Params = FaithfulnessCorrelationParams
    params: FaithfulnessCorrelationParams
    direction = "higher"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Per-row correlation (mean over targeted outputs) and its mean."""
        p, cost = self.params, Cost(model)
        X = local_rows(explanation, self.name)
        n, shape = X.shape[0], X.shape[1:]
        d = int(np.prod(shape))
        subset_size(self.name, p.subset_size, d, below=True)
        fill = fill_values(X, p.removal, rng, background=data.background,
                           baseline_value=p.baseline_value).reshape(n, d)
        flat = X.reshape(n, d)
        phi = per_slot(explanation.values)  # (n, k, d)
        corr = np.empty(phi.shape[:2])
        same_sums, same_drops = np.zeros(corr.shape, bool), np.zeros(corr.shape, bool)
        for block in row_blocks(n, p.max_batch, p.n_runs + 1):
            x, f = flat[block], fill[block]
            b = x.shape[0]
            mask = random_subsets(rng, b, p.n_runs, d, p.subset_size)
            rows = np.where(mask, f[:, None], x[:, None]).reshape(-1, *shape)
            drops = output_drops(model, x.reshape(-1, *shape), rows,
                                 explanation.target_indices[block])  # (b, k, runs)
            sums = np.einsum("bkd,brd->bkr", phi[block], mask.astype(np.float64))
            corr[block] = pearson_rows(sums, drops)
            same_sums[block], same_drops[block] = constant(sums), constant(drops)
        undefined = Undefined(n)
        undefined.not_finite("the attributions", phi)
        undefined.add("the attributions' subset sums are constant (a constant map), so their "
                      "correlation is undefined", same_sums)
        undefined.add("the output drops by the same amount for every subset (the model "
                      "ignores the removals here), so the correlation is undefined", same_drops)
        return undefined.outcome(corr.mean(axis=1), {"rows": n, **cost.details()})


class InfidelityParams(PluginParams):
    """Parameters of ``infidelity``."""

    n_samples: int = Field(50, ge=1, le=100_000)
    """Perturbations per row."""
    perturbation: Literal["gaussian", "subset"] = "gaussian"
    """``I`` is Gaussian noise, or ``x - fill`` on a random feature subset."""
    noise: float = Field(0.1, gt=0)
    """Standard deviation of the Gaussian perturbation."""
    subset_size: int = Field(2, ge=1)
    """Features per subset for ``perturbation: subset``; at most the number of features."""
    baseline_value: float = 0.0
    """The fill for ``perturbation: subset``."""
    normalize: bool = True
    """Rescale each row's attributions by the optimal beta first (see the module docstring)."""
    max_batch: int = Field(8192, ge=1)
    """Largest number of rows in one model call."""


class Infidelity(Check):
    """Expected squared error between ``I . phi`` and the output change under perturbation."""

    name = "infidelity"
    summary = "Squared mismatch of attribution-weighted perturbations and output changes."
    description = (
        "The expected squared difference between the attributions weighted by a perturbation I "
        "and the output change it causes, E_I[(I . phi - (f(x) - f(x - I)))^2], over "
        "Gaussian-noise perturbations or random subsets of features set to a fill value. By "
        "default each row's attributions are first rescaled by the factor that minimises this "
        "error, so the value does not depend on the attributions' scale. The gated value is the "
        "mean over rows; lower is better.")
    paper = "Yeh et al. 2019"
    Params = InfidelityParams
    params: InfidelityParams
    direction = "lower"

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Per-row infidelity (mean over targeted outputs) and its mean."""
        p, cost = self.params, Cost(model)
        X = local_rows(explanation, self.name)
        n, shape = X.shape[0], X.shape[1:]
        d = int(np.prod(shape))
        if p.perturbation == "subset":
            subset_size(self.name, p.subset_size, d, below=False)
        phi = per_slot(explanation.values)
        infd, betas = np.empty(phi.shape[:2]), np.ones(phi.shape[:2])
        for block in row_blocks(n, p.max_batch, p.n_samples + 1):
            x = X[block].reshape(-1, d)
            b = x.shape[0]
            if p.perturbation == "gaussian":
                pert = rng.standard_normal((b, p.n_samples, *shape)).reshape(b, p.n_samples, d)
                pert *= p.noise
            else:
                mask = random_subsets(rng, b, p.n_samples, d, p.subset_size)
                pert = np.where(mask, x[:, None] - p.baseline_value, 0.0)
            rows = (x[:, None] - pert).reshape(-1, *shape)
            diff = output_drops(model, X[block], rows,
                                explanation.target_indices[block])  # (b, k, s)
            dots = np.einsum("bkd,bsd->bks", phi[block], pert)
            if p.normalize:
                den = (dots * dots).mean(-1)
                beta = np.where(den > 0, (dots * diff).mean(-1) / np.where(den > 0, den, 1), 1.0)
                dots = dots * beta[..., None]
                betas[block] = beta
            infd[block] = ((dots - diff) ** 2).mean(-1)
        details: dict[str, Any] = {"rows": n, "normalize": p.normalize, **cost.details()}
        if p.normalize:
            details["beta_mean"] = float(betas.mean())
            details["beta"] = betas.mean(axis=1).tolist()
        undefined = Undefined(n)
        undefined.not_finite("the attributions", phi)
        return undefined.outcome(infd.mean(axis=1), details)


class SensitivityParams(PluginParams):
    """Parameters of ``max_sensitivity`` and ``avg_sensitivity``."""

    n_samples: int = Field(10, ge=1, le=10_000)
    """Perturbed copies per row (each is re-explained)."""
    radius: float = Field(0.02, gt=0)
    """Half-width of the uniform noise (an L-infinity ball)."""
    relative: bool = True
    """Divide by ``||Phi(x)||`` (Captum, Quantus); ``false`` is Yeh et al.'s absolute form."""
    max_rows: int = Field(4096, ge=1)
    """Largest number of perturbed rows re-explained at once."""


class _Sensitivity(Check):
    Params = SensitivityParams
    params: SensitivityParams
    direction = "lower"
    reduce = "max"
    conformance_opt_outs: ClassVar[Mapping[str, str]] = {
        "direction_prefers_the_exact_explanation": (
            "a robustness measure, not a faithfulness one: an explanation that ignores the "
            "input does not change under noise, so it scores best"),
    }

    def run(self, model: Model, explanation: Explanation, data: Dataset,
            rng: np.random.Generator) -> CheckOutcome:
        """Per-row sensitivity (mean over targeted outputs) and its mean."""
        p, cost = self.params, Cost(model)
        reexplain = reexplainer(self, self.name)
        X = local_rows(explanation, self.name)
        n, shape = X.shape[0], X.shape[1:]
        phi = per_slot(explanation.values)  # (n, k, d)
        norms = np.linalg.norm(phi, axis=-1)
        undefined = Undefined(n)
        undefined.not_finite("the attributions", phi)
        if p.relative:
            undefined.add("the attributions are zero, so a change relative to them is "
                          "undefined (relative: false measures the absolute change)", norms == 0)
        norms = np.where(norms == 0, 1.0, norms) if p.relative else np.ones_like(norms)
        sens = np.empty(phi.shape[:2])
        again_finite = np.ones(n, dtype=bool)
        for block in row_blocks(n, p.max_rows, p.n_samples):
            x = X[block]
            b = x.shape[0]
            delta = rng.uniform(-p.radius, p.radius, (b, p.n_samples, *shape))
            rows = (x[:, None] + delta).reshape(-1, *shape)
            idx = np.repeat(explanation.target_indices[block], p.n_samples, axis=0)
            again = per_slot(cost.reexplain(reexplain, rows, idx)).reshape(
                b, p.n_samples, *phi.shape[1:])
            again_finite[block] = np.isfinite(again).reshape(b, -1).all(axis=1)
            dist = np.linalg.norm(again - phi[block][:, None], axis=-1) / norms[block][:, None]
            sens[block] = dist.max(axis=1) if self.reduce == "max" else dist.mean(axis=1)
        undefined.add("the re-explained attributions of the perturbed rows are not finite",
                      ~again_finite)
        return undefined.outcome(sens.mean(axis=1), {
            "rows": n, "relative": p.relative, "radius": p.radius, **cost.details()})


class MaxSensitivity(_Sensitivity):
    """Largest change of the attributions under small uniform input noise."""

    name = "max_sensitivity"
    summary = "Max over small input perturbations of the attributions' change (Yeh et al.)."
    description = (
        "The largest change of the attributions when the row is perturbed by small uniform noise "
        "(each feature within plus or minus radius): the perturbed rows are explained again with "
        "the same method, parameters and seed, and the Frobenius norm of the difference is taken "
        "per explained output, by default relative to the norm of the original attributions. The "
        "gated value is the mean over rows of the largest change; lower is better.")
    paper = "Yeh et al. 2019"
    reduce = "max"


class AvgSensitivity(_Sensitivity):
    """Mean change of the attributions under small uniform input noise."""

    name = "avg_sensitivity"
    summary = "Mean over small input perturbations of the attributions' change (Yeh et al.)."
    description = (
        "The average change of the attributions when the row is perturbed by small uniform noise "
        "(each feature within plus or minus radius): the perturbed rows are explained again with "
        "the same method, parameters and seed, and the Frobenius norm of the difference is taken "
        "per explained output, by default relative to the norm of the original attributions. The "
        "gated value is the mean over rows of the average change; lower is better.")
    paper = "Yeh et al. 2019"
    reduce = "mean"


@hookimpl
def xaudit_register_checks(registry: Registry[Check]) -> None:
    """Register the perturbation checks."""
    for cls in (FaithfulnessCorrelation, Infidelity, MaxSensitivity, AvgSensitivity):
        registry.add(cls)
