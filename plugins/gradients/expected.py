"""Expected gradients (GradientSHAP): Integrated Gradients averaged over background baselines.

Erion, Janizek, Sturmfels, Lundberg and Lee 2021, "Improving performance of deep learning models
with axiomatic attribution priors and expected gradients" (Nature Machine Intelligence):
``phi_i(x) = E_{b ~ D, alpha ~ U(0,1)} [(x_i - b_i) d f(b + alpha (x - b)) / d x_i]``, a Monte
Carlo estimate of the Integrated Gradients averaged over baselines ``b`` drawn from the
background; for a linear model it equals the interventional SHAP values (Lundberg and Lee
2017, "A Unified Approach to Interpreting Model Predictions"), and
``E[sum_i phi_i(x)] = f(x) - E_b[f(b)]``, the base value.

Each row draws ``n_samples`` (background row, alpha) pairs from ``rng``; with ``stdev > 0`` the
input is also noised, ``x~ = x + N(0, stdev^2)``, before the path (SmoothGrad-style local
smoothing, as Captum's GradientShap and shap's GradientExplainer do). ``std_errors`` holds the
standard error of each value over its samples, ``std(ddof=1) / sqrt(n_samples)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    fast_memory_format,
    float_inputs,
    input_tensor,
    require_torch,
    target_index,
    to_numpy,
    weighted_target_gradients,
)
from xaudit.plugins._support.pass_size import plan_passes
from xaudit.plugins._support.paths import row_noise, row_seeds
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class GradientShapParams(PluginParams):
    """Parameters of ``shap.gradient``."""

    n_samples: int = Field(50, ge=1, le=10_000)
    """(background row, path point) draws per explained row."""
    stdev: float = Field(0.0, ge=0)
    """Standard deviation of Gaussian noise added to the input before each draw (0: none)."""
    max_batch: int | None = Field(None, gt=0)
    """Most path points in one forward/backward pass: bounds memory and fixes the split.
    Default: sized to the model and machine (as gradient.integrated)."""


def draws(rng: np.random.Generator, n: int, n_samples: int,
          n_background: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and sample: a background row index ``(n, n_samples)`` and ``alpha`` in [0, 1)."""
    return (rng.integers(0, n_background, size=(n, n_samples)),
            rng.random((n, n_samples)))


def accumulate(mean: Any, m2: Any, sample: Any, seen: int) -> None:
    """Fold the draws ``sample (r, s, *shape)`` into running means and sums of squared
    deviations (in place) after ``seen`` earlier draws: the pairwise update of Chan, Golub and
    LeVeque 1979, exact in one pass and free of the cancellation of sum(x^2) - n mean^2."""
    torch = require_torch("running variance")
    steps = int(sample.shape[1])
    var, chunk_mean = torch.var_mean(sample, dim=1, correction=0)
    if seen == 0:
        mean.copy_(chunk_mean)
        m2.copy_(var.mul_(steps))
        return
    total = seen + steps
    delta = chunk_mean.sub_(mean)
    mean.add_(delta, alpha=steps / total)
    m2.add_(var, alpha=steps).add_(delta.square_(), alpha=seen * steps / total)


class GradientShap(Explainer):
    """Expected gradients: path gradients averaged over random background baselines."""

    name = "shap.gradient"
    row_parallel = True
    summary = "GradientSHAP / expected gradients: IG averaged over background baselines."
    description = (
        "Expected gradients: the mean, over baselines b drawn from the background and points a "
        "drawn uniformly in [0, 1], of (x_i - b_i) times the explained output's gradient at b + a "
        "(x - b). It is a Monte Carlo estimate of integrated gradients averaged over background "
        "baselines; a row's values add up, in expectation, to f(x) minus the mean output on the "
        "background (the base value).")
    paper = ("Erion et al. 2021, Improving performance of deep learning models with axiomatic "
             "attribution priors and expected gradients; Lundberg and Lee 2017, A Unified "
             "Approach to Interpreting Model Predictions")
    limitations = (
        "Monte Carlo estimate: values carry sampling error (std_errors), and they add up to "
        "f(x) - E[f(background)] only in expectation; more samples shrink the gap.",
        "Equals SHAP values only for models linear in their inputs; otherwise an approximation "
        "that depends on the background.",
    )
    Params = GradientShapParams
    params: GradientShapParams
    requires = frozenset({"gradients"})
    modalities = frozenset({"tabular", "image", "sequence"})
    needs_background = True
    stochastic = True
    default_target = "predicted"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Expected-gradients values ``(n, *shape, k)``, base values ``E_b f(b)``, errors."""
        torch = require_torch(self.name)
        p = self.params
        net = float_inputs(model, self.name)
        if background is None:
            raise InputError(f"{self.name} needs background rows to draw baselines from; "
                             "pass background=...")
        x, bg = input_tensor(net, X), input_tensor(net, background)
        n, shape, k, ns = int(x.shape[0]), tuple(x.shape[1:]), targets.n_slots, p.n_samples
        picks, alphas = draws(rng, n, ns, int(bg.shape[0]))
        seeds = row_seeds(rng, n) if p.stdev > 0 else None
        index = target_index(targets, slice(None), x.device)
        pick = torch.as_tensor(picks, device=x.device)
        alpha = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
        mean = torch.zeros((k, n, *shape), dtype=x.dtype, device=x.device)
        m2 = torch.zeros_like(mean)  # sums of squared deviations from the mean
        plan = plan_passes(net, x, shape, p.max_batch)
        ones = (1,) * len(shape)
        layout = fast_memory_format(net, x)
        for block, part in plan.point_passes(n, ns):
            inputs = x[block].unsqueeze(1)
            if seeds is not None:
                inputs = inputs + torch.stack([row_noise(int(seeds[r]), (ns, *shape), p.stdev, x)
                                               [part] for r in range(block.start, block.stop)])
            chosen = bg[pick[block, part]]
            diff = inputs - chosen
            rows, steps = block.stop - block.start, part.stop - part.start
            points = torch.addcmul(chosen, alpha[block, part].view(rows, steps, *ones),
                                   diff).reshape(rows * steps, *shape)
            if layout is not None:
                points = points.contiguous(memory_format=layout)
            grads, _ = weighted_target_gradients(
                net, points, index[block].repeat_interleave(steps, dim=0))
            for j, grad in enumerate(grads):
                sample = grad.view(rows, steps, *shape).mul_(diff)
                accumulate(mean[j, block], m2[j, block], sample, part.start)
        errors = None
        if ns > 1:
            errors = to_numpy(m2.div_((ns - 1) * ns).sqrt_().movedim(0, -1))
        expected = net.predict(background).mean(axis=0)
        base = targets.take(np.ascontiguousarray(np.broadcast_to(expected, (n, expected.size))))
        return Attribution(values=to_numpy(mean.movedim(0, -1)), base_values=base,
                           std_errors=errors,
                           metadata={"n_samples": ns, "stdev": p.stdev,
                                     "n_background": int(bg.shape[0]),
                                     "standard_error": "std(ddof=1)/sqrt(n_samples)"})


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``shap.gradient``."""
    registry.add(GradientShap)
