"""KernelSHAP's constrained weighted least squares over coalition pairs, with a cubic surrogate.

Shapley values are the coefficients of the best *additive* fit ``g(S) = sum_{i in S} phi_i`` to
``v(S) - v(empty)`` under the Shapley-kernel weights, subject to ``g(all) = v(all) -
v(empty)`` (Charnes et al. 1988; Lundberg and Lee 2017). The constraint is solved exactly
through the KKT system (Covert and Lee 2021) rather than by eliminating a feature.

Pairs. Write ``x_i = 2 [i in S] - 1`` and expand ``v`` in parity functions ``chi_T = prod_{i in
T} x_i``. Complementing ``S`` flips every ``x_i``, so ``chi_T`` is even or odd with ``|T|``, and
a pair ``(S, complement)`` sees only the odd part ``(v(S) - v(complement)) / 2``. Even terms
(pairwise interactions among them) carry no Shapley value (``chi_T(all) = chi_T(empty)`` and the
game is symmetric in ``T``), while an odd ``chi_T`` gives ``2 / |T|`` to each member of ``T``.
The fit therefore runs on pairs, on the odd part alone.

Cubic surrogate (regression adjustment). Linear KernelSHAP's sampling error comes from the odd
part that the additive fit leaves unexplained, mostly the third-order terms. The surrogate
``g = sum_i a_i x_i + sum_{T in triples} c_T chi_T`` over the triples of the ``k`` features with
the largest first-pass values is fitted under the same weights and constraint (a small ridge on
the ``c_T``), and its Shapley values ``2 a_i + (2/3) sum_{T containing i} c_T`` are returned.
Under the exact kernel measure these equal the Shapley values of ``v`` for any ``k`` (the
additive fit of ``v`` is the additive fit of its fit in a larger space containing the additive
games: nested projections under one inner product), so the estimator is consistent, while its
error is driven by the odd part the surrogate leaves unexplained. This is the k-additive route
of Pelegrina, Duarte and Grabisch (2023, "A k-additive Choquet integral-based approach to
approximate the SHAP values for local interpretability in machine learning", Artificial
Intelligence 325) and the regression adjustment of Witter, Liu and Musco (2025,
"Regression-adjusted Monte Carlo Estimators for Shapley Values and Probabilistic Values"),
with a surrogate whose Shapley values are known in closed form.

Standard errors: the estimate is a smooth function of weighted sample moments, so its sampling
covariance is the sandwich ``G Sigma G^T`` with ``G = L K11`` (``L`` maps surrogate coefficients
to Shapley values, ``K11`` the top-left block of the inverse KKT matrix) and ``Sigma`` the
covariance of ``sum_j w_j h_j r_j`` over the *sampled pairs* (the units drawn, residuals ``r``),
stratified by size with the finite-population correction ``1 - n_u/N_u``; enumerated strata
contribute none. Covert and Lee (2021) derive this delta-method covariance for the linear case.
Residuals are inflated by the jackknife (HC3) factor ``1 / (1 - leverage)`` so that in-sample
fitting does not shrink the error estimate.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

from xaudit.plugins.shapley.kernel_design import Design

RIDGE = 1e-2
"""Penalty on the cubic coefficients (the design's Gram matrix has a unit diagonal)."""
PAIRS_PER_TRIPLE = 8
"""Default ``k``: the most features whose triples number at most one per this many pairs."""


def default_cubic_features(n_pairs: int, d: int) -> int:
    """The largest ``k <= d`` with ``C(k, 3) <= n_pairs / 8`` (0 when below 3)."""
    k = 0
    while k < d and comb(k + 1, 3) * PAIRS_PER_TRIPLE <= n_pairs:
        k += 1
    return k if k >= 3 else 0


def _solve(H: np.ndarray, w: np.ndarray, y: np.ndarray, delta: np.ndarray, L: np.ndarray,
           penalty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(p, k)`` of the constrained fit and the inverse KKT block ``K11`` ``(p, p)``.

    Minimises ``sum_j w_j (y_j - H_j beta)^2 + beta' P beta`` subject to ``c' beta = delta``
    with ``c = L.sum(0)`` through the symmetric KKT system ``[[A, c], [c', 0]]`` for
    ``A = H' W H + P``. It is inverted by a symmetric eigendecomposition, a pseudo-inverse when
    singular (tiny designs), which also avoids the threaded LU that stalls on busy machines.
    """
    p = H.shape[1]
    kkt = np.zeros((p + 1, p + 1))
    kkt[:p, :p] = H.T @ (w[:, None] * H) + np.diag(penalty)
    kkt[:p, p] = kkt[p, :p] = L.sum(0)
    rhs = np.concatenate([H.T @ (w[:, None] * y), delta[None, :]], axis=0)
    eigval, eigvec = np.linalg.eigh(kkt)
    floor = max(float(np.abs(eigval).max()), 1e-300) * 1e-12
    keep = np.abs(eigval) > floor
    inv_val = np.where(keep, 1.0 / np.where(keep, eigval, 1.0), 0.0)
    inverse = (eigvec[:p] * inv_val) @ eigvec.T
    return inverse @ rhs, inverse[:, :p]


def fit(design: Design, y: np.ndarray, delta: np.ndarray,
        cubic_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values and standard errors ``(d, k)`` from ``y = v(S) - v(empty)`` ``(m, k)``.

    ``delta`` ``(k,)`` is ``v(all) - v(empty)``; the values add up to it exactly.
    ``cubic_features`` is ``k`` for the cubic surrogate (0: linear KernelSHAP).
    """
    d = design.masks.shape[1]
    first = design.masks[0::2]
    w = design.weights[0::2] + design.weights[1::2]
    y_odd = (y[0::2] - y[1::2]) / 2.0
    x = 2.0 * first - 1.0
    # constraint: sum of the Shapley values = sum_T L[:, T].sum() c_T = delta
    L = 2.0 * np.eye(d)
    beta, K11 = _solve(x, w, y_odd, delta, L, np.zeros(d))
    H = x
    k = min(cubic_features, d)
    if k >= 3:
        strength = np.abs(L @ beta).sum(1)
        top = np.sort(np.argsort(-strength, kind="stable")[:k])
        triples = np.array(list(combinations(top.tolist(), 3)))
        cubic = x[:, triples[:, 0]] * x[:, triples[:, 1]] * x[:, triples[:, 2]]
        L3 = np.zeros((d, triples.shape[0]))
        for col in range(3):
            L3[triples[:, col], np.arange(triples.shape[0])] = 2.0 / 3.0
        H = np.concatenate([x, cubic], axis=1)
        L = np.concatenate([L, L3], axis=1)
        penalty = np.concatenate([np.zeros(d), np.full(triples.shape[0], RIDGE)])
        beta, K11 = _solve(H, w, y_odd, delta, L, penalty)
    phi = L @ beta
    phi += (delta - phi.sum(0)) / d  # efficiency holds by the constraint; remove rounding drift
    return phi, _std_errors(design, H, w, y_odd - H @ beta, L @ K11, K11)


def _std_errors(design: Design, H: np.ndarray, w: np.ndarray, resid: np.ndarray,
                G: np.ndarray, K11: np.ndarray) -> np.ndarray:
    """Stratified sandwich standard errors ``(d, k)`` over the sampled pairs."""
    d, k = G.shape[0], resid.shape[1]
    start = design.n_enumerated // 2
    if design.pair_stratum.size == 0:
        return np.zeros((d, k))
    Hs, ws, rs = H[start:], w[start:], resid[start:]
    leverage = np.clip(ws * ((Hs @ K11) * Hs).sum(1), 0.0, 0.9)
    infl = (Hs @ G.T) * (ws / (1.0 - leverage))[:, None]  # (pairs, d)
    terms = infl[:, :, None] * rs[:, None, :]  # (pairs, d, k)
    var = np.zeros((d, k))
    for u in np.unique(design.pair_stratum):
        t = terms[design.pair_stratum == u]
        n, total = t.shape[0], int(design.stratum_total[u])
        if n < 2:
            continue
        fpc = max(0.0, 1.0 - n / total)
        var += n / (n - 1) * fpc * ((t - t.mean(0)) ** 2).sum(0)
    return np.sqrt(var)
