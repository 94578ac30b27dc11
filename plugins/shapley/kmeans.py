"""Seeded weighted k-means, used to summarise a large background into weighted centres.

Lloyd's algorithm (Lloyd 1982, "Least squares quantization in PCM") started from k-means++
seeding (Arthur and Vassilvitskii 2007, "k-means++: The Advantages of Careful Seeding"). The
Shapley explainers replace a background of ``n`` rows by ``k`` centres weighted by their cluster
sizes, so the value function ``v(S) = E_b[f(x_S, b_notS)]`` averages over ``k`` rows instead of
``n`` (the approximation KernelSHAP implementations make for large backgrounds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KMeansResult:
    """Centres ``(k, d)``, their weights (cluster sizes, summing to ``n``), labels and inertia."""

    centers: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def _sq_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, k)``, clipped at zero against rounding."""
    d2 = (X * X).sum(1)[:, None] - 2.0 * X @ centers.T + (centers * centers).sum(1)[None, :]
    return np.asarray(np.maximum(d2, 0.0))


def _plus_plus(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each new centre drawn with probability proportional to D(x)^2."""
    n = X.shape[0]
    chosen = [int(rng.integers(n))]
    closest = _sq_distances(X, X[chosen])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0.0:  # fewer distinct rows than k: take any unused row
            unused = np.setdiff1d(np.arange(n), chosen)
            nxt = int(rng.choice(unused))
        else:
            nxt = int(rng.choice(n, p=closest / total))
        chosen.append(nxt)
        closest = np.minimum(closest, _sq_distances(X, X[nxt:nxt + 1])[:, 0])
    return X[chosen].copy()


def kmeans(X: np.ndarray, k: int, rng: np.random.Generator, *, max_iter: int = 100,
           tol: float = 1e-8) -> KMeansResult:
    """Cluster the rows of ``X`` (``(n, d)`` numbers) into ``k <= n`` clusters.

    Deterministic for a given ``rng`` state. Empty clusters are re-seeded at the row farthest
    from its centre. Stops when no label changes or the centres move less than ``tol``
    (relative to the data's scale).
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if not 0 < k <= n:
        raise ValueError(f"k must be between 1 and {n}, got {k}")
    centers = _plus_plus(X, k, rng)
    scale = max(float(np.abs(X).max()), 1e-300)
    labels = np.full(n, -1)
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        d2 = _sq_distances(X, centers)
        new_labels = d2.argmin(1)
        counts = np.bincount(new_labels, minlength=k)
        for empty in np.flatnonzero(counts == 0):
            far = int(d2[np.arange(n), new_labels].argmax())
            new_labels[far] = empty
            d2[far] = 0.0
            counts = np.bincount(new_labels, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, new_labels, X)
        new_centers = sums / counts[:, None]
        shift = float(np.abs(new_centers - centers).max())
        centers = new_centers
        if np.array_equal(new_labels, labels) or shift <= tol * scale:
            labels = new_labels
            break
        labels = new_labels
    d2 = _sq_distances(X, centers)
    inertia = float(d2[np.arange(n), labels].sum())
    weights = np.bincount(labels, minlength=k).astype(np.float64)
    return KMeansResult(centers, weights, labels, inertia, iteration)
