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

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from xaudit.errors import InputError
from xaudit.plugin import PluginParams

Selection = Literal["auto", "forward", "lasso_path", "highest_weights", "none"]


class LimeFitParams(PluginParams):
    """Parameters of the local surrogate shared by every LIME explainer."""

    n_samples: int = Field(5000, ge=2, le=1_000_000)
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
