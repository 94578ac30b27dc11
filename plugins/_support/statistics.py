"""Rank statistics, correlations and paired tests over attribution arrays.

Everything works along the last axis, so ``(n, k, d)`` arrays (rows, output slots, features)
give one number per row and slot. scipy is imported inside the functions that use it, so
loading a plugin that imports this module costs nothing.
"""

from __future__ import annotations

from typing import Literal

import numpy as np


def rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    from scipy import stats

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


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b between two score vectors (ties counted as in Kendall 1945); ``nan``
    when either vector is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    i, j = np.triu_indices(a.size, k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    untied_a, untied_b = np.count_nonzero(da), np.count_nonzero(db)
    if untied_a == 0 or untied_b == 0:
        return float("nan")
    return float((da * db).sum() / np.sqrt(float(untied_a) * float(untied_b)))


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
    from scipy import stats

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


def t_half_width(sd: np.ndarray, runs: int, confidence: float) -> np.ndarray:
    """Half-width of the Student t confidence interval of a mean over ``runs`` values with
    sample standard deviation ``sd`` (``runs - 1`` degrees of freedom)."""
    from scipy import stats

    return np.asarray(stats.t.ppf(0.5 + confidence / 2, runs - 1) * sd / np.sqrt(runs))


def mean_finite(a: np.ndarray) -> float:
    """Mean of the finite entries (``NaN`` when there are none)."""
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


def wasserstein_1(u: np.ndarray, v: np.ndarray) -> float:
    """Wasserstein-1 (earth mover's) distance between the empirical distributions of the
    samples ``u`` and ``v`` (equal weights): the area between their distribution functions,
    ``integral |F_u(t) - F_v(t)| dt``, exact for step functions (Vallender 1973)."""
    u = np.sort(np.asarray(u, dtype=np.float64).ravel())
    v = np.sort(np.asarray(v, dtype=np.float64).ravel())
    if u.size == 0 or v.size == 0:
        raise ValueError("the Wasserstein distance needs at least one value on each side")
    knots = np.unique(np.concatenate([u, v]))
    if knots.size < 2:
        return 0.0
    left = knots[:-1]  # both distribution functions are constant on [knots[i], knots[i + 1])
    gap = np.searchsorted(u, left, side="right") / u.size - np.searchsorted(
        v, left, side="right") / v.size
    return float(np.sum(np.abs(gap) * np.diff(knots)))
