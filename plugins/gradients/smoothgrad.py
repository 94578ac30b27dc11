"""SmoothGrad, SmoothGrad-squared and VarGrad: a gradient method averaged over noisy copies.

Smilkov, Thorat, Kim, Viegas and Wattenberg 2017, "SmoothGrad: removing noise by adding noise":
``SG(x) = 1/N sum_s E(x + eps_s)`` with ``eps_s ~ N(0, sigma^2)`` and ``E`` a base attribution
(saliency, input x gradient or Integrated Gradients); the noise level is given as a fraction of
the input's range, ``sigma = noise_level * (max(x) - min(x))`` per row. SmoothGrad-squared
averages ``E^2`` (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep Neural
Networks"); VarGrad is the variance of ``E`` over the noisy copies (Adebayo et al. 2018,
"Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values").

Each row's noise comes from its own seed (drawn from the explainer's ``rng``), so results do not
depend on ``max_batch``. ``std_errors`` holds the standard error of each value over the samples:
``std / sqrt(N)`` for the two means, and for VarGrad the asymptotic standard error of a variance,
``sqrt((m4 - var^2) / N)`` with ``m4`` the fourth central moment.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import DifferentiableModel, Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    float_inputs,
    input_gradients,
    input_tensor,
    require_torch,
    target_index,
    to_numpy,
)
from xaudit.plugins._support.pass_size import forward_rows
from xaudit.plugins._support.paths import (
    PathMethod,
    integrated_gradients,
    row_noise,
    row_seeds,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

Base = Literal["saliency", "input_x_gradient", "integrated"]
Variant = Literal["smoothgrad", "smoothgrad_sq", "vargrad"]


class SmoothGradParams(PluginParams):
    """Parameters of ``gradient.smoothgrad``."""

    variant: Variant = "smoothgrad"
    """smoothgrad (mean), smoothgrad_sq (mean of squares) or vargrad (variance)."""
    base: Base = "saliency"
    """The attribution averaged over noisy inputs: saliency (gradient), input_x_gradient or
    integrated (Integrated Gradients from a zero baseline)."""
    n_samples: int = Field(50, ge=2, le=10_000)
    """Noisy copies per row."""
    noise_level: float = Field(0.15, ge=0)
    """Noise standard deviation as a fraction of each row's range, max(x) - min(x)."""
    stdev: float | None = Field(None, ge=0)
    """Absolute noise standard deviation, the same for every row (overrides noise_level)."""
    absolute: bool = False
    """For base saliency: average |gradient| instead of the signed gradient."""
    path_method: PathMethod = "gausslegendre"
    """For base integrated: the path quadrature."""
    n_steps: int = Field(20, ge=1, le=100_000)
    """For base integrated: points on each path."""
    max_batch: int | None = Field(None, gt=0)
    """Most inputs (noisy copies, times path points for integrated) per forward/backward.
    Default: sized to the model and machine (as gradient.integrated)."""


def base_attributions(model: DifferentiableModel, x: Any, index: Any,
                      p: SmoothGradParams) -> Any:
    """The base attribution ``(k, m, *shape)`` of the rows of ``x`` for the slots of ``index``."""
    if p.base == "integrated":
        zero = x.new_zeros((1, *x.shape[1:]))
        return integrated_gradients(model, x, zero, index, p.path_method, p.n_steps, p.max_batch)
    grads = input_gradients(model, x, index, p.max_batch)
    if p.base == "input_x_gradient":
        return grads.mul_(x.unsqueeze(0))
    return grads.abs_() if p.absolute else grads


def noise_stdevs(x: Any, p: SmoothGradParams) -> list[float]:
    """Per-row noise standard deviation."""
    if p.stdev is not None:
        return [float(p.stdev)] * int(x.shape[0])
    flat = x.reshape(x.shape[0], -1)
    spread = (flat.amax(dim=1) - flat.amin(dim=1)).double() * p.noise_level
    return [float(v) for v in spread.tolist()]


def reduce_samples(samples: Any, variant: str) -> tuple[Any, Any]:
    """``samples (k, r, N, *shape)`` -> (value, standard error), each ``(k, r, *shape)``."""
    n = samples.shape[2]
    if variant == "smoothgrad_sq":
        samples = samples * samples
    mean = samples.mean(dim=2)
    centered = samples - mean.unsqueeze(2)
    second = (centered * centered).mean(dim=2)
    if variant != "vargrad":
        return mean, (second * (n / (n - 1))).sqrt_().div_(math.sqrt(n))
    fourth = (centered ** 4).mean(dim=2)
    return second, (fourth - second * second).clamp_(min=0).div_(n).sqrt_()


class SmoothGrad(Explainer):
    """A gradient attribution averaged over Gaussian-noised copies of the input."""

    name = "gradient.smoothgrad"
    row_parallel = True
    summary = "SmoothGrad / SmoothGrad-squared / VarGrad over noisy copies of the input."
    description = (
        "Averages a base attribution (saliency, input x gradient or integrated gradients) over "
        "noisy copies x + e of the row, with e drawn from a normal distribution whose standard "
        "deviation is a fraction of the row's value range. The squared variant averages the "
        "squared attributions; VarGrad reports their variance over the noisy copies.")
    paper = ("Smilkov et al. 2017, SmoothGrad: removing noise by adding noise; "
             "Adebayo et al. 2018, Local Explanation Methods for Deep Neural Networks Lack "
             "Sensitivity to Parameter Values (VarGrad); Hooker et al. 2019 (SmoothGrad-squared)")
    limitations = (
        "Stochastic: values carry sampling error (std_errors); more samples shrink it.",
        "The noise level is relative to each row's range: on tabular rows with features on "
        "different scales, standardise the features or give an absolute stdev.",
        "smoothgrad_sq and vargrad are unsigned: they rank importance, not direction.",
    )
    Params = SmoothGradParams
    params: SmoothGradParams
    requires = frozenset({"gradients"})
    modalities = frozenset({"tabular", "image", "sequence"})
    stochastic = True
    default_target = "predicted"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Smoothed values ``(n, *shape, k)`` with per-value standard errors."""
        torch = require_torch(self.name)
        p = self.params
        net = float_inputs(model, self.name)
        x = input_tensor(net, X)
        n, shape, k, n_samples = int(x.shape[0]), tuple(x.shape[1:]), targets.n_slots, p.n_samples
        index = target_index(targets, slice(None), x.device)
        seeds, stdevs = row_seeds(rng, n), noise_stdevs(x, p)
        values = torch.empty((k, n, *shape), dtype=x.dtype, device=x.device)
        errors = torch.empty_like(values)
        for rows in row_blocks(n, forward_rows(p.max_batch, shape), n_samples):
            noisy = torch.stack([x[r] + row_noise(int(seeds[r]), (n_samples, *shape), stdevs[r], x)
                                 for r in range(rows.start, rows.stop)])
            count = rows.stop - rows.start
            attributions = base_attributions(
                net, noisy.reshape(count * n_samples, *shape),
                index[rows].repeat_interleave(n_samples, dim=0), p)
            value, error = reduce_samples(
                attributions.view(k, count, n_samples, *shape), p.variant)
            values[:, rows], errors[:, rows] = value, error
        return Attribution(
            values=to_numpy(values.movedim(0, -1)), std_errors=to_numpy(errors.movedim(0, -1)),
            extras={"noise_stdev": np.asarray(stdevs, dtype=np.float64)},
            metadata={"variant": p.variant, "base": p.base, "n_samples": n_samples})


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``gradient.smoothgrad``."""
    registry.add(SmoothGrad)
