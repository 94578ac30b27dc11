"""Path integrals, baselines and seeded noise shared by the gradient and layer explainers.

* :func:`path_rule` gives the points ``alpha_s`` in ``[0, 1]`` and weights ``w_s`` of a
  quadrature of ``int_0^1 g(alpha) d alpha``: Riemann sums (left, right, middle, trapezoid) and
  Gauss-Legendre (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks", section
  3, approximate the integral by a Riemann sum; Gauss-Legendre quadrature is exact for
  polynomials of degree ``2 s - 1``).
* :func:`make_baseline` builds the reference input of Integrated Gradients: zero, background
  mean, uniform noise, a blurred copy of the input (Sturmfels et al. 2020, "Visualizing the
  Impact of Feature Attribution Baselines", Distill) or one given by the user.
* :func:`path_gradients` sums the weighted gradients along the straight path from a baseline
  to each row in bounded passes; :func:`integrated_gradients` multiplies them by ``x - b``.
  :func:`path_endpoints` gives the input and baseline tensors of the layer path methods.
* :func:`row_noise` draws seeded Gaussian noise per row, so a row's noise depends only on the
  seed it was given, never on how rows are split into batches.

Blurred baselines are an image concern: :func:`xaudit.plugins._support.images.gaussian_blur`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from xaudit.capabilities import refusal
from xaudit.errors import InputError
from xaudit.model import MODALITIES, DifferentiableModel, LayeredModel
from xaudit.plugins._support.autograd import (
    fast_memory_format,
    require_torch,
    weighted_target_gradients,
)
from xaudit.plugins._support.pass_size import PassPlan, plan_passes

PathMethod = Literal["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
                     "gausslegendre"]
BaselineKind = Literal["zero", "mean", "uniform", "blur", "given"]


def path_rule(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alpha`` and weights ``w`` (float64, ``(n_steps,)``) of the quadrature ``method``.

    ``riemann_left``/``right``/``middle``: ``w_s = 1/n`` at ``s/n``, ``(s+1)/n``,
    ``(s+1/2)/n``. ``riemann_trapezoid``: the composite trapezoid rule on ``n`` equally spaced
    points including both ends, ``w = (1/2, 1, ..., 1, 1/2) / (n-1)``. ``gausslegendre``: the
    Legendre nodes and weights mapped from ``[-1, 1]`` to ``[0, 1]``. Every rule's weights sum
    to one, so a constant gradient is integrated exactly.

    Captum 0.9's ``riemann_trapezoid`` uses the same points but weights ``1/n`` (halved at both
    ends), which sum to ``(n-1)/n``: its attributions are ours times ``(n-1)/n``, and its
    completeness error does not vanish as the gradient becomes constant. The other rules agree.
    """
    n = int(n_steps)
    if method == "gausslegendre":
        if n < 1:
            raise InputError("gausslegendre needs n_steps >= 1")
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if n < 2:
        raise InputError(f"{method} needs n_steps >= 2")
    s = np.arange(n, dtype=np.float64)
    if method == "riemann_left":
        return s / n, np.full(n, 1.0 / n)
    if method == "riemann_right":
        return (s + 1.0) / n, np.full(n, 1.0 / n)
    if method == "riemann_middle":
        return (s + 0.5) / n, np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        weights = np.full(n, 1.0 / (n - 1))
        weights[[0, -1]] *= 0.5
        return s / (n - 1), weights
    raise InputError(f"unknown path method {method!r}; use one of riemann_left, riemann_right, "
                     "riemann_middle, riemann_trapezoid, gausslegendre")


def make_baseline(kind: str, X: np.ndarray, background: np.ndarray | None,
                  rng: np.random.Generator, *, given: Any = None) -> np.ndarray:
    """The baseline rows ``(1 or n, *row_shape)`` for ``kind`` (``blur`` is done on the
    tensor, by :func:`~xaudit.plugins._support.images.gaussian_blur`).

    ``zero``: all zeros. ``mean``: the background's mean row. ``uniform``: per row, each value
    drawn uniformly between that feature's minimum and maximum over the background (over ``X``
    when there is no background). ``given``: a scalar, one row, or one row per row of ``X``.
    """
    shape = X.shape[1:]
    if kind == "zero":
        return np.zeros((1, *shape))
    if kind == "mean":
        if background is None:
            raise InputError("the 'mean' baseline needs a background; pass background=...")
        return np.asarray(np.asarray(background, dtype=np.float64).mean(axis=0, keepdims=True))
    if kind == "uniform":
        source = np.asarray(X if background is None else background, dtype=np.float64)
        low, high = source.min(axis=0), source.max(axis=0)
        return np.asarray(low + (high - low) * rng.random((X.shape[0], *shape)))
    if kind == "given":
        if given is None:
            raise InputError("baseline 'given' needs baseline_values (a number, one row, or "
                             "one row per explained row)")
        values = np.asarray(given, dtype=np.float64)
        if values.ndim == 0:
            return np.full((1, *shape), float(values))
        if values.shape == shape:
            return values[None, ...]
        if values.shape in ((1, *shape), (X.shape[0], *shape)):
            return values
        raise InputError(f"baseline_values shaped {values.shape}; expected a number, one row "
                         f"shaped {shape}, or {(X.shape[0], *shape)}")
    raise InputError(f"unknown baseline {kind!r}")


def row_seeds(rng: np.random.Generator, n: int) -> np.ndarray:
    """One 63-bit seed per row, drawn from ``rng``."""
    return rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)


def row_noise(seed: int, shape: tuple[int, ...], stdev: float, like: Any) -> Any:
    """``N(0, stdev^2)`` noise shaped ``shape`` from a torch generator seeded with ``seed``,
    on ``like``'s device and dtype (drawn in float32 or wider, then cast)."""
    torch = require_torch("noise")
    generator = torch.Generator(device=like.device)
    generator.manual_seed(int(seed))
    dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
    noise = torch.randn(shape, generator=generator, device=like.device, dtype=dtype)
    return (noise * stdev).to(like.dtype)


def path_gradients(model: DifferentiableModel, x: Any, baseline: Any, index: Any,
                   alphas: np.ndarray, weights: np.ndarray, plan: PassPlan,
                   memory_format: Any = None) -> Any:
    """``sum_s w_s grad f_c(b + alpha_s (x - b))`` for each row and slot: ``(k, n, *shape)``.

    ``x`` ``(n, *shape)``, ``baseline`` broadcastable to it, ``index`` ``(n, k)`` targeted
    outputs. Evaluated in the passes of ``plan`` (whole rows of ``n_steps`` points while they
    fit, else parts of one row's steps), laid out in ``memory_format`` when given (see
    :func:`~xaudit.plugins._support.autograd.fast_memory_format`).
    """
    torch = require_torch("integrated gradients")
    n, shape, n_steps = int(x.shape[0]), tuple(x.shape[1:]), len(alphas)
    baseline = baseline.expand_as(x)
    diff = x - baseline
    alpha = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    weight = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    total = torch.zeros((index.shape[1], n, *shape), dtype=x.dtype, device=x.device)
    ones = (1,) * len(shape)
    for block, part in plan.point_passes(n, n_steps):
        rows, steps = block.stop - block.start, part.stop - part.start
        points = torch.addcmul(baseline[block].unsqueeze(1), alpha[part].view(1, steps, *ones),
                               diff[block].unsqueeze(1)).reshape(rows * steps, *shape)
        if memory_format is not None:
            points = points.contiguous(memory_format=memory_format)
        grads, _ = weighted_target_gradients(
            model, points, index[block].repeat_interleave(steps, dim=0),
            weight[part].repeat(rows))
        for j, grad in enumerate(grads):
            total[j, block] += grad.view(rows, steps, *shape).sum(dim=1)
    return total


def integrated_gradients(model: DifferentiableModel, x: Any, baseline: Any, index: Any,
                         method: str, n_steps: int, max_batch: int | None) -> Any:
    """IG ``(k, n, *shape)`` of ``x`` from ``baseline`` for the slots of ``index``, in passes
    of ``max_batch`` points (``None``: sized to the model, see
    :mod:`~xaudit.plugins._support.pass_size`)."""
    alphas, weights = path_rule(method, n_steps)
    plan = plan_passes(model, x, tuple(x.shape[1:]), max_batch)
    total = path_gradients(model, x, baseline, index, alphas, weights, plan,
                           fast_memory_format(model, x))
    return total.mul_((x - baseline.expand_as(x)).unsqueeze(0))


INTERPOLABLE = MODALITIES - {"text"}
"""Input modalities a method that interpolates the input can take: text rows are token ids,
which cannot be interpolated (such methods refuse them before any work)."""


def path_endpoints(model: LayeredModel, X: np.ndarray, background: np.ndarray | None,
                   baseline: str, interpolated_by: str | None = None) -> tuple[Any, Any]:
    """The input tensor of ``X`` and the baseline a path from it starts at: zeros (token id 0
    for ids) or, for ``baseline="mean"``, the background's mean row, broadcast to the input.

    ``interpolated_by`` names a method whose path runs through the input itself: integer
    inputs (token ids) are refused for it, as points between two ids are no input.
    """
    torch = require_torch("layer methods")
    x = model.to_tensors(X)[0].detach()
    if interpolated_by is not None and not x.is_floating_point():
        raise refusal(interpolated_by, "a floating-point input", model,
                      "it interpolates the input, which is integer ids here; use "
                      "layer.integrated on the embedding layer")
    if baseline == "mean":
        if background is None:
            raise InputError("baseline 'mean' needs a background")
        if not x.is_floating_point():
            raise InputError("baseline 'mean' needs a floating-point input; the model takes ids")
        return x, model.to_tensors(background)[0].detach().mean(0, keepdim=True).expand_as(x)
    return x, torch.zeros_like(x)
