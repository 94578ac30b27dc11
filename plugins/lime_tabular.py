"""LIME for tabular rows (Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?").

Perturbations follow the training (background) distribution, one feature at a time:

- ``discretizer: none``: continuous features are drawn from ``N(mean_j, std_j)`` of the
  background (around the row instead with ``sample_around_instance``); the interpretable
  representation is the standardised value ``(z_j - mean_j) / std_j``, so on a model linear in
  ``x_j`` with coefficient ``c_j`` the local weight is ``c_j * std_j``.
- ``quartile`` / ``decile`` / ``entropy``: each continuous feature is cut into bins (background
  quantiles, or the splits of a depth-3 entropy tree on the model's predicted class of the
  background rows); a bin is drawn with its background frequency and a value inside it from a
  normal truncated to the bin (the bin's background mean and standard deviation). The
  representation is binary: 1 when the sample falls in the row's bin.
- categorical features are drawn from their background frequencies; representation 1 when
  equal to the row's value.

Samples are weighted by ``exp(-D^2 / (2 w^2))`` (Euclidean distance ``D`` in the representation,
``w = 0.75 sqrt(d)`` by default) and a weighted ridge is fitted per targeted output (see
:mod:`xaudit.plugins.lime_common`). Every row's sample set is drawn from the generator passed in,
in row order, so a seed fixes the explanation; the sample sets of many rows are stacked into
model calls of up to ``max_batch`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.registry import Registry
from xaudit.targets import TargetSelection

from .lime_common import LimeFitParams, fit_local, kernel, row_blocks, stability_over_seeds

Discretizer = Literal["none", "quartile", "decile", "entropy"]


class LimeTabularParams(LimeFitParams):
    """Parameters of ``lime.tabular``."""

    discretizer: Discretizer = "quartile"
    """``none`` samples continuous features from a normal and explains standardised values;
    ``quartile``, ``decile`` or ``entropy`` explain 'the feature lies in the row's bin'."""
    categorical_features: list[int | str] = Field(default_factory=list)
    """Categorical features, by index or by the model's feature names."""
    sample_around_instance: bool = False
    """With ``discretizer: none``: centre the normal samples on the row, not the mean."""
    stability_runs: int = Field(0, ge=0)
    """With 2 or more: explain again ``stability_runs - 1`` times with seeds drawn from this
    explanation's generator and report, per row and output, the stability of the top
    ``stability_top_k`` features in ``metadata["stability"]`` (that many times the cost)."""
    stability_top_k: int = Field(5, ge=1)
    """How many top features the stability figures compare."""
    share_samples: bool = False
    """Draw one perturbation set per block of rows and reuse it for every row of the block
    (each row still gets ``n_samples`` samples, with row 0 its own input). The perturbation
    distribution does not depend on the row, so each explanation is distributed as with its own
    draw, at ``1/block`` of the model calls; errors are then correlated across rows."""


@dataclass
class _Stats:
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


class LimeTabular(Explainer):
    """Local weighted linear surrogates on perturbations drawn from the training distribution."""

    name = "lime.tabular"
    summary = "LIME: a sparse weighted linear model fitted to perturbations around each row."
    paper = ("Ribeiro, Singh and Guestrin 2016, 'Why Should I Trust You?': Explaining the "
             "Predictions of Any Classifier")
    limitations = (
        "Weights depend on the kernel width, which has no principled default; a different "
        "width can change the ranking of features.",
        "Perturbations are drawn feature by feature, ignoring correlations, so many samples "
        "may be unrealistic rows.",
        "Weights explain the local surrogate: check its weighted R2 (extras['r2']) before "
        "trusting them; they do not sum to the model output.",
        "Discretized weights mean 'being in this bin' against the background mix of bins, not "
        "a marginal effect.",
    )
    Params = LimeTabularParams
    params: LimeTabularParams
    needs_background = True
    stochastic = True
    default_target = "all"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Surrogate weights ``(n, d, k)``, intercepts ``(n, k)``, R2 and local predictions."""
        p = self.params
        if X.ndim != 2:
            raise InputError(f"lime.tabular explains rows of features (n, d); got {X.shape}")
        if background is None or len(background) < 2:
            raise InputError("lime.tabular needs a background of at least 2 training rows")
        n, d = X.shape
        cat = _categorical_indices(p.categorical_features, model, d)
        stats = _fit_stats(np.asarray(background), cat, p.discretizer, model)
        width = p.kernel_width or 0.75 * np.sqrt(d)
        S = p.n_samples
        k = targets.n_slots
        values = np.zeros((n, d, k))
        base, r2 = np.zeros((n, k)), np.zeros((n, k))
        local, outputs = np.zeros((n, k)), np.zeros((n, k))
        selected = np.zeros((n, d, k), dtype=bool)
        share = p.share_samples
        if share and p.sample_around_instance:
            raise InputError("share_samples needs samples that do not depend on the row; "
                             "turn off sample_around_instance or share_samples")
        dtype = object if X.dtype == object else np.float64
        per_row = 1 if share else S
        for block in row_blocks(n, per_row, max(1, p.max_batch - (S if share else 0))):
            if share:
                shared = _draw(st=stats, S=S, d=d, p=p, rng=rng, dtype=dtype)
                draws = [shared] * len(block)
                flat = model.predict(np.concatenate([X[block.start:block.stop],
                                                     shared.rows[1:]]))
                preds = [np.concatenate([flat[i:i + 1], flat[len(block):]])
                         for i in range(len(block))]
            else:
                draws = []
                for r in block:
                    one = _draw(st=stats, S=S, d=d, p=p, rng=rng, dtype=dtype)
                    one.rows[0] = X[r]
                    if p.sample_around_instance:
                        shift = (np.asarray(X[r][stats.continuous], dtype=np.float64)
                                 - stats.mean) / stats.scale
                        one.codes[:, stats.continuous] += shift
                        one.rows[:, stats.continuous] += shift * stats.scale
                        one.rows[0] = X[r]
                    draws.append(one)
                flat = model.predict(np.concatenate([dr.rows for dr in draws]))
                preds = [flat[i * S:(i + 1) * S] for i in range(len(block))]
            for i, r in enumerate(block):
                rep = _represent(X[r], draws[i], stats, p)
                dist = np.sqrt(((rep - rep[0]) ** 2).sum(axis=1))
                Y = preds[i][:, targets.indices[r]]
                fit = fit_local(rep, Y, kernel(dist, width), p)
                values[r], base[r], r2[r] = fit.coef, fit.intercept, fit.r2
                local[r], outputs[r], selected[r] = fit.local_prediction, Y[0], fit.selected
        stability = None
        if p.stability_runs > 1:
            child = LimeTabular(p.model_copy(update={"stability_runs": 0}))
            stability = stability_over_seeds(values, lambda g: child.explain(
                model, X, background=background, targets=targets, rng=g).values,
                p.stability_runs, p.stability_top_k, rng)
        return Attribution(
            values=values, base_values=base,
            extras={"r2": r2, "local_prediction": local, "outputs": outputs,
                    "selected": selected},
            metadata={"discretizer": p.discretizer, "kernel_width": float(width),
                      "n_samples": S,
                      "representation": "standardised" if p.discretizer == "none"
                      else "binary (in the row's bin / category)",
                      "conditions": [_conditions(x, stats, model, d) for x in X],
                      **({"stability": stability} if stability else {})},
        )


def _categorical_indices(given: list[int | str], model: Model, d: int) -> np.ndarray:
    names = model.input_spec.feature_names
    out = []
    for item in given:
        if isinstance(item, str):
            if not names or item not in names:
                raise InputError(f"categorical feature {item!r} is not a feature name of the "
                                 "model; give categorical_features as column indices")
            out.append(list(names).index(item))
        elif not 0 <= item < d:
            raise InputError(f"categorical feature index {item} out of range for {d} features")
        else:
            out.append(item)
    return np.asarray(sorted(set(out)), dtype=np.int64)


def _fit_stats(bg: np.ndarray, cat: np.ndarray, how: Discretizer, model: Model) -> _Stats:
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
    return _Stats(cont, mean, scale, cuts, cum, bmean, std1, lo, hi,
                  cdf_lo, cdf_hi, table, cat, cat_values, cat_cum)


def _entropy_labels(model: Model, bg: np.ndarray) -> np.ndarray:
    if model.task == "regression" or len(model.output_names) < 2:
        raise InputError("discretizer 'entropy' splits on class labels and is for classifiers; "
                         "use 'quartile' or 'decile' for this model")
    return np.asarray(np.argmax(model.predict(bg), axis=1))


def _cuts(col: np.ndarray, how: Discretizer, labels: np.ndarray | None) -> np.ndarray:
    if how == "entropy":
        from sklearn.tree import DecisionTreeClassifier

        if labels is None:  # pragma: no cover - _fit_stats always passes them for entropy
            raise InputError("discretizer 'entropy' needs the model's predicted classes")
        tree = DecisionTreeClassifier(criterion="entropy", max_depth=3, random_state=0)
        tree.fit(col[:, None], labels)
        cut = np.unique(tree.tree_.threshold[tree.tree_.feature >= 0])
        return cut if cut.size else np.unique(np.percentile(col, [50]))
    q = [25, 50, 75] if how == "quartile" else list(range(10, 100, 10))
    return np.unique(np.percentile(col, q))


@dataclass
class _Draw:
    """``S`` perturbed model rows and their codes: the standard normal draw of a continuous
    feature (``discretizer: none``), or the index of its bin or category."""

    rows: np.ndarray
    codes: np.ndarray


def _draw(st: _Stats, S: int, d: int, p: LimeTabularParams, rng: np.random.Generator,
          dtype: Any) -> _Draw:
    """Perturbations drawn from the background statistics (independent of the row)."""
    rows = np.empty((S, d), dtype=dtype)
    codes = np.empty((S, d))
    c = st.continuous
    every = c.size == d
    cols: Any = slice(None) if every else c
    if p.discretizer == "none":
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
    return _Draw(rows, codes)


def _represent(x: np.ndarray, draw: _Draw, st: _Stats, p: LimeTabularParams) -> np.ndarray:
    """Interpretable representation of ``draw`` for the row ``x`` (row 0 stands for ``x``)."""
    d = x.shape[0]
    c = st.continuous
    xc = np.asarray(x[c], dtype=np.float64)
    own = np.zeros(d)
    if p.discretizer != "none":
        own[c] = [np.searchsorted(cu, v) for cu, v in zip(st.cuts, xc, strict=True)]
    for j, vals in zip(st.categorical, st.cat_values, strict=True):
        hit = np.flatnonzero(vals == x[j])
        own[j] = hit[0] if hit.size else -1
    if p.discretizer == "none":
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


def _truncated_normal(bins: np.ndarray, st: _Stats, u: np.ndarray) -> np.ndarray:
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


def _conditions(x: np.ndarray, st: _Stats, model: Model, d: int) -> list[str]:
    names = model.input_spec.feature_names or tuple(f"x{i}" for i in range(d))
    out = [""] * d
    for j, f in enumerate(st.continuous):
        if not st.cuts:
            out[f] = f"{names[f]} = {float(x[f]):.4g}"
            continue
        cu = st.cuts[j]
        b = int(np.searchsorted(cu, float(x[f])))
        if b == 0:
            out[f] = f"{names[f]} <= {cu[0]:.4g}"
        elif b == cu.size:
            out[f] = f"{names[f]} > {cu[-1]:.4g}"
        else:
            out[f] = f"{cu[b - 1]:.4g} < {names[f]} <= {cu[b]:.4g}"
    for f in st.categorical:
        out[f] = f"{names[f]} = {_plain(x[f])}"
    return out


def _plain(value: Any) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``lime.tabular``."""
    registry.add(LimeTabular)
