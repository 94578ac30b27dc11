"""Image rows: where the channels are, moving between layouts, and Gaussian blur.

One rule decides the axes of an image row for every plugin (occlusion's default window,
Integrated Gradients' blurred baseline, ``lime.image``, the checks' pixel, patch and superpixel
grouping, blur removal and SSIM). Rows keep the model's layout, ``(C, H, W)``, ``(H, W, C)`` or
``(H, W)``; :func:`image_axes` says which axes are which:

1. a ``channel_axis`` parameter that is not ``auto`` decides: ``first`` (0), ``last`` (2),
   ``none`` (rows ``(H, W)``) or an axis number (``-3 .. 2``);
2. else a layout the model's input spec records (``layout``: ``NCHW`` or ``NHWC``, as the ONNX
   adapter reads it from the graph) decides;
3. else the row shape: ``(H, W)`` has no channel axis; a 3-D row is channels-first when its
   first axis is channel-sized (1, 3 or 4) and its last is not, channels-last in the mirror
   case. When both end axes are channel-sized, or neither is (``(4, 4, 3)``, ``(3, 32, 3)``,
   ``(64, 64, 10)``), the shorter end axis holds the channels, and channels-first wins a tie
   (the convention of PyTorch and ONNX). Set ``channel_axis`` when that guess is wrong.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import AfterValidator, BeforeValidator

from xaudit.errors import InputError
from xaudit.plugins._support.autograd import require_torch

CHANNEL_SIZES = (1, 3, 4)
"""Axis lengths taken for a channel axis (grey, RGB, RGBA)."""
ChannelAxisName = Literal["auto", "first", "last", "none"]


def _null_is_auto(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("channel_axis is auto, first, last, none or an axis number")
    return "auto" if value is None else value


def _axis_in_range(value: int | ChannelAxisName) -> int | ChannelAxisName:
    if isinstance(value, int) and not -3 <= value <= 2:
        raise ValueError(f"channel axis {value} is not an axis of a 3-D row (-3 .. 2)")
    return value


ChannelAxis = Annotated[int | ChannelAxisName, BeforeValidator(_null_is_auto),
                        AfterValidator(_axis_in_range)]
"""The ``channel_axis`` parameter of every plugin that reads images: ``auto`` (the default:
the model's recorded layout, else the row shape, see the module docstring), ``first``,
``last``, ``none`` or an axis number of one row (``0``, ``2``, ``-1``, ...); ``null`` means
``auto``."""


class ImageAxes(NamedTuple):
    """The axes of one image row: ``spatial`` (height, width) and ``channel`` (``None`` for
    ``(H, W)`` rows)."""

    spatial: tuple[int, int]
    channel: int | None


def image_axes(shape: tuple[int, ...], channel_axis: int | str = "auto",
               spec: object = None) -> ImageAxes:
    """The axes of image rows shaped ``shape`` by the rule of the module docstring; ``spec``
    is the model's input spec (its ``layout``, when it records one, is step 2)."""
    shape = tuple(shape)
    if len(shape) == 2:
        if channel_axis not in ("auto", "none"):
            raise InputError(f"rows shaped {shape} (H, W) have no channel axis; set "
                             "channel_axis: auto or none")
        return ImageAxes((0, 1), None)
    if len(shape) != 3:
        raise InputError(f"image rows are (H, W), (C, H, W) or (H, W, C); got rows shaped "
                         f"{shape}")
    channel = _channel(shape, channel_axis, getattr(spec, "layout", None))
    height, width = (a for a in range(3) if a != channel)
    return ImageAxes((height, width), channel)


def _channel(shape: tuple[int, ...], given: int | str, layout: object) -> int:
    if isinstance(given, int):
        if not -3 <= given <= 2:
            raise InputError(f"channel_axis {given} is not an axis of rows shaped {shape}")
        return given % 3
    if given == "none":
        raise InputError(f"rows shaped {shape} have a channel axis; set channel_axis: first, "
                         "last or auto")
    if given in ("first", "last"):
        return 0 if given == "first" else 2
    if layout in ("NCHW", "NHWC"):
        return 0 if layout == "NCHW" else 2
    first, last = shape[0] in CHANNEL_SIZES, shape[2] in CHANNEL_SIZES
    if first != last:
        return 0 if first else 2
    return 2 if shape[2] < shape[0] else 0


def channel_axis_name(axes: ImageAxes) -> str:
    """``first``, ``last`` or ``none`` (the axis number for a channel axis in the middle)."""
    return {0: "first", 2: "last", None: "none"}.get(axes.channel, str(axes.channel))


def to_hwc(X: np.ndarray, axes: ImageAxes) -> np.ndarray:
    """Rows ``(n, *shape)`` as ``(n, H, W, C)`` (``C = 1`` for ``(H, W)`` rows); a view."""
    (ay, ax), ch = axes
    if ch is None:
        return X[..., None]
    return np.moveaxis(X, (ay + 1, ax + 1, ch + 1), (1, 2, 3))


def from_hwc(images: np.ndarray, axes: ImageAxes) -> np.ndarray:
    """``(n, H, W, C, ...)`` images back in the rows' layout, ``(n, *shape, ...)`` (the
    inverse of :func:`to_hwc`; trailing axes stay last); a view."""
    (ay, ax), ch = axes
    if ch is None:
        return images[:, :, :, 0]
    return np.moveaxis(images, (1, 2, 3), (ay + 1, ax + 1, ch + 1))


def from_hw(plane: np.ndarray, shape: tuple[int, ...], axes: ImageAxes) -> np.ndarray:
    """A per-pixel map ``(n, H, W)`` repeated over the channels of rows shaped ``shape``:
    ``(n, *shape)``, contiguous."""
    if axes.channel is None:
        return np.ascontiguousarray(plane)
    moved = from_hwc(np.expand_dims(plane, -1), axes)
    return np.ascontiguousarray(np.broadcast_to(moved, (plane.shape[0], *shape)))


def spatial_blur(X: np.ndarray, sigma: float, axes: ImageAxes) -> np.ndarray:
    """Rows ``(n, *shape)`` blurred by a Gaussian of ``sigma`` pixels over their two spatial
    axes only (each channel apart): ``scipy.ndimage.gaussian_filter`` with edge values
    repeated (``mode="nearest"``) and its default radius ``4 sigma``."""
    from scipy import ndimage

    widths = [0.0] * X.ndim
    widths[axes.spatial[0] + 1] = widths[axes.spatial[1] + 1] = sigma
    return np.asarray(ndimage.gaussian_filter(np.asarray(X, dtype=np.float64), sigma=widths,
                                              mode="nearest"))


def gaussian_blur(images: Any, sigma: float, axes: ImageAxes) -> Any:
    """Torch rows ``(n, *shape)`` blurred by a Gaussian of ``sigma`` pixels over their spatial
    axes, each channel apart, on their own device and dtype.

    A separable depthwise convolution (torch ``conv2d``) of radius ``ceil(3 sigma)`` with
    mirror padding (``d c b | a b c d``, scipy's ``mode="mirror"``); on an image side shorter
    than the radius the kernel is cut to the side and renormalised. ``sigma <= 0`` returns a
    copy.
    """
    torch = require_torch("blurred baselines")
    if sigma <= 0:
        return images.clone()
    (ay, ax), ch = axes
    x = images.unsqueeze(1) if ch is None else images.permute(0, ch + 1, ay + 1, ax + 1)
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
    if ch is None:
        return out.squeeze(1).contiguous()
    order = [0, 0, 0]
    order[ch], order[ay], order[ax] = 1, 2, 3
    return out.permute(0, *order).contiguous()
