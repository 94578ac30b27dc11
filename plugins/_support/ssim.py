"""Structural similarity (SSIM) of two attribution maps.

Adebayo et al. 2018 compare saliency maps before and after randomizing a model by SSIM;
scipy is imported inside :func:`ssim`.
"""

from __future__ import annotations

import numpy as np


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7) -> float:
    """Mean structural similarity of two 2-D maps (Wang et al. 2004), both rescaled to [0, 1].

    Wang et al.'s definition with uniform ``window`` x ``window`` statistics (the largest odd
    window that fits when the map is smaller), sample (co)variances, ``C1 = 0.01^2``,
    ``C2 = 0.03^2`` (data range 1), averaged over the windows that lie inside the map: the
    same number as scikit-image's ``structural_similarity(x, y, data_range=1)`` (which Quantus
    uses) on the rescaled maps. Each map is rescaled on its own (Adebayo et al. compare
    normalised maps), so a randomized model's differently scaled attributions are compared by
    structure only; a constant map becomes all zeros.
    """
    from scipy import ndimage

    def unit(m: np.ndarray) -> np.ndarray:
        span = float(np.ptp(m))
        return (m - m.min()) / span if span > 0 else np.zeros_like(m)

    x, y = unit(np.asarray(a, np.float64)), unit(np.asarray(b, np.float64))
    size = min(window, *x.shape)
    size -= 1 - size % 2  # odd, as the window is centred on a pixel
    pad, norm = (size - 1) // 2, size * size / (size * size - 1.0) if size > 1 else 1.0

    def mean(m: np.ndarray) -> np.ndarray:
        return np.asarray(ndimage.uniform_filter(m, size=size, mode="reflect"))

    mx, my = mean(x), mean(y)
    vx, vy = norm * (mean(x * x) - mx * mx), norm * (mean(y * y) - my * my)
    cxy = norm * (mean(x * y) - mx * my)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    inside = s[pad:s.shape[0] - pad, pad:s.shape[1] - pad]
    return float(inside.mean())
