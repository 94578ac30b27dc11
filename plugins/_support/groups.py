"""Feature groups: the units a check removes or ranks together, and their ranking.

Groups are given per row as an integer label map ``(n, *feature_shape)`` with labels
``0 .. G_r - 1``: single features, image pixels (all channels of a pixel together), square
patches or superpixels. A group's attribution is the sum of its features' attributions
(explanation values are ``(n, *feature_shape, k)``). Image axes follow
:func:`~xaudit.plugins._support.images.image_axes`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from xaudit.plugins._support.images import from_hw, image_axes, to_hwc

Grouping = Literal["feature", "pixel", "patch", "superpixel"]


def group_labels(X: np.ndarray, grouping: Grouping, patch_size: int = 4, n_segments: int = 50,
                 channel_axis: int | str = "auto", spec: object = None) -> np.ndarray:
    """Label maps ``(n, *feature_shape)``: which group each feature of each row belongs to
    (``channel_axis`` and the model's input ``spec`` locate the channels of image rows)."""
    n, shape = X.shape[0], tuple(X.shape[1:])
    if grouping == "feature":
        return np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), X.shape).copy()
    axes = image_axes(shape, channel_axis, spec)
    (ay, ax) = axes.spatial
    h, w = shape[ay], shape[ax]
    if grouping == "superpixel":
        plane = slic_labels(to_hwc(X.astype(np.float64), axes), n_segments)
    else:
        size = 1 if grouping == "pixel" else patch_size
        rows, cols = np.arange(h) // size, np.arange(w) // size
        grid = rows[:, None] * (-(-w // size)) + cols[None, :]
        plane = np.broadcast_to(grid, (n, h, w))
    return from_hw(plane, shape, axes)


def slic_labels(images: np.ndarray, n_segments: int, compactness: float = 0.1,
                iterations: int = 5) -> np.ndarray:
    """Superpixels ``(n, H, W)`` by k-means over position and colour (SLIC, Achanta et al. 2012).

    A small SLIC: grid-initialised centres, distance ``|colour|^2 + (compactness * |xy| / S)^2``
    over all centres (fine for the image sizes checks use), labels renumbered to ``0..G-1``.
    """
    n, h, w, c = images.shape
    step = max(1, int(np.sqrt(h * w / max(n_segments, 1))))
    ys, xs = np.mgrid[0:h, 0:w]
    coords = np.stack([ys.ravel(), xs.ravel()], 1).astype(np.float64)
    cy, cx = np.mgrid[step // 2:h:step, step // 2:w:step]
    centres_xy = np.stack([cy.ravel(), cx.ravel()], 1).astype(np.float64)
    out = np.empty((n, h, w), dtype=np.int64)
    for r in range(n):
        colour = images[r].reshape(-1, c)
        scale = float(np.ptp(colour)) or 1.0
        colour = colour / scale
        cxy = centres_xy.copy()
        ccol = colour[(cxy[:, 0] * w + cxy[:, 1]).astype(int)]
        for _ in range(iterations):
            d = (((colour[:, None, :] - ccol[None]) ** 2).sum(-1)
                 + (((coords[:, None, :] - cxy[None]) ** 2).sum(-1) * (compactness / step) ** 2))
            label = d.argmin(1)
            for j in range(cxy.shape[0]):
                hit = label == j
                if hit.any():
                    cxy[j], ccol[j] = coords[hit].mean(0), colour[hit].mean(0)
        _, dense = np.unique(label, return_inverse=True)
        out[r] = dense.reshape(h, w)
    return out


def group_scores(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed attribution per group ``(n, G, k)`` and each row's number of groups ``(n,)``.

    Rows with fewer than ``G`` groups get ``NaN`` in the missing slots.
    """
    n, k = values.shape[0], values.shape[-1]
    flat_v = values.reshape(n, -1, k)
    flat_l = labels.reshape(n, -1)
    counts = flat_l.max(axis=1) + 1
    g = int(counts.max())
    out = np.zeros((n, g, k))
    rows = np.repeat(np.arange(n), flat_l.shape[1])
    for j in range(k):
        np.add.at(out[:, :, j], (rows, flat_l.ravel()), flat_v[:, :, j].ravel())
    out[np.arange(g)[None, :] >= counts[:, None]] = np.nan
    return out, counts


def removal_order(scores: np.ndarray, most_relevant_first: bool) -> np.ndarray:
    """Rank of each group ``(n, G, k)``: 0 is removed first; missing (NaN) groups rank last."""
    key = -scores if most_relevant_first else scores.copy()
    key = np.where(np.isnan(key), np.inf, key)
    order = np.argsort(key, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :, None], axis=1)
    return ranks
