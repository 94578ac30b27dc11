"""Removing features: what a removed feature becomes, and how much the output drops.

Faithfulness checks replace features by a *fill* (:func:`fill_values`) and compare the model's
outputs before and after (:func:`output_drops`), on the targeted outputs of each row.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from xaudit.errors import InputError
from xaudit.model import Model
from xaudit.plugins._support.images import image_axes, spatial_blur

Removal = Literal["baseline", "mean", "background", "blur"]


def fill_values(X: np.ndarray, removal: Removal, rng: np.random.Generator, *,
                background: np.ndarray | None, baseline_value: float = 0.0,
                blur_sigma: float = 3.0, channel_axis: int | str = "auto",
                spec: object = None) -> np.ndarray:
    """What a removed feature of each row becomes, ``(n, *feature_shape)``.

    ``baseline``: the constant ``baseline_value``; ``mean``: the background's mean row;
    ``background``: one background row drawn at random per explained row; ``blur``: the row
    blurred by a Gaussian of ``blur_sigma`` pixels over its spatial axes (located by
    ``channel_axis`` and the model's input ``spec``, see
    :func:`~xaudit.plugins._support.images.spatial_blur`).
    """
    X = np.asarray(X, dtype=np.float64)
    if removal == "baseline":
        return np.full_like(X, baseline_value)
    if removal == "blur":
        return spatial_blur(X, blur_sigma, image_axes(tuple(X.shape[1:]), channel_axis, spec))
    if background is None or len(background) == 0:
        raise InputError(f"removal {removal!r} needs a background (data.background, or "
                         "background=... in xaudit.check); or use removal: baseline")
    bg = np.asarray(background, dtype=np.float64)
    if removal == "mean":
        return np.broadcast_to(bg.mean(axis=0), X.shape).copy()
    return np.asarray(bg[rng.integers(0, bg.shape[0], size=X.shape[0])])


def targeted(outputs: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Model outputs ``(n, m)`` at the targeted indices ``(n, k)``."""
    return np.take_along_axis(outputs, indices, axis=1)


def output_drops(model: Model, rows: np.ndarray, perturbed: np.ndarray,
                 indices: np.ndarray) -> np.ndarray:
    """``f(x) - f(x')`` at each row's targeted outputs ``(b, k, runs)``, for ``b`` rows and
    their ``runs`` perturbed copies each (``perturbed`` row-major), in one model call."""
    b = rows.shape[0]
    out = model.predict(np.concatenate([rows, perturbed]))
    moved = np.take_along_axis(out[b:].reshape(b, perturbed.shape[0] // b, -1),
                               indices[:, None, :], axis=-1)  # (b, runs, k)
    return np.moveaxis(targeted(out[:b], indices)[:, None, :] - moved, -1, 1)
