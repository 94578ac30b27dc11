"""What the three LIME explainers share: the kernel, the weighted ridge and feature selection.

LIME (Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?": Explaining the Predictions of
Any Classifier) explains ``f`` at ``x`` by sampling perturbations ``z`` in an interpretable
representation, weighting them by a proximity kernel ``pi_x(z)`` and fitting a sparse linear
model ``g`` to ``f`` on the weighted samples (the paper's ``argmin L(f, g, pi_x) + Omega(g)``).

Here ``pi_x(z) = exp(-D(x, z)^2 / (2 w^2))`` for a kernel width ``w`` (the paper's
``exp(-D^2 / sigma^2)`` with ``sigma = sqrt(2) w``, which is also what the ``lime`` package
uses). The local model is a ridge regression with an unpenalised intercept, solved in closed form
from the weighted Gram matrix of the (centred) samples; every feature-selection rule then works
on that ``d x d`` matrix, so choosing features costs nothing next to the model calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.plugin import PluginParams

Selection = Literal["auto", "forward", "lasso_path", "highest_weights", "none"]


class LimeFitParams(PluginParams):
    """Parameters of the local surrogate shared by every LIME explainer."""

    n_samples: int = Field(5000, ge=2)
    """Perturbed samples per explained row (the first one is the row itself)."""
    num_features: int | None = Field(10, ge=1)
    """How many interpretable features the local model may use; ``None`` uses all."""
    feature_selection: Selection = "auto"
    """``forward`` (greedy, best weighted R2 at each step), ``highest_weights`` (largest |w| of a
    ridge on all features), ``lasso_path`` (the last LARS-lasso step with at most
    ``num_features`` non-zero weights), ``none`` (all features), ``auto`` (``forward`` when
    ``num_features <= 6``, else ``highest_weights``)."""
    alpha: float = Field(1.0, ge=0.0)
    """Ridge penalty of the local model (its intercept is not penalised)."""
    kernel_width: float | None = Field(None, gt=0.0)
    """Width ``w`` of the kernel ``exp(-D^2 / (2 w^2))``; each modality has its own default."""
    max_batch: int = Field(100_000, gt=0)
    """Largest number of perturbed rows in one model call (rows' sample sets are stacked)."""


def kernel(distances: np.ndarray, width: float) -> np.ndarray:
    """Proximity weights ``exp(-d^2 / (2 w^2))``."""
    return np.exp(-(distances ** 2) / (2.0 * width ** 2))


def cosine_distance_to_ones(Z: np.ndarray) -> np.ndarray:
    """Cosine distance of each binary row of ``Z`` to the all-ones row (the unperturbed input)."""
    norms = np.sqrt(np.maximum(Z.sum(axis=1), 0.0)) * np.sqrt(Z.shape[1])
    dots = Z.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(norms > 0, dots / norms, 0.0)
    return np.asarray(1.0 - sim)


@dataclass
class LocalFit:
    """The local surrogate of one row: weights ``(d, k)``, intercept ``(k,)``, its weighted R2
    ``(k,)``, its prediction at the row ``(k,)``, and which features it uses ``(d, k)``."""

    coef: np.ndarray
    intercept: np.ndarray
    r2: np.ndarray
    local_prediction: np.ndarray
    selected: np.ndarray


@dataclass
class _Moments:
    """Weighted centred second moments of one sample set (everything the fits need)."""

    gram: np.ndarray  # (d, d)  Zc' W Zc
    cross: np.ndarray  # (d, k) Zc' W yc
    total: np.ndarray  # (k,)   yc' W yc
    z_mean: np.ndarray  # (d,)
    y_mean: np.ndarray  # (k,)


def _moments(Z: np.ndarray, Y: np.ndarray, w: np.ndarray) -> _Moments:
    sw = float(w.sum())
    if not sw > 0:
        raise InputError("every LIME sample got zero kernel weight; increase kernel_width")
    z_mean = (w @ Z) / sw
    y_mean = (w @ Y) / sw
    Zc = Z - z_mean
    Yc = Y - y_mean
    Zw = Zc * w[:, None]
    return _Moments(Zw.T @ Zc, Zw.T @ Yc, np.einsum("s,sk,sk->k", w, Yc, Yc), z_mean, y_mean)


def _solve(m: _Moments, idx: np.ndarray, j: int, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge weights on the features ``idx`` for output ``j``, and the weighted R2."""
    if idx.size == 0:
        return np.zeros(0), 0.0
    G = m.gram[np.ix_(idx, idx)]
    b = m.cross[idx, j]
    A = G + alpha * np.eye(idx.size)
    try:
        beta = np.linalg.solve(A, b) if alpha > 0 else np.linalg.lstsq(A, b, rcond=None)[0]
    except np.linalg.LinAlgError:
        beta = np.linalg.lstsq(A, b, rcond=None)[0]
    # weighted residual sum of squares from the moments: yc'Wyc - 2 b'beta + beta'G beta
    rss = float(m.total[j] - 2.0 * b @ beta + beta @ G @ beta)
    total = float(m.total[j])
    r2 = (1.0 - max(rss, 0.0) / total) if total > 0 else (1.0 if rss <= 1e-12 else 0.0)
    return beta, r2


def _select(m: _Moments, j: int, num: int, how: Selection, n_samples: int) -> np.ndarray:
    d = m.gram.shape[0]
    if how == "none" or num >= d:
        return np.arange(d)
    if how == "auto":
        how = "forward" if num <= 6 else "highest_weights"
    if how == "highest_weights":
        beta, _ = _solve(m, np.arange(d), j, 0.01)
        return np.sort(np.argsort(-np.abs(beta), kind="stable")[:num])
    if how == "forward":
        chosen: list[int] = []
        for _ in range(num):
            best, best_r2 = -1, -np.inf
            for f in range(d):
                if f in chosen:
                    continue
                _, r2 = _solve(m, np.asarray([*chosen, f]), j, 0.0)
                if r2 > best_r2:
                    best, best_r2 = f, r2
            chosen.append(best)
        return np.sort(np.asarray(chosen))
    from sklearn.linear_model import lars_path_gram

    _, _, coefs = lars_path_gram(m.cross[:, j], m.gram, n_samples=n_samples, method="lasso")
    for step in range(coefs.shape[1] - 1, -1, -1):
        nonzero = np.flatnonzero(coefs[:, step])
        if nonzero.size <= num:
            return nonzero
    return np.zeros(0, dtype=np.int64)  # pragma: no cover - step 0 has no feature


def fit_local(Z: np.ndarray, Y: np.ndarray, w: np.ndarray, params: LimeFitParams) -> LocalFit:
    """Fit the weighted ridge surrogate of ``Y (S, k)`` on ``Z (S, d)`` (row 0 is the input).

    Features are chosen per output by ``params.feature_selection``; unselected features get
    weight 0. The intercept is unpenalised (data centred on the weighted means).
    """
    m = _moments(np.asarray(Z, dtype=np.float64), np.asarray(Y, dtype=np.float64), w)
    d, k = Z.shape[1], Y.shape[1]
    num = d if params.num_features is None else params.num_features
    coef = np.zeros((d, k))
    selected = np.zeros((d, k), dtype=bool)
    r2 = np.zeros(k)
    for j in range(k):
        idx = _select(m, j, num, params.feature_selection, Z.shape[0])
        beta, r2[j] = _solve(m, idx, j, params.alpha)
        coef[idx, j] = beta
        selected[idx, j] = True
    intercept = m.y_mean - m.z_mean @ coef
    local = intercept + np.asarray(Z[0], dtype=np.float64) @ coef
    return LocalFit(coef, intercept, r2, local, selected)


def row_blocks(n_rows: int, per_row: int, max_batch: int) -> list[range]:
    """Consecutive row ranges whose stacked sample sets fit in ``max_batch`` model rows."""
    step = max(1, max_batch // max(1, per_row))
    return [range(start, min(n_rows, start + step)) for start in range(0, n_rows, step)]


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


def top_k_stability(weights: np.ndarray, top_k: int = 5) -> dict[str, float]:
    """How stable the top-``k`` features of one explanation are across runs.

    ``weights`` is ``(runs, d)``: the same row and output explained with different seeds. For
    every pair of runs, the features in either run's top ``k`` (by absolute weight) are ranked
    by absolute weight in each run, and Kendall's tau-b compares the two rankings; the Jaccard
    index compares the two top-``k`` sets. Returns the mean and minimum over pairs of both, and
    the share of runs whose top ``k`` equals the most frequent top ``k``.
    """
    W = np.abs(np.asarray(weights, dtype=np.float64))
    if W.ndim != 2 or W.shape[0] < 2:
        raise InputError(f"top_k_stability needs (runs >= 2, d) weights; got {W.shape}")
    k = min(top_k, W.shape[1])
    tops = [frozenset(np.argsort(-w, kind="stable")[:k].tolist()) for w in W]
    taus, jaccards = [], []
    for a in range(len(W)):
        for b in range(a + 1, len(W)):
            union = np.asarray(sorted(tops[a] | tops[b]))
            taus.append(kendall_tau(W[a, union], W[b, union]))
            jaccards.append(len(tops[a] & tops[b]) / len(tops[a] | tops[b]))
    modal = max(set(tops), key=tops.count)
    return {"rank_correlation": float(np.nanmean(taus)), "rank_correlation_min":
            float(np.nanmin(taus)), "top_k_jaccard": float(np.mean(jaccards)),
            "top_k_jaccard_min": float(np.min(jaccards)),
            "top_k_agreement": tops.count(modal) / len(tops), "top_k": float(k),
            "runs": float(len(W))}


def seed_stability(model: object, X: np.ndarray, *, method: str = "lime.tabular",
                   seeds: int | list[int] = 10, top_k: int = 5, background: object = None,
                   target: Any = None, **params: Any) -> list[dict[str, float]]:
    """Explain ``X`` once per seed (``seeds``: a count, meaning ``0 .. seeds-1``, or a list)
    and report :func:`top_k_stability` for every row and targeted output (row-major list of
    dicts, each with its ``row`` and ``slot``). This is the stability figure the LIME docs
    quote (lime#389, lime#767: a fixed seed fixes the explanation; this measures how much it
    would move under another)."""
    import xaudit

    chosen = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    runs = [xaudit.explain(model, X, method=method, background=background, seed=s,
                           target=target, **params).values for s in chosen]
    stacked = np.stack(runs)  # (runs, n, *feature_shape, k)
    n, k = stacked.shape[1], stacked.shape[-1]
    flat = stacked.reshape(len(chosen), n, -1, k)
    out = []
    for r in range(n):
        for j in range(k):
            out.append({"row": float(r), "slot": float(j),
                        **top_k_stability(flat[:, r, :, j], top_k)})
    return out


def stability_over_seeds(values: np.ndarray, rerun: Callable[[np.random.Generator], np.ndarray],
                         runs: int, top_k: int, rng: np.random.Generator) -> list[dict[str, float]]:
    """:func:`top_k_stability` of each row and output slot of ``values`` ``(n, d, k)`` over
    ``runs`` explanations: ``values`` and ``runs - 1`` reruns, each with a generator seeded
    from ``rng`` (so the figures are themselves fixed by the explanation's seed)."""
    seeds = rng.integers(0, 2**63 - 1, size=max(0, runs - 1))
    stacked = np.stack([values, *(rerun(np.random.default_rng(int(s))) for s in seeds)])
    n, k = values.shape[0], values.shape[-1]
    flat = stacked.reshape(stacked.shape[0], n, -1, k)
    return [{"row": float(r), "slot": float(j), **top_k_stability(flat[:, r, :, j], top_k)}
            for r in range(n) for j in range(k)]
