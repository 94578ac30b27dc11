"""KernelSHAP's constrained weighted least squares over coalition pairs, and its standard errors.

Shapley values are the coefficients of the best *additive* fit ``g(S) = sum_{i in S} phi_i`` to
``v(S) - v(empty)`` under the Shapley-kernel weights, subject to ``g(all) = v(all) -
v(empty)`` (Charnes et al. 1988; Lundberg and Lee 2017). The constraint is solved exactly
through the KKT system (Covert and Lee 2021) rather than by eliminating a feature.

Pairs. Write ``x_i = 2 [i in S] - 1`` and expand ``v`` in parity functions ``chi_T = prod_{i in
T} x_i``. Complementing ``S`` flips every ``x_i``, so ``chi_T`` is even or odd with ``|T|``, and
a pair ``(S, complement)`` sees only the odd part ``(v(S) - v(complement)) / 2``. Even terms
carry no Shapley value (``chi_T(all) = chi_T(empty)`` and the game is symmetric in ``T``),
while an odd ``chi_T`` gives ``2 / |T|`` to each member of ``T``. The fit therefore runs on
pairs, on the odd part alone.

Surrogate (regression adjustment). The linear fit's sampling error comes from the odd part of
order three and more that it leaves unexplained. ``surrogate="gp"`` fits, jointly with the
linear part, a Gaussian-process surrogate of that part whose Shapley values are known in closed
form (:mod:`xaudit.plugins.shapley.kernel_gp`), and returns the Shapley values of the sum.
Whatever the surrogate ``h``, the linear part is the kernel-weighted fit of ``v - h``, so under
the exact kernel measure the result is ``phi(h) + phi(v - h) = phi(v)``: the estimator stays
consistent (exact once every pair is evaluated), and its error is driven by what the surrogate
leaves unexplained. This is the regression adjustment of Witter, Liu and Musco (2025,
"Regression-adjusted Monte Carlo Estimators for Shapley Values and Probabilistic Values") and
the k-additive route of Pelegrina, Duarte and Grabisch (2023, Artificial Intelligence 325).

Standard errors: the estimate is, to first order, ``phi + sum_j T_j r_j`` over the pairs, with
``T_j`` its sensitivity to pair ``j``'s value and ``r_j`` the pair's residual; its sampling
covariance is the stratified sandwich over the *sampled pairs* (the units drawn), with the
finite-population correction ``1 - n_u/N_u`` per size; enumerated strata contribute none.
Covert and Lee (2021) derive this delta-method covariance for the linear case. Residuals are
leave-one-out residuals (HC3, the jackknife), so that in-sample fitting does not shrink the
error estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xaudit.plugins.shapley.kernel_design import Design


@dataclass(frozen=True)
class Pairs:
    """A design's pairs: ``x`` ``(N, d)`` in ``{-1, 1}`` (the pair's first coalition), summed
    weights ``w`` ``(N,)``, odd parts ``y`` ``(N, k)``, ``delta = v(all) - v(empty)`` ``(k,)``."""

    x: np.ndarray
    w: np.ndarray
    y: np.ndarray
    delta: np.ndarray


@dataclass(frozen=True)
class Fit:
    """Shapley values ``(d, k)``; sensitivities ``T`` ``(N, d)`` of the values to each pair's
    odd part; leave-one-out residuals ``(N, k)``; the surrogate's scale (None: linear)."""

    values: np.ndarray
    sensitivity: np.ndarray
    loo_residuals: np.ndarray
    scale: float | None = None


def pairs_of(design: Design, y: np.ndarray, delta: np.ndarray) -> Pairs:
    """The pairs of ``design`` with ``y = v(S) - v(empty)`` ``(m, k)`` and ``delta``."""
    first = design.masks[0::2]
    return Pairs(2.0 * first - 1.0, design.weights[0::2] + design.weights[1::2],
                 (y[0::2] - y[1::2]) / 2.0, np.asarray(delta, dtype=np.float64))


def linear_fit(pairs: Pairs) -> Fit:
    """Paired, constrained KernelSHAP: ``phi = 2 a`` for the weighted fit ``y ~ x a`` subject to
    ``2 sum(a) = delta``, solved through the symmetric KKT system ``[[X'WX, 2], [2', 0]]``.

    The system is inverted by a symmetric eigendecomposition, a pseudo-inverse when singular
    (tiny designs); leverages ``w_j x_j' K11 x_j`` are capped at 0.9 for the HC3 residuals.
    """
    x, w, y = pairs.x, pairs.w, pairs.y
    d = x.shape[1]
    kkt = np.zeros((d + 1, d + 1))
    kkt[:d, :d] = x.T @ (w[:, None] * x)
    kkt[:d, d] = kkt[d, :d] = 2.0
    eigval, eigvec = np.linalg.eigh(kkt)
    keep = np.abs(eigval) > max(float(np.abs(eigval).max()), 1e-300) * 1e-12
    inverse = (eigvec * np.where(keep, 1.0 / np.where(keep, eigval, 1.0), 0.0)) @ eigvec.T
    rhs = np.concatenate([x.T @ (w[:, None] * y), pairs.delta[None, :]], axis=0)
    a = inverse[:d] @ rhs
    K11 = inverse[:d, :d]
    leverage = np.clip(w * ((x @ K11) * x).sum(1), 0.0, 0.9)
    loo = (y - x @ a) / (1.0 - leverage)[:, None]
    return Fit(2.0 * a, 2.0 * (x @ K11) * w[:, None], loo)


def std_errors(design: Design, fit: Fit) -> np.ndarray:
    """Stratified sandwich standard errors ``(d, k)`` over the sampled pairs."""
    d, k = fit.values.shape
    if design.pair_stratum.size == 0:
        return np.zeros((d, k))
    start = design.n_enumerated // 2
    terms = fit.sensitivity[start:, :, None] * fit.loo_residuals[start:, None, :]
    var = np.zeros((d, k))
    for u in np.unique(design.pair_stratum):
        t = terms[design.pair_stratum == u]
        n, total = t.shape[0], int(design.stratum_total[u])
        if n < 2:
            continue
        fpc = max(0.0, 1.0 - n / total)
        var += n / (n - 1) * fpc * ((t - t.mean(0)) ** 2).sum(0)
    return np.sqrt(var)
