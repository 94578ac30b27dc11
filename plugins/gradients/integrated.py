"""Integrated Gradients: the path integral of the gradient from a baseline to the input.

Sundararajan, Taly and Yan 2017, "Axiomatic Attribution for Deep Networks" (ICML):
``IG_i(x) = (x_i - b_i) * int_0^1 d f(b + alpha (x - b)) / d x_i  d alpha``, approximated by a
quadrature ``sum_s w_s grad f(b + alpha_s (x - b))`` (see
:func:`~xaudit.plugins._support.paths.path_rule` and
:func:`~xaudit.plugins._support.paths.integrated_gradients`). By
the completeness axiom ``sum_i IG_i(x) = f(x) - f(b)``; the quadrature error of each row, the
*convergence delta* ``sum_i IG_i(x) - (f(x) - f(b))``, is returned in
``extras["convergence_delta"]`` ``(n, k)``; every baseline but ``zero`` is stored in
``extras["baseline"]`` ``(1 or n, *shape)``, so a drawn or blurred reference can be audited.

The path points of all rows are evaluated in batched forward/backward passes of at most
``max_batch`` points (whole rows where ``n_steps <= max_batch``, else blocks of steps of one
row), so memory is bounded whatever ``n_steps`` is; without ``max_batch`` the pass size adapts
to the model (:mod:`~xaudit.plugins._support.pass_size`). Quadrature weights ride on the backward
pass as its seed, and the steps of a row are summed inside the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import DifferentiableModel, Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.plugins._support.autograd import (
    float_inputs,
    input_tensor,
    require_torch,
    target_index,
    targeted_outputs,
    to_numpy,
)
from xaudit.plugins._support.images import ChannelAxis, gaussian_blur, image_axes
from xaudit.plugins._support.pass_size import forward_rows
from xaudit.plugins._support.paths import (
    BaselineKind,
    PathMethod,
    integrated_gradients,
    make_baseline,
)
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


def as_list(value: Any) -> Any:
    """Arrays given as parameters become nested lists (JSON-ready, pydantic-valid)."""
    return value.tolist() if isinstance(value, np.ndarray) else value


class IntegratedGradientsParams(PluginParams):
    """Parameters of ``gradient.integrated``."""

    path_method: PathMethod = "gausslegendre"
    """Quadrature of the path integral: riemann_left, riemann_right, riemann_middle,
    riemann_trapezoid or gausslegendre (most accurate for a given n_steps)."""
    n_steps: int = Field(50, ge=1, le=100_000)
    """Number of points on the path (>= 2 for the Riemann rules)."""
    baseline: BaselineKind = "zero"
    """zero; mean (of the background); uniform (noise between the background's per-feature
    min and max, seeded); blur (the input blurred, images only); given (baseline_values)."""
    baseline_values: float | list[Any] | None = None
    """For baseline 'given': a number, one row, or one row per explained row."""
    blur_sigma: float = Field(5.0, ge=0)
    """Gaussian blur width in pixels for baseline 'blur'."""
    channel_axis: ChannelAxis = "auto"
    """For baseline 'blur': where the channels of an image row are (``auto``, ``first``,
    ``last``, ``none`` or an axis number); the blur runs over the other two axes."""
    max_batch: int | None = Field(None, gt=0)
    """Most path points (rows x steps) in one forward/backward pass: bounds memory and fixes
    the split. Default: sized to the model and machine by a short throughput probe on the
    first passes, within a memory bound (see docs/explainers/gradients.md)."""

    @field_validator("baseline_values", mode="before")
    @classmethod
    def arrays_as_lists(cls, value: Any) -> Any:
        """Accept a numpy array for ``baseline_values``."""
        return as_list(value)


class IntegratedGradients(Explainer):
    """Integrated Gradients along the straight path from a baseline, with convergence deltas."""

    name = "gradient.integrated"
    row_parallel = True
    summary = "Integrated Gradients: path integral of gradients from a baseline (completeness)."
    description = (
        "Integrates the gradient of the explained output along the straight path from a baseline "
        "b to the row x: IG_i(x) = (x_i - b_i) times the integral over a in [0, 1] of df(b + a (x "
        "- b))/dx_i, approximated by a quadrature over n_steps points. A row's values add up to "
        "f(x) - f(b) up to the quadrature error, which is returned per row as the convergence "
        "delta.")
    paper = ("Sundararajan, Taly and Yan 2017, Axiomatic Attribution for Deep Networks; "
             "Sturmfels, Lundberg and Lee 2020, Visualizing the Impact of Feature Attribution "
             "Baselines (blurred and uniform baselines)")
    limitations = (
        "Attributions depend on the baseline: they explain f(x) - f(baseline), not f(x).",
        "The path integral is approximated; extras['convergence_delta'] holds each row's "
        "completeness error, which shrinks with n_steps.",
        "The straight path from the baseline can cross regions the model never saw.",
    )
    Params = IntegratedGradientsParams
    params: IntegratedGradientsParams
    requires = frozenset({"gradients"})
    modalities = frozenset({"tabular", "image", "sequence"})
    additive = True
    default_target = "predicted"
    finds_predicted = True  # in the pass that computes f(x) for the convergence delta

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """IG values ``(n, *shape, k)``, base values ``f(baseline)`` and convergence deltas."""
        p = self.params
        torch = require_torch(self.name)
        net = float_inputs(model, self.name)
        x = input_tensor(net, X)
        baseline = self.baseline(net, X, x, background, rng)
        batch = forward_rows(p.max_batch, tuple(X.shape[1:]))
        # f(x) is needed for the convergence delta; its pass also picks "predicted" targets
        outputs = to_numpy(targeted_outputs(net, x, target_index(targets, slice(None), x.device),
                                            batch))
        index = torch.as_tensor(targets.indices, dtype=torch.long, device=x.device)
        attributions = integrated_gradients(net, x, baseline, index, p.path_method, p.n_steps,
                                            p.max_batch)
        values = to_numpy(attributions.movedim(0, -1))
        base = to_numpy(targeted_outputs(net, baseline, index, batch))
        delta = values.reshape(X.shape[0], -1, targets.n_slots).sum(axis=1) - (outputs - base)
        extras = {"convergence_delta": delta}
        if p.baseline != "zero":  # the reference actually used (drawn, blurred or given)
            extras["baseline"] = to_numpy(baseline)
        return Attribution(
            values=values, base_values=base, extras=extras,
            metadata={"path_method": p.path_method, "n_steps": p.n_steps, "baseline": p.baseline,
                      "max_abs_convergence_delta": float(np.abs(delta).max(initial=0.0))})

    def baseline(self, net: DifferentiableModel, X: np.ndarray, x: Any,
                 background: np.ndarray | None, rng: np.random.Generator) -> Any:
        """The baseline tensor ``(1 or n, *shape)`` on the model's device and dtype."""
        p = self.params
        if p.baseline == "blur":
            if net.input_spec.modality != "image":
                raise InputError(f"{self.name}: baseline 'blur' is for images; model "
                                 f"{net.name!r} takes {net.input_spec.modality} input")
            axes = image_axes(tuple(X.shape[1:]), p.channel_axis, net.input_spec)
            return gaussian_blur(x, p.blur_sigma, axes)
        rows = make_baseline(p.baseline, X, background, rng, given=p.baseline_values)
        return input_tensor(net, rows)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``gradient.integrated``."""
    registry.add(IntegratedGradients)
