"""What the faithfulness and sanity checks share: feature groups, removal, ranks, statistics.

Not a plugin. Conventions: explanation values are ``(n, *feature_shape, k)``; "groups" are
the units a check removes or ranks (single features, image pixels, patches or superpixels),
given per row as an integer label map ``(n, *feature_shape)`` with labels ``0 .. G_r - 1``.
A group's attribution is the sum of its features' attributions. Images are feature shapes of
two (``H, W``) or three axes (channels first or last, inferred from a 1/3/4-sized end axis).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy import ndimage, stats

from xaudit.errors import InputError
from xaudit.explanation import Explanation
from xaudit.model import Model
from xaudit.plugin import Check, Reexplain

Grouping = Literal["feature", "pixel", "patch", "superpixel"]
Removal = Literal["baseline", "mean", "background", "blur"]


# ------------------------------------------------------------------ shapes and groups

def spatial_layout(feature_shape: tuple[int, ...], channel_axis: int | None = None
                   ) -> tuple[tuple[int, int], int | None]:
    """The two spatial axes and the channel axis (``None`` for 2-D images) of one row."""
    if len(feature_shape) == 2:
        return (0, 1), None
    if len(feature_shape) != 3:
        raise InputError(f"pixel, patch, superpixel grouping and blur need image rows "
                         f"(H, W) or 3-D with channels; got rows shaped {feature_shape}")
    if channel_axis is None:
        channel_axis = 0 if feature_shape[0] in (1, 3, 4) else (
            2 if feature_shape[2] in (1, 3, 4) else None)
        if channel_axis is None:
            raise InputError(f"cannot tell the channel axis of rows shaped {feature_shape}; "
                             "set channel_axis: 0 or 2")
    channel_axis %= 3
    spatial = tuple(a for a in range(3) if a != channel_axis)
    return (spatial[0], spatial[1]), channel_axis


def group_labels(X: np.ndarray, grouping: Grouping, patch_size: int = 4, n_segments: int = 50,
                 channel_axis: int | None = None) -> np.ndarray:
    """Label maps ``(n, *feature_shape)``: which group each feature of each row belongs to."""
    n, shape = X.shape[0], tuple(X.shape[1:])
    if grouping == "feature":
        return np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), X.shape).copy()
    (ay, ax), ch = spatial_layout(shape, channel_axis)
    h, w = shape[ay], shape[ax]
    if grouping == "superpixel":
        plane = slic_labels(to_hwc(X.astype(np.float64), ay, ax, ch), n_segments)
    else:
        size = 1 if grouping == "pixel" else patch_size
        rows, cols = np.arange(h) // size, np.arange(w) // size
        grid = rows[:, None] * (-(-w // size)) + cols[None, :]
        plane = np.broadcast_to(grid, (n, h, w))
    return from_hw(plane, shape, ay, ax, ch)


def to_hwc(X: np.ndarray, ay: int, ax: int, ch: int | None) -> np.ndarray:
    """Rows ``(n, *shape)`` as ``(n, H, W, C)``."""
    if ch is None:
        return X[..., None]
    return np.moveaxis(X, (ay + 1, ax + 1, ch + 1), (1, 2, 3))


def from_hw(plane: np.ndarray, shape: tuple[int, ...], ay: int, ax: int, ch: int | None
            ) -> np.ndarray:
    """A per-pixel map ``(n, H, W)`` broadcast over the channel axis to ``(n, *shape)``."""
    if ch is None:
        return np.ascontiguousarray(plane)
    moved = np.moveaxis(np.expand_dims(plane, -1), (1, 2, 3), (ay + 1, ax + 1, ch + 1))
    return np.ascontiguousarray(np.broadcast_to(moved, (plane.shape[0], *shape)))


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


# ------------------------------------------------------------------ removal

def fill_values(X: np.ndarray, removal: Removal, rng: np.random.Generator, *,
                background: np.ndarray | None, baseline_value: float = 0.0,
                blur_sigma: float = 3.0, channel_axis: int | None = None) -> np.ndarray:
    """What a removed feature of each row becomes, ``(n, *feature_shape)``.

    ``baseline``: the constant ``baseline_value``; ``mean``: the background's mean row;
    ``background``: one background row drawn at random per explained row; ``blur``: the row
    blurred by a Gaussian of ``blur_sigma`` pixels over its spatial axes.
    """
    X = np.asarray(X, dtype=np.float64)
    if removal == "baseline":
        return np.full_like(X, baseline_value)
    if removal == "blur":
        (ay, ax), _ = spatial_layout(tuple(X.shape[1:]), channel_axis)
        sigma = [0.0] * X.ndim
        sigma[ay + 1] = sigma[ax + 1] = blur_sigma
        return np.asarray(ndimage.gaussian_filter(X, sigma=sigma, mode="nearest"))
    if background is None or len(background) == 0:
        raise InputError(f"removal {removal!r} needs a background (data.background, or "
                         "background=... in xaudit.check); or use removal: baseline")
    bg = np.asarray(background, dtype=np.float64)
    if removal == "mean":
        return np.broadcast_to(bg.mean(axis=0), X.shape).copy()
    return np.asarray(bg[rng.integers(0, bg.shape[0], size=X.shape[0])])


# ------------------------------------------------------------------ ranks and statistics

def rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    return np.asarray(stats.rankdata(a, axis=-1), dtype=np.float64)


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; ``NaN`` where either side is constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis (Pearson of average ranks)."""
    return pearson_rows(rank_rows(a), rank_rows(b))


def per_slot(values: np.ndarray) -> np.ndarray:
    """Values ``(n, *feature_shape, k)`` as ``(n, k, d)`` (features flattened last)."""
    n, k = values.shape[0], values.shape[-1]
    return np.moveaxis(values.reshape(n, -1, k), -1, 1)


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Fraction of the ``k`` largest entries along the last axis that ``a`` and ``b`` share."""
    k = min(k, a.shape[-1])
    ta = np.argsort(-a, axis=-1)[..., :k]
    tb = np.argsort(-b, axis=-1)[..., :k]
    hits = (ta[..., :, None] == tb[..., None, :]).any(-1).sum(-1)
    return np.asarray(hits / k, dtype=np.float64)


def paired_test(better: np.ndarray, test: Literal["wilcoxon", "t"]) -> tuple[float, float]:
    """One-sided paired test that the per-row differences ``better`` are above zero.

    Returns ``(statistic, p_value)``; ``p = 1`` when every difference is zero. Wilcoxon
    signed-rank (zero differences dropped, Wilcoxon 1945) or the paired t test.
    """
    d = np.asarray(better, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or np.all(d == 0):
        return 0.0, 1.0
    if test == "t":
        if d.size < 2 or np.std(d) == 0:
            return float("inf") if d.mean() > 0 else float("-inf"), float(d.mean() <= 0)
        res = stats.ttest_1samp(d, 0.0, alternative="greater")
    else:
        res = stats.wilcoxon(d, alternative="greater", zero_method="wilcox")
    return float(res.statistic), float(res.pvalue)


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


# ------------------------------------------------------------------ plumbing

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


def row_blocks(n: int, per_row: int, max_batch: int) -> list[slice]:
    """Consecutive row slices so that ``rows * per_row`` stays within ``max_batch``."""
    size = max(1, max_batch // max(per_row, 1))
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def reexplainer(check: Check, name: str) -> Reexplain:
    """The re-explaining callable :func:`xaudit.check` gave ``check``, or a clear error."""
    context = check.context
    if context is None or context.reexplain is None:
        raise InputError(f"{name} re-explains inputs, so it needs the explanation's method "
                         "registered on the host running the check (run it through "
                         "xaudit.check or a suite)")
    return context.reexplain


def calls_of(model: Model) -> int:
    """Model calls counted so far by the counting proxy :func:`xaudit.check` passes."""
    return int(getattr(model, "calls", 0))


class Cost:
    """Records a check's model calls, re-explanations and wall time for its details."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.start_calls = calls_of(model)
        self.started = time.perf_counter()
        self.reexplained_rows = 0
        self.reexplain_calls = 0

    def reexplain(self, fn: Callable[..., np.ndarray], X: np.ndarray, *args: Any,
                  **kwargs: Any) -> np.ndarray:
        """Call ``fn(X, ...)`` and count it as one re-explanation of ``len(X)`` rows."""
        self.reexplain_calls += 1
        self.reexplained_rows += int(X.shape[0])
        return fn(X, *args, **kwargs)

    def details(self) -> dict[str, Any]:
        """``model_calls``, ``reexplain_calls``, ``reexplained_rows``, ``wall_time_s``."""
        return {"model_calls": calls_of(self.model) - self.start_calls,
                "reexplain_calls": self.reexplain_calls,
                "reexplained_rows": self.reexplained_rows,
                "wall_time_s": time.perf_counter() - self.started}


def mean_finite(a: np.ndarray) -> float:
    """Mean of the finite entries (``NaN`` when there are none)."""
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


def local_rows(explanation: Explanation, name: str) -> np.ndarray:
    """The explained rows as floats, or an InputError for a global or non-numeric explanation."""
    if explanation.handoff.kind == "global":
        raise InputError(f"{name} measures local attributions of explained rows; "
                         f"{explanation.method!r} gives a global explanation")
    try:
        rows = np.asarray(explanation.inputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} perturbs numeric rows; the rows {explanation.method!r} "
                         "explained are not numeric") from None
    if rows.size and np.isnan(rows).all():
        raise InputError(f"{name}: the explanation carries no input rows (all NaN)")
    return rows


def need_same_shape(explanation: Explanation, other: np.ndarray, what: str) -> None:
    """Raise InputError when ``other``'s shape differs from the explanation values'."""
    if other.shape != explanation.values.shape:
        raise InputError(f"{what} shaped {other.shape}, the explanation {explanation.values.shape}")
