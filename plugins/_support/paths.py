"""Path integrals, baselines and seeded noise shared by the gradient explainers.

* :func:`path_rule` gives the points ``alpha_s`` in ``[0, 1]`` and weights ``w_s`` of a
  quadrature of ``int_0^1 g(alpha) d alpha``: Riemann sums (left, right, middle, trapezoid) and
  Gauss-Legendre (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks", section
  3, approximate the integral by a Riemann sum; Gauss-Legendre quadrature is exact for
  polynomials of degree ``2 s - 1``).
* :func:`make_baseline` builds the reference input of Integrated Gradients: zero, background
  mean, uniform noise, a blurred copy of the input (Sturmfels et al. 2020, "Visualizing the
  Impact of Feature Attribution Baselines", Distill) or one given by the user.
* :func:`row_noise` draws seeded Gaussian noise per row, so a row's noise depends only on the
  seed it was given, never on how rows are split into batches.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from xaudit.errors import InputError
from xaudit.plugins._support.autograd import require_torch

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


def channel_axis(spec: Any, shape: tuple[int, ...]) -> int | None:
    """The channel axis of one image row (``0`` for CHW, ``2`` for HWC), ``None`` for (H, W).

    An ONNX input spec records its layout (``NHWC`` for graphs exported from Keras); other
    3-D image rows are taken as channels-first, the torch convention.
    """
    if len(shape) == 2:
        return None
    if len(shape) != 3:
        raise InputError(f"image rows must be (C, H, W), (H, W, C) or (H, W), got {shape}")
    return 2 if getattr(spec, "layout", None) == "NHWC" else 0


def gaussian_blur(images: Any, sigma: float, axis: int | None) -> Any:
    """Each image of ``images (n, *row)`` blurred by a Gaussian of ``sigma`` pixels, per channel.

    A separable depthwise convolution (torch ``conv2d``) of radius ``ceil(3 sigma)`` with
    mirror padding (``d c b | a b c d``, scipy's ``mode="mirror"``); on an image side shorter
    than the radius the kernel is cut to the side and renormalised. ``axis`` is the channel
    axis of a row (see :func:`channel_axis`). ``sigma <= 0`` returns a copy.
    """
    torch = require_torch("blurred baselines")
    if sigma <= 0:
        return images.clone()
    x = images.unsqueeze(1) if axis is None else images.movedim(axis + 1, 1)
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    out = x.contiguous()
    for dim, size in ((2, height), (3, width)):
        pad = min(radius, size - 1)
        k = kernel[radius - pad: radius + pad + 1]
        k = k / k.sum()
        shape = (1, 1, k.numel(), 1) if dim == 2 else (1, 1, 1, k.numel())
        weight = k.reshape(shape).expand(channels, -1, -1, -1)
        padding = (0, 0, pad, pad) if dim == 2 else (pad, pad, 0, 0)
        if pad:
            out = torch.nn.functional.pad(out, padding, mode="reflect")
        out = torch.nn.functional.conv2d(out, weight, groups=channels)
    out = out.squeeze(1) if axis is None else out.movedim(1, axis + 1)
    return out.contiguous()


def make_baseline(kind: str, X: np.ndarray, background: np.ndarray | None,
                  rng: np.random.Generator, *, given: Any = None) -> np.ndarray:
    """The baseline rows ``(1 or n, *row_shape)`` for ``kind`` (``blur`` is done in torch).

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


POINT_BUDGET = 2**23
"""Input values per forward/backward pass when ``max_batch`` is not given (32 MiB of float32)."""


def points_per_pass(max_batch: int | None, shape: tuple[int, ...]) -> int:
    """``max_batch``, or when ``None`` as many points as fit :data:`POINT_BUDGET` input values
    (at least 16): about 10,000 rows of 784 features, 2,700 images of 3x32x32, 55 of
    3x224x224. Activations scale with the input, so this bounds memory across model sizes."""
    if max_batch is not None:
        return int(max_batch)
    return max(16, POINT_BUDGET // max(1, math.prod(shape)))


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
