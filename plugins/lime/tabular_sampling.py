"""The sampler of ``lime.tabular``: background statistics, perturbation draws, representation.

Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?" (perturbations drawn around the
training distribution, one feature at a time): continuous features are drawn
from a normal with the background's mean and standard deviation (``discretizer: none``), or a bin
is drawn with its background frequency and a value inside it from the bin's normal truncated to
the bin's edges (quartile, decile or entropy bins); categorical features are drawn from their
background frequencies. :func:`represent` gives the interpretable representation of the draws
for one explained row (see :mod:`xaudit.plugins.lime.tabular`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xaudit.errors import InputError
from xaudit.model import Model

Discretizer = Literal["none", "quartile", "decile", "entropy"]


@dataclass
class Stats:
    """What the sampler needs from the background."""

    continuous: np.ndarray  # indices of continuous features
    mean: np.ndarray  # (c,)
    scale: np.ndarray  # (c,)
    cuts: list[np.ndarray]  # per continuous feature, interior bin edges (discretized only)
    cum: np.ndarray  # (c, B) cumulative bin frequencies (padded with 1)
    bin_mean: np.ndarray  # (c, B)
    bin_std: np.ndarray  # (c, B), 1 where the bin holds one value (then drawn as its mean)
    bin_lo: np.ndarray  # (c, B) edges of each bin
    bin_hi: np.ndarray
    cdf_lo: np.ndarray  # (c, B) standard normal CDF of the bin's edges, standardised
    cdf_hi: np.ndarray
    table: np.ndarray  # (6, c * B): mean, std, cdf_lo, cdf_hi, lo, hi of every bin
    categorical: np.ndarray  # indices
    cat_values: list[np.ndarray]
    cat_cum: list[np.ndarray]


def fit_stats(bg: np.ndarray, cat: np.ndarray, how: Discretizer, model: Model) -> Stats:
    d = bg.shape[1]
    cont = np.setdiff1d(np.arange(d), cat)
    num = np.asarray(bg[:, cont], dtype=np.float64)
    mean, scale = num.mean(axis=0), num.std(axis=0)
    scale[scale == 0] = 1.0
    cuts: list[np.ndarray] = []
    if how != "none":
        labels = _entropy_labels(model, bg) if how == "entropy" else None
        cuts = [_cuts(num[:, j], how, labels) for j in range(len(cont))]
    B = max([len(c) + 1 for c in cuts], default=1)
    shape = (len(cont), B)
    cum, bmean, bstd = np.ones(shape), np.zeros(shape), np.zeros(shape)
    lo, hi = np.zeros(shape), np.zeros(shape)
    for j, c in enumerate(cuts):
        col = num[:, j]
        bins = np.searchsorted(c, col)
        counts = np.bincount(bins, minlength=len(c) + 1)
        cum[j, :len(c) + 1] = np.cumsum(counts) / counts.sum()
        edges = np.concatenate([[col.min()], c, [col.max()]])
        for b in range(len(c) + 1):
            inside = col[bins == b]
            bmean[j, b] = inside.mean() if inside.size else 0.5 * (edges[b] + edges[b + 1])
            bstd[j, b] = inside.std() if inside.size else 0.0
            lo[j, b], hi[j, b] = edges[b], edges[b + 1]
    safe = np.where(bstd > 1e-12 * np.maximum(1.0, np.abs(bmean)), bstd, 0.0)
    from scipy.special import ndtr

    with np.errstate(divide="ignore", invalid="ignore"):
        cdf_lo = np.where(safe > 0, ndtr((lo - bmean) / safe), 0.5)
        cdf_hi = np.where(safe > 0, ndtr((hi - bmean) / safe), 0.5)
    std1 = np.where(safe > 0, safe, 1.0)
    table = np.stack([bmean, std1, cdf_lo, cdf_hi, lo, hi]).reshape(6, -1)
    cat_values, cat_cum = [], []
    for j in cat:
        vals, counts = np.unique(bg[:, j], return_counts=True)
        cat_values.append(vals)
        cat_cum.append(np.cumsum(counts) / counts.sum())
    return Stats(cont, mean, scale, cuts, cum, bmean, std1, lo, hi,
                  cdf_lo, cdf_hi, table, cat, cat_values, cat_cum)


def _entropy_labels(model: Model, bg: np.ndarray) -> np.ndarray:
    if model.task == "regression" or len(model.output_names) < 2:
        raise InputError("discretizer 'entropy' splits on class labels and is for classifiers; "
                         "use 'quartile' or 'decile' for this model")
    return np.asarray(np.argmax(model.predict(bg), axis=1))


def _cuts(col: np.ndarray, how: Discretizer, labels: np.ndarray | None) -> np.ndarray:
    if how == "entropy":
        from sklearn.tree import DecisionTreeClassifier

        if labels is None:  # pragma: no cover - fit_stats always passes them for entropy
            raise InputError("discretizer 'entropy' needs the model's predicted classes")
        tree = DecisionTreeClassifier(criterion="entropy", max_depth=3, random_state=0)
        tree.fit(col[:, None], labels)
        cut = np.unique(tree.tree_.threshold[tree.tree_.feature >= 0])
        return cut if cut.size else np.unique(np.percentile(col, [50]))
    q = [25, 50, 75] if how == "quartile" else list(range(10, 100, 10))
    return np.unique(np.percentile(col, q))


@dataclass
class Draw:
    """``S`` perturbed model rows and their codes: the standard normal draw of a continuous
    feature (``discretizer: none``), or the index of its bin or category."""

    rows: np.ndarray
    codes: np.ndarray


def draw(st: Stats, S: int, d: int, discretizer: Discretizer, rng: np.random.Generator,
         dtype: Any) -> Draw:
    """Perturbations drawn from the background statistics (independent of the row)."""
    rows = np.empty((S, d), dtype=dtype)
    codes = np.empty((S, d))
    c = st.continuous
    every = c.size == d
    cols: Any = slice(None) if every else c
    if discretizer == "none":
        z = rng.standard_normal((S, c.size))
        codes[:, cols] = z
        rows[:, cols] = z * st.scale + st.mean
    elif c.size:
        bins = _draw_bins(rng.random((S, c.size)), st.cum)
        rows[:, cols] = _truncated_normal(bins, st, rng.random((S, c.size)))
        codes[:, cols] = bins
    for j, vals, cum in zip(st.categorical, st.cat_values, st.cat_cum, strict=True):
        index = np.minimum(np.searchsorted(cum, rng.random(S), side="right"), vals.size - 1)
        rows[:, j] = vals[index]
        codes[:, j] = index
    return Draw(rows, codes)


def represent(x: np.ndarray, draw: Draw, st: Stats, discretizer: Discretizer) -> np.ndarray:
    """Interpretable representation of ``draw`` for the row ``x`` (row 0 stands for ``x``)."""
    d = x.shape[0]
    c = st.continuous
    xc = np.asarray(x[c], dtype=np.float64)
    own = np.zeros(d)
    if discretizer != "none":
        own[c] = [np.searchsorted(cu, v) for cu, v in zip(st.cuts, xc, strict=True)]
    for j, vals in zip(st.categorical, st.cat_values, strict=True):
        hit = np.flatnonzero(vals == x[j])
        own[j] = hit[0] if hit.size else -1
    if discretizer == "none":
        rep = draw.codes.copy()
        if st.categorical.size:
            rep[:, st.categorical] = draw.codes[:, st.categorical] == own[st.categorical]
        rep[0, c] = (xc - st.mean) / st.scale
    else:
        rep = (draw.codes == own).astype(np.float64)
        rep[0, c] = 1.0
    rep[0, st.categorical] = 1.0
    return rep


def _draw_bins(u: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Bin of each uniform draw ``u (S, c)`` under cumulative frequencies ``cum (c, B)``."""
    bins = np.zeros(u.shape, dtype=np.intp)
    for b in range(cum.shape[1] - 1):
        bins += u >= cum[:, b]
    return bins


def _truncated_normal(bins: np.ndarray, st: Stats, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws from each bin's normal truncated to the bin's edges."""
    from scipy.special import ndtri

    B = st.table.shape[1] // bins.shape[1]
    flat = (bins + np.arange(bins.shape[1]) * B).ravel()
    mean, std, fa, fb, lo, hi = (np.take(column, flat) for column in st.table)
    span = fb - fa
    q = u.ravel() * span
    q += fa
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ndtri(q)
    out *= std
    out += mean
    np.clip(out, lo, hi, out=out)
    bad = ~((span > 1e-12) & np.isfinite(out))
    out[bad] = mean[bad]
    return np.asarray(out.reshape(bins.shape))
